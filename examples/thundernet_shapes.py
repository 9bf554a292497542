"""Train ThunderNet-SNet49 on synthetic shapes, report mAP@0.5 on held-out images, and draw the
detections.

Every image is coloured rectangles, ellipses and triangles on noise, generated on the fly (no data
set to download). Usage:

    python examples/thundernet_shapes.py [--backend nimbleops|torch] [--steps 600] [--out shapes.png]

It prints the training time, the time per step and the mAP@0.5 (VOC-style, all-point interpolated
average precision over the three classes), and writes a PNG of the detections on a few held-out
images (matplotlib).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import nimbleops
from nimbleops.models import ThunderNet, optimize_for_inference

CLASSES = ("rectangle", "ellipse", "triangle")


def shapes_image(rng: np.random.Generator, size: int = 160, max_objects: int = 3):
    """One image [3, size, size] in [0, 1] with 1..max_objects shapes, and its boxes and labels."""
    img = rng.uniform(0.0, 0.35, (size, size, 3)).astype(np.float32)
    yy, xx = np.mgrid[:size, :size]
    boxes, labels = [], []
    for _ in range(rng.integers(1, max_objects + 1)):
        w, h = rng.integers(size // 8, size // 2, 2)
        x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
        label = int(rng.integers(1, 4))
        if label == 1:
            mask = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        elif label == 2:
            cx, cy = x0 + w / 2, y0 + h / 2
            mask = ((xx + 0.5 - cx) / (w / 2)) ** 2 + ((yy + 0.5 - cy) / (h / 2)) ** 2 <= 1
        else:  # apex at the top centre, base along the bottom edge
            t = (yy + 0.5 - y0) / h
            mask = (t >= 0) & (t <= 1) & (np.abs(xx + 0.5 - (x0 + w / 2)) <= t * w / 2)
        img[mask] = rng.uniform(0.5, 1.0, 3)
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(label)
    image = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    return image, {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)}


def batch(rng, n: int, size: int = 160):
    items = [shapes_image(rng, size) for _ in range(n)]
    return torch.stack([(i - 0.45) / 0.25 for i, _ in items]), [t for _, t in items], [i for i, _ in items]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def mean_average_precision(detections, targets, num_classes: int = 3, threshold: float = 0.5) -> float:
    """VOC-style mAP: per class, detections by decreasing score matched greedily to unmatched
    ground truths at IoU >= threshold; AP = area under the all-point interpolated precision-recall
    curve."""
    aps = []
    for c in range(1, num_classes + 1):
        scored, n_gt = [], 0
        for det, tgt in zip(detections, targets):
            gt = tgt["boxes"][tgt["labels"] == c].numpy()
            n_gt += len(gt)
            keep = det["labels"] == c
            boxes, scores = det["boxes"][keep].numpy(), det["scores"][keep].numpy()
            used = np.zeros(len(gt), bool)
            for i in np.argsort(-scores, kind="stable"):
                hit = False
                if len(gt):
                    overlaps = iou(boxes[i:i + 1], gt)[0]
                    overlaps[used] = -1
                    j = int(overlaps.argmax())
                    if overlaps[j] >= threshold:
                        used[j] = hit = True
                scored.append((scores[i], hit))
        if n_gt == 0:
            continue
        scored.sort(key=lambda s: -s[0])
        hits = np.array([h for _, h in scored], float)
        tp, fp = np.cumsum(hits), np.cumsum(1 - hits)
        recall = np.concatenate([[0], tp / n_gt, [1]])
        precision = np.concatenate([[1], tp / np.maximum(tp + fp, 1e-9), [0]])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        aps.append(float(np.sum((recall[1:] - recall[:-1]) * precision[1:])))
    return float(np.mean(aps))


def draw(images, detections, path: str, threshold: float = 0.5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {1: "tab:red", 2: "tab:green", 3: "tab:blue"}
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.4))
    for ax, img, det in zip(axes.flat, images, detections):
        ax.imshow(img.permute(1, 2, 0).numpy())
        for box, score, label in zip(det["boxes"], det["scores"], det["labels"]):
            if score < threshold:
                continue
            x1, y1, x2, y2 = box.tolist()
            c = colours[int(label)]
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=c, linewidth=1.5))
            ax.text(x1, y1 - 1, f"{CLASSES[int(label) - 1]} {score:.2f}", color=c, fontsize=7)
        ax.axis("off")
    fig.suptitle("ThunderNet-SNet49 on synthetic shapes (detections with score >= 0.5)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="nimbleops", choices=("nimbleops", "torch"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=160, help="image side in pixels")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="shapes.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    nimbleops.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    model = ThunderNet("snet49", num_classes=3, backend=args.backend, rpn_post_nms_top_n=(300, 100),
                       box_batch_size_per_image=128).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.15)
    train_time = 0.0
    for step in range(args.steps):
        x, targets, _ = batch(rng, args.batch, args.size)
        t0 = time.perf_counter()
        losses = model(x, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        train_time += time.perf_counter() - t0
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.3f}  " + "  ".join(f"{k} {v.item():.3f}" for k, v in losses.items()),
                  flush=True)

    model.eval()
    fast = optimize_for_inference(model)
    held_out = np.random.default_rng(args.seed + 1)
    detections, targets, images = [], [], []
    infer_time = 0.0
    with torch.no_grad():
        for _ in range(args.eval_images):
            x, t, raw = batch(held_out, 1, args.size)
            t0 = time.perf_counter()
            detections += fast(x)
            infer_time += time.perf_counter() - t0
            targets += t
            images += raw
    result = {"backend": args.backend, "steps": args.steps, "train_s": train_time,
              "ms_per_step": 1e3 * train_time / args.steps, "ms_per_image": 1e3 * infer_time / args.eval_images,
              "map50": mean_average_precision(detections, targets)}
    print(f"{args.backend}: {args.steps} steps of batch {args.batch} in {train_time:.0f} s "
          f"({result['ms_per_step']:.0f} ms a step); inference {result['ms_per_image']:.1f} ms an image; "
          f"mAP@0.5 on {args.eval_images} held-out images: {result['map50']:.3f}")
    try:
        draw(images[:8], detections[:8], args.out)
        print(f"detections drawn to {args.out}")
    except ImportError:
        print("matplotlib is not installed: no picture")
    return result


if __name__ == "__main__":
    main()
