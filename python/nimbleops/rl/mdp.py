"""Tabular MDP models: dense ``P [..., S, A, S']`` arrays, :class:`SparseTransitions`, and the
conversion of a Gymnasium toy-text environment.

Conventions shared by every Bellman function:

- ``P[..., s, a, s']`` is the probability of moving from ``s`` to ``s'`` under action ``a``; a row
  sums to at most 1 and the missing mass is termination (value 0 afterwards).
- ``R[..., s, a]`` is the expected reward of ``(s, a)``. ``R[..., s, a, s']`` is accepted too and
  reduced once to ``sum_s' P R``. ``R = -inf`` marks an infeasible action: it is never chosen, a
  policy may not use it, and every state needs at least one feasible action.
- A leading batch ``...`` of MDPs of equal size is allowed for dense ``P``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np

from .. import _C
from .. import _arrays as ar

#: largest accepted excess of a row sum over 1, per dtype
ROW_SUM_TOL = {"float32": 1e-5, "float64": 1e-9}


class SparseTransitions:
    """Transitions in CSR form over the ``S*A`` state-action rows (row ``s*A + a``).

    Args:
        indptr: ``[S*A + 1]`` integer row pointers.
        indices: ``[nnz]`` next states, each in ``[0, S)``.
        data: ``[nnz]`` probabilities in ``[0, 1]``; each row sums to at most 1.
        num_states, num_actions: ``S`` and ``A``.
        check: check the probabilities (finite, in [0, 1], row sums <= 1 + ROW_SUM_TOL). The
            structure and index ranges are always checked.

    The arrays are copied once into read-only numpy arrays (so the checks stay true);
    ``indices`` are stored as int32 when ``S`` allows. Duplicate entries in a row add up. The
    data dtype (float32 or float64; other real types become float64) is the compute dtype of
    every function that takes this model.
    """

    def __init__(self, indptr, indices, data, num_states: int, num_actions: int, *, check: bool = True):
        S = ar.check_int(num_states, "num_states", 1)
        A = ar.check_int(num_actions, "num_actions", 1)
        indptr = ar.to_numpy(indptr)
        indices = ar.to_numpy(indices)
        data = ar.to_numpy(data)
        for name, arr in (("indptr", indptr), ("indices", indices)):
            if arr.dtype.kind not in "iu":
                raise TypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
            if arr.ndim != 1:
                raise ValueError(f"{name}: expected a 1-d array, got shape {arr.shape}")
        if data.ndim != 1 or data.shape != indices.shape:
            raise ValueError(f"data: expected shape {indices.shape} like indices, got {data.shape}")
        if indptr.shape != (S * A + 1,):
            raise ValueError(f"indptr: expected shape ({S * A + 1},) = S*A + 1, got {indptr.shape}")
        dtype = ar.compute_dtype(data, "data")
        idx_dtype = np.int32 if S < 2**31 else np.int64
        if indices.size and (indices.min() < 0 or indices.max() >= S):
            bad = indices[(indices < 0) | (indices >= S)][0]
            raise IndexError(f"indices: next state {bad} is out of range [0, {S})")
        self.indptr = np.array(indptr, dtype=np.int64)
        self.indices = np.array(indices, dtype=idx_dtype)
        self.data = np.array(data, dtype=dtype)
        for arr in (self.indptr, self.indices, self.data):
            arr.setflags(write=False)
        self.num_states, self.num_actions = S, A
        _C.rl.check_csr(ar.view(self.indptr), ar.view(self.indices), S, A)
        if check:
            _, max_sum, max_row, bad = _C.rl.csr_row_sums(ar.view(self.indptr), ar.view(self.data))
            if bad < self.data.size:
                raise ValueError(f"data: expected finite probabilities in [0, 1], got {self.data[bad]} at position "
                                 f"{bad}")
            if max_sum > 1 + ROW_SUM_TOL[dtype]:
                raise ValueError(
                    f"data: expected each row (s, a) to sum to at most 1 (+{ROW_SUM_TOL[dtype]}), "
                    f"row {max_row} sums to {max_sum}"
                )
        self._device_copies = {}

    @property
    def dtype(self) -> str:
        return self.data.dtype.name

    @property
    def nnz(self) -> int:
        return int(self.data.size)

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.num_states, self.num_actions, self.num_states)

    def __repr__(self) -> str:
        return f"SparseTransitions(S={self.num_states}, A={self.num_actions}, nnz={self.nnz}, dtype={self.dtype})"

    @classmethod
    def from_scipy(cls, matrix, num_actions: int, *, check: bool = True) -> "SparseTransitions":
        """From a scipy.sparse matrix of shape ``[S*A, S]`` (row ``s*A + a``)."""
        import scipy.sparse as sp  # here: scipy is optional

        if not sp.issparse(matrix):
            raise TypeError(f"matrix: expected a scipy.sparse matrix, got {type(matrix).__name__}")
        A = ar.check_int(num_actions, "num_actions", 1)
        rows, S = matrix.shape
        if rows != S * A:
            raise ValueError(f"matrix: expected shape [S*A, S] = [{S * A}, {S}] for num_actions={A}, got {matrix.shape}")
        csr = sp.csr_matrix(matrix, copy=True)
        csr.sum_duplicates()
        return cls(csr.indptr, csr.indices, csr.data, S, A, check=check)

    def to_dense(self) -> np.ndarray:
        """``P [S, A, S]`` as a dense numpy array."""
        S, A = self.num_states, self.num_actions
        P = np.zeros((S * A, S), dtype=self.data.dtype)
        rows = np.repeat(np.arange(S * A), np.diff(self.indptr))
        np.add.at(P, (rows, self.indices.astype(np.int64)), self.data)
        return P.reshape(S, A, S)

    def arrays_for(self, kind: "ar.Kind", dtype: str):
        """(indptr, indices, data) of this kind and dtype, converted once and cached."""
        key = (kind, dtype)
        if key not in self._device_copies:
            self._device_copies[key] = tuple(
                ar.to_array(x, "P", kind, x.dtype.name if x is not self.data else dtype)
                for x in (self.indptr, self.indices, self.data)
            )
        return self._device_copies[key]


def _check_probabilities(P, row_length: int, dtype: str, name: str) -> None:
    """Every row finite in [0, 1] and summing to at most 1 + ROW_SUM_TOL (one pass on the CPU)."""
    tol = ROW_SUM_TOL[dtype]
    if not (ar.is_torch(P) and P.is_cuda):
        _C.rl.check_probabilities(ar.view(P), row_length, tol, name)
        return
    rows = P.reshape(-1, row_length)
    if not bool(((rows >= 0) & (rows <= 1)).all()):
        raise ValueError(f"{name}: expected finite probabilities in [0, 1]; some row has a value outside")
    worst = float(rows.sum(-1).max()) if rows.numel() else 0.0
    if worst > 1 + tol:
        raise ValueError(f"{name}: expected each row (s, a) to sum to at most 1 (+{tol}), a row sums to {worst}")


@dataclass
class PreparedMdp:
    """A model checked and converted for one call."""

    kind: ar.Kind
    dtype: str
    batch_shape: Tuple[int, ...]
    S: int
    A: int
    R: Any  # [..., S, A] of kind/dtype
    handle: Any  # _C.rl.Mdp
    keep: tuple  # arrays the handle points into

    @property
    def B(self) -> int:
        return int(np.prod(self.batch_shape, dtype=np.int64))

    def values(self, V, name: str):
        """V [..., S] as a contiguous array of this call's kind and dtype."""
        if tuple(ar.shape_of(V)) != self.batch_shape + (self.S,):
            raise ValueError(f"{name}: expected shape {list(self.batch_shape + (self.S,))}, got {list(ar.shape_of(V))}")
        if not (isinstance(V, np.ndarray) or ar.is_torch(V)):
            V = np.asarray(V)
        ar.compute_dtype(V, name)
        return ar.to_array(V, name, self.kind, self.dtype)


