"""Keras 3's integer dtypes at the boundary of ``kaffe.ops`` (torch backend, measured).

torch computes indices and integer sums in int64; Keras's torch backend returns int32 for
index results (``argmax``, ``argsort``, ``nonzero``, ``searchsorted``, ...), for tensors made from
Python ints (``convert_to_tensor([1, 2])``, ``arange(5)``), and keeps a 32-bit (or narrower)
integer dtype through ``sum``/``prod``/``cumsum``. The ops compute as torch likes and cast on the
way out; ops that take indices (``take``, ``take_along_axis``, ``one_hot``) accept int32.
"""
import torch

INDEX_DTYPE = torch.int32
_NARROW = (torch.bool, torch.uint8, torch.int8, torch.int16)


def index_result(result):
    """An index tensor (or a tuple of them) as Keras returns it: int32."""
    if isinstance(result, tuple):
        return tuple(t.to(INDEX_DTYPE) for t in result)
    return result.to(INDEX_DTYPE)


def is_python_ints(value):
    """Whether ``value`` is a Python int/bool or a (nested) list/tuple of them with at least
    one int: Keras makes such values int32 (numpy arrays and tensors keep their dtype)."""
    leaves = []

    def visit(v):
        if isinstance(v, (list, tuple)):
            return all(visit(item) for item in v)
        leaves.append(v)
        return type(v) in (int, bool)
    return visit(value) and any(type(v) is int for v in leaves)


def from_python_ints(value, result, dtype=None):
    """``result`` (``value`` converted by torch) as int32 when ``value`` held Python ints only
    and no dtype was asked for."""
    if dtype is None and result.dtype == torch.int64 and is_python_ints(value):
        return result.to(torch.int32)
    return result


def reduction_dtype(dtype):
    """Keras's result dtype of ``sum``/``prod`` over integers: bool and narrow ints give int32,
    others keep theirs (torch would give int64)."""
    if dtype in _NARROW:
        return torch.int32
    return dtype


def cumulative_dtype(dtype):
    """Keras's ``cumsum``/``cumprod`` dtype: the input's own, bool giving int32."""
    return torch.int32 if dtype == torch.bool else dtype
