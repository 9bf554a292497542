"""Input/output conversion shared by every op.

numpy arrays and torch tensors (CPU, and CUDA when the CUDA kernels are built) reach the
kernels as :class:`nimbleops._C.View` objects without copies when dtype and layout already fit;
otherwise they are converted once. Outputs follow the input kind and device: numpy in, numpy
out; torch in, torch out on the same device. torch is never imported here unless the caller
already did (a torch tensor cannot exist otherwise).
"""
from __future__ import annotations

import functools
import numbers
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Tuple, TypeVar, Union, cast

import numpy as np

from . import _C

FLOAT_DTYPES = ("float32", "float64")


def _torch():
    return sys.modules.get("torch")


def records_graph(*tensors: Any) -> bool:
    """Whether autograd records a call on these arguments: grad mode on and a torch tensor among
    them that requires grad (None and anything not a tensor ignored)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.is_grad_enabled():
        return False
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.requires_grad:
            return True
    return False


def transforming() -> bool:
    """Whether a torch.func transform (vmap, grad, jacrev...) is active around the call."""
    torch = sys.modules.get("torch")
    return torch is not None and torch._C._functorch.maybe_current_level() is not None


_is_compiling: Optional[Callable[[], bool]] = None  # torch.compiler.is_compiling, once torch is imported


def _compiling_check() -> Optional[Callable[[], bool]]:
    """``torch.compiler.is_compiling``, kept once torch has been imported (None before): the calls
    of every op ask it, and Dynamo knows the function itself however it is reached."""
    global _is_compiling
    if _is_compiling is None:
        torch = sys.modules.get("torch")
        if torch is not None:
            _is_compiling = torch.compiler.is_compiling
    return _is_compiling


def plain_call(binding: Callable[..., Any], *args: Any) -> Any:
    """An op's plain call, ``binding(*args)`` (csrc/bindings/plain_call.h: one binding call for the
    common case, its result or None), or None while torch.compile / torch.export trace the call:
    Dynamo reads this function and then takes the op's general path, which records its custom op
    (a binding called directly would break the graph)."""
    is_compiling = _is_compiling or _compiling_check()  # the kept function without a call, once kept
    if is_compiling is not None and is_compiling():
        return None
    return binding(*args)


def capturing() -> bool:
    """Whether torch captures or transforms the call instead of running it on plain tensors:
    torch.compile / torch.export, torch.jit.trace, or a torch.func transform (vmap, grad, jacrev).
    Such calls go through the custom ops, which the dispatcher records and transforms (the tensors
    of a transform have no storage to hand to a kernel), and the ops skip their Python checks that
    read values (the kernels check what they read)."""
    is_compiling = _compiling_check()
    return is_compiling is not None and (is_compiling() or sys.modules["torch"]._C._get_tracing_state() is not None
                                         or transforming())


def needs_torch_op(*tensors: Any) -> bool:
    """Whether a call on these torch tensors must go through its custom op
    (:mod:`nimbleops.torch_ops`): while torch captures or transforms it (:func:`capturing`), or
    where autograd records the call (:func:`records_graph`). Otherwise the ops call their kernels
    directly, without the custom op's dispatch."""
    return records_graph(*tensors) or capturing()


