"""kaffe.backend (``K``) against NumPy and Keras 2 semantics."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kaffe import backend as K  # noqa: E402
from kaffe import config  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 3, 5)).astype("float32")


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def test_reductions_match_numpy():
    for name, np_fn in [("mean", np.mean), ("sum", np.sum), ("max", np.max), ("min", np.min),
                        ("prod", np.prod), ("std", np.std), ("var", np.var)]:
        for axis in (None, 1, -1, [0, 2]):
            for keepdims in (False, True):
                np_axis = tuple(axis) if isinstance(axis, list) else axis
                expected = np_fn(X, axis=np_axis, keepdims=keepdims)
                got = getattr(K, name)(torch.tensor(X), axis=axis, keepdims=keepdims)
                msg = f"{name} axis={axis} keepdims={keepdims}"
                assert tuple(got.shape) == np.shape(expected), msg
                np.testing.assert_allclose(_np(got), expected, rtol=1e-5, atol=1e-5, err_msg=msg)


def test_any_all_argmax():
    b = X > 0.5
    np.testing.assert_array_equal(_np(K.any(torch.tensor(b), axis=1)), b.any(axis=1))
    np.testing.assert_array_equal(_np(K.all(torch.tensor(b))), b.all())
    np.testing.assert_array_equal(_np(K.argmax(torch.tensor(X))), X.argmax(-1))
    np.testing.assert_array_equal(_np(K.argmin(torch.tensor(X), axis=0)), X.argmin(0))


def test_elementwise():
    x = torch.tensor(X)
    np.testing.assert_allclose(_np(K.clip(x, -0.5, 0.5)), np.clip(X, -0.5, 0.5))
    np.testing.assert_allclose(_np(K.clip(x, 0.5, -1.0)), np.full_like(X, 0.5))  # max < min
    np.testing.assert_allclose(_np(K.square(x)), X ** 2, rtol=1e-6)
    np.testing.assert_allclose(_np(K.sqrt(K.abs(x))), np.sqrt(np.abs(X)), rtol=1e-6)
    np.testing.assert_allclose(_np(K.pow(x, 3)), X ** 3, rtol=1e-5)
    np.testing.assert_array_equal(_np(K.round(torch.tensor([0.5, 1.5, 2.5, -0.5]))), [0.0, 2.0, 2.0, -0.0])
    np.testing.assert_allclose(_np(K.maximum(x, 0.0)), np.maximum(X, 0.0))
    np.testing.assert_array_equal(_np(K.greater_equal(x, 0.1)), X >= 0.1)
    assert K.cast(x, "float64").dtype == torch.float64
    assert K.dtype(K.cast(x, "int32")) == "int32"


def test_dot_and_batch_dot_keras2_semantics():
    a = RNG.standard_normal((2, 3, 4)).astype("float32")
    b = RNG.standard_normal((4, 5)).astype("float32")
    np.testing.assert_allclose(_np(K.dot(torch.tensor(a), torch.tensor(b))), a @ b, rtol=1e-5)
    c = RNG.standard_normal((2, 3)).astype("float32")
    d = RNG.standard_normal((4, 3, 5)).astype("float32")
    expected = np.einsum("ij,kjl->ikl", c, d)
    np.testing.assert_allclose(_np(K.dot(torch.tensor(c), torch.tensor(d))), expected, rtol=1e-5, atol=1e-6)

    x = RNG.standard_normal((6, 4)).astype("float32")
    y = RNG.standard_normal((6, 4)).astype("float32")
    got = K.batch_dot(torch.tensor(x), torch.tensor(y), axes=1)
    assert tuple(got.shape) == (6, 1)
    np.testing.assert_allclose(_np(got)[:, 0], np.sum(x * y, 1), rtol=1e-5)
    p = RNG.standard_normal((6, 2, 4)).astype("float32")
    q = RNG.standard_normal((6, 4, 3)).astype("float32")
    np.testing.assert_allclose(_np(K.batch_dot(torch.tensor(p), torch.tensor(q))), p @ q, rtol=1e-5, atol=1e-6)
    got = K.batch_dot(torch.tensor(p), torch.tensor(x), axes=(2, 1))
    np.testing.assert_allclose(_np(got), np.einsum("bik,bk->bi", p, x), rtol=1e-5, atol=1e-6)


def test_shape_functions():
    x = torch.tensor(X)
    assert K.shape(x) == (4, 3, 5) and K.int_shape(x) == (4, 3, 5) and K.ndim(x) == 3
    np.testing.assert_array_equal(_np(K.transpose(x)), X.transpose())
    np.testing.assert_array_equal(_np(K.permute_dimensions(x, (0, 2, 1))), X.transpose(0, 2, 1))
    assert tuple(K.batch_flatten(x).shape) == (4, 15) and tuple(K.flatten(x).shape) == (60,)
    assert tuple(K.expand_dims(x).shape) == (4, 3, 5, 1)
    assert tuple(K.squeeze(K.expand_dims(x, 1), 1).shape) == (4, 3, 5)
    two = torch.tensor(X[:, 0])
    np.testing.assert_array_equal(_np(K.repeat(two, 3)), np.repeat(X[:, None, 0], 3, axis=1))
    np.testing.assert_array_equal(_np(K.tile(two, (2, 1))), np.tile(X[:, 0], (2, 1)))
    np.testing.assert_array_equal(_np(K.concatenate([x, x], axis=-1)), np.concatenate([X, X], -1))
    np.testing.assert_array_equal(_np(K.stack([x, x], axis=1)), np.stack([X, X], 1))
    np.testing.assert_array_equal(_np(K.reshape(x, (2, -1))), X.reshape(2, -1))


def test_construction_values_and_gather():
    assert K.zeros((2, 3)).dtype == torch.float32 and float(K.ones((2,)).sum()) == 2.0
    v = K.variable(np.arange(3.0))
    assert v.dtype == torch.float32
    K.set_value(v, [5.0, 6.0, 7.0])
    np.testing.assert_array_equal(K.get_value(v), [5.0, 6.0, 7.0])
    np.testing.assert_array_equal(K.eval(K.constant(2.0, shape=(2, 2))), np.full((2, 2), 2.0))
    np.testing.assert_array_equal(_np(K.gather(torch.tensor(X), [2, 0])), X[[2, 0]])
    np.testing.assert_array_equal(_np(K.one_hot(torch.tensor([0, 2]), 3)), np.eye(3)[[0, 2]])
    assert K.is_tensor(v) and not K.is_tensor(3.0)
    assert tuple(K.zeros_like(v).shape) == (3,)


def test_activations():
    x = torch.tensor(X)
    np.testing.assert_allclose(_np(K.hard_sigmoid(x)), np.clip(0.2 * X + 0.5, 0, 1), rtol=1e-6)
    np.testing.assert_allclose(_np(K.relu(x, alpha=0.1, max_value=0.5)),
                               np.minimum(np.where(X > 0, X, 0.1 * X), 0.5), rtol=1e-6)
    np.testing.assert_allclose(_np(K.relu(x, threshold=0.3)), np.where(X > 0.3, X, 0.0))
    np.testing.assert_allclose(_np(K.softmax(x)), np.exp(X) / np.exp(X).sum(-1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(_np(K.softsign(x)), X / (1 + np.abs(X)), rtol=1e-6)
    np.testing.assert_allclose(_np(K.l2_normalize(x, axis=-1)),
                               X / np.sqrt((X ** 2).sum(-1, keepdims=True)), rtol=1e-5)


def test_crossentropies_delegate():
    p = np.array([[0.2, 0.8], [0.6, 0.4]], dtype="float32")
    t = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32")
    np.testing.assert_allclose(_np(K.categorical_crossentropy(torch.tensor(t), torch.tensor(p))),
                               -np.log([0.8, 0.6]), rtol=1e-6)
    np.testing.assert_allclose(_np(K.sparse_categorical_crossentropy(torch.tensor([1, 0]), torch.tensor(p))),
                               -np.log([0.8, 0.6]), rtol=1e-6)
    bce = K.binary_crossentropy(torch.tensor(t), torch.tensor(p))
    assert tuple(bce.shape) == (2, 2)  # element-wise, as Keras 2's backend
    np.testing.assert_allclose(_np(bce), -(t * np.log(p) + (1 - t) * np.log(1 - p)), rtol=1e-5)


def test_random_dropout_switch():
    r = K.random_normal((2000,), mean=1.0, stddev=2.0, seed=1)
    assert abs(float(r.mean()) - 1.0) < 0.2 and abs(float(r.std()) - 2.0) < 0.2
    np.testing.assert_array_equal(_np(K.random_uniform((3,), seed=5)), _np(K.random_uniform((3,), seed=5)))
    u = K.random_uniform((1000,), minval=-1.0, maxval=3.0)
    assert float(u.min()) >= -1.0 and float(u.max()) < 3.0
    d = K.dropout(torch.ones(1000), 0.25, seed=0)
    kept = _np(d)[_np(d) != 0]
    np.testing.assert_allclose(kept, 1 / 0.75, rtol=1e-6)
    assert 150 < 1000 - kept.size < 350
    cond = torch.tensor([True, False, True])
    np.testing.assert_array_equal(_np(K.switch(cond, torch.ones(3), torch.zeros(3))), [1.0, 0.0, 1.0])
    assert K.switch(False, lambda: 1, lambda: 2) == 2


def test_config_reexports():
    assert K.epsilon() == config.epsilon() == 1e-7
    assert K.floatx() == "float32" and K.image_data_format() in ("channels_last", "channels_first")
    previous = K.image_data_format()
    K.set_image_data_format("channels_first")
    try:
        assert config.image_data_format() == "channels_first"
    finally:
        K.set_image_data_format(previous)
