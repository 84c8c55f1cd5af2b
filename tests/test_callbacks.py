"""kaffe.callbacks against a fake model driven the way kaffe's fit drives the hooks.

Oracles: Keras 3's own callbacks, fed the same logs by hand (EarlyStopping, ReduceLROnPlateau,
LearningRateScheduler, ModelCheckpoint's saved epochs, CSVLogger's bytes), and TensorBoard
event files read back with TensorBoard's EventAccumulator.
"""
import io
import logging
import math
import os
import pickle
import random
import re

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

from kaffe import callbacks as kc  # noqa: E402
from kaffe.callbacks.base import CallbackList, _overrides_batch_hook  # noqa: E402


# ---------------------------------------------------------------------- the fake model and loop
class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self.learning_rate = learning_rate
        self.iterations = 0


class FakeModel(torch.nn.Module):
    """What callbacks may touch on a kaffe model: stop_training, optimizer.learning_rate,
    save/save_weights, get/set_weights, named_parameters, name."""

    def __init__(self, learning_rate=0.1):
        super().__init__()
        self.dense = torch.nn.Linear(3, 2)
        self.norm = torch.nn.BatchNorm1d(2)
        self.optimizer = FakeOptimizer(learning_rate)
        self.stop_training = False
        self.name = "fake_model"
        self.saved = []

    def get_weights(self):
        return [p.detach().cpu().numpy().copy() for p in self.parameters()]

    def set_weights(self, weights):
        with torch.no_grad():
            for p, w in zip(self.parameters(), weights):
                p.copy_(torch.as_tensor(w))

    def save(self, filepath, overwrite=True):
        self._write(filepath, "model")

    def save_weights(self, filepath, overwrite=True):
        self._write(filepath, "weights")

    def _write(self, filepath, kind):
        with open(filepath, "wb") as f:
            pickle.dump((kind, self.get_weights()), f)
        self.saved.append(filepath)


def final_name(path):
    """The checkpoint name a save was for: ModelCheckpoint saves to '.tmp-<hex>-<name>' first."""
    return re.sub(r"^\.tmp-[0-9a-f]{12}-", "", os.path.basename(path))


def batch_log_interval(callbacks):
    """The loop's rule (kaffe.training.trainer): None = no batch hooks; else the smallest
    batch_log_interval_s of the callbacks overriding a batch hook (default 0 = every batch)."""
    if not callbacks.wants_batch_logs:
        return None
    return min(getattr(cb, "batch_log_interval_s", 0) for cb in callbacks.callbacks
               if _overrides_batch_hook(cb))


def run_fit(callbacks, model, epoch_logs, steps=4, batch_logs=None, verbose=0,
            params_steps="same"):
    """Drive the hooks as fit does: epoch_logs[i] is epoch i's logs (a fresh dict is passed),
    batch_logs(epoch, step) the logs of a batch. Every batch changes the weights. A finite
    positive interval is treated as elapsed on every batch. Returns the epochs run."""
    params = {"epochs": len(epoch_logs), "steps": steps if params_steps == "same" else
              params_steps, "verbose": verbose}
    cbs = CallbackList(callbacks, model, params)
    interval = batch_log_interval(cbs)
    model.stop_training = False
    cbs.on_train_begin()
    ran = 0
    last = {}
    for epoch, logs in enumerate(epoch_logs):
        cbs.on_epoch_begin(epoch)
        for step in range(steps):
            if interval is not None:
                cbs.on_train_batch_begin(step)
            model.optimizer.iterations += 1
            with torch.no_grad():
                model.dense.weight.add_(1.0)
            if interval is not None and not math.isinf(interval):
                cbs.on_train_batch_end(step, batch_logs(epoch, step) if batch_logs else {})
            if model.stop_training:
                break
        last = dict(logs)
        cbs.on_epoch_end(epoch, last)
        ran += 1
        if model.stop_training:
            break
    cbs.on_train_end(last)
    return ran


