"""A run of ShuffleNetV2 units in one call, for inference: the batch norms folded into the
convolutions, every unit's concatenation, channel shuffle and the next unit's split done by
bookkeeping instead of passes over the data (the units read and write channel planes where they
lie; only the last result is gathered).

numpy arrays or CPU torch tensors, float32 or float64, outside autograd (weights that require
grad are refused: nothing here is differentiated) and outside capture (``torch.compile``,
``torch.export``, ``torch.jit.trace``, ``torch.func``, which the op is not registered with:
the unfused ops serve there, as :func:`nimbleops.models.optimize_for_inference`'s models do).
There is no CUDA kernel. Each output element is computed with the arithmetic of the unfused ops
(:func:`pointwise_conv2d` with ``activation="relu"``, :func:`depthwise_conv2d`,
:func:`concat_shuffle_split`): the result equals theirs bit for bit.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, Sequence, Union

from .. import _C
from .. import _arrays as ar
from .._arrays import Array
from ._layout import in_format_of, nchw


class ShuffleUnitWeights(NamedTuple):
    """One ShuffleNetV2 unit's weights, batch norms folded in (see :func:`shufflenet_stage`).
    Pointwise weights ``[Cout, Cin, 1, 1]`` or ``[Cout, Cin]``, depthwise weights
    ``[C, 1, KH, KW]`` with odd KH and KW, biases ``[Cout]`` or None."""

    pw1_weight: Array
    pw1_bias: Optional[Array]
    dw_weight: Array
    dw_bias: Optional[Array]
    pw2_weight: Array
    pw2_bias: Optional[Array]
    stride: int = 1
    branch1_dw_weight: Optional[Array] = None
    branch1_dw_bias: Optional[Array] = None
    branch1_pw_weight: Optional[Array] = None
    branch1_pw_bias: Optional[Array] = None


_ARRAYS = tuple(f for f in ShuffleUnitWeights._fields if f != "stride")


@ar.resolving
def shufflenet_stage(x: Array, units: Sequence[Union[ShuffleUnitWeights, Mapping[str, Any]]]) -> Any:
    """ShuffleNetV2 units in sequence, each with ReLU after its pointwise convolutions:

    - ``stride=1``: ``x1, x2 = x.chunk(2, 1)``; ``y = relu(pw2(dw(relu(pw1(x2)))))``;
      ``out = channel_shuffle(cat([x1, y], 1), 2)``;
    - ``stride=2`` (``branch1_*`` given): ``y1 = relu(branch1_pw(branch1_dw(x)))``,
      ``y2 = relu(pw2(dw(relu(pw1(x)))))``; ``out = channel_shuffle(cat([y1, y2], 1), 2)``;

    where ``dw`` is a depthwise KH x KW convolution at the unit's stride with padding
    ``(KH // 2, KW // 2)`` and ``pw`` a 1x1 convolution, each with its bias (batch norms folded:
    eval mode). A unit's two halves have equal widths. This is torchvision's ShuffleNetV2
    ``InvertedResidual`` (and ThunderNet's SNet unit) in eval mode with folded batch norms.
    :class:`ShuffleStage` runs the same with the units converted once.

    Args:
        x: ``[N, C, H, W]``, NCHW or channels_last.
        units: :class:`ShuffleUnitWeights` (or mappings of its fields), in order; weights of x's
            kind and dtype.

    Returns:
        ``[N, C_last, H_last, W_last]`` in x's memory format (``H_last = (H - 1) // 2 + 1`` per
        stride-2 unit).
    """
    return ShuffleStage(units)(x)


class ShuffleStage:
    """:func:`shufflenet_stage` with its units fixed: ``ShuffleStage(units)(x)``. The units'
    arrays are checked and converted at the first call and again whenever a call's kind, dtype or
    grad mode differs or a torch tensor among them has moved (its storage replaced, as
    ``Module.to`` does); other calls pay the kernel and a check of those. The stage holds the
    arrays it was given: values changed in place are read by the next call (where an array was
    used as it is: contiguous and of x's dtype; a converted copy is not refreshed), but an array
    replaced elsewhere (a module's new ``Parameter``) is not seen; build a new stage then. Copies
    and pickles hold the units only."""

    def __init__(self, units: Sequence[Union[ShuffleUnitWeights, Mapping[str, Any]]]):
        if isinstance(units, ShuffleUnitWeights):
            raise TypeError("units: expected a sequence of ShuffleUnitWeights, got one ShuffleUnitWeights; pass [unit]")
        if isinstance(units, Mapping) or not isinstance(units, Sequence):
            raise TypeError(f"units: expected a sequence of ShuffleUnitWeights, got {type(units).__name__}")
        self.units = [_weights(u, i) for i, u in enumerate(units)]
        self._tensors = [v for u in self.units for v in u if ar.is_torch(v)]
        self._key: Optional[tuple] = None
        self._plan = None
        self._keep: list = []  # the arrays behind the plan's views

    def __getstate__(self):
        return {"units": self.units}

    def __setstate__(self, state):
        self.__init__(state["units"])

    def __call__(self, x: Array) -> Any:
        kind = ar.host_inference_batch(x, "shufflenet_stage", "the unfused ops")
        xc = nchw(x)
        torch = ar._torch()
        key = (kind.torch, ar.dtype_name(xc), torch is not None and torch.is_grad_enabled(),
               *((t.data_ptr(), t.requires_grad) for t in self._tensors))
        plan, keep = self._plan, self._keep  # held here: another thread may replace them meanwhile
        if key != self._key:
            self._key = None
            keep = []
            plan = _C.vision.ShuffleStagePlan([_unit(u, i, xc, kind, keep) for i, u in enumerate(self.units)])
            self._plan, self._keep, self._key = plan, keep, key
        xv = ar.view(xc)
        out = ar.empty(tuple(plan.shape(xv)), ar.dtype_name(xc), kind)
        plan.run_cpu(xv, ar.view(out))
        del keep  # the arrays behind the plan's views lived until here
        return in_format_of(out, x)


def _weights(u, i: int) -> ShuffleUnitWeights:
    if isinstance(u, ShuffleUnitWeights):
        return u
    if not isinstance(u, Mapping):
        raise TypeError(f"units[{i}]: expected a ShuffleUnitWeights or a mapping of its fields, got {type(u).__name__}")
    unknown = set(u) - set(ShuffleUnitWeights._fields)
    if unknown:
        raise TypeError(f"units[{i}]: unknown fields {sorted(unknown)}; expected those of ShuffleUnitWeights")
    try:
        return ShuffleUnitWeights(**u)
    except TypeError as e:
        raise TypeError(f"units[{i}]: {e}") from None


def _unit(u: ShuffleUnitWeights, i: int, x, kind, keep: list) -> "_C.vision.ShuffleUnit":
    """Unit i as the C++ description (its arrays, appended to keep, checked against x's kind and
    dtype; the shapes are checked in C++, which names the field)."""
    arrays = {}
    for field in _ARRAYS:
        value = getattr(u, field)
        if value is None:
            if field in ("pw1_weight", "dw_weight", "pw2_weight"):
                raise TypeError(f"units[{i}].{field}: expected an array, got None")
            arrays[field] = None
            continue
        name = f"units[{i}].{field}"
        ar.refuse_grad(**{name: value})
        arrays[field] = ar.like(value, name, x, kind)
    keep.extend(arrays.values())
    stride = ar.check_int(u.stride, f"units[{i}].stride", minimum=1)
    return _C.vision.ShuffleUnit(stride=stride, **{k: ar.view_or_none(v) for k, v in arrays.items()})
