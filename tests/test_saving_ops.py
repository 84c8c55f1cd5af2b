"""Functional graphs with op nodes and losses through ``.keras`` files, both ways with Keras 3:
the normalization ops (Keras's ``BatchNorm``/``LayerNorm``/``RMSNorm`` classes), losses applied
to KerasTensors (recorded as the op nodes Keras's own losses record), and ops Keras cannot
record refused with a message naming them."""
import json
import zipfile

import numpy as np
import pytest

import kaffe
from kaffe import ops

keras = pytest.importorskip("keras")

LOSSES = ("mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
          "mean_squared_logarithmic_error", "binary_crossentropy", "categorical_crossentropy",
          "hinge", "squared_hinge", "categorical_hinge", "kl_divergence", "poisson", "log_cosh",
          "cosine_similarity", "huber")
_LOADABLE_IN_KERAS = tuple(n for n in LOSSES if n not in ("hinge", "squared_hinge"))


def _norm_graph(lib):
    """Several op kinds after a Dense layer, written the same way in kaffe and Keras 3."""
    x = lib.Input((6,))
    h = lib.layers.Dense(6, name="dense_a")(x)
    mean, var = np.linspace(-0.5, 0.5, 6).astype("float32"), np.linspace(1, 2, 6).astype("float32")
    bn = lib.ops.nn.batch_normalization(h, mean, var, axis=-1, scale=np.full(6, 1.5, "float32"))
    ln = lib.ops.nn.layer_normalization(h, axis=-1)
    rms = lib.ops.nn.rms_normalization(h, axis=-1)
    mixed = lib.ops.concatenate([bn, ln * 2.0, rms - 1.0], axis=-1)
    out = lib.ops.sum(lib.ops.tanh(mixed), axis=-1, keepdims=True) + lib.ops.zeros_like(h)[:, :1]
    return lib.Model(x, out)


def _loss_graph(lib, names=LOSSES):
    """Each loss applied to KerasTensors, stacked into one output."""
    x = lib.Input((4,))
    p = lib.layers.Dense(4, activation="softmax", name="probs")(x)
    t = lib.ops.softmax(x)
    losses = [getattr(lib.losses, n)(t, p) for n in names]
    losses.append(lib.losses.categorical_crossentropy(t, p, label_smoothing=0.1))
    losses.append(lib.losses.binary_crossentropy(t, p, label_smoothing=0.2))
    labels = lib.Input((1,), dtype="int32")
    losses.append(lib.losses.sparse_categorical_crossentropy(labels, p))
    return lib.Model([x, labels], lib.ops.stack(losses, axis=-1))


def _many_ops_graph(lib):
    """Ops with several outputs (split, moments, top_k), *operands (einsum), int results
    (argmax -> one_hot, top_k indices -> cast), constants and slicing, in five outputs."""
    o = lib.ops
    x = lib.Input((6,))
    h = lib.layers.Dense(6, name="dense_a")(x)
    a, b = o.split(h, 2, axis=-1)
    outer = o.transpose(o.einsum("bi,bj->bij", a, b), (0, 2, 1))
    mean, variance = o.nn.moments(h, axes=[-1], keepdims=True)
    values, indices = o.top_k(h, 2)
    joined = o.concatenate([
        o.one_hot(o.argmax(h, axis=-1), 6), o.where(h > 0, h, 0.1 * h),
        o.reshape(o.stack([a, b], axis=1), (-1, 6)), o.matmul(h, np.eye(6, dtype="float32") * 2),
        o.cumsum(h, axis=-1), o.clip(h, -0.5, 0.5), (h - mean) / o.sqrt(variance + 1e-3)], axis=-1)
    scaled = h[:, 1:3] * o.expand_dims(o.sum(outer, axis=(1, 2)), -1)
    return lib.Model(x, [joined, scaled, values + o.cast(indices, "float32"),
                         o.take(h, np.array([0, 2]), axis=1), o.logsumexp(h, axis=-1)])


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(16, 6)).astype("float32")


def _loss_data(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(16, 4)).astype("float32"),
            rng.integers(0, 4, size=(16, 1)).astype("int32")]


def _predict(model, x):
    result = model.predict(x, verbose=0)
    if isinstance(result, list):
        return np.concatenate([np.asarray(r).reshape(len(x), -1) for r in result], axis=1)
    return np.asarray(result)


