"""kaffe.callbacks inside the real ``kaffe.Sequential(...).fit`` (tests/test_callbacks.py covers
each callback against a fake model and Keras's own callbacks)."""
import math
import os
import re

import numpy as np
import pytest

import kaffe
from kaffe import callbacks as kc
from kaffe import layers


def make_model(learning_rate=0.01):
    model = kaffe.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)),
                              layers.Dense(1)])
    model.compile(optimizer=kaffe.optimizers.SGD(learning_rate=learning_rate), loss="mse",
                  metrics=["mae"])
    return model


def make_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4), dtype=np.float32)
    return x, x.sum(axis=1, keepdims=True)


def test_early_stopping_stops_and_restores_best_weights():
    x, y = make_data()
    model = make_model()
    weights = {}
    snap = kc.LambdaCallback(on_epoch_end=lambda e, logs: weights.__setitem__(e, model.get_weights()))
    # An improvement of 1e9 never happens: the first epoch stays best, stop after `patience`.
    es = kc.EarlyStopping(monitor="val_loss", min_delta=1e9, patience=2,
                          restore_best_weights=True)
    history = model.fit(x, y, epochs=10, batch_size=16, validation_split=0.25, verbose=0,
                        callbacks=[snap, es])
    assert len(history.history["loss"]) == 3 and es.stopped_epoch == 2
    for got, want in zip(model.get_weights(), weights[0]):
        np.testing.assert_array_equal(got, want)


def test_reduce_lr_on_plateau_and_scheduler_set_the_rate_and_log_it():
    x, y = make_data()
    model = make_model(learning_rate=0.01)
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0,
                        callbacks=[kc.ReduceLROnPlateau("loss", factor=0.5, patience=1,
                                                        min_delta=1e9)])
    # Logged at the end of each epoch, before that epoch's reduction (as Keras).
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.01, 0.005, 0.0025])
    assert model.optimizer.learning_rate == pytest.approx(0.00125)

    model = make_model()
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                        callbacks=[kc.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_model_checkpoint_writes_loadable_files(tmp_path):
    x, y = make_data()
    model = make_model()
    model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[
        kc.ModelCheckpoint(str(tmp_path / "w.{epoch:02d}-{val_loss:.2f}.weights.h5"),
                           save_weights_only=True),
        kc.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True)])
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 4 and "best.keras" in names
    assert all(re.fullmatch(r"w\.0[123]-\d+\.\d\d\.weights\.h5", n) for n in names if n != "best.keras")
    fresh = make_model()
    fresh.load_weights(str(tmp_path / sorted(names)[-1]))
    for got, want in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_allclose(got, want)
    restored = kaffe.models.load_model(str(tmp_path / "best.keras"))
    assert len(restored.get_weights()) == 4


def test_csv_logger_and_tensorboard(tmp_path):
    x, y = make_data()
    model = make_model()
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
                        callbacks=[kc.CSVLogger(str(tmp_path / "log.csv")),
                                   kc.TensorBoard(str(tmp_path / "tb"), histogram_freq=1,
                                                  update_freq=2)])
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss,mae,val_loss,val_mae" and len(rows) == 4
    assert float(rows[3].split(",")[1]) == pytest.approx(history.history["loss"][2])

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    train = EventAccumulator(str(tmp_path / "tb" / "train"), size_guidance={"scalars": 0})
    train.Reload()
    val = EventAccumulator(str(tmp_path / "tb" / "validation"), size_guidance={"scalars": 0})
    val.Reload()
    assert [e.value for e in train.Scalars("epoch_loss")] == \
        pytest.approx(history.history["loss"], rel=1e-6)
    assert [e.value for e in val.Scalars("epoch_loss")] == \
        pytest.approx(history.history["val_loss"], rel=1e-6)
    assert [e.step for e in train.Scalars("epoch_learning_rate")] == [0, 1, 2]
    # 48 training samples / 16 = 3 batches per epoch, 9 in all: batch scalars at 2, 4, 6, 8.
    assert [e.step for e in train.Scalars("batch_loss")] == [2, 4, 6, 8]
    assert any(t.endswith("kernel/histogram") for t in train.Tags()["histograms"])


def test_batch_hooks_terminate_on_nan_and_keras2_callbacks():
    x, y = make_data()
    calls = []

    class Keras2Style(kc.Callback):
        def on_batch_end(self, batch, logs):
            calls.append((batch, logs["loss"]))

        def on_epoch_end(self, epoch, logs):
            calls.append(("epoch", epoch))

    model = make_model()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[Keras2Style()])
    assert [c[0] for c in calls] == [0, 1, 2, 3, "epoch", 0, 1, 2, 3, "epoch"]
    assert all(isinstance(c[1], float) for c in calls if c[0] != "epoch")

    y_bad = y.copy()
    y_bad[20] = np.nan  # the second batch of 16
    seen = []
    history = make_model().fit(x, y_bad, epochs=5, batch_size=16, shuffle=False, verbose=0,
                               callbacks=[kc.TerminateOnNaN(),
                                          kc.LambdaCallback(on_batch_end=lambda b, l: seen.append(b))])
    assert len(history.history["loss"]) == 1 and math.isnan(history.history["loss"][0])
    assert seen == [0, 1]


def test_progress_output(capsys):
    x, y = make_data()
    make_model().fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and len(lines) == 4
    assert re.fullmatch(r"3/3 - \d+s - \d+(us|ms|s)/step - loss: [\d.]+ - mae: [\d.]+ - "
                        r"val_loss: [\d.]+ - val_mae: [\d.]+", lines[1]), lines[1]
    make_model().fit(x, y, epochs=1, batch_size=16, verbose=1)
    out = capsys.readouterr().out  # not a terminal: the final line only
    assert re.fullmatch(r"4/4 ━{20} \d+s \d+(us|ms|s)/step - loss: [\d.]+ - mae: [\d.]+\n", out)


def test_evaluate_and_predict_show_a_bar(capsys):
    x, y = make_data()
    model = make_model()
    model.evaluate(x, y, batch_size=16, verbose=1)
    model.predict(x, batch_size=16, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("4/4 ━") and "loss:" in lines[0]


HOOKS = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_test_begin",
         "on_test_end", "on_predict_begin", "on_predict_end", "on_train_batch_begin",
         "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
         "on_predict_batch_begin", "on_predict_batch_end"]


def _logged_keys(lib):
    """Per hook, the sorted keys of the ``logs`` each call got (keras.io's "Writing your own
    callbacks" guide calls ``logs.keys()`` in every hook)."""
    seen = {}

    class Recorder(lib.callbacks.Callback):
        pass

    for hook in HOOKS:
        def record(self, *args, logs="missing", hook=hook):
            logs = args[-1] if logs == "missing" else logs
            seen.setdefault(hook, set()).add(tuple(sorted(logs.keys())))
        setattr(Recorder, hook, record)
    model = lib.Sequential([lib.Input((3,)), lib.layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse", metrics=["mean_absolute_error"])
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_split=0.5,
              callbacks=[Recorder()])
    model.evaluate(x, y, batch_size=4, verbose=0, callbacks=[Recorder()])
    model.predict(x, batch_size=4, verbose=0, callbacks=[Recorder()])
    return seen


def test_every_hook_gets_a_logs_dict_with_keras_keys():
    keras = pytest.importorskip("keras")
    assert _logged_keys(kaffe) == _logged_keys(keras)
