"""fit/evaluate/predict over every kind of data source, Keras-2 spellings, and bad input."""
import keras
import numpy as np
import pytest
import torch

import kaffe
from kaffe import layers as kl
from kaffe.utils import Sequence


def mlp(lib=kaffe, n_in=10, n_out=3, activation="softmax"):
    model = lib.Sequential([lib.layers.Dense(8, activation="relu", input_shape=(n_in,)),
                            lib.layers.Dense(n_out, activation=activation)])
    return model


def data(n=64, n_in=10, n_out=3):
    x = np.random.rand(n, n_in).astype("float32")
    labels = (x[:, :n_out].argmax(axis=1))
    return x, np.eye(n_out, dtype="float32")[labels], labels


def test_fit_learns_and_returns_history():
    x, y, _ = data(256)
    model = mlp()
    model.compile(optimizer=kaffe.optimizers.Adam(0.01), loss="categorical_crossentropy",
                  metrics=["acc"])
    hist = model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    assert set(hist.history) == {"loss", "acc"}
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.7
    assert hist.history["acc"][-1] > 0.6
    assert model.history is hist


@pytest.mark.parametrize("weighting", ["sample_weight", "class_weight"])
def test_weighted_training_equals_keras(weighting):
    x, y, labels = data(48)
    weights = {"sample_weight": dict(sample_weight=np.linspace(0.1, 2.0, 48).astype("float32")),
               "class_weight": dict(class_weight={0: 1.0, 1: 3.0, 2: 0.5})}[weighting]
    keras.backend.clear_session()
    k_model = mlp(keras)
    f_model = mlp()
    f_model.set_weights(k_model.get_weights())
    for m in (k_model, f_model):
        m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    kh = k_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, **weights)
    fh = f_model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, **weights)
    np.testing.assert_allclose(fh.history["loss"], kh.history["loss"], rtol=1e-5)
    for a, b in zip(f_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_sparse_labels_and_sparse_accuracy():
    x, _, labels = data(128)
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(x, labels, epochs=3, batch_size=32, verbose=0)
    assert hist.history["accuracy"][-1] >= 0.0
    keras.backend.clear_session()
    k_model = mlp(keras)
    k_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(model.evaluate(x, labels, verbose=0),
                               k_model.evaluate(x, labels, verbose=0), rtol=1e-5)


def test_generator_with_steps_per_epoch_and_fit_generator_keras2_names():
    x, y, _ = data(64)
    calls = {"n": 0}

    def generate():
        while True:
            for i in range(0, 64, 16):
                calls["n"] += 1
                yield x[i:i + 16], y[i:i + 16]
    model = mlp()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(generate(), steps_per_epoch=4, epochs=2, verbose=0)
    assert calls["n"] == 8
    hist = model.fit_generator(generate(), samples_per_epoch=64, nb_epoch=3, verbose=0)
    assert len(hist.history["loss"]) == 3
    assert isinstance(model.evaluate_generator(generate(), steps=2), float)
    assert model.predict_generator(generate(), steps=3).shape == (48, 3)


def test_generator_without_steps_is_refused():
    model = mlp()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit((b for b in []), epochs=1, verbose=0)


class Batches(Sequence):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, idx):
        sl = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
        return self.x[sl], self.y[sl]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_sequence_and_torch_dataloader():
    x, y, _ = data(50)
    seq = Batches(x, y, 16)
    model = mlp()
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(seq, epochs=2, verbose=0, validation_data=Batches(x, y, 25))
    assert seq.epochs_ended == 2
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    hist = model.fit(dataset, batch_size=10, epochs=1, verbose=0)
    assert len(hist.history["loss"]) == 1
    loader = torch.utils.data.DataLoader(dataset, batch_size=10)
    assert model.predict(torch.utils.data.DataLoader(torch.from_numpy(x), batch_size=7)).shape == (50, 3)
    assert len(model.evaluate(loader, verbose=0)) == 2