def _node_classes(path):
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    return sorted(layer["class_name"] for layer in config["config"]["layers"]
                  if layer["module"].startswith("keras.src.ops"))


@pytest.mark.parametrize("build, data", [(_norm_graph, _data), (_loss_graph, _loss_data),
                                         (_many_ops_graph, _data)])
def test_kaffe_op_graph_loads_in_keras_and_back(build, data, tmp_path):
    kaffe.backend.clear_session()
    model = build(kaffe)
    x = data()
    expected = _predict(model, x)
    path = str(tmp_path / "ops.keras")
    model.save(path)
    theirs = keras.saving.load_model(path)
    np.testing.assert_allclose(_predict(theirs, x), expected, rtol=1e-5, atol=1e-5)
    back = str(tmp_path / "from_keras.keras")
    theirs.save(back)
    mine = kaffe.models.load_model(back, compile=False)
    np.testing.assert_allclose(_predict(mine, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build, data", [(_norm_graph, _data), (_loss_graph, _loss_data),
                                         (_many_ops_graph, _data)])
def test_keras_op_graph_loads_in_kaffe(build, data, tmp_path):
    """(Keras records its hinge losses with a ``Cond`` node it cannot load itself: left out.)"""
    keras.backend.clear_session()
    theirs = build(keras, _LOADABLE_IN_KERAS) if build is _loss_graph else build(keras)
    x = data(1)
    path = str(tmp_path / "keras_ops.keras")
    theirs.save(path)
    mine = kaffe.models.load_model(path, compile=False)
    np.testing.assert_allclose(_predict(mine, x), _predict(theirs, x), rtol=1e-5, atol=1e-5)


def test_loss_nodes_are_the_ones_keras_records(tmp_path):
    """Same op classes in the saved graph as Keras's own losses leave (hinge losses aside:
    Keras's ``Cond`` node cannot be loaded, kaffe writes the same choice as ``Where``)."""
    for lib in (kaffe, keras):
        lib.backend.clear_session()
        _loss_graph(lib, _LOADABLE_IN_KERAS).save(str(tmp_path / f"{lib.__name__}.keras"))
    assert _node_classes(tmp_path / "kaffe.keras") == _node_classes(tmp_path / "keras.keras")


def test_hinge_label_conversion_matches_keras_for_binary_and_signed_labels():
    kaffe.backend.clear_session()
    rng = np.random.default_rng(3)
    pred = rng.normal(size=(8, 3)).astype("float32")
    for labels in (rng.integers(0, 2, (8, 3)), rng.choice([-1, 1], (8, 3))):
        labels = labels.astype("float32")
        for name in ("hinge", "squared_hinge"):
            t, p = kaffe.Input((3,)), kaffe.Input((3,))
            model = kaffe.Model([t, p], getattr(kaffe.losses, name)(t, p))
            expected = np.asarray(getattr(keras.losses, name)(labels, pred))
            np.testing.assert_allclose(_predict(model, [labels, pred]), expected, rtol=1e-6)


def test_normalization_ops_match_keras_eagerly():
    x = _data(2)
    for name, kwargs in (("layer_normalization", {}), ("rms_normalization", {}),
                         ("layer_normalization", {"rms_scaling": True, "gamma": np.ones(6)})):
        ours = getattr(ops.nn, name)(x, **kwargs)
        theirs = getattr(keras.ops.nn, name)(x, **kwargs)
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-6)


def test_creation_op_on_symbolic_tensor_names_the_op_and_argument():
    n = ops.sum(kaffe.Input((3,), dtype="int32"))
    with pytest.raises(TypeError, match=r"ops\.zeros: argument 'shape' received a symbolic"):
        ops.zeros((n, 2))


def test_node_keras_cannot_load_is_refused_at_save_naming_it(tmp_path):
    from kaffe.ops.registry import EXTRA_CLASSES
    x = kaffe.Input((3,))
    h = kaffe.layers.Dense(3)(x)
    old_style = EXTRA_CLASSES[("kaffe.losses", "MeanSquaredError")].function(x, h)
    model = kaffe.Model(x, old_style)
    path = tmp_path / "m.keras"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError, match=r"op node 'mean_squared_error.*' \(ops\.mean_squared_"
                                         r"error\).*Keras could not load"):
        model.save(str(path))
    assert path.read_bytes() == b"previous"