class KerasDummyModel:
    """Enough of a Keras model for Keras's callbacks driven by hand."""

    def __init__(self, learning_rate=0.1):
        self.stop_training = False
        self.optimizer = FakeOptimizer(learning_rate)
        self.saved = []
        self.epoch = 0
        self.restored = None

    def get_weights(self):
        return [np.full(2, float(self.epoch))]

    def set_weights(self, weights):
        self.restored = weights

    def save(self, filepath, overwrite=True, **kwargs):
        self.saved.append(filepath)

    def save_weights(self, filepath, overwrite=True, **kwargs):
        self.saved.append(filepath)


def run_keras(callback, model, epoch_logs):
    callback.set_model(model)
    callback.set_params({"epochs": len(epoch_logs), "steps": 1, "verbose": 0})
    callback.on_train_begin()
    ran = 0
    for epoch, logs in enumerate(epoch_logs):
        model.epoch = epoch
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, dict(logs))
        ran += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return ran


def random_logs(seed, n=25, key="val_loss", up=False):
    rng = random.Random(seed)
    value, logs = (0.2 if up else 2.0), []
    for _ in range(n):
        value += rng.uniform(-0.15, 0.1) * (-1 if up else 1)
        logs.append({"loss": rng.uniform(0, 1), key: value})
    return logs


# ---------------------------------------------------------------------- base protocol
def test_keras2_on_batch_end_is_called_through_on_train_batch_end():
    seen = []

    class OldStyle(kc.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))

    cbs = CallbackList([OldStyle()], FakeModel(), {"epochs": 1, "steps": 2, "verbose": 0})
    assert cbs.wants_batch_logs
    cbs.on_train_batch_end(0, {"loss": 1.0})
    cbs.on_train_batch_end(1, {"loss": 0.5})
    assert seen == [(0, 1.0), (1, 0.5)]


def test_epoch_level_callbacks_ask_for_no_batch_logs(tmp_path):
    quiet = [kc.EarlyStopping(), kc.ModelCheckpoint(str(tmp_path / "m.keras")),
             kc.ReduceLROnPlateau(), kc.LearningRateScheduler(lambda e: 0.1),
             kc.CSVLogger(str(tmp_path / "log.csv")), kc.TensorBoard(str(tmp_path / "tb")),
             kc.LambdaCallback(on_epoch_end=lambda e, l: None), kc.History()]
    cbs = CallbackList(quiet, FakeModel(), {"epochs": 1, "steps": 2, "verbose": 0})
    assert not cbs.wants_batch_logs
    for cb in [kc.TerminateOnNaN(), kc.TensorBoard(str(tmp_path / "tb"), update_freq=3),
               kc.ModelCheckpoint(str(tmp_path / "m.keras"), save_freq=5),
               kc.LambdaCallback(on_batch_end=lambda b, l: None)]:
        cbs = CallbackList([cb], FakeModel(), {"epochs": 1, "steps": 2, "verbose": 0})
        assert cbs.wants_batch_logs and batch_log_interval(cbs) == 0, cb


# ---------------------------------------------------------------------- EarlyStopping
ES_CASES = [
    dict(), dict(patience=3), dict(patience=2, min_delta=0.05), dict(patience=2, baseline=1.5),
    dict(patience=1, start_from_epoch=4), dict(patience=4, restore_best_weights=True),
    dict(patience=0, restore_best_weights=True, baseline=0.5),
    dict(monitor="val_accuracy", mode="max", patience=2),
    dict(monitor="val_accuracy", mode="max", patience=3, restore_best_weights=True,
         min_delta=0.02),
]