def cpu_tensors_as_numpy(*args: Any) -> Optional[list]:
    """args with each plain CPU torch tensor among them replaced by a numpy array sharing its memory
    (others as they are), for ops whose numpy path serves such tensors as well (updates land in the
    tensors); None where there is no tensor, a tensor is not plain (a subclass, another device,
    requiring grad, a lazy sign bit, a dtype numpy lacks) or torch captures the call: those take the
    torch path."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    out, tensors = [], False
    for x in args:
        if isinstance(x, torch.Tensor):
            if type(x) is not torch.Tensor or x.requires_grad:  # the common refusal, without the exception's cost
                return None
            try:  # refuses, among others, CUDA tensors, lazy sign bits
                x = x.numpy()
            except (TypeError, RuntimeError):
                return None
            tensors = True
        out.append(x)
    return out if tensors and not capturing() else None


def numpy_path_for_cpu_tensors(fn: Optional[_F] = None, *,
                               result: Optional[Callable[[Any, Callable[[Any], Any]], Any]] = None,
                               leading: bool = False) -> Any:
    """fn called on numpy arrays sharing the memory of its plain CPU torch tensor arguments
    (:func:`cpu_tensors_as_numpy`: outside autograd and capture), so that the numpy path, with its
    short cuts, serves them too. Its returned arrays (alone or in a tuple; ``result(out, back)``
    converts other results with ``back``) are handed back as tensors with their strides (memory
    formats kept), and an argument returned as given is the caller's tensor. leading: only when
    the first argument is a tensor (ops whose first argument decides the kind and refuse a tensor
    beside a numpy first argument). For ops that write no argument; other calls, and calls with
    arrays inside lists, go to fn as they are."""
    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def call(*args, **kwargs):
            values = (*args, *kwargs.values())
            host = None
            if not any(type(v) in (list, tuple) for v in values) and (not leading or is_torch(args[0])):
                host = cpu_tensors_as_numpy(*values)
            if host is None:
                return fn(*args, **kwargs)
            given = {id(h): x for h, x in zip(host, values) if h is not x}
            torch = _torch()

            def back(y):
                if id(y) in given:
                    return given[id(y)]
                if not isinstance(y, np.ndarray):
                    return y
                if y.flags.writeable and all(st >= 0 for st in y.strides):
                    return torch.from_numpy(y)
                return tensor_from_numpy(y)

            out = fn(*host[:len(args)], **dict(zip(kwargs, host[len(args):])))
            if isinstance(out, tuple):
                return tuple(back(y) for y in out)
            return result(out, back) if result is not None and not isinstance(out, np.ndarray) else back(out)
        return cast(_F, call)
    return decorate(fn) if fn is not None else decorate


def plain_cpu_float_tensor(t: Any, torch: Any) -> bool:
    """A plain CPU tensor or Parameter (no __torch_function__ of its own) of a float dtype: what the
    ops' short paths hand to C++ as they are."""
    return (type(t) is torch.Tensor or type(t) is torch.nn.Parameter) and t.is_cpu and \
        (t.dtype is torch.float32 or t.dtype is torch.float64)


def is_torch(x: Any) -> bool:
    if type(x) is np.ndarray:
        return False
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


_NUMPY_NAMES = {np.dtype(n): n for n in ("float32", "float64", "int32", "int64", "bool", "uint8", "int8", "int16", "float16")}


_TORCH_NAMES: dict = {}  # torch.dtype -> name, filled on first sight


def dtype_name(x: Any) -> str:
    """'float32', 'int64', ... for a numpy array or torch tensor."""
    if isinstance(x, np.ndarray):
        return _NUMPY_NAMES.get(x.dtype) or x.dtype.name
    if is_torch(x):
        name = _TORCH_NAMES.get(x.dtype)
        if name is None:
            name = _TORCH_NAMES[x.dtype] = str(x.dtype).replace("torch.", "")
        return name
    d = np.asarray(x).dtype
    return _NUMPY_NAMES.get(d) or d.name


@dataclass(frozen=True)
class Kind:
    """Where the arrays of one call live: numpy, or torch on a device."""

    torch: bool = False
    device: Any = None  # torch.device when torch

    @property
    def is_cuda(self) -> bool:
        return self.torch and self.device.type == "cuda"

    @property
    def device_index(self) -> int:
        """-1 for host memory, else the CUDA ordinal (what View.device holds)."""
        if self.is_cuda:
            return self.device.index if self.device.index is not None else _torch().cuda.current_device()
        return -1

    @property
    def suffix(self) -> str:
        """Which compiled entry point serves this kind: 'cpu' or 'cuda'."""
        return "cuda" if self.is_cuda else "cpu"


_KINDS: dict = {}  # torch.device -> its Kind (Kinds are immutable: one per device)
_NUMPY = Kind()


def _torch_kind(device) -> Kind:
    k = _KINDS.get(device)
    if k is None:
        k = _KINDS[device] = Kind(True, device)
    return k


def kind(x: Any) -> Kind:
    """The Kind of one array: numpy, or torch on x's device."""
    return _torch_kind(x.device) if is_torch(x) else _NUMPY


def refuse_foreign(x: Any, name: str) -> None:
    """A TypeError for arrays of other libraries (cupy, JAX, numba...): they would otherwise be
    read by numpy as one opaque object. The error names the protocol and the zero-copy way in."""
    for protocol in ("__cuda_array_interface__", "__dlpack__"):
        if hasattr(x, protocol):
            raise TypeError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__} (it exposes "
                            f"{protocol}); wrap it without a copy with torch.from_dlpack(x), or numpy.from_dlpack(x) "
                            "for host memory")