def test_every_kaffe_op_has_a_keras_class_or_is_refused():
    """Each op of kaffe.ops maps to a Keras 3 ``Operation`` class whose constructor takes the
    config kaffe writes and whose ``call`` takes the arguments kaffe writes."""
    import importlib
    import inspect
    from keras.src.ops.operation import Operation as KerasOperation
    from kaffe.ops import REGISTRY
    from kaffe.saving.serialization import OPS_WITHOUT_KERAS_CLASS
    wrong = []
    for name, spec in sorted(REGISTRY.items()):
        cls = vars(importlib.import_module(spec.keras_module)).get(spec.class_name)
        if name in OPS_WITHOUT_KERAS_CLASS:
            continue
        if not (isinstance(cls, type) and issubclass(cls, KerasOperation)):
            wrong.append(f"{name}: no {spec.keras_module}.{spec.class_name}")
            continue
        init = inspect.signature(cls.__init__).parameters
        if any(p not in init for p in spec.init_params):
            wrong.append(f"{name}: config {spec.init_params} vs {list(init)}")
        call = [p for p, v in inspect.signature(cls.call).parameters.items()
                if p != "self" and v.kind is not v.VAR_KEYWORD]
        if not any(p.startswith("*") for p in map(str, inspect.signature(cls.call).parameters
                                                  .values())) \
                and list(spec.call_params) != call[:len(spec.call_params)]:
            wrong.append(f"{name}: call {spec.call_params} vs {call}")
    assert not wrong, "\n".join(wrong)


def test_keras_file_with_cond_node_is_refused_naming_it(tmp_path):
    keras.backend.clear_session()
    t, p = keras.Input((3,)), keras.Input((3,))
    path = str(tmp_path / "hinge.keras")
    keras.Model([t, p], keras.losses.hinge(t, p)).save(path)
    with pytest.raises(ValueError, match="control-flow op Cond.*Keras 3 cannot load"):
        kaffe.models.load_model(path, compile=False)


def test_model_with_symbolic_added_loss_saves_its_inference_graph(tmp_path, caplog):
    """Keras 2's VAE: ``add_loss`` on KerasTensors. Keras 3 files have no place for such
    losses: the file holds the inputs-to-outputs graph (Keras and kaffe load it and predict the
    same), and the warning names what was left out (the loss-only ``z_log_var`` layer)."""
    x = kaffe.Input((8,))
    h = kaffe.layers.Dense(6, activation="relu")(x)
    z_mean = kaffe.layers.Dense(2)(h)
    z_log_var = kaffe.layers.Dense(2, name="z_log_var")(h)
    out = kaffe.layers.Dense(8, activation="sigmoid")(z_mean)
    model = kaffe.Model(x, out)
    kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
    model.add_loss(ops.mean(kaffe.losses.binary_crossentropy(x, out) * 8 + kl))
    model.compile("adam")
    data = np.random.default_rng(0).random((16, 8), dtype=np.float32)
    model.fit(data, epochs=1, verbose=0)
    path = str(tmp_path / "vae.keras")
    with caplog.at_level("WARNING", logger="kaffe"):
        model.save(path)
    assert "z_log_var" in caplog.text and "add_loss" in caplog.text
    expected = _predict(model, data)
    np.testing.assert_allclose(_predict(keras.saving.load_model(path), data), expected,
                               rtol=1e-6)
    np.testing.assert_allclose(_predict(kaffe.models.load_model(path), data), expected,
                               rtol=1e-6)
    weights = str(tmp_path / "vae.weights.h5")  # save_weights keeps every layer
    model.save_weights(weights)
    model.load_weights(weights)


def test_size_node_round_trips_with_keras(tmp_path):
    for lib in (kaffe, keras):
        lib.backend.clear_session()
        x = lib.Input((3,))
        model = lib.Model(x, lib.ops.cast(lib.ops.size(x[0]), "float32") * x)
        model.save(str(tmp_path / f"{lib.__name__}.keras"))
    data = _data()[:, :3]
    expected = data * 3
    np.testing.assert_allclose(_predict(keras.saving.load_model(tmp_path / "kaffe.keras"), data),
                               expected)
    np.testing.assert_allclose(
        _predict(kaffe.models.load_model(tmp_path / "keras.keras", compile=False), data),
        expected)
