"""The engine against Keras 3: layer names, output shapes, parameter counts, outputs given the
same weights, and one epoch of training from the same start."""
import keras
import numpy as np
import pytest
import torch

import kaffe
from kaffe import layers as kl


def summary_rows(model):
    """(name, output shape, params) per layer, for kaffe and Keras models alike."""
    rows = []
    for layer in model.layers:
        out = layer.output.shape if not isinstance(layer.output, list) else [t.shape for t in layer.output]
        rows.append((layer.name, tuple(out) if not isinstance(out, list) else [tuple(s) for s in out],
                     layer.count_params()))
    return rows


def build_both(builder):
    """Run the same model-building code with ``keras`` and with ``kaffe`` as the library."""
    keras.backend.clear_session()
    k_model = builder(keras, keras.layers)
    kaffe.backend.clear_session()
    f_model = builder(kaffe, kaffe.layers)
    return k_model, f_model


def seed_001_functional(lib, L):
    inp = lib.Input(shape=(64,))
    x = L.Dense(32, activation="relu")(inp)
    x = L.Dense(32, activation="relu")(x)
    out = L.Dense(10, activation="softmax")(x)
    return lib.Model(inp, out)


def seed_001_sequential(lib, L):
    m = lib.Sequential()
    m.add(L.Dense(32, activation="relu", input_shape=(64,)))
    m.add(L.Dense(32, activation="relu"))
    m.add(L.Dense(10, activation="softmax"))
    return m


def seed_003_multi_io(lib, L):
    main_input = lib.Input(shape=(100,), dtype="int32", name="main_input")
    x = L.Embedding(output_dim=512, input_dim=10000)(main_input)
    x = L.Flatten()(x)
    x = L.Dense(32)(x)
    aux_output = L.Dense(1, activation="sigmoid", name="aux_output")(x)
    aux_input = lib.Input(shape=(5,), name="aux_input")
    x = L.concatenate([x, aux_input])
    x = L.Dense(64, activation="relu")(x)
    x = L.Dense(64, activation="relu")(x)
    main_output = L.Dense(1, activation="sigmoid", name="main_output")(x)
    return lib.Model(inputs=[main_input, aux_input], outputs=[main_output, aux_output])


def seed_004_ensemble(lib, L, use_third=False):
    def mlp():
        m = lib.Sequential()
        m.add(L.Dense(32, activation="relu", input_shape=(12,)))
        m.add(L.Dropout(0.3, name=None))
        m.add(L.Dense(10, activation="softmax"))
        return m
    nets = [mlp(), mlp(), mlp()]
    inputs = lib.Input((12,))
    results = [net(inputs) for net in nets]
    outputs = L.Lambda(lambda d: (d[0] + d[1]) / 2, output_shape=(10,))(results[:2])
    return lib.Model(inputs, [outputs, results[2]] if use_third else outputs)


@pytest.mark.parametrize("builder", [seed_001_functional, seed_001_sequential, seed_003_multi_io,
                                     seed_004_ensemble,
                                     lambda lib, L: seed_004_ensemble(lib, L, use_third=True)])
def test_summary_rows_match_keras(builder):
    k_model, f_model = build_both(builder)
    assert summary_rows(f_model) == summary_rows(k_model)
    assert f_model.count_params() == k_model.count_params()
    if builder in (seed_001_functional, seed_001_sequential, seed_003_multi_io):
        assert f_model.name == k_model.name  # (Keras burns extra "functional" names building Sequentials)


def test_unconnected_branch_is_left_out_like_keras():
    k_model, f_model = build_both(seed_004_ensemble)
    assert len(f_model.layers) == len(k_model.layers) == 4  # input, two nets, lambda
    assert [l.name for l in f_model.layers] == [l.name for l in k_model.layers]