def prepare(P, R, *, check: bool = True, extra=None, single_sweep: bool = False) -> PreparedMdp:
    """Check and convert (P, R) once. `extra` names other array arguments that decide the kind.
    single_sweep: the call is one sweep over P (q_values, the backups); a dense CPU model then has
    its probability check fused into that sweep (MdpViews::fused_check) instead of a pass of its
    own."""
    extra = extra or {}
    sparse = isinstance(P, SparseTransitions)
    ar.refuse_grad(P=None if sparse else P, R=R, **extra)
    kind = ar.kind_of(R=R, **extra) if sparse else ar.kind_of(P=P, R=R, **extra)
    if sparse:
        S, A = P.num_states, P.num_actions
        batch = ()
        dtype = P.dtype
    else:
        if not (isinstance(P, np.ndarray) or ar.is_torch(P)):
            P = np.asarray(P)
        dtype = ar.compute_dtype(P, "P")
        shp = ar.shape_of(P)
        if len(shp) < 3 or shp[-1] != shp[-3]:
            raise ValueError(f"P: expected shape [..., S, A, S] (next state last), got {list(shp)}")
        batch, S, A = tuple(shp[:-3]), shp[-3], shp[-2]
        if S < 1 or A < 1:
            raise ValueError(f"P: expected at least one state and one action, got shape {list(shp)}")
        P = ar.to_array(P, "P", kind, dtype)
        fused = check and single_sweep and not kind.is_cuda
        if check and not fused:
            _check_probabilities(P, S, dtype, "P")
    if R is None:
        raise TypeError("R: expected an array of rewards [..., S, A], got None")
    if not (isinstance(R, np.ndarray) or ar.is_torch(R)):
        R = np.asarray(R)
    ar.compute_dtype(R, "R")
    rshape = tuple(ar.shape_of(R))
    R = ar.to_array(R, "R", kind, dtype)
    if sparse and rshape == (S, A, S):
        raise ValueError("R: sparse transitions take expected rewards [S, A], got [S, A, S']")
    if not sparse and len(rshape) == len(batch) + 3:
        if rshape != batch + (S, A, S):
            raise ValueError(f"R: expected shape {list(batch + (S, A, S))} (or [..., S, A]), got {list(rshape)}")
        if bool((R != R).any()):
            raise ValueError("R: expected rewards without nan")
        # expected reward sum_s' P R; an impossible transition (P = 0) contributes nothing, even at -inf
        if ar.is_torch(R):
            R = ar._torch().where(P > 0, P * R, ar._torch().zeros((), dtype=R.dtype, device=R.device)).sum(-1)
        else:
            with np.errstate(invalid="ignore"):
                R = np.where(P > 0, P * R, 0.0).sum(-1)
        rshape = rshape[:-1]
    if len(rshape) < 2 or rshape[-2:] != (S, A):
        raise ValueError(f"R: expected shape [..., S, A] = [..., {S}, {A}] (or [..., S, A, S']), got {list(rshape)}")
    if rshape[:-2] != batch:
        try:
            np.broadcast_shapes(rshape[:-2], batch)
        except ValueError:
            raise ValueError(f"R: batch shape {list(rshape[:-2])} does not match P's {list(batch)}") from None
        if len(rshape) - 2 > len(batch) or np.broadcast_shapes(rshape[:-2], batch) != batch:
            raise ValueError(f"R: batch shape {list(rshape[:-2])} does not match P's {list(batch)}")
        R = R.expand(batch + (S, A)).contiguous() if ar.is_torch(R) else np.ascontiguousarray(np.broadcast_to(R, batch + (S, A)))
    _check_rewards(R)
    B = int(np.prod(batch, dtype=np.int64))
    if sparse:
        indptr, indices, data = P.arrays_for(kind, dtype)
        handle = _C.rl.Mdp.sparse(ar.view(indptr), ar.view(indices), ar.view(data), ar.view(R), S, A)
        keep = (indptr, indices, data, R)
    else:
        handle = _C.rl.Mdp.dense(ar.view(P), ar.view(R), B, S, A)
        if fused:
            handle.fused_check = ROW_SUM_TOL[dtype]
        keep = (P, R)
    if kind.is_cuda:
        handle.stream = ar.cuda_stream(kind)
    return PreparedMdp(kind, dtype, batch, S, A, R, handle, keep)


