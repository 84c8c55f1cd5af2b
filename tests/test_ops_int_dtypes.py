"""Integer dtypes of ``kaffe.ops`` results equal Keras 3's (torch backend): int32 for index
results and Python ints, narrow ints kept through sums; values equal too."""
import numpy as np
import pytest
import torch

from kaffe import ops

keras = pytest.importorskip("keras")
K = keras.ops

X = np.array([[1.0, 3.0, 2.0], [0.5, -1.0, 4.0]], "float32")
XI = np.array([[1, 3, 2], [0, 1, 4]], "int32")
X8 = XI.astype("int8")
B = X > 1

CASES = {
    "argmax": lambda o: o.argmax(X, axis=-1),
    "argmax_flat_keepdims": lambda o: o.argmax(X, keepdims=True),
    "argmin": lambda o: o.argmin(X, axis=0),
    "argmax_int64_array": lambda o: o.argmax(np.array([1, 5, 2])),
    "argsort": lambda o: o.argsort(X),
    "argpartition": lambda o: o.argpartition(np.array([3.0, 1.0, 2.0]), 1)[:1],
    "arange_int": lambda o: o.arange(5),
    "arange_start_stop_step": lambda o: o.arange(1, 9, 3),
    "arange_numpy_int": lambda o: o.arange(np.int64(3)),
    "arange_float": lambda o: o.arange(0.0, 2.0, 0.5),
    "convert_list": lambda o: o.convert_to_tensor([1, 2]),
    "convert_nested_tuple": lambda o: o.convert_to_tensor(((1, 2), (3, 4))),
    "convert_int": lambda o: o.convert_to_tensor(3),
    "convert_int_bool": lambda o: o.convert_to_tensor([True, 1]),
    "convert_bools": lambda o: o.convert_to_tensor([True, False]),
    "convert_mixed_float": lambda o: o.convert_to_tensor([1, 2.0]),
    "convert_numpy_int64": lambda o: o.convert_to_tensor(np.array([1, 2])),
    "convert_asked_int64": lambda o: o.convert_to_tensor([1, 2], dtype="int64"),
    "array": lambda o: o.array([[1, 2], [3, 4]]),
    "stack_ints": lambda o: o.stack([1, 2]),
    "nonzero": lambda o: o.nonzero(X)[1],
    "count_nonzero": lambda o: o.count_nonzero(X, axis=0),
    "searchsorted": lambda o: o.searchsorted(np.array([1.0, 2.0, 3.0]), np.array([2.5, 0.0])),
    "digitize": lambda o: o.digitize(np.array([0.5, 1.5, 3.0]), np.array([1.0, 2.0])),
    "bincount": lambda o: o.bincount(np.array([0, 1, 1, 3])),
    "bincount_weighted": lambda o: o.bincount(np.array([0, 1, 1]),
                                              weights=np.array([0.5, 1.0, 2.0], "float32")),
    "full_int_fill": lambda o: o.full((2,), 3),
    "full_bool_fill": lambda o: o.full((2,), True),
    "full_like_float_fill": lambda o: o.full_like(XI, 2.5),
    "sum_int32": lambda o: o.sum(XI, axis=-1),
    "sum_int8": lambda o: o.sum(X8),
    "sum_bool": lambda o: o.sum(B),
    "sum_int64": lambda o: o.sum(XI.astype("int64")),
    "prod_int32": lambda o: o.prod(XI + 1, axis=0),
    "cumsum_int32": lambda o: o.cumsum(XI, axis=1),
    "cumsum_int8": lambda o: o.cumsum(X8),
    "cumsum_bool": lambda o: o.cumsum(B),
    "cumprod_int32": lambda o: o.cumprod(XI + 1),
    "top_k_indices": lambda o: o.top_k(X, 2)[1],
    "where_indices": lambda o: o.where(B)[0],
    "one_hot_of_argmax": lambda o: o.one_hot(o.argmax(X, axis=-1), 3),
    "take_along_argsort": lambda o: o.take_along_axis(X, o.argsort(X), axis=-1),
    "take_argmax": lambda o: o.take(X[0], o.argmax(X, axis=-1)),
    "size": lambda o: o.size(X),
}


def _numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_integer_result_dtype_and_values_equal_keras(name):
    ours, theirs = CASES[name](ops), CASES[name](K)
    assert str(ours.dtype) == str(theirs.dtype), name
    np.testing.assert_array_equal(_numpy(ours), _numpy(theirs))