@pytest.mark.parametrize("case", ES_CASES)
def test_early_stopping_matches_keras(case):
    for seed in range(3):
        key = case.get("monitor", "val_loss")
        logs = random_logs(seed, key=key, up=key != "val_loss")
        kmodel = KerasDummyModel()
        k_es = keras.callbacks.EarlyStopping(**case)
        k_ran = run_keras(k_es, kmodel, logs)

        model = FakeModel()
        snapshots = {}
        recorder = kc.LambdaCallback(
            on_epoch_end=lambda epoch, l: snapshots.__setitem__(epoch, model.get_weights()))
        es = kc.EarlyStopping(**case)
        ran = run_fit([recorder, es], model, logs, steps=2)
        assert ran == k_ran, seed
        assert es.stopped_epoch == k_es.stopped_epoch
        assert es.best == pytest.approx(float(k_es.best) if k_es.best is not None else None)
        if case.get("restore_best_weights"):
            assert es.best_epoch == k_es.best_epoch == int(kmodel.restored[0][0])
            for got, want in zip(model.get_weights(), snapshots[es.best_epoch]):
                np.testing.assert_array_equal(got, want)


def test_early_stopping_auto_mode_reads_the_name():
    assert kc.EarlyStopping(monitor="val_acc", patience=0)._set_monitor_op() is None
    for monitor, direction in [("val_acc", "max"), ("accuracy", "max"), ("val_auc", "max"),
                               ("val_loss", "min"), ("mae", "min"), ("val_precision", "max"),
                               ("mean_squared_error", "min"), ("val_sparse_categorical_accuracy",
                                                               "max")]:
        es = kc.EarlyStopping(monitor=monitor)
        es._set_monitor_op()
        assert es.monitor_op == direction, monitor
    es = kc.EarlyStopping(monitor="val_widgets")
    es.set_model(FakeModel())
    with pytest.raises(ValueError, match="mode='max'"):
        es.on_epoch_end(0, {"val_widgets": 1.0})


def test_early_stopping_auto_mode_stops_like_keras_max_mode_on_accuracy():
    logs = random_logs(5, key="val_accuracy", up=True)
    k_ran = run_keras(keras.callbacks.EarlyStopping("val_accuracy", mode="max", patience=2),
                      KerasDummyModel(), logs)
    assert run_fit([kc.EarlyStopping("val_accuracy", patience=2)], FakeModel(), logs) == k_ran


def test_early_stopping_warns_once_when_monitor_missing(caplog):
    es = kc.EarlyStopping(monitor="val_loss", patience=0)
    with caplog.at_level(logging.WARNING):
        ran = run_fit([es], FakeModel(), [{"loss": 1.0}] * 4)
    assert ran == 4
    warnings = [r for r in caplog.records if "val_loss" in r.getMessage()]
    assert len(warnings) == 1 and "loss" in warnings[0].getMessage()


def test_early_stopping_verbose_messages(capsys):
    es = kc.EarlyStopping(monitor="loss", patience=1, verbose=1, restore_best_weights=True)
    run_fit([es], FakeModel(), [{"loss": v} for v in (1.0, 0.5, 0.6, 0.7, 0.8)])
    out = capsys.readouterr().out
    assert "Epoch 3: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 2." in out


# ---------------------------------------------------------------------- ReduceLROnPlateau
RLROP_CASES = [
    dict(patience=2), dict(patience=1, factor=0.5, cooldown=2),
    dict(patience=0, factor=0.5, min_lr=0.02), dict(patience=2, min_delta=0.05),
    dict(monitor="val_accuracy", mode="max", patience=1, factor=0.2, cooldown=1),
]


@pytest.mark.parametrize("case", RLROP_CASES)
def test_reduce_lr_on_plateau_matches_keras(case):
    for seed in (0, 3):
        _check_reduce_lr_on_plateau(case, seed)


def _check_reduce_lr_on_plateau(case, seed):
    key = case.get("monitor", "val_loss")
    logs = random_logs(seed, n=30, key=key, up=key != "val_loss")

    kmodel, k_lrs = KerasDummyModel(0.1), []
    k_cb = keras.callbacks.ReduceLROnPlateau(**case)
    k_rec = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, l: k_lrs.append((kmodel.optimizer.learning_rate,
                                                l["learning_rate"])))
    for cb in (k_cb, k_rec):
        cb.set_model(kmodel)
    k_cb.on_train_begin()
    for epoch, l in enumerate(logs):
        l = dict(l)
        k_cb.on_epoch_end(epoch, l)
        k_rec.on_epoch_end(epoch, l)

    model, lrs = FakeModel(0.1), []
    rec = kc.LambdaCallback(on_epoch_end=lambda e, l: lrs.append(
        (model.optimizer.learning_rate, l["learning_rate"])))
    run_fit([kc.ReduceLROnPlateau(**case), rec], model, logs, steps=1)
    assert np.allclose(lrs, k_lrs, rtol=1e-12, atol=0) and len(lrs) == len(k_lrs)
    assert len({lr for lr, _ in lrs}) > 1  # the case does reduce