LEAK_TOL = 1e-5  # a row of P summing to less than 1 - LEAK_TOL has a probability of ending


def mark_leaky(m: PreparedMdp) -> None:
    """Tells the solvers which MDPs of the call have a row of P summing to less than 1 (their span
    stopping rule does not hold there; csrc/rl/bellman_solvers.h). One pass over P, in float64."""
    P = m.keep[0] if len(m.keep) == 2 else None
    if P is not None:  # dense [..., S, A, S]
        sums = P.sum(-1, dtype=ar._torch().float64) if ar.is_torch(P) else P.sum(-1, dtype=np.float64)
        short = (sums < 1 - LEAK_TOL).reshape(m.B, -1).any(-1)
        flags = short.cpu().numpy() if ar.is_torch(short) else short
    else:  # CSR rows of one MDP, summed in C++ (no temporaries of the size of P)
        indptr, _, data = (np.ascontiguousarray(ar.to_numpy(x)) for x in m.keep[:3])
        min_sum = _C.rl.csr_row_sums(ar.view(indptr.astype(np.int64, copy=False)), ar.view(data))[0]
        flags = np.array([min_sum < 1 - LEAK_TOL])
    m.handle.leaky = [int(f) for f in flags]


def _check_rewards(R) -> None:
    """No nan, no +inf, a feasible action (> -inf) in every state (one pass on the CPU)."""
    A = R.shape[-1]
    if not (ar.is_torch(R) and R.is_cuda):
        _C.rl.check_rewards(ar.view(R), A)
        return
    if bool((R != R).any()):
        raise ValueError("R: expected rewards without nan")
    if bool((R == float("inf")).any()):
        raise ValueError("R: expected finite rewards or -inf (infeasible action), found +inf")
    if not bool((R > float("-inf")).any(-1).all()):
        raise ValueError("R: every state needs at least one feasible action (a reward > -inf)")


def from_gymnasium(env) -> Tuple[np.ndarray, np.ndarray]:
    """``(P [S, A, S], R [S, A])`` float64 from a Gymnasium toy-text environment.

    Reads ``env.unwrapped.P[s][a]``, a list of ``(prob, next_state, reward, terminated)``.
    Probabilities to the same next state add up; a terminated transition contributes its reward
    but no continuation (its mass is missing from the row); ``R[s, a]`` is the expected reward.
    """
    model = getattr(getattr(env, "unwrapped", env), "P", None)
    if not isinstance(model, dict):
        raise TypeError("env: expected a toy-text environment whose env.unwrapped.P is a dict of transitions")
    S = int(env.observation_space.n)
    A = int(env.action_space.n)
    P = np.zeros((S, A, S))
    R = np.zeros((S, A))
    for s, by_action in model.items():
        for a, outcomes in by_action.items():
            for prob, next_state, reward, terminated in outcomes:
                R[s, a] += prob * reward
                if not terminated:
                    P[s, a, next_state] += prob
    return P, R
