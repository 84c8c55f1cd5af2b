"""What ``kaffe run`` restores for Keras 2-era scripts beyond the keras imports.

NumPy's builtin aliases (``np.float``, ``np.int``, ``np.object``) were the builtins under the
NumPy those scripts ran with (< 1.24); under ``kaffe run`` they are again, for that run only.
"""
import numpy as np
import pytest

from kaffe.cli.main import main
from kaffe.compat.numpy_aliases import numpy_builtin_aliases


def run_in_process(tmp_path, source):
    script = tmp_path / "script.py"
    script.write_text(source)
    return script, main(["run", str(script)])


def test_removed_numpy_aliases_are_the_builtins_inside_kaffe_run(tmp_path, capsys):
    source = ("import numpy as np\n"
              "a = np.zeros((2, 3), dtype=np.float)\n"
              "b = np.array([1.7, 2.2]).astype(np.int)\n"
              "c = np.empty(1, dtype=np.object)\n"
              "print('DTYPES', a.dtype, b.dtype, c.dtype, b.tolist())\n")
    _, code = run_in_process(tmp_path, source)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # NumPy 1.23: np.float is float -> float64, np.int is int -> int64, np.object -> object.
    assert "DTYPES float64 int64 object [1, 2]" in captured.out
    assert captured.err.count("removed in NumPy 1.24") == 1          # said once, not per use
    assert "np.float" in captured.err and "this run only" in captured.err


def test_the_aliases_are_gone_after_the_run_and_other_missing_names_still_fail(tmp_path, capsys):
    _, code = run_in_process(tmp_path, "import numpy as np\nx = np.float\n")
    assert code == 0
    with pytest.raises(AttributeError, match="'float'"):
        np.float  # noqa: B018 - the alias must not outlive the run
    _, code = run_in_process(tmp_path, "import numpy as np\nnp.no_such_name\n")
    assert code == 1 and "no_such_name" in capsys.readouterr().err


def test_alias_context_restores_numpy_getattr():
    before = vars(np).get("__getattr__")
    with numpy_builtin_aliases():
        assert np.int is int and np.bool_ is np.bool_
    assert vars(np).get("__getattr__") is before


# -- K.gradients inside a layer during evaluate / predict (Keras 2's mnist_swwae ``getwhere``) --

def _swwae_where_model():
    import kaffe
    from kaffe import backend as K
    from kaffe import layers

    def getwhere(x):
        y_prepool, y_postpool = x
        return K.gradients(K.sum(y_postpool), y_prepool)

    inputs = kaffe.Input((4, 4, 3))
    prepool = layers.Conv2D(2, 1, name="conv")(inputs)
    postpool = layers.MaxPooling2D(2)(prepool)
    where = layers.Lambda(getwhere, output_shape=lambda shapes: shapes[0])([prepool, postpool])
    out = layers.Multiply()([where, prepool])      # the switches select the pooled values
    return kaffe.Model(inputs, [where, out]), kaffe.Model(inputs, prepool)


def _reference_where(prepool):
    """d sum(maxpool(y)) / d y by PyTorch's own max_pool2d: 1 at each window's maximum."""
    import torch
    y = torch.tensor(prepool).permute(0, 3, 1, 2).requires_grad_(True)
    torch.nn.functional.max_pool2d(y, 2).sum().backward()
    return y.grad.permute(0, 2, 3, 1).numpy()


def test_k_gradients_in_a_lambda_works_in_predict_and_evaluate():
    import torch
    torch.manual_seed(0)
    model, prepool_model = _swwae_where_model()
    x = np.random.default_rng(0).normal(size=(6, 4, 4, 3)).astype("float32")
    where, out = model.predict(x, verbose=0)                  # inference mode, never trained
    expected = _reference_where(prepool_model.predict(x, verbose=0))
    np.testing.assert_allclose(where, expected, atol=1e-6)
    assert where.sum() == 6 * 2 * 2 * 2                       # one switch per pooling window
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    model.fit(x, [expected, x[..., :2]], epochs=1, batch_size=3, verbose=0,
              validation_data=(x, [expected, x[..., :2]]))    # validation: a no-grad pass
    logs = model.evaluate(x, [expected, x[..., :2]], verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"] - logs[model.output_names[1] + "_loss"], 0.0,
                               atol=1e-6)                    # the switches are exact
    with torch.no_grad():
        direct = model(torch.tensor(x))[0]
    assert not direct.requires_grad
    np.testing.assert_allclose(direct.numpy(), _reference_where(prepool_model.predict(x, verbose=0)),
                               atol=1e-6)


# -- a dict x for a subclassed model (keras.io endpoint_layer_pattern's LogReg) -------------------

