"""Out of memory in ``fit`` / ``evaluate`` / ``predict``: torch's allocator message re-raised
naming the layer that ran out, the batch size it had and the fix (a smaller batch). Costs
nothing until memory runs out: the layer is read from the traceback then."""
import functools
import inspect

import torch

_EXPLAINED = "_kaffe_oom_explained"


def find_out_of_memory(error):
    """The ``torch.OutOfMemoryError`` in ``error``'s chain (the engine wraps a layer's
    RuntimeError in a LayerCallError), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, torch.OutOfMemoryError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _innermost_layer_frame(error, model):
    """The deepest frame of the traceback run by a kaffe layer other than ``model`` itself."""
    from kaffe.engine.layer import Layer
    found, tb = None, error.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, Layer) and owner is not model:
            found = tb.tb_frame
        tb = tb.tb_next
    return found


def _batch_in(frame):
    """The leading dimension of the first tensor the layer was called with."""
    for value in frame.f_locals.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, torch.Tensor) and item.dim() > 0:
                return int(item.shape[0])
    return None


def explain(oom, model, method, batch_size):
    """A ``torch.OutOfMemoryError`` whose message names the layer, the batch and the fix."""
    frame = _innermost_layer_frame(oom, model)
    layer = frame.f_locals["self"] if frame is not None else None
    batch = (_batch_in(frame) if frame is not None else None) or batch_size
    where = (f"in layer '{layer.name}' ({type(layer).__name__})" if layer is not None
             else "(in a compiled or non-layer part of the step)")
    size = f"a batch of {batch} samples" if batch else "the current batch size"
    smaller = f"batch_size={max(1, batch // 2)}" if batch else "a smaller batch_size"
    error = torch.OutOfMemoryError(
        f"{method}() of model '{model.name}' ran out of device memory {where} with {size}. "
        f"Pass a smaller batch: {smaller} (memory grows with the batch), or set "
        f"kaffe.mixed_precision.set_global_policy('mixed_float16') to halve activation "
        f"memory. torch said: {str(oom).strip()}")
    setattr(error, _EXPLAINED, True)
    return error


def explained(method):
    """Decorator for ``fit`` / ``evaluate`` / ``predict``: re-raise an out-of-memory error
    once, explained (an inner call already explained it: left as it is)."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as error:
            oom = find_out_of_memory(error)
            if oom is None or getattr(oom, _EXPLAINED, False):
                raise
            try:
                batch_size = signature.bind(self, *args, **kwargs).arguments.get("batch_size")
            except TypeError:
                batch_size = None
            raise explain(oom, self, method.__name__, batch_size) from error
    return wrapper
