"""Tabular TD updates from a batch of N transitions, in place (names end with ``_``).

Each function updates the table and returns the TD errors ``delta [N]`` (the table's dtype and
kind). Transition i is ``(s[i], a[i], r[i], s_next[i], terminated[i])``; ``terminated`` means no
bootstrap from ``s_next``. ``alpha`` and ``gamma`` are numbers or ``[N]`` arrays.

Two batch semantics, both deterministic (``mode``):

- ``"sequential"``: the transitions are applied one after another in order, exactly the online
  algorithm (later transitions see earlier updates). The chain of dependencies runs on one thread.
- ``"accumulate"``: every TD error is computed from the table as it was before the call, and the
  increments ``alpha * delta`` are summed where ``(s, a)`` repeats, in transition order: the
  semantics (and the bits) of ``numpy.add.at``. Computed in parallel without data races.

Tables are numpy arrays or torch tensors (CPU, or CUDA when built with CUDA), float32 or float64,
contiguous and writeable, and share no memory with the other arguments. Calls that update one
table from several Python threads run one after another (each sees the table as the previous left
it); calls on different tables run side by side. Torch tables are updated as torch's in-place ops
update tensors: refused for a leaf that requires grad (outside ``torch.no_grad()``), their version
counter bumped. Indices are int64 (int32 accepted). Every index, mask and reward is
checked before anything is written: a failing call leaves the table untouched. On CUDA the
transition arrays are checked on the host (one copy each way) and the kernels run on the caller's
stream: accumulate mode by a stable sort of the cells (the bits of the CPU and of numpy.add.at),
sequential mode on one GPU thread (the online chain; correct but not fast: the CPU is the fast path
for it). The CUDA kernels are compiled but have not yet run on a GPU (see the README).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _C
from .. import _arrays as ar
from .._arrays import Array

MODES = ("sequential", "accumulate")


def td0_update_(V: Array, s: Array, r: Array, s_next: Array, terminated: Array, *, alpha: Array, gamma: Array,
                mode: str = "sequential") -> Array:
    """TD(0) on state values: ``delta = r + gamma (1 - terminated) V[s_next] - V[s]``,
    ``V[s] += alpha delta``.

    Args:
        V: the table ``[S]``, updated in place.
        s, r, s_next, terminated: the transitions, ``[N]`` each.
        alpha, gamma, mode: the step size, the discount and the batch semantics (module docstring).

    Returns:
        The TD errors ``delta [N]`` (the table's dtype and kind); the table is updated in place.
    """
    out = ar.plain_call(_C.rl.td_update_plain, "td0", V, s, None, r, s_next, None, terminated, alpha, gamma, mode)
    if out is not None:
        return out
    return _general_update("td0", V, None, s, None, r, s_next, None, terminated, alpha, gamma, mode)


def sarsa_update_(Q: Array, s: Array, a: Array, r: Array, s_next: Array, a_next: Array, terminated: Array, *,
                  alpha: Array, gamma: Array, mode: str = "sequential") -> Array:
    """SARSA: ``delta = r + gamma (1 - terminated) Q[s_next, a_next] - Q[s, a]``,
    ``Q[s, a] += alpha delta``.

    Args:
        Q: the table ``[S, A]``, updated in place.
        s, a, r, s_next, a_next, terminated: the transitions, ``[N]`` each.
        alpha, gamma, mode: the step size, the discount and the batch semantics (module docstring).

    Returns:
        The TD errors ``delta [N]`` (the table's dtype and kind); the table is updated in place.
    """
    out = ar.plain_call(_C.rl.td_update_plain, "sarsa", Q, s, a, r, s_next, a_next, terminated, alpha, gamma, mode)
    if out is not None:
        return out
    return _general_update("sarsa", Q, None, s, a, r, s_next, a_next, terminated, alpha, gamma, mode)


def q_learning_update_(Q: Array, s: Array, a: Array, r: Array, s_next: Array, terminated: Array, *, alpha: Array,
                       gamma: Array, mode: str = "sequential") -> Array:
    """Q-learning: ``delta = r + gamma (1 - terminated) max_a' Q[s_next, a'] - Q[s, a]``,
    ``Q[s, a] += alpha delta``.

    Args:
        Q: the table ``[S, A]``, updated in place.
        s, a, r, s_next, terminated: the transitions, ``[N]`` each.
        alpha, gamma, mode: the step size, the discount and the batch semantics (module docstring).

    Returns:
        The TD errors ``delta [N]`` (the table's dtype and kind); the table is updated in place.
    """
    out = ar.plain_call(_C.rl.td_update_plain, "q_learning", Q, s, a, r, s_next, None, terminated, alpha, gamma, mode)
    if out is not None:
        return out
    return _general_update("q_learning", Q, None, s, a, r, s_next, None, terminated, alpha, gamma, mode)


@ar.resolving
def expected_sarsa_update_(Q: Array, s: Array, a: Array, r: Array, s_next: Array, terminated: Array, *, alpha: Array,
                           gamma: Array, mode: str = "sequential", probs: Array = None,
                           epsilon: Optional[float] = None) -> Array:
    """Expected SARSA: ``delta = r + gamma (1 - terminated) sum_a' pi(a' | s_next)
    Q[s_next, a'] - Q[s, a]``, ``Q[s, a] += alpha delta``.

    Args:
        Q: the table ``[S, A]``, updated in place.
        s, a, r, s_next, terminated: the transitions, ``[N]`` each.
        alpha, gamma, mode: the step size, the discount and the batch semantics (module docstring).
        probs: ``pi(. | s_next)`` as ``[N, A]`` rows of probabilities summing to 1; or
        epsilon: the epsilon-greedy policy of Q: ``1 - epsilon`` spread evenly over the
            maximising actions and ``epsilon / A`` on every action. Exactly one of ``probs`` and
            ``epsilon``.

    Returns:
        The TD errors ``delta [N]`` (the table's dtype and kind); the table is updated in place.
    """
    if (probs is None) == (epsilon is None):
        raise TypeError("expected_sarsa_update_: give exactly one of probs and epsilon")
    return _update("expected_sarsa", Q, None, s, a, r, s_next, None, terminated, alpha, gamma, mode, probs=probs,
                   epsilon=epsilon)


@ar.resolving
def double_q_learning_update_(Q1: Array, Q2: Array, s: Array, a: Array, r: Array, s_next: Array, terminated: Array, *,
                              alpha: Array, gamma: Array, mode: str = "sequential", update_first: Array) -> Array:
    """Double Q-learning (van Hasselt 2010): transition i updates ``X = Q1`` where
    ``update_first[i]`` (else ``Q2``), with ``Y`` the other table:
    ``delta = r + gamma (1 - terminated) Y[s_next, argmax_a' X[s_next, a']] - X[s, a]`` (lowest
    index on ties), ``X[s, a] += alpha delta``.

    Args:
        Q1, Q2: the tables ``[S, A]``, updated in place.
        s, a, r, s_next, terminated: the transitions, ``[N]`` each.
        alpha, gamma, mode: the step size, the discount and the batch semantics (module docstring).
        update_first: ``[N]`` bool, which table transition i updates.

    Returns:
        The TD errors ``delta [N]`` (the table's dtype and kind); the table is updated in place.
    """
    return _update("double_q", Q1, Q2, s, a, r, s_next, None, terminated, alpha, gamma, mode, update_first=update_first)


def _table(x, name: str, ndim: int, allow_empty: bool = False):
    if not (isinstance(x, np.ndarray) or ar.is_torch(x)):
        ar.refuse_foreign(x, name)
        raise TypeError(f"{name}: expected a numpy array or torch tensor to update in place, got {type(x).__name__}")
    d = ar.dtype_name(x)
    if d not in ar.FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 table, got dtype {d}")
    if ar.is_torch(x):
        if x.device.type not in ("cpu", "cuda") or (x.is_cuda and not hasattr(_C.rl, "td_update_cuda")):
            raise ValueError(f"{name}: expected a CPU tensor (or CUDA, with a CUDA build), got a tensor on {x.device}")
        if not x.is_contiguous():
            raise ValueError(f"{name}: expected a contiguous table (it is updated in place)")
        ar.check_writable(x, name)
    else:
        if not x.flags.c_contiguous:
            raise ValueError(f"{name}: expected a contiguous table (it is updated in place)")
        if not x.flags.writeable:
            raise ValueError(f"{name}: expected a writeable table, got a read-only array")
    if allow_empty and x.ndim != ndim:
        raise ValueError(f"{name}: expected an array of {ndim} dimensions, got shape {list(x.shape)}")
    if not allow_empty and (x.ndim != ndim or 0 in x.shape):
        want = "[S]" if ndim == 1 else "[S, A]"
        raise ValueError(f"{name}: expected a non-empty table of shape {want}, got {list(x.shape)}")
    return x


def _numpy(x, name: str, N: Optional[int], kind: str, dtype: Optional[str] = None):
    """x as a contiguous numpy [N] array: kind 'index' (int64), 'mask' (bool) or 'real' (dtype)."""
    if x is None:
        raise TypeError(f"{name}: expected an array of length N, got None")
    arr = _host_array(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array [N], got shape {list(arr.shape)}")
    ar.check_copy(arr, name)
    if N is not None and arr.shape[0] != N:
        raise ValueError(f"{name}: expected length N = {N} like s, got {arr.shape[0]}")
    if kind == "index":
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: expected integer indices, got dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.int64)
    if kind == "mask":
        if arr.dtype != np.bool_:
            raise TypeError(f"{name}: expected a bool mask, got dtype {arr.dtype}")
        return np.ascontiguousarray(arr)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _host_array(x, name: str) -> np.ndarray:
    """An array argument as numpy: torch tensors as host arrays (CUDA ones copied), arrays of other
    libraries refused by name."""
    if ar.is_torch(x):
        if x.device.type not in ("cpu", "cuda"):
            raise ValueError(f"{name}: expected a CPU or CUDA tensor, got a tensor on {x.device}")
        return ar.to_numpy(x)
    if type(x) is not np.ndarray:
        ar.refuse_foreign(x, name)
    return np.asarray(x)


def _numpy_2d(x, name: str) -> np.ndarray:
    """A real-valued array argument as numpy (see _host_array)."""
    x = _host_array(x, name)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {x.dtype}")
    return x


def _rate(x, name: str, N: int, dtype: str, upper: Optional[float]):
    """(scalar, None) or (0.0, [N] array) for alpha / gamma."""
    if isinstance(x, bool):
        raise TypeError(f"{name}: expected a number or an [N] array, got bool")
    if np.isscalar(x) or (isinstance(x, np.ndarray) and x.ndim == 0):
        val = ar.check_real_scalar(x.item() if isinstance(x, np.ndarray) else x, name)
        if not (val >= 0 and (upper is None or val <= upper)) or not np.isfinite(val):
            raise ValueError(f"{name}: expected a number in [0, {upper if upper is not None else 'inf'}), got {val}")
        return val, None
    arr = _numpy(x, name, N, "real", dtype)
    if not (np.all(arr >= 0) and np.all(np.isfinite(arr)) and (upper is None or np.all(arr <= upper))):
        raise ValueError(f"{name}: expected values in [0, {upper if upper is not None else 'inf'}]")
    return 0.0, arr


def _update(rule, Q, Q2, s, a, r, s_next, a_next, terminated, alpha, gamma, mode, probs=None, epsilon=None,
            update_first=None) -> Any:
    host = ar.cpu_tensors_as_numpy(Q, Q2, s, a, r, s_next, a_next, terminated, alpha, gamma, probs, update_first)
    if host is not None:  # plain CPU tensors: the numpy path on their memory
        Qn, Q2n, s, a, r, s_next, a_next, terminated, alpha, gamma, probs, update_first = host
        td = _update(rule, Qn, Q2n, s, a, r, s_next, a_next, terminated, alpha, gamma, mode, probs, epsilon,
                     update_first)
        ar.bump_versions(Q, Q2)
        return ar._torch().from_numpy(td) if ar.is_torch(Q) else td  # td: a fresh contiguous array
    if mode not in MODES:
        raise ValueError(f"mode: expected 'sequential' or 'accumulate', got {mode!r}")
    name = "V" if rule == "td0" else ("Q1" if rule == "double_q" else "Q")
    Q = _table(Q, name, 1 if rule == "td0" else 2)
    dtype = ar.dtype_name(Q)
    if Q2 is not None:
        Q2 = _table(Q2, "Q2", 2)
        if ar.dtype_name(Q2) != dtype or tuple(Q2.shape) != tuple(Q.shape):
            raise ValueError(f"Q2: expected a table like Q1 ({list(Q.shape)}, {dtype}), got "
                             f"{list(Q2.shape)}, {ar.dtype_name(Q2)}")
    s = _numpy(s, "s", None, "index")
    N = s.shape[0]
    s_next = _numpy(s_next, "s_next", N, "index")
    a = None if a is None else _numpy(a, "a", N, "index")
    a_next = None if a_next is None else _numpy(a_next, "a_next", N, "index")
    r = _numpy(r, "r", N, "real", dtype)
    terminated = _numpy(terminated, "terminated", N, "mask")
    alpha_s, alpha_a = _rate(alpha, "alpha", N, dtype, None)
    gamma_s, gamma_a = _rate(gamma, "gamma", N, dtype, 1.0)
    A = 1 if rule == "td0" else Q.shape[1]
    if probs is not None:
        probs = _numpy_2d(probs, "probs")
        if probs.shape != (N, A):
            raise ValueError(f"probs: expected shape [N, A] = [{N}, {A}], got {list(probs.shape)}")
        probs = np.ascontiguousarray(probs, dtype=dtype)
        tol = 1e-4 if dtype == "float32" else 1e-8
        if not (np.all((probs >= 0) & (probs <= 1)) and np.all(np.abs(probs.sum(-1) - 1) <= tol)):
            raise ValueError(f"probs: expected rows of probabilities in [0, 1] summing to 1 (within {tol})")
    eps = 0.0
    if epsilon is not None:
        eps = ar.check_real_scalar(epsilon, "epsilon")
        if not 0 <= eps <= 1:
            raise ValueError(f"epsilon: expected a number in [0, 1], got {eps}")
    if update_first is not None:
        update_first = _numpy(update_first, "update_first", N, "mask")
    kind = ar.kind(Q)
    if Q2 is not None and ar.is_torch(Q2) != ar.is_torch(Q) or (ar.is_torch(Q) and Q2 is not None and
                                                               Q2.device != Q.device):
        raise ValueError("Q2: expected a table of the same kind and device as Q1")
    td = ar.empty((N,), dtype, kind)
    table = Q.reshape(-1, 1) if rule == "td0" else Q  # a view: updates land in Q
    view = ar.view_or_none
    stream = 0
    if kind.is_cuda:  # the checks the CPU kernel makes itself, on the host arrays; then to the device
        S, A = table.shape
        check_on_host((s, S, "s"), (s_next, S, "s_next"), (a, A, "a"), (a_next, A, "a_next"), rewards=r)
        s, s_next, a, a_next, r, terminated, alpha_a, gamma_a, probs, update_first = to_device(
            kind, s, s_next, a, a_next, r, terminated, alpha_a, gamma_a, probs, update_first)
        stream = ar.cuda_stream(kind)
    getattr(_C.rl, f"td_update_{kind.suffix}")(
        rule, mode == "sequential", ar.view(table), view(Q2), ar.view(s), ar.view(s_next), view(a), view(a_next),
        ar.view(r), ar.view(terminated), view(alpha_a), alpha_s, view(gamma_a), gamma_s, view(probs), eps,
        view(update_first), ar.view(td), stream)
    ar.bump_versions(Q, Q2)
    return td


_general_update = ar.resolving(_update)


def check_on_host(*indices, rewards=None) -> None:
    """Index ranges ((array, upper bound, name), None arrays skipped) and finite rewards of host
    arrays, with the CPU kernels' messages (for the CUDA kernels, which cannot raise)."""
    for idx, hi, name in indices:
        if idx is not None:
            _C.rl.check_index_range(ar.view(idx), int(hi), name)
    if rewards is not None and not _C.rl.all_finite(ar.view(rewards)):
        raise ValueError("r: expected finite rewards, found nan or inf")


def to_device(kind: ar.Kind, *arrays):
    """Host numpy arrays as contiguous tensors on kind's device (None passes through)."""
    return tuple(None if x is None else ar.tensor_from_numpy(x).to(kind.device) for x in arrays)
