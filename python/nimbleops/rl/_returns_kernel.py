"""The return estimators' kernels on canonical ``[T, B]`` arrays, called by
:mod:`nimbleops.rl.returns` and by the custom ops of :mod:`nimbleops.torch_ops`."""
from __future__ import annotations

import numpy as np

from .. import _C
from .. import _arrays as ar

TWO_OUTPUTS = ("gae", "vtrace")  # the estimators with a second output (value targets, pg advantages)


def inputs_handle(estimator, r, v, nv, term, trunc, gamma_arr, gamma_scalar, lam, n, rhos, traces):
    """The C++ description of one call (views of the canonical [T, B] arrays)."""
    view = ar.view_or_none
    return _C.rl.ReturnsInputs(estimator, ar.view(r), view(v), ar.view(nv), ar.view(term), ar.view(trunc),
                               view(gamma_arr), float(gamma_scalar), float(lam), int(n), view(rhos), view(traces),
                               ar.stream_of(r))


def importance_weights(lr, lam, rho_clip, c_clip):
    """(rho, c) = (min(rho_clip, exp(lr)), lam * min(c_clip, exp(lr))), vectorised by numpy / torch."""
    if lr is None:
        return None, None
    e = lr.exp() if ar.is_torch(lr) else np.exp(lr)
    if ar.is_torch(e):
        return e.clamp(max=rho_clip).contiguous(), (lam * e.clamp(max=c_clip)).contiguous()
    return (np.minimum(e, np.asarray(rho_clip, e.dtype)),
            np.asarray(lam, e.dtype) * np.minimum(e, np.asarray(c_clip, e.dtype)))


def run_forward(estimator, r, v, nv, term, trunc, gamma_arr, gamma_scalar, lam, n, lr, rho_clip, c_clip):
    """Forward kernel on canonical numpy arrays or torch tensors: (out0, out1 or None). Rewards
    with nan or inf raise ValueError (the CPU kernel checks them in its own pass)."""
    if ar.is_torch(r) and r.is_cuda and not bool(ar.isfinite(r).all()):
        raise ValueError("rewards: expected finite rewards, found nan or inf")
    rhos, traces = importance_weights(lr, lam, rho_clip, c_clip)
    handle = inputs_handle(estimator, r, v, nv, term, trunc, gamma_arr, gamma_scalar, lam, n, rhos, traces)
    empty = np.empty_like if type(r) is np.ndarray else ar._torch().empty_like  # contiguous, like r
    out0 = empty(r)
    out1 = empty(r) if estimator in TWO_OUTPUTS else None
    getattr(_C.rl, f"returns_forward_{ar.kind(r).suffix}")(handle, ar.view(out0), ar.view_or_none(out1))
    return out0, out1


def run_backward(estimator, r, v, nv, term, trunc, gamma_arr, gamma_scalar, lam, n, lr, rho_clip, c_clip, g0, g1):
    """Adjoint kernel: (grad_rewards, grad_values or None, grad_next_values)."""
    rhos, traces = importance_weights(lr, lam, rho_clip, c_clip)
    handle = inputs_handle(estimator, r, v, nv, term, trunc, gamma_arr, gamma_scalar, lam, n, rhos, traces)
    kind = ar.kind(r)
    dt = ar.dtype_name(r)
    gr, gnv = ar.empty(r.shape, dt, kind), ar.empty(r.shape, dt, kind)
    gv = ar.empty(r.shape, dt, kind) if estimator in TWO_OUTPUTS else None
    if estimator == "n_step" and g0 is None:
        g0 = ar.zeros(r.shape, dt, kind)
    view = ar.view_or_none
    getattr(_C.rl, f"returns_backward_{kind.suffix}")(handle, view(g0), view(g1), ar.view(gr), view(gv), ar.view(gnv))
    return gr, gv, gnv
