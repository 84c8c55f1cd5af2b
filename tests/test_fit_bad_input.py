"""Bad input to fit / evaluate / predict / save / load: each fails (or warns) before any long
work, naming the input or output, the value and the fix."""
import json
import os
import warnings

import numpy as np
import pytest

import kaffe
from kaffe import backend as K
from kaffe.training.data_adapters import DataError

RNG = np.random.default_rng(0)


def classifier(classes=10):
    inp = kaffe.Input(shape=(4,), name="features")
    out = kaffe.layers.Dense(classes, activation="softmax", name="digits")(inp)
    model = kaffe.Model(inp, out)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_string_data_names_the_input_and_dtype():
    model = classifier()
    x = np.array([["a", "b", "c", "d"]] * 8)
    with pytest.raises(DataError, match=r"input 'features' received <U1 data \(text\)"):
        model.fit(x, np.zeros(8), verbose=0)
    with pytest.raises(DataError, match=r"target for output 'digits' received <U3 data"):
        model.fit(RNG.random((3, 4)), np.array(["cat", "dog", "cat"]), verbose=0)


def test_sparse_label_equal_to_class_count_names_output_label_and_count():
    model = classifier(10)
    y = np.arange(12) % 11  # labels 0..10 for a 10-class output
    with pytest.raises(DataError, match=r"Output 'digits'.*has 10 classes.*include 10"):
        model.fit(RNG.random((12, 4)), y, verbose=0)
    with pytest.raises(DataError, match=r"include -1"):
        model.fit(RNG.random((2, 4)), np.array([0, -1]), verbose=0)


def test_sparse_label_out_of_range_from_a_generator_is_named_too():
    model = classifier(10)

    def batches():
        while True:
            yield RNG.random((4, 4)).astype("float32"), np.array([1, 2, 10, 3])
    with pytest.raises(DataError, match=r"Output 'digits'.*10 classes.*include 10"):
        model.fit(batches(), steps_per_epoch=2, verbose=0)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_batch_size_must_be_a_positive_integer(bad):
    model = classifier()
    x, y = RNG.random((8, 4)), np.zeros(8)
    for call in (lambda: model.fit(x, y, batch_size=bad, verbose=0),
                 lambda: model.evaluate(x, y, batch_size=bad, verbose=0),
                 lambda: model.predict(x, batch_size=bad, verbose=0)):
        with pytest.raises(ValueError, match=r"batch_size to be a positive integer.*Received"):
            call()


def test_nan_in_x_warns_once_before_training_naming_the_input():
    model = classifier()
    x = RNG.random((16, 4))
    x[3, 1] = np.nan
    x[7, 2] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, np.zeros(16), batch_size=4, epochs=2, verbose=0)
    messages = [str(w.message) for w in caught if "NaN" in str(w.message)]
    assert len(messages) == 1
    assert "input 'features' holds 2 NaN value(s)" in messages[0]


def test_truncated_keras_file_is_called_truncated(tmp_path):
    model = classifier()
    path = str(tmp_path / "m.keras")
    model.save(path)
    data = open(path, "rb").read()
    cut = str(tmp_path / "cut.keras")
    with open(cut, "wb") as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        kaffe.models.load_model(cut)


class Holder(kaffe.layers.Layer):
    def __init__(self, thing=None, **kwargs):
        super().__init__(**kwargs)
        self.thing = thing

    def get_config(self):
        return {**super().get_config(), "thing": self.thing}


def test_unjsonable_config_names_layer_and_key_and_keeps_old_file(tmp_path):
    inp = kaffe.Input(shape=(4,))
    holder = Holder(thing=None, name="holder")
    model = kaffe.Model(inp, holder(inp))
    path = str(tmp_path / "m.keras")
    model.save(path)
    before = open(path, "rb").read()
    holder.thing = {"inner": [1, object()]}
    with pytest.raises(TypeError, match=r"layer 'holder'.*object.*key 'thing\.inner\.1'"):
        model.save(path)
    assert open(path, "rb").read() == before
    assert [f for f in os.listdir(tmp_path)] == ["m.keras"]  # no temporary file left behind
    holder.thing = None
    assert json.loads(model.to_json())["class_name"]


def test_tf1_session_names_say_what_to_write():
    with pytest.raises(K.NoSessionError, match="K.get_session: kaffe has no TensorFlow sessions"):
        K.get_session()
