"""Reference position-sensitive RoI ops: loops over RoI, output channel, bin and sample.

Same names, signatures and semantics as :mod:`nimbleops.vision` (see the docstrings of
:func:`nimbleops.vision.ps_roi_align` and :func:`nimbleops.vision.ps_roi_pool`). numpy in, numpy
out; every value is computed in float64 and the result is cast to the input's dtype. Slow: for
tests on small inputs.
"""
from __future__ import annotations

import math

import numpy as np

# scaled box coordinates beyond this magnitude count as infinite (the RoI gives zeros)
COORD_LIMIT = 2.0 ** 40


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _boxes5(boxes):
    """[K, 5] float64 (batch index, x1, y1, x2, y2) from [K, 5] or a list of arrays [K_i, 4]."""
    if isinstance(boxes, (list, tuple)) and all(hasattr(b, "shape") for b in boxes):
        rows = [np.concatenate([np.full((len(b), 1), i, float), np.asarray(b.detach() if hasattr(b, "detach") else b, float).reshape(-1, 4)], 1)
                for i, b in enumerate(boxes)]
        return np.concatenate(rows, 0) if rows else np.zeros((0, 5))
    return np.asarray(boxes, float).reshape(-1, 5)


def _scaled(box, scale, offset):
    """(x1, y1, x2, y2) * scale - offset, or None when not finite (or beyond COORD_LIMIT)."""
    c = [float(v) * scale for v in box[1:5]]
    if not all(math.isfinite(v) and abs(v) <= COORD_LIMIT for v in c):
        return None
    return [v - offset for v in c]


def bilinear_taps(y, x, H, W):
    """[(row, col, weight)] of one sample, torchvision's border rules: a sample more than one
    pixel outside the map is 0; a coordinate in (-1, 0] snaps to 0; at or past the last row or
    column it snaps to it."""
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return []
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= H - 1:
        y_low = y_high = H - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= W - 1:
        x_low = x_high = W - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return [(y_low, x_low, hy * hx), (y_low, x_high, hy * lx), (y_high, x_low, ly * hx), (y_high, x_high, ly * lx)]


def _align_samples(box, i, j, pooled_h, pooled_w, H, W, scale, sampling_ratio, aligned):
    """The samples of bin (i, j): a list (one per sample, row-major over the grid) of tap lists."""
    c = _scaled(box, scale, 0.5 if aligned else 0.0)
    if c is None:
        return None
    x1, y1, x2, y2 = c
    roi_w, roi_h = x2 - x1, y2 - y1
    bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w
    grid_h = sampling_ratio if sampling_ratio > 0 else max(math.ceil(roi_h / pooled_h), 1)
    grid_w = sampling_ratio if sampling_ratio > 0 else max(math.ceil(roi_w / pooled_w), 1)
    samples = []
    for iy in range(grid_h):
        y = (i * bin_h + y1) + (iy + 0.5) * bin_h / grid_h
        for ix in range(grid_w):
            x = (j * bin_w + x1) + (ix + 0.5) * bin_w / grid_w
            samples.append(bilinear_taps(y, x, H, W))
    return samples


def _first_max(values):
    """(index, value) of the first maximum; a NaN wins (it propagates)."""
    best = 0
    for s, v in enumerate(values):
        if math.isnan(values[best]):
            break
        if v > values[best] or math.isnan(v):
            best = s
    return best, values[best]