def refuse_grad(**arrays: Any) -> None:
    """A ValueError for torch tensors that require grad where an op does not differentiate with
    respect to them (the gradient would otherwise be None without a word)."""
    for name, x in arrays.items():
        if x is not None and records_graph(x):
            raise ValueError(f"{name}: this op is not differentiable with respect to {name}, which requires grad; "
                             f"pass {name}.detach() or call under torch.no_grad()")


def kind_of(**arrays: Any) -> Kind:
    """The kind of a call from its array arguments: torch if any is a tensor (all tensors on one device)."""
    kind = None
    for name, x in arrays.items():
        if x is None or not is_torch(x):
            if x is not None and type(x) is not np.ndarray:
                refuse_foreign(x, name)
            continue
        if x.device.type not in ("cpu", "cuda"):
            raise ValueError(f"{name}: expected a CPU or CUDA tensor, got device {x.device}")
        if kind is None:
            kind = _torch_kind(x.device)
        elif kind.device != x.device:
            raise ValueError(f"{name}: expected a tensor on {kind.device} like the other arguments, got {x.device}")
    if kind is None:
        return _NUMPY
    if kind.is_cuda and not hasattr(_C.rl, "q_values_cuda"):
        raise ValueError("CUDA tensors given, but this nimbleops build has no CUDA kernels (see nimbleops.build_info())")
    return kind


def image_batch(x: Any, name: str, cuda_entry: str) -> Kind:
    """The kind of x after checking that it is a numpy array, or a CPU or CUDA torch tensor,
    ``[N, C, H, W]`` of float32 or float64 (CUDA only where this build has ``_C.vision.<cuda_entry>``)."""
    torch = None if type(x) is np.ndarray else sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor) and x.dim() == 4 and x.device.type == "cpu" \
            and (x.dtype is torch.float32 or x.dtype is torch.float64):
        return _torch_kind(x.device)  # the common case, in one test
    if not (isinstance(x, np.ndarray) or is_torch(x)):
        refuse_foreign(x, name)
        raise TypeError(f"{name}: expected a numpy array or torch tensor [N, C, H, W], got {type(x).__name__}")
    d = dtype_name(x)
    if d not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got dtype {d}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected [N, C, H, W], got shape {list(x.shape)}")
    if not is_torch(x):
        return _NUMPY
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name}: expected a CPU or CUDA tensor, got device {x.device}")
    if x.is_cuda and not hasattr(_C.vision, cuda_entry):
        raise ValueError(f"{name}: a CUDA tensor, but this nimbleops build has no CUDA kernels (see "
                         "nimbleops.build_info())")
    return _torch_kind(x.device)


def host_inference_batch(x: Any, op: str, instead: str) -> Kind:
    """The kind of x for a forward-only host op (no CUDA kernel, no custom op): a numpy array or a
    CPU tensor ``[N, C, H, W]`` of float32 or float64 (:func:`image_batch`), not requiring grad,
    outside capture (which cannot record the op; `instead` says what serves there)."""
    if is_torch(x) and x.device.type != "cpu":
        raise ValueError(f"x: expected a CPU tensor ({op} has no CUDA kernel), got device {x.device}")
    kind = image_batch(x, "x", f"{op}_cuda")
    if kind.torch and capturing():
        raise TypeError(f"{op}: torch.compile, torch.export, torch.jit.trace and torch.func cannot capture this op "
                        f"(it is not a registered custom op); use {instead} there")
    refuse_grad(x=x)
    return kind


def like(t: Any, name: str, x: Any, kind: Kind) -> Any:
    """t (a parameter of an op on x: a weight, a bias) as a contiguous array of x's kind, device and
    dtype; a torch tensor beside a numpy x, another device or another float dtype is an error."""
    if kind.torch and is_torch(t) and t.dtype == x.dtype and t.device == x.device:
        return t.contiguous()  # the common case, without the conversions' checks
    dtype = dtype_name(x)
    if is_torch(t) and kind.torch and t.device != x.device:
        raise ValueError(f"{name}: expected a tensor on {x.device} like x, got {t.device}")
    if is_torch(t) and not kind.torch:
        raise TypeError(f"{name}: a torch tensor given with a numpy x; pass both as numpy or both as torch")
    d = dtype_name(t) if (isinstance(t, np.ndarray) or is_torch(t)) else None
    if d is not None and d != dtype:
        raise TypeError(f"{name}: expected dtype {dtype} like x, got {d}")
    return to_array(t, name, kind, dtype)