def test_summary_prints_names_shapes_and_counts():
    lines = []
    model = seed_003_multi_io(kaffe, kaffe.layers)
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for name, shape, params in summary_rows(model):
        assert name in text and f"{params:,}" in text
    assert "Total params: 5,127,271" in text or f"Total params: {model.count_params():,}" in text


def copy_weights(k_model, f_model):
    f_model.set_weights(k_model.get_weights())


def test_functional_outputs_equal_keras_given_same_weights():
    k_model, f_model = build_both(seed_003_multi_io)
    copy_weights(k_model, f_model)
    x1 = np.random.randint(0, 10000, size=(8, 100))
    x2 = np.random.rand(8, 5).astype("float32")
    k_out = k_model.predict([x1, x2], verbose=0)
    f_out = f_model.predict([x1, x2])
    for a, b in zip(f_out, k_out):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    f_dict = f_model.predict({"main_input": x1, "aux_input": x2})
    np.testing.assert_allclose(f_dict[0], k_out[0], rtol=1e-5, atol=1e-6)


def test_shared_model_called_on_two_inputs_shares_weights():
    vision_in = kaffe.Input(shape=(6,))
    vision = kaffe.Model(vision_in, kl.Dense(4)(vision_in))
    a, b = kaffe.Input(shape=(6,)), kaffe.Input(shape=(6,))
    merged = kl.concatenate([vision(a), vision(b)])
    model = kaffe.Model([a, b], kl.Dense(1, activation="sigmoid")(merged))
    assert model.count_params() == 6 * 4 + 4 + 8 + 1
    x = np.random.rand(3, 6).astype("float32")
    codes = vision.predict(x)
    both = kaffe.Model([a, b], merged).predict([x, x])
    np.testing.assert_allclose(both[:, :4], codes, rtol=1e-6)
    np.testing.assert_allclose(both[:, 4:], codes, rtol=1e-6)


def test_layer_names_are_numbered_like_keras():
    names = [kl.Dense(1).name, kl.Dense(1).name, kl.Dense(1).name, kl.Dropout(0.1).name]
    keras.backend.clear_session()
    k_names = [keras.layers.Dense(1).name, keras.layers.Dense(1).name, keras.layers.Dense(1).name,
               keras.layers.Dropout(0.1).name]
    assert names == k_names == ["dense", "dense_1", "dense_2", "dropout"]


def test_get_layer_and_layers():
    model = seed_003_multi_io(kaffe, kaffe.layers)
    assert model.get_layer("aux_output") is model.layers[-1]
    assert model.get_layer(index=0).name == "main_input"
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        model.get_layer("nope")


CORE_LAYER_CASES = [
    ("Dense", dict(units=7, activation="tanh"), (4, 5)),
    ("Dense", dict(units=3, use_bias=False), (2, 4, 5)),
    ("Activation", dict(activation="softmax"), (4, 6)),
    ("Activation", dict(activation="hard_sigmoid"), (4, 6)),
    ("Activation", dict(activation="selu"), (4, 6)),
    ("Activation", dict(activation="gelu"), (4, 6)),
    ("Dropout", dict(rate=0.5), (4, 6)),
    ("Flatten", dict(), (2, 3, 4, 5)),
    ("Flatten", dict(data_format="channels_first"), (2, 3, 4, 5)),
    ("Reshape", dict(target_shape=(6, -1)), (2, 3, 4)),
    ("Permute", dict(dims=(2, 1)), (2, 3, 4)),
    ("RepeatVector", dict(n=3), (2, 4)),
    ("Embedding", dict(input_dim=20, output_dim=3), (2, 5)),
]