def _pool_bin(box, i, j, pooled_h, pooled_w, H, W, scale):
    """(h0, h1, w0, w1) of bin (i, j), clipped to [0, H] x [0, W]; None for a non-finite box."""
    c = _scaled(box, scale, 0.0)
    if c is None:
        return None
    # C's round: half away from zero
    x1, y1, x2, y2 = (int(math.copysign(math.floor(abs(v) + 0.5), v)) for v in c)
    roi_w, roi_h = max(x2 - x1, 1), max(y2 - y1, 1)
    h0 = min(max((i * roi_h) // pooled_h + y1, 0), H)           # floor(i * roi_h / pooled_h), exactly
    h1 = min(max(-((-(i + 1) * roi_h) // pooled_h) + y1, 0), H)  # ceil((i + 1) * roi_h / pooled_h), exactly
    w0 = min(max((j * roi_w) // pooled_w + x1, 0), W)
    w1 = min(max(-((-(j + 1) * roi_w) // pooled_w) + x1, 0), W)
    return h0, h1, w0, w1


def _outputs(input, boxes, output_size):
    """(x as float64, the output shape [K, C_out, pooled_h, pooled_w], and [(k, n, box, i, j, c, c_in)] for every
    output (k, c, i, j): RoI k on image n, bin (i, j), output channel c reading input channel c_in)."""
    x = np.asarray(input, float)
    pooled_h, pooled_w = _pair(output_size)
    C_out = x.shape[1] // (pooled_h * pooled_w)
    b = _boxes5(boxes)
    outputs = [(k, int(box[0]), box, i, j, c, (c * pooled_h + i) * pooled_w + j)
               for k, box in enumerate(b) for i in range(pooled_h) for j in range(pooled_w) for c in range(C_out)]
    return x, (len(b), C_out, pooled_h, pooled_w), outputs


def _align_weights(plane, box, i, j, pooled_h, pooled_w, spatial_scale, sampling_ratio, aligned, mode):
    """[(row, col, weight)]: the output of bin (i, j) is sum(weight * plane[row, col]). avg: every
    sample's taps, each weight / the sample count; max: the taps of the first maximal sample."""
    H, W = plane.shape
    samples = _align_samples(box, i, j, pooled_h, pooled_w, H, W, spatial_scale, sampling_ratio, aligned)
    if samples is None:
        return []
    if mode == "avg":
        return [(r, q, w / len(samples)) for taps in samples for r, q, w in taps]
    values = [sum(w * plane[r, q] for r, q, w in taps) for taps in samples]
    return samples[_first_max(values)[0]]


def _pool_weights(plane, box, i, j, pooled_h, pooled_w, spatial_scale):
    """[(row, col, 1 / area)] over the pixels of bin (i, j); empty for an empty bin."""
    H, W = plane.shape
    edges = _pool_bin(box, i, j, pooled_h, pooled_w, H, W, spatial_scale)
    if edges is None or edges[1] <= edges[0] or edges[3] <= edges[2]:
        return []
    h0, h1, w0, w1 = edges
    return [(r, q, 1.0 / ((h1 - h0) * (w1 - w0))) for r in range(h0, h1) for q in range(w0, w1)]


def _forward(weights, input, boxes, output_size):
    x, shape, outputs = _outputs(input, boxes, output_size)
    out = np.zeros(shape)
    for k, n, box, i, j, c, c_in in outputs:
        plane = x[n, c_in]
        out[k, c, i, j] = sum(w * plane[r, q] for r, q, w in weights(plane, box, i, j))
    return out.astype(np.asarray(input).dtype)


def _backward(weights, grad_output, input, boxes, output_size):
    x, _, outputs = _outputs(input, boxes, output_size)
    g = np.asarray(grad_output, float)
    grad = np.zeros(x.shape)
    for k, n, box, i, j, c, c_in in outputs:
        for r, q, w in weights(x[n, c_in], box, i, j):
            grad[n, c_in, r, q] += g[k, c, i, j] * w
    return grad.astype(np.asarray(input).dtype)


def ps_roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, *, aligned=True, mode="avg"):
    """Reference of :func:`nimbleops.vision.ps_roi_align`: output ``[K, C_out, pooled_h, pooled_w]``."""
    pooled_h, pooled_w = _pair(output_size)
    return _forward(lambda plane, box, i, j: _align_weights(plane, box, i, j, pooled_h, pooled_w, spatial_scale, sampling_ratio,
                                                            aligned, mode), input, boxes, output_size)


def ps_roi_align_backward(grad_output, input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, *,
                          aligned=True, mode="avg"):
    """d(sum(grad_output * ps_roi_align(input, ...))) / d input: ``[N, C, H, W]``."""
    pooled_h, pooled_w = _pair(output_size)
    return _backward(lambda plane, box, i, j: _align_weights(plane, box, i, j, pooled_h, pooled_w, spatial_scale, sampling_ratio,
                                                             aligned, mode), grad_output, input, boxes, output_size)


def ps_roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """Reference of :func:`nimbleops.vision.ps_roi_pool`: output ``[K, C_out, pooled_h, pooled_w]``."""
    pooled_h, pooled_w = _pair(output_size)
    return _forward(lambda plane, box, i, j: _pool_weights(plane, box, i, j, pooled_h, pooled_w, spatial_scale), input, boxes,
                    output_size)


def ps_roi_pool_backward(grad_output, input, boxes, output_size, spatial_scale=1.0):
    """d(sum(grad_output * ps_roi_pool(input, ...))) / d input: ``[N, C, H, W]``."""
    pooled_h, pooled_w = _pair(output_size)
    return _backward(lambda plane, box, i, j: _pool_weights(plane, box, i, j, pooled_h, pooled_w, spatial_scale), grad_output,
                     input, boxes, output_size)


# ---------------------------------------------------------------- lightweight convolutions

def depthwise_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Reference of :func:`nimbleops.vision.depthwise_conv2d`: ``[N, C*m, OH, OW]``."""
    x = np.asarray(x)
    w = np.asarray(weight, float)
    N, C, H, W = x.shape
    Cout, _, KH, KW = w.shape
    m = Cout // C
    (sh, sw), (pad_h, pad_w), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    OH = (H + 2 * pad_h - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pad_w - dw * (KW - 1) - 1) // sw + 1
    out = np.zeros((N, Cout, OH, OW))
    for n in range(N):
        for oc in range(Cout):
            c = oc // m
            for oh in range(OH):
                for ow in range(OW):
                    total = 0.0 if bias is None else float(np.asarray(bias)[oc])
                    for kh in range(KH):
                        for kw in range(KW):
                            ih, iw = oh * sh - pad_h + kh * dh, ow * sw - pad_w + kw * dw
                            if 0 <= ih < H and 0 <= iw < W:
                                total += w[oc, 0, kh, kw] * float(x[n, c, ih, iw])
                    out[n, oc, oh, ow] = total
    return out.astype(x.dtype)


def depthwise_conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1):
    """(grad_x, grad_weight, grad_bias) of sum(grad_output * depthwise_conv2d(x, weight, bias, ...))."""
    x = np.asarray(x, float)
    w = np.asarray(weight, float)
    g = np.asarray(grad_output, float)
    N, C, H, W = x.shape
    Cout, _, KH, KW = w.shape
    m = Cout // C
    (sh, sw), (pad_h, pad_w), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    gx, gw, gb = np.zeros_like(x), np.zeros_like(w), g.sum((0, 2, 3))
    for n in range(N):
        for oc in range(Cout):
            c = oc // m
            for oh in range(g.shape[2]):
                for ow in range(g.shape[3]):
                    for kh in range(KH):
                        for kw in range(KW):
                            ih, iw = oh * sh - pad_h + kh * dh, ow * sw - pad_w + kw * dw
                            if 0 <= ih < H and 0 <= iw < W:
                                gx[n, c, ih, iw] += w[oc, 0, kh, kw] * g[n, oc, oh, ow]
                                gw[oc, 0, kh, kw] += x[n, c, ih, iw] * g[n, oc, oh, ow]
    return gx, gw, gb


def channel_shuffle(x, groups):
    """Reference of :func:`nimbleops.vision.channel_shuffle`: ``out[:, k*g + i] = x[:, i*(C/g) + k]``."""
    x = np.asarray(x)
    C = x.shape[1]
    out = np.empty_like(x)
    for i in range(groups):
        for k in range(C // groups):
            out[:, k * groups + i] = x[:, i * (C // groups) + k]
    return out


def concat_shuffle_split(a, b):
    """Reference of :func:`nimbleops.vision.concat_shuffle_split`: shuffle(cat([a, b]), 2) in two halves."""
    cat = np.concatenate([np.asarray(a), np.asarray(b)], 1)
    shuffled = channel_shuffle(cat, 2)
    half = cat.shape[1] // 2
    return shuffled[:, :half].copy(), shuffled[:, half:].copy()


def batch_norm_relu(x, weight, bias, running_mean=None, running_var=None, *, momentum=0.1, eps=1e-5, relu=True):
    """Training-mode batch norm (+ ReLU), channel by channel in float64; running statistics updated
    in place (see :func:`nimbleops.vision.batch_norm_relu`)."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    M = N * H * W
    y = np.empty_like(x)
    for c in range(C):
        values = x[:, c].astype(np.float64)
        mean = values.sum() / M
        var = ((values - mean) ** 2).sum() / M
        out = float(weight[c]) * (values - mean) / math.sqrt(var + eps) + float(bias[c])
        y[:, c] = np.maximum(out, 0) if relu else out
        if running_mean is not None:
            running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean
            running_var[c] = (1 - momentum) * running_var[c] + momentum * var * M / (M - 1)
    return y



def max_pool2d(x, kernel_size, stride, padding):
    """torch's max_pool2d (square windows, no dilation, floor mode): each window's first maximum in
    row order, or its last nan; ``(out, index)``, index = h * W + w of the position kept."""
    x = np.asarray(x)
    N, C, H, W = x.shape
    OH, OW = (H + 2 * padding - kernel_size) // stride + 1, (W + 2 * padding - kernel_size) // stride + 1
    out, index = np.empty((N, C, OH, OW), x.dtype), np.empty((N, C, OH, OW), np.int64)
    for n, c, oh, ow in np.ndindex(N, C, OH, OW):
        rows = range(max(0, oh * stride - padding), min(H, oh * stride - padding + kernel_size))
        cols = range(max(0, ow * stride - padding), min(W, ow * stride - padding + kernel_size))
        best, at = -np.inf, rows[0] * W + cols[0]
        for h in rows:
            for w in cols:
                v = x[n, c, h, w]
                if v > best or np.isnan(v):
                    best, at = v, h * W + w
        out[n, c, oh, ow], index[n, c, oh, ow] = best, at
    return out, index


def batch_norm_relu_max_pool(x, weight, bias, running_mean=None, running_var=None, *, kernel_size=3, stride=2,
                             padding=1, momentum=0.1, eps=1e-5):
    """The unfused composition: :func:`batch_norm_relu`, then :func:`max_pool2d`."""
    y = batch_norm_relu(x, weight, bias, running_mean, running_var, momentum=momentum, eps=eps, relu=True)
    return max_pool2d(y, kernel_size, stride, padding)[0]

def conv2d_relu_max_pool(x, weight, bias=None, stride=1, padding=0, *, pool_kernel_size=3, pool_stride=2,
                         pool_padding=1):
    """Reference of :func:`nimbleops.vision.conv2d_relu_max_pool`: a dense convolution in float64
    (one output at a time), ReLU (nan kept), :func:`max_pool2d`; cast to x's dtype."""
    x = np.asarray(x)
    xf, w = x.astype(float), np.asarray(weight, float)
    N, Cin, H, W = x.shape
    Cout, _, KH, KW = w.shape
    OH, OW = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    xp = np.zeros((N, Cin, H + 2 * padding, W + 2 * padding))
    xp[:, :, padding:padding + H, padding:padding + W] = xf
    y = np.empty((N, Cout, OH, OW))
    for n, co, oh, ow in np.ndindex(N, Cout, OH, OW):
        patch = xp[n, :, oh * stride:oh * stride + KH, ow * stride:ow * stride + KW]
        y[n, co, oh, ow] = (0.0 if bias is None else float(np.asarray(bias)[co])) + float((patch * w[co]).sum())
    y = np.where(y < 0, 0.0, y)
    return max_pool2d(y, pool_kernel_size, pool_stride, pool_padding)[0].astype(x.dtype)


def _suppresses(a, b, iou_threshold):
    """torchvision's test, in the boxes' dtype: max/min as std::max/std::min, area_j + area_i - inter,
    the ratio compared with the threshold in float64."""
    zero = a.dtype.type(0)
    w = max(zero, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(zero, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return float(inter / (area_a + area_b - inter)) > iou_threshold


def nms(boxes, scores, iou_threshold, *, max_output=None):
    """Greedy NMS (see :func:`nimbleops.vision.nms`): each box against every kept box before it."""
    return batched_nms(boxes, scores, np.zeros(len(scores), np.int64), iou_threshold, max_output=max_output)


def batched_nms(boxes, scores, groups, iou_threshold, *, max_output=None):
    boxes, scores, groups = np.asarray(boxes), np.asarray(scores), np.asarray(groups)
    # descending, nan first, ties by index
    order = sorted(range(len(scores)), key=lambda k: (not np.isnan(scores[k]), -scores[k] if not np.isnan(scores[k])
                                                      else 0.0, k))
    kept = []
    for k in order:
        if max_output is not None and len(kept) == max_output:
            break
        if not any(groups[j] == groups[k] and _suppresses(boxes[j], boxes[k], iou_threshold) for j in kept):
            kept.append(k)
    return np.array(kept, np.int64)


# ---------------------------------------------------------------- ShuffleNetV2 stage

def _pointwise_relu(x, weight, bias):
    w = np.asarray(weight, float).reshape(np.shape(weight)[0], -1)
    y = np.einsum("oc,nchw->nohw", w, np.asarray(x, float))
    if bias is not None:
        y += np.asarray(bias, float)[None, :, None, None]
    return np.maximum(y, 0.0)


def shufflenet_stage(x, units):
    """Reference of :func:`nimbleops.vision.shufflenet_stage`: the unfused composition, each unit
    in float64 (the result cast to x's dtype)."""
    from ..vision.shufflenet import ShuffleUnitWeights

    y = np.asarray(x, float)
    for u in units:
        u = u if isinstance(u, ShuffleUnitWeights) else ShuffleUnitWeights(**u)
        s = int(u.stride)

        def dw(t, w, b):
            k = np.shape(w)[2:]
            return depthwise_conv2d(t, w, b, s, (k[0] // 2, k[1] // 2))

        def branch2(t):
            return _pointwise_relu(dw(_pointwise_relu(t, u.pw1_weight, u.pw1_bias), u.dw_weight, u.dw_bias),
                                   u.pw2_weight, u.pw2_bias)

        if s == 2:
            y1 = _pointwise_relu(dw(y, u.branch1_dw_weight, u.branch1_dw_bias), u.branch1_pw_weight,
                                 u.branch1_pw_bias)
            y = channel_shuffle(np.concatenate([y1, branch2(y)], 1), 2)
        else:
            half = y.shape[1] // 2
            y = channel_shuffle(np.concatenate([y[:, :half], branch2(y[:, half:])], 1), 2)
    return y.astype(np.asarray(x).dtype)
