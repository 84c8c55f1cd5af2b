"""``kaffe.ops.vectorize`` / ``ops.numpy.vectorize`` against Keras 3 and numpy: loop axes
broadcast as numpy's do, core dimensions from a ``signature``, tuple outputs, ``excluded``
(numpy's meaning), and functions ``torch.vmap`` cannot batch."""
import numpy as np
import pytest
import torch

from kaffe import ops

keras = pytest.importorskip("keras")

rng = np.random.default_rng(9)
X = rng.random((3, 4)).astype("float32")
Y = rng.random(4).astype("float32")
M = rng.random((2, 3, 4)).astype("float32")


def close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6, atol=1e-6)


def test_elementwise_broadcasting_equals_keras_and_numpy():
    def f(a, b):
        return a * b + 1
    ours = ops.numpy.vectorize(f)(X, Y)
    close(ours, keras.ops.numpy.vectorize(f)(X, Y))
    close(ours, np.vectorize(f)(X, Y))
    assert ops.vectorize is ops.numpy.vectorize is ops.core.vectorize


def test_signature_core_dimensions_equal_keras():
    def norm(v):
        return ops.sqrt(ops.sum(v * v))

    def keras_norm(v):
        return keras.ops.sqrt(keras.ops.sum(v * v))
    close(ops.vectorize(norm, signature="(n)->()")(M),
          keras.ops.vectorize(keras_norm, signature="(n)->()")(M))

    def matvec(m, v):
        return ops.matmul(m, v)
    ours = ops.vectorize(matvec, signature="(m,n),(n)->(m)")(M, Y)
    close(ours, keras.ops.vectorize(lambda m, v: keras.ops.matmul(m, v),
                                    signature="(m,n),(n)->(m)")(M, Y))
    assert tuple(ours.shape) == (2, 3)


def test_tuple_outputs_excluded_arguments_and_unbatchable_functions():
    low, high = ops.vectorize(lambda v: (ops.min(v), ops.max(v)), signature="(n)->(),()")(X)
    close(low, X.min(axis=1))
    close(high, X.max(axis=1))
    scaled = ops.vectorize(lambda a, k: a * k[0], excluded={1})(X, [2.0])
    close(scaled, X * 2)

    def branchy(a):  # a Python branch on a value: torch.vmap refuses, elements one by one
        return a * 2 if float(a) > 0.5 else a - 1
    close(ops.vectorize(branchy)(X), np.vectorize(lambda a: a * 2 if a > 0.5 else a - 1)(X))


def test_bad_signatures_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"signature must look like"):
        ops.vectorize(lambda v: v, signature="(n)")(X)
    with pytest.raises(ValueError, match=r"core dimension 'n'.*sizes 4 and 3"):
        ops.vectorize(lambda a, b: a, signature="(n),(n)->()")(X, X[:, :3])
    with pytest.raises(ValueError, match=r"describes 2 arguments; the call maps 1"):
        ops.vectorize(lambda a: a, signature="(n),(n)->()")(X)