@pytest.mark.parametrize("class_name,config,shape", CORE_LAYER_CASES)
def test_core_layer_equals_keras(class_name, config, shape):
    k_layer = getattr(keras.layers, class_name)(**config)
    f_layer = getattr(kl, class_name)(**config)
    if class_name == "Embedding":
        x = np.random.randint(0, 20, size=shape)
    else:
        x = np.random.randn(*shape).astype("float32")
    k_out = keras.ops.convert_to_numpy(k_layer(x))
    f_out_sym = f_layer.compute_output_shape((None,) + shape[1:])
    f_layer(torch.as_tensor(x))
    f_layer.set_weights(k_layer.get_weights())
    f_out = f_layer(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(f_out, k_out, rtol=1e-5, atol=1e-6)
    assert tuple(f_out_sym) == tuple(k_layer.compute_output_shape((None,) + shape[1:]))
    assert f_layer.count_params() == k_layer.count_params()


@pytest.mark.parametrize("fn,kwargs", [("add", {}), ("subtract", {}), ("multiply", {}),
                                       ("average", {}), ("maximum", {}), ("minimum", {}),
                                       ("concatenate", {"axis": 1}), ("concatenate", {}),
                                       ("dot", {"axes": 1}), ("dot", {"axes": 1, "normalize": True})])
def test_merge_functions_equal_keras(fn, kwargs):
    shape = (3, 4)
    a, b = np.random.randn(*shape).astype("float32"), np.random.randn(*shape).astype("float32")
    ka, kb = keras.Input(shape[1:]), keras.Input(shape[1:])
    k_model = keras.Model([ka, kb], getattr(keras.layers, fn)([ka, kb], **kwargs))
    fa, fb = kaffe.Input(shape[1:]), kaffe.Input(shape[1:])
    f_model = kaffe.Model([fa, fb], getattr(kl, fn)([fa, fb], **kwargs))
    np.testing.assert_allclose(f_model.predict([a, b]), k_model.predict([a, b], verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert f_model.output_shape == k_model.output_shape


def test_dot_on_sequences_equals_keras():
    a, b = np.random.randn(2, 3, 4).astype("float32"), np.random.randn(2, 5, 4).astype("float32")
    ka, kb = keras.Input((3, 4)), keras.Input((5, 4))
    k_model = keras.Model([ka, kb], keras.layers.dot([ka, kb], axes=(2, 2)))
    fa, fb = kaffe.Input((3, 4)), kaffe.Input((5, 4))
    f_model = kaffe.Model([fa, fb], kl.dot([fa, fb], axes=(2, 2)))
    np.testing.assert_allclose(f_model.predict([a, b]), k_model.predict([a, b], verbose=0), rtol=1e-5)
    assert f_model.output_shape == k_model.output_shape


def test_lambda_output_shape_inferred_without_output_shape():
    inp = kaffe.Input((4, 6))
    out = kl.Lambda(lambda t: t.sum(dim=1))(inp)
    assert out.shape == (None, 6)
    inp2 = kaffe.Input((None, 6))
    assert kl.Lambda(lambda t: t[:, :, :2])(inp2).shape == (None, None, 2)


@pytest.mark.parametrize("opt", ["sgd", "rmsprop", "adam"])
def test_one_epoch_of_fit_equals_keras(opt):
    """Same start weights, same batches (no shuffle): the weights after one epoch agree."""
    def build(lib, L):
        m = lib.Sequential([L.Dense(16, activation="relu", input_shape=(20,)),
                            L.Dense(5, activation="softmax")])
        m.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
        return m
    k_model, f_model = build_both(build)
    copy_weights(k_model, f_model)
    x = np.random.rand(96, 20).astype("float32")
    y = np.eye(5, dtype="float32")[np.random.randint(0, 5, 96)]
    k_hist = k_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    f_hist = f_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(f_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert sorted(f_hist.history) == sorted(k_hist.history)
    np.testing.assert_allclose(f_hist.history["loss"], k_hist.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(f_hist.history["accuracy"], k_hist.history["accuracy"], rtol=1e-6)


def test_multi_output_history_keys_equal_keras():
    def build(lib, L):
        m = seed_003_multi_io(lib, L)
        m.compile(optimizer="rmsprop", loss=["binary_crossentropy"] * 2, loss_weights=[1.0, 0.2],
                  metrics=[["accuracy"], ["accuracy"]])
        return m
    k_model, f_model = build_both(build)
    copy_weights(k_model, f_model)
    x = [np.random.randint(0, 10000, (40, 100)), np.random.rand(40, 5).astype("float32")]
    y = [np.random.randint(0, 2, (40, 1)).astype("float32")] * 2
    k_hist = k_model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0, validation_split=0.25)
    f_hist = f_model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0, validation_split=0.25)
    assert sorted(f_hist.history) == sorted(k_hist.history)
    for key in k_hist.history:
        np.testing.assert_allclose(f_hist.history[key], k_hist.history[key], rtol=2e-4, err_msg=key)


def test_evaluate_and_test_on_batch_equal_keras():
    def build(lib, L):
        m = seed_001_sequential(lib, L)
        m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
        return m
    k_model, f_model = build_both(build)
    copy_weights(k_model, f_model)
    x = np.random.rand(50, 64).astype("float32")
    y = np.eye(10, dtype="float32")[np.random.randint(0, 10, 50)]
    np.testing.assert_allclose(f_model.evaluate(x, y, batch_size=16, verbose=0),
                               k_model.evaluate(x, y, batch_size=16, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(f_model.test_on_batch(x, y), k_model.test_on_batch(x, y), rtol=1e-5)
    np.testing.assert_allclose(f_model.predict_on_batch(x), k_model.predict_on_batch(x), rtol=1e-5)


def test_sequential_started_with_input_and_built_on_first_call():
    def with_input(lib, L):
        return lib.Sequential([lib.Input(shape=(6,)), L.Dense(4), L.Dense(2)])
    k_model, f_model = build_both(with_input)
    assert summary_rows(f_model) == summary_rows(k_model)

    lazy = kaffe.Sequential([kl.Dense(4), kl.Dense(2)])
    assert not lazy.built
    out = lazy(torch.rand(3, 6))
    assert lazy.built and out.shape == (3, 2) and lazy.output_shape == (None, 2)
    assert lazy.count_params() == 6 * 4 + 4 + 4 * 2 + 2


def test_get_weights_order_and_shapes_equal_keras():
    def build(lib, L):
        inp = lib.Input((5,))
        x = L.Dense(3)(inp)
        return lib.Model(inp, L.Dense(2, use_bias=False)(x))
    k_model, f_model = build_both(build)
    assert [w.shape for w in f_model.get_weights()] == [w.shape for w in k_model.get_weights()]
    with pytest.raises(ValueError, match=r"expects shape \(5, 3\), received \(3, 5\)"):
        f_model.layers[1].set_weights([np.zeros((3, 5)), np.zeros(3)])


def test_layer_config_round_trips():
    layer = kl.Dense(5, activation="relu", use_bias=False, name="d")
    clone = kl.Dense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    k_config = keras.layers.Dense(5, activation="relu", use_bias=False, name="d").get_config()
    assert {"units", "activation", "use_bias", "kernel_initializer", "name"} <= set(layer.get_config())
    assert layer.get_config()["activation"] == k_config["activation"]


def test_float64_layers_have_float64_weights_and_outputs_like_keras(tmp_path):
    # Keras 3: dtype="float64" layers hold float64 weights and cast float32 inputs up
    def build(lib):
        inputs = lib.Input((6, 6, 2))
        h = lib.layers.Conv2D(3, 3, dtype="float64")(inputs)
        h = lib.layers.Flatten(dtype="float64")(h)
        return lib.Model(inputs, lib.layers.Dense(4, dtype="float64")(h))

    k_model, f_model = build(keras), build(kaffe)
    f_model.set_weights(k_model.get_weights())
    assert [w.dtype for w in f_model.get_weights()] == [w.dtype for w in k_model.get_weights()]
    x = np.random.RandomState(0).rand(3, 6, 6, 2).astype("float32")
    k_out, f_out = k_model.predict(x, verbose=0), f_model.predict(x, verbose=0)
    assert f_out.dtype == k_out.dtype == np.float64
    np.testing.assert_allclose(f_out, k_out, rtol=1e-5, atol=1e-6)  # Keras: off by ~1e-7
    f_model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.layers[-1].kernel.dtype == "float64"
    np.testing.assert_allclose(again.predict(x, verbose=0), k_out, rtol=1e-5, atol=1e-6)
    # in float64 to the last bit: the formula x @ W + b on float64 numbers
    dense = kaffe.layers.Dense(2, dtype="float64")
    flat = x.reshape(3, -1)[:, :5]
    out = dense(torch.from_numpy(flat))
    w, b = [t.detach().numpy() for t in (dense.kernel, dense.bias)]
    np.testing.assert_allclose(out.detach().numpy(), flat.astype("float64") @ w.T + b,
                               rtol=1e-14)


@pytest.mark.parametrize("group", ["initializers", "constraints", "regularizers"])
def test_lower_case_spellings_are_the_classes_as_in_keras(group):
    # Keras 2 scripts: from keras.constraints import max_norm; Dense(..., max_norm(3))
    ours, theirs = getattr(kaffe, group), getattr(keras, group)
    for name in dir(theirs):
        value = getattr(theirs, name)
        if name.startswith("_") or not isinstance(value, type) or "stft" in name.lower():
            continue
        mine = getattr(ours, name)
        if not isinstance(mine, type):  # Keras 2's regularizers.l1(0.01): a function
            mine = type(mine(0.01))
        assert mine.__name__ == value.__name__, name
    layer = kl.Dense(2, kernel_initializer=kaffe.initializers.glorot_uniform(seed=1),
                     kernel_constraint=kaffe.constraints.max_norm(3))
    assert layer.get_config()["kernel_constraint"]["class_name"] == "MaxNorm"


def test_integer_tensors_fed_to_float_inputs_are_cast_like_keras():
    # keras.io's custom-training-loop guide: uint8 MNIST batches from tf.data into model(x)
    x = np.random.RandomState(0).randint(0, 255, size=(3, 4)).astype("uint8")
    for build in (lambda lib: lib.Sequential([lib.Input((4,)), lib.layers.Dense(2)]),
                  lambda lib: lib.Model(*(lambda i: (i, lib.layers.Dense(2)(i)))(
                      lib.Input((4,))))):
        k_model, f_model = build(keras), build(kaffe)
        f_model.set_weights(k_model.get_weights())
        expected = keras.ops.convert_to_numpy(k_model(keras.ops.convert_to_tensor(x)))
        got = f_model(torch.from_numpy(x))
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-5)


def test_array_to_img_takes_a_tensor_that_requires_grad():
    image = torch.rand(4, 4, 1, requires_grad=True) * 255.0
    assert kaffe.utils.array_to_img(image, scale=False).size == (4, 4)


def test_keras3_top_level_names_and_input_spec_checks_like_keras():
    for name in ("Layer", "Loss", "Metric", "Optimizer", "Initializer", "Regularizer",
                 "KerasTensor", "Operation", "DTypePolicy", "InputSpec", "Variable", "device",
                 "name_scope", "version"):
        assert hasattr(kaffe, name), name
    for lib in (keras, kaffe):
        class Seq(lib.Layer):
            def __init__(self):
                super().__init__()
                self.input_spec = lib.InputSpec(ndim=3, axes={-1: 5})

            def call(self, x):
                return x

        assert tuple(Seq()(lib.Input((4, 5))).shape) == (None, 4, 5)
        for bad in ((4,), (4, 6)):
            with pytest.raises(ValueError, match="Input 0 .*of layer .* is incompatible"):
                Seq()(lib.Input(bad))
        variable = lib.Variable(np.arange(6.0).reshape(2, 3), trainable=False)
        variable.assign_add(np.ones((2, 3)))
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable),
                                      np.arange(6.0).reshape(2, 3) + 1)
