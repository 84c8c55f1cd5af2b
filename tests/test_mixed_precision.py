"""Mixed precision (Keras 3's policy names on torch autocast + GradScaler), jit_compile, and
channels_last weights, on this CPU. Oracles: Keras 3's Policy, torch.autocast on hand-written
ops, and the float32 / eager runs of the same data."""

import numpy as np
import pytest
import torch

import kaffe
from kaffe import mixed_precision

X = np.random.RandomState(0).normal(size=(96, 12)).astype("float32")
Y = np.eye(4, dtype="float32")[np.random.RandomState(1).randint(0, 4, 96)]


@pytest.fixture(autouse=True)
def _float32_after():
    yield
    mixed_precision.set_global_policy("float32")


def _mlp(seed=0, **compile_args):
    torch.manual_seed(seed)
    model = kaffe.Sequential([kaffe.layers.Dense(16, activation="relu", input_shape=(12,)),
                              kaffe.layers.Dense(4, activation="softmax")])
    model.compile(optimizer=kaffe.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["accuracy"], **compile_args)
    return model


def test_policy_names_match_keras():
    keras = pytest.importorskip("keras")
    for name in ("float32", "mixed_float16", "mixed_bfloat16"):
        ours, theirs = mixed_precision.Policy(name), keras.mixed_precision.Policy(name)
        assert (ours.name, ours.compute_dtype, ours.variable_dtype) == \
            (theirs.name, theirs.compute_dtype, theirs.variable_dtype)
    mixed_precision.set_global_policy("mixed_bfloat16")
    assert mixed_precision.global_policy() == mixed_precision.Policy("mixed_bfloat16")
    with pytest.raises(ValueError, match="mixed_"):
        mixed_precision.Policy("bfloat16")
    with pytest.raises(ValueError, match="Unknown dtype policy 'fp8'"):
        mixed_precision.set_global_policy("fp8")


def test_bfloat16_autocast_computes_low_and_keeps_float32_weights():
    reference = _mlp()
    reference.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    mixed_precision.set_global_policy("mixed_bfloat16")
    model = _mlp()
    seen = []
    model.layers[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    history = model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert seen and set(seen) == {torch.bfloat16}  # the layers really ran in bfloat16
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert model._grad_scaler is None  # bfloat16 needs no loss scaling
    for ours, full in zip(model.get_weights(), reference.get_weights()):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, full, rtol=0.05, atol=0.01)
    np.testing.assert_allclose(history.history["loss"], reference.history.history["loss"],
                               rtol=0.02)
    # predict: float32 outputs equal torch.autocast on hand-written ops with these weights
    w1, b1, w2, b2 = (torch.from_numpy(w) for w in model.get_weights())
    xt = torch.from_numpy(X)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = torch.softmax((torch.relu(xt @ w1 + b1) @ w2 + b2).float(), -1)
    got = model.predict(X, verbose=0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-2)
    mixed_precision.set_global_policy("float32")
    assert not np.array_equal(model.predict(X, verbose=0), got)  # float32 differs: autocast was on


def test_float16_scales_the_loss_and_skips_overflowing_steps():
    mixed_precision.set_global_policy("mixed_float16")
    model = _mlp()
    history = model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    scaler = model._grad_scaler
    assert isinstance(scaler, torch.amp.GradScaler)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert np.all(np.isfinite(history.history["loss"]))
    # a scale so large that the float16 gradients overflow: the step is skipped, scale halves
    model._grad_scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 100)
    before = model.get_weights()
    model.train_on_batch(X[:16], Y[:16])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model._grad_scaler.get_scale() == 2.0 ** 99


def test_jit_compile_gives_the_eager_losses():
    eager = _mlp()
    expected = eager.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    compiled = _mlp(jit_compile=True)  # Keras's compile(..., jit_compile=True) spelling
    got = compiled.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    assert compiled._forward_loss is not compiled._forward_loss_impl  # torch.compile'd
    np.testing.assert_allclose(got.history["loss"], expected.history["loss"], rtol=1e-4)
    for a, b in zip(compiled.get_weights(), eager.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    fresh = _mlp()
    fresh.fit(X[:32], Y[:32], batch_size=32, epochs=1, verbose=0, jit_compile=True)
    assert fresh._jit_compile  # fit(..., jit_compile=True) switches it on as well


def test_channels_last_weights_train_the_same(monkeypatch):
    x = np.random.RandomState(2).normal(size=(16, 8, 8, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(16) % 2]

    def convnet():
        torch.manual_seed(0)
        model = kaffe.Sequential([kaffe.layers.Conv2D(4, 3, activation="relu",
                                                      input_shape=(8, 8, 3)),
                                  kaffe.layers.Flatten(),
                                  kaffe.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        return model
    plain = convnet()
    plain.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    monkeypatch.setenv("KAFFE_CHANNELS_LAST", "force")  # what CUDA does by default
    fast = convnet()
    fast.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    kernels = [p for p in fast.parameters() if p.dim() == 4]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    for a, b in zip(fast.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