def test_reduce_lr_on_plateau_keras2_epsilon_and_bad_factor():
    assert kc.ReduceLROnPlateau(epsilon=0.3).min_delta == 0.3
    with pytest.raises(ValueError, match="factor=1.5"):
        kc.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(TypeError, match="bogus"):
        kc.ReduceLROnPlateau(bogus=1)


# ---------------------------------------------------------------------- LearningRateScheduler
@pytest.mark.parametrize("schedule", [
    lambda epoch: 0.1 / (1 + epoch),
    lambda epoch, lr: lr * 0.9 if epoch >= 2 else lr,
])
def test_learning_rate_scheduler_matches_keras(schedule):
    logs = [{"loss": 1.0}] * 6
    kmodel, k_lrs = KerasDummyModel(0.05), []
    k_cb = keras.callbacks.LearningRateScheduler(schedule)
    k_cb.set_model(kmodel)
    for epoch, l in enumerate(logs):
        k_cb.on_epoch_begin(epoch)
        l = dict(l)
        k_cb.on_epoch_end(epoch, l)
        k_lrs.append(l["learning_rate"])

    model, lrs = FakeModel(0.05), []
    rec = kc.LambdaCallback(on_epoch_end=lambda e, l: lrs.append(l["learning_rate"]))
    run_fit([kc.LearningRateScheduler(schedule), rec], model, logs, steps=1)
    assert lrs == pytest.approx(k_lrs)


def test_learning_rate_scheduler_accepts_numpy_and_tensor_results_rejects_others():
    model = FakeModel()
    run_fit([kc.LearningRateScheduler(lambda e: np.float32(0.25))], model, [{}])
    assert model.optimizer.learning_rate == 0.25
    run_fit([kc.LearningRateScheduler(lambda e, lr: torch.tensor(lr * 2))], model, [{}])
    assert model.optimizer.learning_rate == pytest.approx(0.5)
    with pytest.raises(ValueError, match="float"):
        run_fit([kc.LearningRateScheduler(lambda e: "fast")], model, [{}])


def test_learning_rate_scheduler_does_not_hide_type_errors_in_the_schedule():
    def schedule(epoch, lr):
        return lr + None  # a bug inside the schedule must surface as itself

    with pytest.raises(TypeError, match="NoneType"):
        run_fit([kc.LearningRateScheduler(schedule)], FakeModel(), [{}])


# ---------------------------------------------------------------------- ModelCheckpoint
@pytest.mark.parametrize("case", [
    dict(), dict(save_best_only=True), dict(save_best_only=True, initial_value_threshold=1.8),
    dict(save_best_only=True, monitor="val_accuracy", mode="max"),
])
def test_model_checkpoint_saves_the_same_epochs_as_keras(tmp_path, case):
    for seed in (0, 4):
        _check_checkpoint_epochs(tmp_path / str(seed), case, seed)


def _check_checkpoint_epochs(tmp_path, case, seed):
    key = case.get("monitor", "val_loss")
    logs = random_logs(seed, n=12, key=key, up=key != "val_loss")
    kmodel = KerasDummyModel()
    run_keras(keras.callbacks.ModelCheckpoint(str(tmp_path / "k" / "ckpt-{epoch:02d}.keras"),
                                              **case), kmodel, logs)
    model = FakeModel()
    run_fit([kc.ModelCheckpoint(str(tmp_path / "f" / "ckpt-{epoch:02d}.keras"), **case)],
            model, logs, steps=1)
    assert [final_name(p) for p in model.saved] == [os.path.basename(p) for p in kmodel.saved]
    written = os.listdir(tmp_path / "f") if model.saved else []
    assert sorted(written) == sorted({final_name(p) for p in model.saved})


