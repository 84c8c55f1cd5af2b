"""Keras's utilities beside the engine: TensorBoard under ``kaffe run``, NumPy integers as layer
arguments, ``*_dataset_from_directory``, ``pad_sequences``, ``Progbar``, ``clone_model``, the
scikit-learn wrappers and Keras 2's ``predict_classes``."""
import os
import subprocess
import sys

import numpy as np
import pytest

import kaffe
from kaffe import layers


def kaffe_run(path, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", KERAS_BACKEND="torch")
    return subprocess.run([sys.executable, "-m", "kaffe.cli.main", "run", str(path)],
                          capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


# -- bugs --------------------------------------------------------------------------------------

def test_tensorboard_under_kaffe_run_writes_real_event_files(tmp_path):
    script = tmp_path / "tb.py"
    script.write_text(
        "import numpy as np\n"
        "import tensorflow as tf\n"  # the shim is in sys.modules before tensorboard looks
        "from keras.models import Sequential\n"
        "from keras.layers import Dense\n"
        "from keras.callbacks import TensorBoard\n"
        "m = Sequential([Dense(2, input_shape=(3,))])\n"
        "m.compile('sgd', 'mse')\n"
        "m.fit(np.ones((8, 3)), np.ones((8, 2)), epochs=2, verbose=0,\n"
        "      validation_split=0.25, callbacks=[TensorBoard(log_dir='logs')])\n")
    result = kaffe_run(script, tmp_path)
    assert result.returncode == 0, result.stderr
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for run in ("train", "validation"):
        acc = EventAccumulator(str(tmp_path / "logs" / run))
        acc.Reload()
        tags = acc.Tags()["scalars"] + acc.Tags().get("tensors", [])
        assert "epoch_loss" in tags, (run, acc.Tags())


def test_numpy_integers_are_accepted_wherever_a_layer_takes_ints():
    pool = layers.MaxPooling2D(pool_size=(np.int64(2), np.int64(2)), strides=np.int32(2))
    assert pool.get_config()["pool_size"] == (2, 2)
    assert type(pool.get_config()["strides"][0]) is int
    model = kaffe.Sequential([
        kaffe.Input((8, 8, 1)),
        layers.Conv2D(np.int64(4), (np.int64(3), np.int64(3)), padding="same"),
        pool,
        layers.Reshape((np.int64(16), np.int64(4))),
        layers.LSTM(np.int16(3), return_sequences=False),
        layers.Dense(np.uint8(5)),
        layers.Dropout(np.float32(0.5)),
    ])
    assert model.output_shape == (None, 5)
    emb = layers.Embedding(np.int64(10), np.int64(4))
    import torch
    assert tuple(emb(torch.tensor([[1, 2]])).shape) == (1, 2, 4)