def compute_dtype(x: Any, name: str) -> str:
    """float32 stays float32, float64 stays float64, other real numbers compute in float64."""
    d = dtype_name(x)
    if d in FLOAT_DTYPES:
        return d
    if d in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "bfloat16"):
        return "float64"
    raise TypeError(f"{name}: expected a real-valued array (float32 or float64), got dtype {d}")


COPY_LIMIT = 2**31  # elements: the largest broadcast (zero-stride) view copied to contiguous memory


def check_copy(x: Any, name: str) -> None:
    """Before an op copies x to contiguous memory: a broadcast view (a zero stride) of more than
    COPY_LIMIT elements is refused, naming the argument, instead of allocating many gigabytes for
    values that a few bytes hold (pass a smaller array, or materialise it deliberately)."""
    if is_torch(x):
        size, strides = x.numel(), x.stride()
    elif isinstance(x, np.ndarray):
        size, strides = x.size, x.strides
    else:
        return
    if size > COPY_LIMIT and any(st == 0 and n > 1 for n, st in zip(x.shape, strides)):
        gib = size * (x.element_size() if is_torch(x) else x.itemsize) / 2**30
        raise ValueError(f"{name}: a broadcast view of {size} elements (shape {list(x.shape)}, a zero stride) would "
                         f"be copied to {gib:.0f} GiB of contiguous memory; pass the values at their own size (a "
                         f"broadcast view of at most {COPY_LIMIT} elements is copied)")


def to_array(x: Any, name: str, kind: Kind, dtype: str) -> Any:
    """x as a contiguous array of `dtype` of this kind (no copy when it already fits)."""
    if x is None:
        raise TypeError(f"{name}: expected an array, got None")
    d = dtype_name(x) if (isinstance(x, np.ndarray) or is_torch(x)) else None
    if d is not None and d.startswith("complex"):
        raise TypeError(f"{name}: expected a real-valued array, got dtype {d}")
    if not isinstance(x, np.ndarray) and not is_torch(x):
        refuse_foreign(x, name)
    check_copy(x, name)
    if kind.torch:
        torch = _torch()
        if not is_torch(x):
            arr = np.asarray(x)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
            x = tensor_from_numpy(arr)
        return x.to(device=kind.device, dtype=getattr(torch, dtype)).contiguous()
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def tensor_from_numpy(arr: np.ndarray) -> Any:
    """A CPU tensor of a numpy array's values, sharing its memory where torch can: a C-contiguous,
    writeable array whose strides are all non-negative (numpy calls an array with a negative stride
    on a size-1 axis contiguous, torch.from_numpy refuses it)."""
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable or any(st < 0 for st in arr.strides):
        arr = arr.copy()
    return _torch().from_numpy(arr)


def empty(shape, dtype: str, kind: Kind) -> Any:
    if kind.torch:
        torch = _torch()
        return torch.empty(tuple(shape), dtype=getattr(torch, dtype), device=kind.device)
    return np.empty(tuple(shape), dtype=dtype)


def zeros(shape, dtype: str, kind: Kind) -> Any:
    if kind.torch:
        torch = _torch()
        return torch.zeros(tuple(shape), dtype=getattr(torch, dtype), device=kind.device)
    return np.zeros(tuple(shape), dtype=dtype)


def view(x: Any) -> "_C.View":
    """A View of a numpy array or torch tensor (strides in elements); x must outlive its use."""
    if isinstance(x, np.ndarray):
        return _C.View.from_numpy(x)
    return _C.View.of_tensor(x)  # data_ptr(), shape, stride(), dtype and device read in C++


def view_or_none(x: Any) -> "Optional[_C.View]":
    """:func:`view` of x, or None for an absent optional array."""
    return None if x is None else view(x)


def isfinite(x: Any) -> Any:
    """Element-wise finiteness of a numpy array or torch tensor (of the same kind)."""
    return _torch().isfinite(x) if is_torch(x) else np.isfinite(x)


def cuda_stream(kind: Kind) -> int:
    """The caller's current CUDA stream on this kind's device (kernels launch on it)."""
    return int(_torch().cuda.current_stream(kind.device).cuda_stream)


