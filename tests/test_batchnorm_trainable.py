"""BatchNormalization's ``trainable`` flag, checked against Keras 3 (torch backend).

A frozen BN normalises with its moving statistics and moves nothing (Keras 3's rule), whether
called directly or trained. Within a compiled model's steps, BN behaves as it did at that
model's ``compile()`` (like the weights kaffe trains: Keras's documented compile() contract);
the oracle for a flag flipped after compile is Keras 3 compiled in the compile-time state, and
after ``compile()`` again, Keras 3 compiled in the new state.
"""
import warnings

import numpy as np
import pytest

import kaffe

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
X = (RNG.normal(size=(16, 4)) * 3 + 1).astype("float32")
Y = RNG.normal(size=(16, 1)).astype("float32")


def _model(lib):
    return lib.Sequential([lib.Input((4,)), lib.layers.Dense(4), lib.layers.BatchNormalization(
        name="bn"), lib.layers.Dense(1)])


def _pair():
    ours, theirs = _model(kaffe), _model(keras)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def _compile(model, lib):
    model.compile(lib.optimizers.SGD(0.05), "mse")


def _assert_same_weights(ours, theirs):
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


def _step(model):
    return float(np.asarray(model.train_on_batch(X, Y)).ravel()[0])


@pytest.mark.parametrize("frozen", [False, True])
def test_bn_trained_in_the_state_it_was_compiled_in_equals_keras(frozen):
    ours, theirs = _pair()
    for model, lib in ((ours, kaffe), (theirs, keras)):
        model.get_layer("bn").trainable = not frozen
        _compile(model, lib)
    for _ in range(2):
        assert _step(ours) == pytest.approx(_step(theirs), rel=1e-5)
    _assert_same_weights(ours, theirs)
    moving_mean = ours.get_layer("bn").get_weights()[2]
    assert (np.abs(moving_mean).sum() == 0) == frozen  # a frozen BN moves nothing


def test_frozen_bn_called_in_training_mode_uses_moving_statistics_as_keras():
    ours, theirs = _pair()
    for model in (ours, theirs):
        model.get_layer("bn").trainable = False
    expected = np.asarray(theirs(X, training=True).detach().cpu())
    np.testing.assert_allclose(ours(X, training=True).detach().numpy(), expected, rtol=1e-5)
    ours.get_layer("bn").trainable = True  # trainable again: batch statistics at once
    theirs.get_layer("bn").trainable = True
    np.testing.assert_allclose(ours(X, training=True).detach().numpy(),
                               np.asarray(theirs(X, training=True).detach().cpu()), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("compiled_frozen", [False, True])
def test_flag_flipped_after_compile_applies_at_the_next_compile(compiled_frozen):
    """kaffe steps as Keras 3 compiled in the compile-time state; after compile() again, as
    Keras 3 compiled in the new state."""
    ours, theirs = _pair()
    ours.get_layer("bn").trainable = not compiled_frozen
    _compile(ours, kaffe)
    ours.get_layer("bn").trainable = compiled_frozen  # flipped after compile
    theirs.get_layer("bn").trainable = not compiled_frozen
    _compile(theirs, keras)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _step(ours) == pytest.approx(_step(theirs), rel=1e-5)
    assert any("'bn'" in str(w.message) for w in caught)
    _assert_same_weights(ours, theirs)
    assert ours.get_layer("bn").trainable == compiled_frozen  # the user's flag is kept

    _compile(ours, kaffe)  # now the flipped flag applies
    theirs.get_layer("bn").trainable = compiled_frozen
    _compile(theirs, keras)
    assert _step(ours) == pytest.approx(_step(theirs), rel=1e-5)
    _assert_same_weights(ours, theirs)


def test_gan_pattern_discriminator_bn_follows_each_models_compile():
    """Keras 2's GAN: the discriminator's own steps train it with batch statistics; the combined
    model's steps (compiled with it frozen) move nothing of it."""
    d = _model(kaffe)
    _compile(d, kaffe)
    d.trainable = False
    g_in = kaffe.Input((4,))
    combined = kaffe.Sequential([g_in, kaffe.layers.Dense(4), d])
    _compile(combined, kaffe)
    reference = _model(keras)
    reference.set_weights(d.get_weights())
    _compile(reference, keras)  # Keras 3 with the discriminator compiled trainable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _step(d) == pytest.approx(_step(reference), rel=1e-5)
    _assert_same_weights(d, reference)
    before = [w.copy() for w in d.get_weights()]
    combined.train_on_batch(X, Y)
    for a, b in zip(before, d.get_weights()):
        np.testing.assert_array_equal(a, b)
