"""One process of the data-parallel jobs tests/test_distribute.py starts (not a test module).

    python distribute_worker.py MODE OUT_DIR [RANK WORLD INIT_METHOD]

MODE ``main``: fits the shared model on arrays (shuffled, an uneven last batch) with
ModelCheckpoint/TensorBoard/CSVLogger, evaluates, then fits on a generator, a Sequence, a
torch Dataset and a DataLoader, recording the id of every sample this rank trained on; then a
model with a loss-less output, train_on_batch/test_on_batch, and the gradient helpers. Writes
``rank<r>.npz`` (weights) and ``rank<r>.json`` (the rest). MODE ``kill``: rank 1 kills itself
mid-epoch; rank 0 writes the error it got.
Started by torchrun (env), or with RANK WORLD INIT_METHOD for the explicit DataParallel form.
"""
import json
import os
import signal
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np  # noqa: E402
import torch  # noqa: E402

import kaffe  # noqa: E402
from kaffe import distribute  # noqa: E402

N, FEATURES, CLASSES, BATCH = 49, 6, 3, 16  # 16+16+16+1: the last batch leaves rank 1 empty


def data():
    """Features whose first column is the sample id / N, so a step's ids can be read back."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    x[:, 0] = np.arange(N) / N
    y = np.eye(CLASSES, dtype="float32")[rng.randint(0, CLASSES, size=N)]
    return x, y


def build(seed=0):
    torch.manual_seed(seed)
    model = kaffe.Sequential([kaffe.layers.Dense(8, activation="relu", input_shape=(FEATURES,)),
                              kaffe.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer=kaffe.optimizers.SGD(learning_rate=0.1, momentum=0.9),
                  loss="categorical_crossentropy",
                  metrics=["accuracy", kaffe.metrics.AUC(name="auc")])  # sums of counts
    return model


def two_heads():
    torch.manual_seed(2)
    inp = kaffe.Input((FEATURES,))
    hidden = kaffe.layers.Dense(4, activation="relu")(inp)
    model = kaffe.Model(inp, [kaffe.layers.Dense(1, name="a")(hidden),
                              kaffe.layers.Dense(1, name="b")(hidden)])
    model.compile(optimizer="sgd", loss=["mse", None])
    return model


def record_ids(model, seen):
    """Wrap the step so every sample id this rank trains on lands in ``seen``."""
    step = model._general_train_step

    def recording(xs, ys, sws, share=None):
        if share is None or share.local:
            seen.extend(int(v) for v in (xs[0][:, 0] * N).round().tolist())
        return step(xs, ys, sws, share)
    model._general_train_step = recording


class Batches(kaffe.utils.Sequence):
    def __init__(self, x, y, size):
        self.x, self.y, self.size = x, y, size

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        sl = slice(i * self.size, (i + 1) * self.size)
        return self.x[sl], self.y[sl]


def generator(x, y, size):
    order = np.random.permutation(len(x))  # numpy RNG: fit shares rank 0's state
    for i in range(0, len(x), size):
        pick = order[i:i + size]
        yield x[pick], y[pick]


def main_mode(out, strategy):
    x, y = data()
    model = build()
    seen = {}
    seen["arrays"] = []
    record_ids(model, seen["arrays"])
    callbacks = [kaffe.callbacks.ModelCheckpoint(os.path.join(out, "ckpt.weights.h5"),
                                                 save_weights_only=True),
                 kaffe.callbacks.TensorBoard(os.path.join(out, "tb")),
                 kaffe.callbacks.CSVLogger(os.path.join(out, "log.csv"))]
    torch.manual_seed(1)
    history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0,
                        callbacks=callbacks, validation_data=(x[:21], y[:21]),
                        distribute=strategy)
    weights = model.get_weights()
    evaluated = model.evaluate(x, y, batch_size=10, verbose=0, distribute=strategy)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    sources = {
        "generator": dict(x=generator(x, y, 10), steps_per_epoch=5),
        "sequence": dict(x=Batches(x, y, 10), shuffle=True),
        "dataset": dict(x=ds, batch_size=10, shuffle=True),
        "loader": dict(x=torch.utils.data.DataLoader(ds, batch_size=10, shuffle=True)),
    }
    for name, kwargs in sources.items():
        seen[name] = []
        other = build()
        record_ids(other, seen[name])
        other.fit(epochs=1, verbose=0, distribute=strategy, **kwargs)
    two = two_heads()  # one head has no loss: its weights get no gradient
    torch.manual_seed(3)
    two.fit(x, [x[:, :1], x[:, :1]], batch_size=8, epochs=1, verbose=0, distribute=strategy)
    single = build()  # train_on_batch / test_on_batch: the batch is global too
    on_batch = {"train": single.train_on_batch(x[:15], y[:15]),
                "test": single.test_on_batch(x[15:30], y[15:30]),
                "weights": [w.tolist() for w in single.get_weights()]}
    rank = distribute.rank()
    # the helpers for loops that are not fit (the Caffe solver): rank-dependent values
    params = [torch.nn.Parameter(torch.full((3,), float(rank))), torch.nn.Parameter(torch.ones(2))]
    params[0].grad = torch.full((3,), float(rank + 1))
    distribute.average_gradients(params)
    distribute.broadcast_parameters(params)
    helpers = {"grads": [p.grad.tolist() for p in params], "values": params[0].tolist()}
    np.savez(os.path.join(out, f"rank{rank}.npz"), *weights)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"history": history.history, "evaluate": evaluated, "seen": seen,
                   "world": distribute.world_size(), "helpers": helpers,
                   "two_heads": [w.tolist() for w in two.get_weights()],
                   "on_batch": on_batch}, f)


class KillAt(kaffe.callbacks.Callback):
    def __init__(self, out):
        super().__init__()
        self.out = out

    def on_train_batch_begin(self, batch, logs=None):
        if distribute.rank() == 1 and batch == 2:
            with open(os.path.join(self.out, "killed_at"), "w") as f:
                f.write(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)


def kill_mode(out, strategy):
    x, y = data()
    model = build()
    try:
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[KillAt(out)],
                  distribute=strategy)
        outcome = {"error": None}
    except Exception as err:
        outcome = {"error": f"{type(err).__name__}: {err}"}
    outcome["failed_at"] = time.time()
    with open(os.path.join(out, f"kill{distribute.rank()}.json"), "w") as f:
        json.dump(outcome, f)


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    strategy = None  # under torchrun: the environment says everything
    if len(sys.argv) > 3:
        strategy = distribute.DataParallel(rank=int(sys.argv[3]), world_size=int(sys.argv[4]),
                                           init_method=sys.argv[5], timeout=30)
    {"main": main_mode, "kill": kill_mode}[mode](out, strategy)