def stream_of(x: Any) -> int:
    """The stream a kernel on x launches on: the current CUDA stream of a CUDA tensor's device, else 0."""
    return int(_torch().cuda.current_stream(x.device).cuda_stream) if is_torch(x) and x.is_cuda else 0


def to_numpy(x: Any) -> np.ndarray:
    if is_torch(x):
        return x.detach().resolve_conj().resolve_neg().cpu().numpy()
    return np.asarray(x)


#: a numpy array or a torch tensor (the ops take and return either kind)
Array = Any
#: an int, or an (h, w) pair of them (sizes, strides, paddings of the image ops)
Size = Union[int, Tuple[int, int], Sequence[int]]

_F = TypeVar("_F", bound=Callable[..., Any])


def resolving(fn: _F) -> _F:
    """fn, called once more with the lazily negated or conjugated torch tensors among its arguments
    (``x.conj().imag``, ``torch._neg_view(x)``: their memory holds the values before the lazy
    sign) replaced by resolved copies, when a kernel meets one (``_C.UnresolvedViewError``, raised
    before anything runs). Arrays updated in place are refused earlier (:func:`check_writable`):
    a copy would take the update. The common call pays one try block."""
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _C.UnresolvedViewError:
            return fn(*(_resolved(a) for a in args), **{k: _resolved(v) for k, v in kwargs.items()})
    return cast(_F, call)


def _resolved(x: Any) -> Any:
    torch = _torch()
    if torch is None:
        return x
    if isinstance(x, torch.Tensor):
        return x.resolve_conj().resolve_neg() if (x.is_neg() or x.is_conj()) else x
    if type(x) in (list, tuple):
        return type(x)(_resolved(v) for v in x)
    return x


def check_writable(x: Any, name: str) -> None:
    """A torch tensor an op updates in place: as torch's own in-place ops would take it. No lazy
    sign bit (the update would land in a copy); not a tensor autograd is recording (a leaf that
    requires grad is refused with torch's message, outside ``torch.no_grad()``; a non-leaf
    would silently miss the update in its graph)."""
    if x.is_neg() or x.is_conj():
        raise ValueError(f"{name}: a tensor with its negative or conjugate bit set (a lazy view) cannot be updated "
                         f"in place; pass a tensor without it ({name}.resolve_neg() is a copy)")
    if x.requires_grad and _torch().is_grad_enabled():
        if x.is_leaf:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place operation.")
        raise RuntimeError(f"{name}: in-place updates are not recorded by autograd; call under torch.no_grad() or "
                           f"pass {name}.detach()")


def bump_versions(*written: Any) -> None:
    """Tell autograd that these tensors changed (as torch's in-place ops do), so a graph that
    saved one of them raises at backward instead of using the new values; numpy arrays and None
    are skipped."""
    torch = _torch()
    if torch is None:
        return
    for x in written:
        if isinstance(x, torch.Tensor):
            torch.autograd.graph.increment_version(x)


def check_real_scalar(value: Any, name: str) -> float:
    if type(value) is float or type(value) is int:  # the common case, without the ABC check
        if value != value:
            raise ValueError(f"{name}: expected a number, got nan")
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()  # a 0-d array: its number, checked below
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if value != value:
        raise ValueError(f"{name}: expected a number, got nan")
    return value


INT_LIMIT = 2**62  # counts and sizes above it would overflow the kernels' int64 arithmetic


def check_int(value: Any, name: str, minimum: Optional[int] = None, maximum: int = INT_LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    if not -maximum <= value <= maximum:
        high = "2**62" if maximum == INT_LIMIT else str(maximum)
        raise ValueError(f"{name}: expected an integer of magnitude at most {high}, got {value}")
    return value


def int_pair(value: Any, name: str) -> tuple:
    """(a, b) from an int (both equal) or a pair of ints; bounds are the caller's."""
    if type(value) is int and -INT_LIMIT <= value <= INT_LIMIT:  # the common case, without the ABC checks
        return value, value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int or a pair of ints, got bool")
    if isinstance(value, (int, np.integer)):
        value = check_int(value, name)
        return value, value
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {type(value).__name__}") from None
    if len(items) != 2:
        raise ValueError(f"{name}: expected an int or a pair of ints, got {list(items)}")
    return check_int(items[0], name), check_int(items[1], name)


def shape_of(x: Any) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
