"""A compiled model trains the weights that were trainable at its ``compile()`` (Keras 2's rule):
the classic Keras 2 GAN (``discriminator.compile``; ``discriminator.trainable = False``;
``combined.compile``; alternate ``train_on_batch``) checked against Keras 3 (torch backend),
where the same updates come from setting ``discriminator.trainable`` before each step."""
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
import kaffe  # noqa: E402

LATENT, FEATURES, BATCH = 4, 6, 8


def _gan(lib, optimizer):
    """Generator, discriminator and combined model built and compiled the Keras 2 way."""
    layers = lib.layers
    g_in = lib.Input((LATENT,))
    generator = lib.Model(g_in, layers.Dense(FEATURES, activation="tanh")(
        layers.Dense(5, activation="relu")(g_in)), name="generator")
    d_in = lib.Input((FEATURES,))
    discriminator = lib.Model(d_in, layers.Dense(1, activation="sigmoid")(
        layers.Dense(5, activation="relu")(d_in)), name="discriminator")
    discriminator.compile(optimizer=optimizer(), loss="binary_crossentropy")
    discriminator.trainable = False
    z = lib.Input((LATENT,))
    combined = lib.Model(z, discriminator(generator(z)), name="combined")
    combined.compile(optimizer=optimizer(), loss="binary_crossentropy")
    return generator, discriminator, combined


def _batches(steps):
    rng = np.random.default_rng(0)
    for _ in range(steps):
        yield (rng.standard_normal((BATCH, LATENT)).astype("float32"),
               rng.standard_normal((BATCH, FEATURES)).astype("float32"))


def _train(lib, optimizer, init, steps, toggle):
    """Alternate the discriminator's and combined's steps; returns the weights after each step.
    ``toggle``: set ``discriminator.trainable`` before each step (Keras 3's way)."""
    generator, discriminator, combined = _gan(lib, optimizer)
    generator.set_weights(init[0])
    discriminator.set_weights(init[1])
    history = []
    for noise, real in _batches(steps):
        fake = generator.predict(noise, verbose=0)
        x = np.concatenate([real, fake])
        y = np.array([1.0] * BATCH + [0.0] * BATCH, "float32")
        if toggle:
            discriminator.trainable = True
        d_loss = discriminator.train_on_batch(x, y)
        history.append(("d", float(np.ravel(d_loss)[0]), [w.copy() for w in generator.get_weights()],
                        [w.copy() for w in discriminator.get_weights()]))
        if toggle:
            discriminator.trainable = False
        c_loss = combined.train_on_batch(noise, np.ones(BATCH, "float32"))
        history.append(("c", float(np.ravel(c_loss)[0]), [w.copy() for w in generator.get_weights()],
                        [w.copy() for w in discriminator.get_weights()]))
    return history


def _initial_weights():
    generator, discriminator, _ = _gan(keras, lambda: "sgd")
    return generator.get_weights(), discriminator.get_weights()


OPTIMIZERS = {
    "sgd": (lambda: kaffe.optimizers.SGD(learning_rate=0.1),
            lambda: keras.optimizers.SGD(learning_rate=0.1)),
    "adam": (lambda: kaffe.optimizers.Adam(learning_rate=0.01),
             lambda: keras.optimizers.Adam(learning_rate=0.01)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_keras2_gan_pattern_matches_keras3(name):
    kaffe_opt, keras_opt = OPTIMIZERS[name]
    init = _initial_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _train(kaffe, kaffe_opt, init, steps=3, toggle=False)
        oracle = _train(keras, keras_opt, init, steps=3, toggle=True)
    assert len(ours) == len(oracle)
    for (kind, loss, g, d), (_, k_loss, k_g, k_d) in zip(ours, oracle):
        np.testing.assert_allclose(loss, k_loss, rtol=1e-4, atol=1e-5, err_msg=kind)
        for a, b in zip(g + d, k_g + k_d):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=kind)


def test_each_step_updates_only_its_models_compile_time_weights():
    init = _initial_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = _train(kaffe, lambda: "sgd", init, steps=2, toggle=False)
    before_g, before_d = init
    for kind, _, g, d in history:
        g_moved = any(not np.array_equal(a, b) for a, b in zip(g, before_g))
        d_moved = any(not np.array_equal(a, b) for a, b in zip(d, before_d))
        if kind == "d":  # the discriminator's own step: it trains, the generator stays
            assert d_moved and not g_moved
        else:  # combined: compiled with the discriminator frozen, trains only the generator
            assert g_moved and not d_moved
        before_g, before_d = g, d


def test_keras3_toggling_gives_the_same_updates():
    init = _initial_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = _train(kaffe, lambda: "sgd", init, steps=2, toggle=False)
        toggled = _train(kaffe, lambda: "sgd", init, steps=2, toggle=True)
    for (_, la, ga, da), (_, lb, gb, db) in zip(fixed, toggled):
        assert la == pytest.approx(lb)
        for a, b in zip(ga + da, gb + db):
            np.testing.assert_array_equal(a, b)


def test_user_flags_restored_and_warned_once():
    generator, discriminator, combined = _gan(kaffe, lambda: "sgd")
    x = np.zeros((4, FEATURES), "float32")
    y = np.ones(4, "float32")
    with pytest.warns(UserWarning, match="trainable at compile"):
        discriminator.train_on_batch(x, y)
    assert discriminator.trainable_weights == []  # the user's flag, after the step
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per compile
        discriminator.train_on_batch(x, y)
        combined.train_on_batch(np.zeros((4, LATENT), "float32"), y)  # nothing changed


def test_recompile_applies_the_change():
    generator, discriminator, combined = _gan(kaffe, lambda: "sgd")
    discriminator.compile(optimizer="sgd", loss="binary_crossentropy")  # now frozen
    before = [w.copy() for w in discriminator.get_weights()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        discriminator.fit(np.ones((4, FEATURES), "float32"), np.ones(4, "float32"), verbose=0)
    for a, b in zip(before, discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)


def _two_output_model(lib):
    layers = lib.layers
    x = lib.Input((3,))
    h = layers.Dense(4)(x)
    return lib.Model(x, [layers.Dense(1, activation="sigmoid")(h),
                         layers.Dense(2, activation="softmax")(h)])


LOSSES = ["binary_crossentropy", "sparse_categorical_crossentropy"]


def test_outputs_sharing_a_name_each_return_a_value():
    """mnist_acgan's ``combined``: both outputs come from one nested model, so they share a name;
    Keras 2 still returns [loss, loss of output 1, loss of output 2]. The oracle is Keras 3 on
    the inner model itself (distinct output names: Keras 3 repeats one value for shared names)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3)).astype("float32")
    y = [np.ones(6, "float32"), np.array([0, 1, 1, 0, 1, 0], "float32")]
    oracle = _two_output_model(keras)
    oracle.compile(optimizer="sgd", loss=LOSSES)
    inner = _two_output_model(kaffe)
    inner.set_weights(oracle.get_weights())
    z = kaffe.Input((3,))
    outer = kaffe.Model(z, inner(z))
    outer.compile(optimizer="sgd", loss=LOSSES)
    for method, kwargs in (("test_on_batch", {}), ("evaluate", {"verbose": 0}),
                           ("train_on_batch", {})):
        ours = getattr(outer, method)(x, y, **kwargs)
        expected = getattr(oracle, method)(x, y, **kwargs)
        assert len(ours) == len(expected) == 3, method
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6, err_msg=method)
    assert len(set(outer.metrics_names)) < len(outer.metrics_names)  # the names do collide