def _dict_model(keras_module):
    class DictModel(keras_module.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras_module.layers.Dense(1)

        def call(self, inputs):
            # Keras 3 hands a subclassed model its dict as it came
            return self.dense(inputs["inputs"]) * inputs["scale"]

    return DictModel()


def test_subclassed_model_gets_the_dict_x_as_keras_3_gives_it():
    import keras
    import kaffe
    rng = np.random.default_rng(1)
    data = {"inputs": rng.normal(size=(16, 5)).astype("float32"),
            "scale": rng.uniform(0.5, 2.0, size=(16, 1)).astype("float32")}
    y = rng.normal(size=(16, 1)).astype("float32")
    ours, theirs = _dict_model(kaffe), _dict_model(keras)
    theirs.predict({k: v[:1] for k, v in data.items()}, verbose=0)   # build
    ours.predict({k: v[:1] for k, v in data.items()}, verbose=0)   # built in inference mode
    ours.set_weights(theirs.get_weights())       # its weights are ordinary tensors all the same
    np.testing.assert_allclose(ours.predict(data, verbose=0), theirs.predict(data, verbose=0),
                               rtol=1e-5, atol=1e-6)
    for model, module in ((ours, kaffe), (theirs, keras)):
        model.compile(optimizer=module.optimizers.SGD(0.1), loss="mse")
    hist_ours = ours.fit(data, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    hist_theirs = theirs.fit(data, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(hist_ours["loss"], hist_theirs["loss"], rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert abs(ours.evaluate(data, y, verbose=0) - theirs.evaluate(data, y, verbose=0)) < 1e-5
    assert abs(ours.train_on_batch(data, y) - theirs.train_on_batch(data, y)) < 1e-5


def _endpoint_log_reg(keras_module):
    """keras.io's endpoint layer pattern, subclassed form: the layer's inputs by keyword."""
    class Endpoint(keras_module.layers.Layer):
        def __init__(self):
            super().__init__()
            self.loss_fn = keras_module.losses.BinaryCrossentropy(from_logits=True)

        def call(self, logits, targets=None, sample_weight=None):
            if targets is not None:
                self.add_loss(self.loss_fn(targets, logits, sample_weight))
            return keras_module.ops.sigmoid(logits)

    class LogReg(keras_module.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras_module.layers.Dense(1)
            self.endpoint = Endpoint()

        def call(self, inputs):
            logits = self.dense(inputs["inputs"])
            return self.endpoint(logits=logits, targets=inputs["targets"],
                                 sample_weight=inputs["sample_weight"])

    return LogReg()


def test_endpoint_layer_called_by_keyword_in_a_subclassed_model_trains_as_keras_3():
    import keras
    import kaffe
    rng = np.random.default_rng(2)
    data = {"inputs": rng.normal(size=(12, 6)).astype("float32"),
            "targets": rng.integers(0, 2, size=(12, 1)).astype("float32"),
            "sample_weight": rng.uniform(size=(12, 1)).astype("float32")}
    ours, theirs = _endpoint_log_reg(kaffe), _endpoint_log_reg(keras)
    import torch
    theirs(data)
    ours({k: torch.tensor(v) for k, v in data.items()})
    ours.set_weights(theirs.get_weights())
    for model, module in ((ours, kaffe), (theirs, keras)):
        model.compile(module.optimizers.Adam(1e-2))                 # the loss is the added one
    hist_ours = ours.fit(data, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    hist_theirs = theirs.fit(data, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(hist_ours["loss"], hist_theirs["loss"], rtol=1e-4)
    np.testing.assert_allclose(ours.predict(data, verbose=0), theirs.predict(data, verbose=0),
                               rtol=1e-4, atol=1e-6)


def test_tf1_dataset_iterator_is_refused_naming_the_tf2_way(tmp_path, capsys):
    """TensorFlow 2 (the version the stand-in follows) has no Dataset.make_one_shot_iterator
    either; the error says what to write instead and where the script asked for it."""
    source = ("import numpy as np\nimport tensorflow as tf\n"
              "ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 2)), np.zeros(4))).batch(2)\n"
              "x, y = next(iter(ds))\nprint('TF2 WAY', tuple(x.shape))\n"
              "it = ds.make_one_shot_iterator()\n")
    _, code = run_in_process(tmp_path, source)
    captured = capsys.readouterr()
    assert code == 1 and "TF2 WAY (2, 2)" in captured.out
    assert "make_one_shot_iterator() is TensorFlow 1's graph API" in captured.err
    assert "fit(dataset, steps_per_epoch=...)" in captured.err and "line 6" in captured.err


def test_tf_name_scope_is_accepted(tmp_path, capsys):
    source = ("import tensorflow as tf\n"
              "with tf.name_scope('augmentation') as scope:\n"
              "    x = tf.cast(tf.shape(tf.zeros((2, 3)))[1], tf.float32)\n"
              "print('SCOPE', scope, float(x))\n")
    _, code = run_in_process(tmp_path, source)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "SCOPE augmentation 3.0" in captured.out


def test_constant_initializer_takes_a_pretrained_matrix_as_keras_does():
    """pretrained_word_embeddings.py: Embedding(..., embeddings_initializer=Constant(matrix))."""
    import keras
    import kaffe
    matrix = np.random.default_rng(3).normal(size=(7, 4)).astype("float32")
    ids = np.array([[1, 6, 0], [3, 3, 2]])
    ours = kaffe.layers.Embedding(7, 4, embeddings_initializer=kaffe.initializers.Constant(matrix))
    theirs = keras.layers.Embedding(7, 4, embeddings_initializer=keras.initializers.Constant(matrix))
    import torch
    np.testing.assert_array_equal(ours(torch.tensor(ids)).detach().numpy(),
                                  keras.ops.convert_to_numpy(theirs(ids)))
    config = kaffe.initializers.Constant(matrix).get_config()
    assert config == keras.initializers.Constant(matrix).get_config()
    np.testing.assert_array_equal(kaffe.initializers.Constant(**config)((7, 4)).numpy(), matrix)
    assert kaffe.initializers.Constant(0.5).get_config() == {"value": 0.5}
    with pytest.raises(ValueError, match=r"shape \(7, 4\) cannot fill a weight of shape \(5, 4\)"):
        kaffe.initializers.Constant(matrix)((5, 4))


def test_cardinality_of_datasets(tmp_path):
    """keras.io text_classification_from_scratch prints raw_train_ds.cardinality(): tf.data's
    count of batches (ceil(n / batch_size)), -1 for a dataset that repeats forever."""
    import kaffe
    from kaffe.compat import tf_data
    for label, count in (("neg", 5), ("pos", 6)):
        (tmp_path / label).mkdir()
        for i in range(count):
            (tmp_path / label / f"{i}.txt").write_text(f"review {label} {i}")
    ds = kaffe.utils.text_dataset_from_directory(str(tmp_path), batch_size=4)
    assert int(ds.cardinality()) == 3 and ds.cardinality().dtype == __import__("torch").int64
    for text_batch, label_batch in ds.take(1):       # the keras.io program's preview loop
        assert "review" in str(text_batch.numpy()[0]) and label_batch.numpy().shape == (4,)
        assert type(text_batch.numpy()) is np.ndarray
    pipeline = tf_data.Dataset.from_tensor_slices(np.zeros((10, 2))).batch(3)
    assert int(pipeline.cardinality()) == 4
    assert int(pipeline.repeat().cardinality()) == -1
    forever = tf_data.Dataset.from_tensor_slices(np.arange(5.0)).repeat().shuffle(5).batch(2)
    assert int(forever.cardinality()) == -1
    first = next(iter(forever))
    assert tuple(first.shape) == (2,)
    values = [float(v) for batch, _ in zip(forever, range(10)) for v in batch]
    assert len(values) == 20 and set(values) == {0.0, 1.0, 2.0, 3.0, 4.0}   # it goes on


def test_fit_on_an_endless_tf_dataset_takes_steps_per_epoch():
    import kaffe
    from kaffe.compat import tf_data
    from kaffe.training.data_adapters import DataError
    x = np.random.default_rng(4).normal(size=(10, 3)).astype("float32")
    ds = tf_data.Dataset.from_tensor_slices((x, x[:, :1])).repeat().shuffle(10).batch(4)
    model = kaffe.Sequential([kaffe.Input((3,)), kaffe.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    seen = []
    counter = kaffe.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    model.fit(ds, steps_per_epoch=3, epochs=2, verbose=0, callbacks=[counter])
    assert seen == [0, 1, 2, 0, 1, 2]
    with pytest.raises(DataError, match="repeats forever.*steps_per_epoch"):
        model.fit(ds, epochs=1, verbose=0)


def test_tf_strings_standardization_in_text_vectorization(tmp_path, capsys):
    """keras.io text_classification_from_scratch's custom_standardization, under kaffe run."""
    source = ("import re, string\nimport numpy as np\nimport tensorflow as tf\nimport keras\n"
              "def custom_standardization(input_data):\n"
              "    lowercase = tf.strings.lower(input_data)\n"
              "    stripped_html = tf.strings.regex_replace(lowercase, '<br />', ' ')\n"
              "    return tf.strings.regex_replace(stripped_html,\n"
              "                                    f'[{re.escape(string.punctuation)}]', '')\n"
              "layer = keras.layers.TextVectorization(standardize=custom_standardization,\n"
              "                                       output_mode='int', output_sequence_length=4)\n"
              "layer.adapt(np.array(['Great film!<br />Great.', 'Bad, BAD film']))\n"
              "print('VOCAB', layer.get_vocabulary())\n"
              "print('IDS', np.asarray(layer(np.array(['great<br />bad!']))).tolist())\n"
              "print('BYTES', tf.strings.lower(b'AbC'), tf.strings.length(np.array(['ab', 'abc'])))\n"
              "batch = tf.expand_dims(np.array(['great film', 'bad']), -1)\n"
              "print('EXPANDED', batch.shape, np.asarray(layer(batch)).tolist())\n")
    _, code = run_in_process(tmp_path, source)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "VOCAB ['', '[UNK]', 'great', 'film', 'bad']" in captured.out
    assert "IDS [[2, 4, 0, 0]]" in captured.out
    assert "BYTES b'abc' [2 3]" in captured.out
    assert "EXPANDED (2, 1) [[2, 3, 0, 0], [4, 0, 0, 0]]" in captured.out