def test_model_checkpoint_formats_with_logs_and_saves_weights(tmp_path):
    model = FakeModel()
    logs = [{"loss": 1.0, "val_loss": 0.8765}, {"loss": 0.5, "val_loss": 0.4321}]
    cb = kc.ModelCheckpoint(str(tmp_path / "weights.{epoch:02d}-{val_loss:.2f}.h5"),
                            save_weights_only=True)
    run_fit([cb], model, logs, steps=1)
    assert sorted(os.listdir(tmp_path)) == ["weights.01-0.88.h5", "weights.02-0.43.h5"]
    with open(tmp_path / "weights.02-0.43.h5", "rb") as f:
        assert pickle.load(f)[0] == "weights"


def test_model_checkpoint_missing_key_names_the_filepath(tmp_path):
    cb = kc.ModelCheckpoint(str(tmp_path / "m-{val_acc:.2f}.keras"))
    with pytest.raises(KeyError, match="val_acc"):
        run_fit([cb], FakeModel(), [{"loss": 1.0}], steps=1)


def test_model_checkpoint_rejects_wrong_extensions():
    with pytest.raises(ValueError, match=".weights.h5"):
        kc.ModelCheckpoint("model.keras", save_weights_only=True)
    with pytest.raises(ValueError, match=".keras"):
        kc.ModelCheckpoint("model.pt")
    with pytest.raises(ValueError, match="save_freq"):
        kc.ModelCheckpoint("model.keras", save_freq="batch")


def test_model_checkpoint_keras2_period(tmp_path):
    model = FakeModel()
    run_fit([kc.ModelCheckpoint(str(tmp_path / "m{epoch}.h5"), period=2)], model,
            [{"val_loss": 1.0}] * 5, steps=1)
    assert sorted(os.listdir(tmp_path)) == ["m2.h5", "m4.h5"]


def test_model_checkpoint_batch_frequency(tmp_path):
    model = FakeModel()
    cb = kc.ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.keras"), save_freq=3)
    run_fit([cb], model, [{"loss": 1.0}] * 2, steps=4,
            batch_logs=lambda e, s: {"loss": 1.0})
    # 8 batches in all, a save after every third: epoch 1 batch 3, epoch 2 batch 2.
    assert [final_name(p) for p in model.saved] == ["e1-b3.keras", "e2-b2.keras"]


def test_model_checkpoint_is_atomic(tmp_path):
    target = tmp_path / "best.keras"
    model = FakeModel()
    run_fit([kc.ModelCheckpoint(str(target))], model, [{"val_loss": 1.0}], steps=1)
    assert os.listdir(tmp_path) == ["best.keras"]  # the temporary file is gone
    good = target.read_bytes()
    assert os.path.dirname(model.saved[0]) == str(tmp_path)  # written beside the target
    assert final_name(model.saved[0]) == "best.keras" != os.path.basename(model.saved[0])

    class Broken(FakeModel):
        def save(self, filepath, overwrite=True):
            with open(filepath, "wb") as f:
                f.write(b"half a checkp")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_fit([kc.ModelCheckpoint(str(target))], Broken(), [{"val_loss": 0.5}], steps=1)
    assert os.listdir(tmp_path) == ["best.keras"]
    assert target.read_bytes() == good


def test_model_checkpoint_verbose_messages(tmp_path, capsys):
    cb = kc.ModelCheckpoint(str(tmp_path / "m.keras"), save_best_only=True, verbose=1)
    run_fit([cb], FakeModel(), [{"val_loss": 1.0}, {"val_loss": 2.0}], steps=1)
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss improved from None to 1.00000, saving model to" in out
    assert "Epoch 2: val_loss did not improve from 1.00000" in out


