"""How an op of ``kaffe.ops`` is declared: ``@op("Sum")`` on a function written with torch.

The decorated function keeps its Keras signature. Called on tensors, arrays or numbers it runs
the torch code; called with a ``KerasTensor`` anywhere among its arguments it records an op
node in the functional graph instead (``kaffe.engine.operation``). ``REGISTRY`` maps each op's
name to its ``OpSpec``; ``BY_CLASS`` maps Keras's class names (``Add``, ``GetItem``) to the
specs, for reading ``.keras`` files whose graphs hold op nodes.
"""
import functools

import numpy as np
import torch

from kaffe.engine.keras_tensor import KerasTensor
from kaffe.engine.operation import OpSpec, contains_symbolic, torch_dtype

REGISTRY = {}
BY_CLASS = {}


def op(class_name, call=1, module="numpy", dynamic=False, name=None):
    """Declare an op. ``call``: how many leading parameters (or which names) are the call's
    tensors/values; the others are the op's config, as in Keras's ``Operation`` class."""
    def declare(impl):
        spec = OpSpec(impl, class_name, module, call, dynamic=dynamic, name=name)
        return register(spec)
    return declare


def register(spec):
    impl = spec.impl

    @functools.wraps(impl)
    def run(*args, **kwargs):
        if contains_symbolic(args) or (kwargs and contains_symbolic(kwargs.values())):
            return spec.record(args, kwargs)
        return impl(*args, **kwargs)
    run.spec = spec
    if spec.name != impl.__name__:
        run.__name__ = run.__qualname__ = spec.name
    REGISTRY[spec.name] = spec
    BY_CLASS.setdefault(spec.class_name, spec)
    spec.function = run
    return run


def symbolic_function(fn, module, call=2, class_name=None):
    """``fn`` made to record an op node when given KerasTensors (for functions outside
    ``kaffe.ops`` such as ``kaffe.losses.binary_crossentropy``); not listed in ``REGISTRY``."""
    name = class_name or "".join(part.capitalize() for part in fn.__name__.split("_"))
    spec = OpSpec(fn, name, module, call)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if contains_symbolic(args) or (kwargs and contains_symbolic(kwargs.values())):
            return spec.record(args, kwargs)
        return fn(*args, **kwargs)
    run.spec = spec
    spec.function = run
    EXTRA_CLASSES[(module, name)] = spec
    return run


#: (module, class name) -> spec of the ``symbolic_function`` ops (read back from files).
EXTRA_CLASSES = {}


def symbolic_only(name):
    """An op that exists only eagerly (Python control flow, data-dependent Python values)."""
    def refuse(*args, **kwargs):
        raise TypeError(f"ops.{name} cannot be applied to a symbolic tensor (KerasTensor): it "
                        "needs values. Use it inside a layer's call() (e.g. a Lambda or a "
                        "custom Layer), where tensors have values.")
    return refuse


# ---------------------------------------------------------------------------------- conversion
def _device_of(values):
    for v in values:
        if isinstance(v, torch.Tensor):
            return v.device
    return None


def tensor(x, dtype=None, device=None):
    """``x`` as a torch tensor (numpy arrays, numbers, nested lists), on ``device`` if given."""
    if isinstance(x, torch.Tensor):
        if dtype is not None and x.dtype != dtype:
            x = x.to(dtype)
        if device is not None and x.device != device:
            x = x.to(device)
        return x
    if type(x) is KerasTensor:
        raise TypeError("A symbolic KerasTensor reached an eager op; this op has no symbolic "
                        "form.")
    if isinstance(x, np.ndarray) and x.dtype.kind in "US":
        raise TypeError(f"ops cannot work on string arrays (received dtype {x.dtype}).")
    if isinstance(x, (list, tuple)) and x and any(isinstance(v, torch.Tensor) for v in x):
        return torch.stack([tensor(v, dtype, device) for v in x])
    if isinstance(x, np.generic):
        x = x.item() if x.dtype.kind != "f" or x.dtype == np.float64 else np.asarray(x)
    if isinstance(x, float):
        return torch.tensor(x, dtype=dtype or torch.float32, device=device)
    result = torch.as_tensor(x, dtype=dtype, device=device)
    return result


def tensors(*values):
    """All of ``values`` as tensors on the device of the first tensor among them."""
    device = _device_of(values)
    return [tensor(v, device=device) for v in values]


def float_tensor(x):
    """``x`` as a floating tensor (ints and bools become float32, as Keras's float ops do)."""
    x = tensor(x)
    return x if x.is_floating_point() or x.is_complex() else x.to(torch.float32)


def float_tensors(*values):
    return [t if t.is_floating_point() or t.is_complex() else t.to(torch.float32)
            for t in tensors(*values)]


def axis_tuple(axis, ndim):
    """Keras's ``axis`` (None, int, list) as a tuple of non-negative axes (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        return tuple(a % ndim if ndim else a for a in axis)
    return (axis % ndim if ndim else axis,)


def dims(axis):
    """``axis`` as torch's ``dim`` argument (None stays None)."""
    if axis is None or isinstance(axis, int):
        return axis
    return tuple(axis)


def as_dtype(dtype):
    return torch_dtype(dtype)