def test_dict_inputs_and_targets_by_name():
    a, b = kaffe.Input((4,), name="a"), kaffe.Input((3,), name="b")
    h = kl.concatenate([a, b])
    out1 = kl.Dense(1, activation="sigmoid", name="out1")(h)
    out2 = kl.Dense(2, name="out2")(h)
    model = kaffe.Model([a, b], [out1, out2])
    model.compile(optimizer="rmsprop", loss={"out1": "binary_crossentropy", "out2": "mse"},
                  loss_weights={"out1": 1.0, "out2": 0.5}, metrics={"out1": ["accuracy"]})
    xa, xb = np.random.rand(20, 4), np.random.rand(20, 3)
    y1, y2 = np.random.randint(0, 2, (20, 1)), np.random.rand(20, 2)
    hist = model.fit({"a": xa, "b": xb}, {"out1": y1, "out2": y2}, epochs=1, verbose=0)
    assert set(hist.history) == {"loss", "out1_loss", "out2_loss", "out1_accuracy"}


def test_initial_epoch_and_validation_freq():
    x, y, _ = data(32)
    model = mlp()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    hist = model.fit(x, y, epochs=5, initial_epoch=2, validation_data=(x, y), validation_freq=2,
                     verbose=0)
    assert hist.epoch == [2, 3, 4]
    assert len(hist.history["loss"]) == 3 and len(hist.history["val_loss"]) == 1


def test_custom_metric_function_from_backend():
    K = kaffe.backend

    def mean_pred(y_true, y_pred):
        return K.mean(y_pred)
    x = np.random.rand(40, 10).astype("float32")
    labels = np.random.randint(2, size=(40, 1))
    model = kaffe.Sequential()
    model.add(kl.Dense(32, activation="relu", input_dim=10))
    model.add(kl.Dense(1, activation="sigmoid"))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy", mean_pred])
    hist = model.fit(x, labels, epochs=1, batch_size=40, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "mean_pred"}
    pred_mean = float(model.predict(x).mean())
    loss, acc, mp = model.evaluate(x, labels, batch_size=40, verbose=0)
    assert mp == pytest.approx(pred_mean, rel=1e-5)


def test_train_on_batch_returns_the_batch_loss():
    x, y, _ = data(16)
    model = mlp()
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    before = model.test_on_batch(x, y)[0]
    loss, acc = model.train_on_batch(x, y)
    assert loss == pytest.approx(before, rel=1e-5)
    assert model.test_on_batch(x, y)[0] < before


def test_jit_compile_trains_the_same():
    x, y, _ = data(32)
    a, b = mlp(), mlp()
    b.set_weights(a.get_weights())
    a.compile(optimizer="sgd", loss="categorical_crossentropy")
    b.compile(optimizer="sgd", loss="categorical_crossentropy", jit_compile=True)
    ha = a.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    hb = b.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)


# ---------------------------------------------------------------------- bad input
def test_wrong_input_width_names_layer_and_shapes_before_training():
    model = mlp(n_in=20)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x = np.random.rand(10, 21)
    with pytest.raises(ValueError, match=r"'dense'.*\(None, 20\).*\(10, 21\)"):
        model.fit(x, np.zeros((10, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"expects shape \(None, 20\)"):
        model.predict(x)


def test_wrong_rank_names_the_shapes():
    model = mlp(n_in=20)
    with pytest.raises(ValueError, match=r"\(None, 20\).*\(10, 4, 5\)"):
        model.predict(np.zeros((10, 4, 5)))


def test_unknown_names_list_valid_ones():
    model = mlp()
    with pytest.raises(ValueError, match="adam"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        model.compile(optimizer="sgd", loss="categorical_crossentropyy")
    with pytest.raises(ValueError, match="relu"):
        kl.Dense(3, activation="reluu")
    model.compile(optimizer="sgd", loss="mse", metrics=["acuracy"])
    with pytest.raises(ValueError, match="accuracy"):
        model.fit(*data(8)[:2], verbose=0)


def test_mismatched_number_of_inputs_names_the_model_inputs():
    a, b = kaffe.Input((2,), name="left"), kaffe.Input((2,), name="right")
    model = kaffe.Model([a, b], kl.add([a, b]))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"left.*right"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 2)), verbose=0)
    with pytest.raises(ValueError, match="1 output"):
        model.fit([np.zeros((4, 2))] * 2, [np.zeros((4, 2))] * 2, verbose=0)


def test_fit_uncompiled_says_compile():
    with pytest.raises(RuntimeError, match="compile"):
        mlp().fit(*data(8)[:2], verbose=0)


def test_layer_failing_inside_model_is_named():
    model = kaffe.Sequential([kl.Dense(4), kl.Reshape((3, 3))])
    with pytest.raises(ValueError, match="reshape"):
        model.predict(np.zeros((2, 5)))