# ---------------------------------------------------------------------- CSVLogger
def _keras_csv(path, runs, **kwargs):
    for logs in runs:
        cb = keras.callbacks.CSVLogger(str(path), **kwargs)
        run_keras(cb, KerasDummyModel(), logs)
    return path.read_bytes()


def _kaffe_csv(path, runs, **kwargs):
    for logs in runs:
        run_fit([kc.CSVLogger(str(path), **kwargs)], FakeModel(), logs, steps=1)
    return path.read_bytes()


@pytest.mark.parametrize("runs,kwargs", [
    ([[{"loss": 0.5, "accuracy": 0.25, "val_loss": 0.75, "val_accuracy": 0.125},
       {"loss": 0.1234567891, "accuracy": 1 / 3, "val_loss": 0.5, "val_accuracy": 0.5}]], {}),
    ([[{"loss": 0.5, "mae": 2.0}, {"loss": 0.25, "mae": 1.0}]], {"separator": ";"}),
    ([[{"loss": 0.5, "val_loss": 0.75}], [{"loss": 0.25, "val_loss": 0.5}] * 2],
     {"append": True}),
])
def test_csv_logger_writes_what_keras_writes(tmp_path, runs, kwargs):
    want = _keras_csv(tmp_path / "keras.csv", runs, **kwargs)
    got = _kaffe_csv(tmp_path / "kaffe.csv", runs, **kwargs)
    assert got == want
    assert got.startswith(b"epoch")


def test_csv_logger_content(tmp_path):
    path = tmp_path / "log.csv"
    _kaffe_csv(path, [[{"loss": 0.5, "accuracy": 0.25}]])
    assert path.read_bytes() == b"epoch,accuracy,loss,val_accuracy,val_loss\r\n" \
                                b"0,0.25,0.5,NA,NA\r\n"


# ---------------------------------------------------------------------- TerminateOnNaN
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_terminate_on_nan_stops_at_the_bad_batch(bad, capsys):
    seen = []
    rec = kc.LambdaCallback(on_batch_end=lambda b, l: seen.append(b))
    model = FakeModel()
    ran = run_fit([kc.TerminateOnNaN(), rec], model, [{"loss": 1.0}] * 3, steps=5,
                  batch_logs=lambda e, s: {"loss": bad if (e, s) == (1, 2) else 1.0})
    assert ran == 2 and model.stop_training
    assert seen == [0, 1, 2, 3, 4, 0, 1, 2]
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_raise_error():
    with pytest.raises(RuntimeError, match="batch 1"):
        run_fit([kc.TerminateOnNaN(raise_error=True)], FakeModel(), [{}], steps=3,
                batch_logs=lambda e, s: {"loss": float("nan") if s == 1 else 0.0})


# ---------------------------------------------------------------------- LambdaCallback
def test_lambda_callback_hooks():
    events = []
    cb = kc.LambdaCallback(on_train_begin=lambda logs: events.append("begin"),
                           on_epoch_begin=lambda e, logs: events.append(f"e{e}"),
                           on_batch_end=lambda b, logs: events.append(f"b{b}:{logs['loss']}"),
                           on_epoch_end=lambda e, logs: events.append(f"end{e}:{logs['loss']}"),
                           on_train_end=lambda logs: events.append("done"))
    assert cb.needs_batch_logs
    run_fit([cb], FakeModel(), [{"loss": 9.0}] * 2, steps=2,
            batch_logs=lambda e, s: {"loss": float(s)})
    assert events == ["begin", "e0", "b0:0.0", "b1:1.0", "end0:9.0", "e1", "b0:0.0", "b1:1.0",
                      "end1:9.0", "done"]
    keras3 = kc.LambdaCallback(on_train_batch_end=lambda b, logs: events.append("k3"),
                               on_test_end=lambda logs: events.append("test"))
    assert keras3.needs_batch_logs
    with pytest.raises(TypeError, match="on_epoch_ends"):
        kc.LambdaCallback(on_epoch_ends=print)


