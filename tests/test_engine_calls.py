"""Calling models and layers directly: numpy arrays are converted as Keras 3 converts them
(floats to float32, each input to its ``Input``'s dtype), and running out of memory keeps
torch's ``OutOfMemoryError`` type through the engine's error wrapping."""
import numpy as np
import pytest
import torch

import kaffe
from kaffe import layers

keras = pytest.importorskip("keras")


def _pair(build):
    """The same model in kaffe and Keras 3, Keras's weights copied from kaffe's."""
    ours, theirs = build(kaffe), build(keras)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def _mlp(lib):
    x = lib.Input((3,))
    return lib.Model(x, lib.layers.Dense(2)(lib.layers.Dense(4, activation="relu")(x)))


def _two_inputs(lib):
    ids, extra = lib.Input((4,), dtype="int32", name="ids"), lib.Input((2,), name="extra")
    flat = lib.layers.Flatten()(lib.layers.Embedding(10, 3)(ids))
    return lib.Model([ids, extra], lib.layers.Dense(1)(lib.layers.Concatenate()([flat, extra])))


def _sequential(lib):
    return lib.Sequential([lib.Input((3,)), lib.layers.Dense(2)])


@pytest.mark.parametrize("build", [_mlp, _sequential])
def test_model_called_on_float64_array_equals_keras(build):
    ours, theirs = _pair(build)
    x = np.random.default_rng(0).normal(size=(5, 3))  # float64, as numpy makes it
    out, expected = ours(x), theirs(x)
    assert isinstance(out, torch.Tensor) and out.dtype == expected.dtype == torch.float32
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().cpu().numpy(), rtol=1e-5)


def test_model_with_int_and_float_inputs_called_on_arrays_equals_keras():
    ours, theirs = _pair(_two_inputs)
    rng = np.random.default_rng(1)
    ids, extra = rng.integers(0, 10, size=(6, 4)), rng.normal(size=(6, 2))
    for given in ([ids, extra], {"extra": extra, "ids": ids}):
        out, expected = ours(given), theirs(given)
        np.testing.assert_allclose(out.detach().numpy(), expected.detach().cpu().numpy(),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make, x", [
    (lambda lib: lib.layers.Dense(2, kernel_initializer="ones"), np.ones((2, 3))),
    (lambda lib: lib.layers.Dense(2, kernel_initializer="ones"), np.ones((2, 3), "int64")),
    (lambda lib: lib.layers.ReLU(), np.array([1.5, -1.0])),
    (lambda lib: lib.layers.Embedding(5, 2, embeddings_initializer="ones"), np.array([[1, 2]])),
    (lambda lib: lib.layers.Concatenate(), [np.ones((2, 3)), np.zeros((2, 1))]),
])
def test_layer_called_on_arrays_equals_keras(make, x):
    out, expected = make(kaffe)(x), make(keras)(x)
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().cpu().numpy())


_ARMED = []


def _raises_oom(x):
    """Runs out of memory once armed (not while the graph is built and its shapes traced)."""
    if _ARMED:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    return x


@pytest.mark.parametrize("container", ["functional", "sequential"])
def test_out_of_memory_in_a_direct_call_keeps_its_type(container):
    oom = layers.Lambda(_raises_oom)
    if container == "functional":
        x = kaffe.Input((3,))
        model = kaffe.Model(x, layers.Dense(2)(oom(layers.Dense(3)(x))))
    else:
        model = kaffe.Sequential([kaffe.Input((3,)), layers.Dense(3), oom])
    _ARMED.append(True)
    try:
        _call_out_of_memory(model)
    finally:
        _ARMED.clear()


def _call_out_of_memory(model):
    with pytest.raises(torch.OutOfMemoryError, match="Tried to allocate"):
        model(torch.ones(2, 3))
    with pytest.raises(MemoryError if issubclass(torch.OutOfMemoryError, MemoryError)
                       else RuntimeError):
        model(torch.ones(2, 3))


def _host_out_of_memory(x):
    if _ARMED:
        raise MemoryError("Unable to allocate 80.0 GiB for an array")
    return x


def test_python_memory_error_in_a_direct_call_keeps_its_type():
    x = kaffe.Input((3,))
    model = kaffe.Model(x, layers.Dense(2)(layers.Lambda(_host_out_of_memory)(x)))
    _ARMED.append(True)
    try:
        with pytest.raises(MemoryError, match="Unable to allocate"):
            model(torch.ones(2, 3))
    finally:
        _ARMED.clear()


def test_other_layer_failures_still_name_the_layer():
    x = kaffe.Input((3,))
    model = kaffe.Model(x, layers.Dense(2, name="head")(x))
    with pytest.raises(kaffe.engine.layer.LayerCallError, match="head"):
        model(torch.ones(2, 5))


def test_float64_tensors_are_cast_to_float32_as_keras_autocasts():
    ours, theirs = _pair(_mlp)
    x = torch.randn(4, 3, dtype=torch.float64)
    np.testing.assert_allclose(ours(x).detach().numpy(), theirs(x).detach().cpu().numpy(),
                               rtol=1e-5)
    dense = layers.Dense(2, kernel_initializer="ones")
    assert dense(x).dtype == keras.layers.Dense(2)(x).dtype == torch.float32
    assert layers.Concatenate()([x, x[:, :1]]).dtype == torch.float32


def test_subclassed_model_called_on_int_and_float_arrays_equals_keras():
    def build(lib):
        class Bag(lib.Model):
            def __init__(self):
                super().__init__()
                self.embed = lib.layers.Embedding(10, 3, embeddings_initializer="ones")
                self.head = lib.layers.Dense(2, kernel_initializer="ones")

            def call(self, ids):
                return self.head(lib.ops.sum(self.embed(ids), axis=1))
        return Bag()
    ids = np.array([[1, 2], [3, 4]])
    ours, theirs = build(kaffe), build(keras)
    out, expected = ours(ids), theirs(ids)
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().cpu().numpy())


def test_float64_input_through_a_default_layer_is_float32_as_keras_autocasts():
    value = np.array([[1 + 1e-12, 2.0]])
    results = []
    for lib in (kaffe, keras):
        x = lib.Input((2,), dtype="float64")
        results.append(lib.Model(x, lib.layers.Lambda(lambda t: t * 1)(x))(value))
    ours, theirs = results
    assert ours.dtype == theirs.dtype == torch.float32
    assert ours[0, 0].item() == theirs[0, 0].item()
