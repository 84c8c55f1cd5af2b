"""``kaffe.activations`` (served as ``keras.activations``) against Keras 3's, eagerly and on
symbolic tensors of a functional graph (keras.io's subclassing guide calls
``keras.activations.relu(x)`` inside ``call``; functional code applies them to KerasTensors)."""
import inspect
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import kaffe  # noqa: E402
from kaffe import activations  # noqa: E402

KERAS_NAMES = sorted(n for n, f in vars(keras.activations).items()
                     if inspect.isfunction(f) and n not in ("get", "serialize", "deserialize"))
# arguments beyond x that exercise each function's options
CASES = [(name, {}) for name in KERAS_NAMES if name != "threshold"] + [
    ("threshold", {"threshold": 0.3, "default_value": -1.0}),
    ("relu", {"negative_slope": 0.1}), ("relu", {"max_value": 6.0}),
    ("relu", {"max_value": 2.0, "threshold": 0.5, "negative_slope": 0.1}),
    ("relu", {"threshold": -0.2}), ("gelu", {"approximate": True}), ("elu", {"alpha": 0.5}),
    ("leaky_relu", {"negative_slope": 0.05}), ("softmax", {"axis": 1}),
    ("squareplus", {"b": 2}), ("hard_shrink", {"threshold": 0.8}), ("glu", {"axis": 1})]
X = np.random.RandomState(0).randn(3, 4, 6).astype("float32") * 3


def sparsemax_formula(x, axis=-1):
    """Martins & Astudillo (2016): project onto the simplex; tau from the k-th sorted cumsum.
    (Keras 3.15's torch backend sums every supported cumsum instead: rows that do not sum to 1.)"""
    z = np.moveaxis(x, axis, -1).astype("float64")
    s = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    cumulative = np.cumsum(s, axis=-1)
    k_z = ((1 + k * s) > cumulative).sum(-1, keepdims=True)
    tau = (np.take_along_axis(cumulative, k_z - 1, -1) - 1) / k_z
    return np.moveaxis(np.maximum(z - tau, 0), -1, axis)


def test_every_keras_activation_exists():
    assert [n for n in KERAS_NAMES if not hasattr(activations, n)] == []


@pytest.mark.parametrize("name,kwargs", CASES, ids=lambda v: str(v))
def test_eager_and_symbolic_equal_keras(name, kwargs):
    expected = (sparsemax_formula(X, **kwargs) if name == "sparsemax" else
                keras.ops.convert_to_numpy(getattr(keras.activations, name)(X, **kwargs)))
    ours = getattr(activations, name)
    eager = ours(torch.from_numpy(X), **kwargs)
    np.testing.assert_allclose(eager.numpy(), expected, rtol=1e-5, atol=1e-6)
    inputs = kaffe.Input(X.shape[1:])
    model = kaffe.Model(inputs, ours(inputs, **kwargs))
    np.testing.assert_allclose(model.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_layers_store_torch_functions_and_names_round_trip():
    # get() hands layers torch's own function (the trainer fuses softmax/sigmoid into the loss,
    # recurrent layers pick torch's fused cells by it); names serialize back either way
    assert activations.get(activations.relu) is torch.relu
    assert activations.get("sigmoid") is torch.sigmoid
    assert kaffe.layers.LSTM(3, activation=activations.tanh).activation is torch.tanh
    for name in KERAS_NAMES:
        assert activations.serialize(activations.get(name)) == name or name in ("swish",
                                                                                "hard_swish")
        assert activations.serialize(getattr(activations, name)) in (name, "silu", "hard_silu")
    layer = kaffe.layers.Dense(2, activation=activations.relu)
    assert layer.get_config()["activation"] == "relu"