# ---------------------------------------------------------------------- ProgbarLogger
class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def _progbar_fit(verbose, steps=4, params_steps="same", epochs=2):
    logs = [{"loss": 0.3 - 0.1 * e, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.85}
            for e in range(epochs)]
    return run_fit([kc.ProgbarLogger()], FakeModel(), logs, steps=steps, verbose=verbose,
                   batch_logs=lambda e, s: {"loss": 0.5, "accuracy": 0.8},
                   params_steps=params_steps)


def test_progbar_verbose_2_prints_one_line_per_epoch(capsys):
    _progbar_fit(verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(r"4/4 - \d+s - \d+(us|ms|s)/step - accuracy: 0\.9000 - loss: 0\.3000"
                        r" - val_accuracy: 0\.8500 - val_loss: 0\.4000", lines[1]), lines[1]
    assert lines[3].endswith("loss: 0.2000 - val_accuracy: 0.8500 - val_loss: 0.4000")


def test_progbar_verbose_1_on_a_log_file_prints_final_lines_only(capsys):
    _progbar_fit(verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert len(lines) == 4 and lines[0] == "Epoch 1/2"
    assert re.fullmatch(r"4/4 ━{20} \d+s \d+(us|ms|s)/step - accuracy: 0\.9000 - loss: 0\.3000"
                        r" - val_accuracy: 0\.8500 - val_loss: 0\.4000", lines[1]), lines[1]


def test_progbar_verbose_1_on_a_terminal_redraws_in_place(monkeypatch):
    tty = FakeTTY()
    monkeypatch.setattr("sys.stdout", tty)
    _progbar_fit(verbose=1, epochs=1)
    out = tty.getvalue()
    assert "Epoch" not in out  # one epoch: no epoch line, as Keras 3
    assert out.startswith("\r\x1b[1m1/4\x1b[0m ") and out.endswith("\n")
    assert out.count("\n") == 1
    final = out.rsplit("\r", 1)[1]
    assert "\x1b[32m" + "━" * 20 in final
    assert final.rstrip().endswith("- val_loss: 0.4000")
    assert "loss: 0.5000" in out  # the live line showed the batch logs


def test_progbar_unknown_steps_counts_batches(capsys):
    _progbar_fit(verbose=2, steps=5, params_steps=None, epochs=1)
    assert capsys.readouterr().out.startswith("5/5 - ")


def test_progbar_batch_log_interval_follows_verbose():
    for verbose, interval in [(1, 0.2), (2, math.inf), (0, math.inf)]:
        cbs = CallbackList([kc.ProgbarLogger()], FakeModel(),
                           {"epochs": 1, "steps": 1, "verbose": verbose})
        assert batch_log_interval(cbs) == interval
    cbs = CallbackList([kc.ProgbarLogger(), kc.TerminateOnNaN()], FakeModel(),
                       {"epochs": 1, "steps": 1, "verbose": 1})
    assert batch_log_interval(cbs) == 0


def test_progbar_evaluate_and_predict(capsys):
    bar = kc.ProgbarLogger()
    cbs = CallbackList([bar], FakeModel(), {"epochs": 1, "steps": 3, "verbose": 1})
    cbs.on_test_begin()
    for step in range(3):
        cbs.on_test_batch_begin(step)
        cbs.on_test_batch_end(step, {"loss": 0.5, "accuracy": 0.5})
    cbs.on_test_end({"loss": 0.25, "accuracy": 0.75})
    cbs.on_predict_begin()
    for step in range(3):
        cbs.on_predict_batch_begin(step)
        cbs.on_predict_batch_end(step, {"outputs": np.zeros(3)})
    cbs.on_predict_end()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("3/3 ━") and lines[0].endswith("- accuracy: 0.7500 - loss: 0.2500")
    assert lines[1].startswith("3/3 ━") and lines[1].endswith("/step")

    # Validation inside fit is silent.
    cbs.on_train_begin()
    cbs.on_test_begin()
    cbs.on_test_batch_end(0, {"loss": 1.0})
    cbs.on_test_end({"loss": 1.0})
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------- TensorBoard
def _events(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0,
                                                     "images": 0})
    acc.Reload()
    return acc


def _scalars(acc, tag):
    return [(e.step, pytest.approx(e.value, rel=1e-6)) for e in acc.Scalars(tag)]


def test_tensorboard_epoch_scalars(tmp_path):
    logs = [{"loss": 1.0 / (e + 1), "accuracy": 0.5 + e / 10, "val_loss": 2.0 / (e + 1),
             "val_accuracy": 0.4 + e / 10} for e in range(3)]
    model = FakeModel(learning_rate=0.01)
    tb = kc.TensorBoard(log_dir=str(tmp_path))
    run_fit([tb], model, logs, steps=2)
    assert tb._writers == {}  # closed at train end
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    train, val = _events(tmp_path / "train"), _events(tmp_path / "validation")
    assert sorted(train.Tags()["scalars"]) == ["epoch_accuracy", "epoch_learning_rate",
                                               "epoch_loss"]
    assert sorted(val.Tags()["scalars"]) == ["epoch_accuracy", "epoch_loss"]
    assert _scalars(train, "epoch_loss") == [(e, l["loss"]) for e, l in enumerate(logs)]
    assert _scalars(train, "epoch_accuracy") == [(e, l["accuracy"]) for e, l in enumerate(logs)]
    assert _scalars(val, "epoch_loss") == [(e, l["val_loss"]) for e, l in enumerate(logs)]
    assert _scalars(val, "epoch_accuracy") == [(e, l["val_accuracy"])
                                               for e, l in enumerate(logs)]
    assert _scalars(train, "epoch_learning_rate") == [(e, 0.01) for e in range(3)]
    assert train.Tags()["histograms"] == []


def test_tensorboard_batch_scalars_histograms_and_images(tmp_path):
    tb = kc.TensorBoard(log_dir=str(tmp_path), update_freq=2, histogram_freq=2,
                        write_images=True, write_steps_per_second=True)
    run_fit([tb], FakeModel(), [{"loss": 1.0}] * 3, steps=3,
            batch_logs=lambda e, s: {"loss": 10.0 * e + s})
    train = _events(tmp_path / "train")
    # Batches 1..9 across the run; every second one is written with its own logs.
    assert _scalars(train, "batch_loss") == [(2, 1.0), (4, 10.0), (6, 12.0), (8, 21.0)]
    assert [e.step for e in train.Scalars("batch_steps_per_second")] == [2, 4, 6, 8]
    assert [e.step for e in train.Scalars("epoch_steps_per_second")] == [0, 1, 2]
    assert train.Scalars("epoch_steps_per_second")[0].value > 0
    tags = train.Tags()["histograms"]
    assert {"dense/weight/histogram", "dense/bias/histogram", "norm/running_mean/histogram"} \
        <= set(tags)
    assert [e.step for e in train.Histograms("dense/weight/histogram")] == [0, 2]
    assert "dense/weight/image" in train.Tags()["images"]


def test_tensorboard_writes_nothing_off_rank_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    tb = kc.TensorBoard(log_dir=str(tmp_path / "tb"), update_freq=1, histogram_freq=1)
    run_fit([tb], FakeModel(), [{"loss": 1.0, "val_loss": 1.0}] * 2, steps=2,
            batch_logs=lambda e, s: {"loss": 1.0})
    assert not (tmp_path / "tb").exists()


def test_tensorboard_keras2_arguments_and_validation(tmp_path, caplog):
    kc.TensorBoard(str(tmp_path), batch_size=32, write_grads=False, write_graph=True)
    with caplog.at_level(logging.WARNING):
        kc.TensorBoard(str(tmp_path), profile_batch=2)
    assert "profile_batch" in caplog.text
    with pytest.raises(ValueError, match="update_freq"):
        kc.TensorBoard(str(tmp_path), update_freq="step")
    with pytest.raises(TypeError, match="nonsense"):
        kc.TensorBoard(str(tmp_path), nonsense=1)
