"""kaffe.utils: to_categorical / normalize against keras.utils, Sequence/PyDataset, get_file."""
import doctest
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import kaffe.utils  # noqa: E402
from kaffe.utils import PyDataset, Sequence, get_file, normalize, to_categorical  # noqa: E402
from kaffe.utils import np_utils  # noqa: E402

rng = np.random.default_rng(0)


@pytest.mark.parametrize("labels, num_classes", [
    (rng.integers(0, 10, 1000), None),
    (rng.integers(0, 10, (1000, 1)), None),
    (rng.integers(0, 10, (1000, 1)), 12),
    (rng.integers(0, 4, (6, 5)), None),
    (rng.integers(0, 3, (2, 3, 1)), 3),
    (rng.integers(0, 5, (3, 4, 2)), 7),
    (rng.integers(0, 3, (1,)), 3),
    (np.array(2), 4),
    ([0, 1, 2, 3], None),
    ([[1], [0]], 2),
    (np.array([5, 0, 4, 1, 9], dtype=np.uint8), 10),
])
def test_to_categorical_matches_keras(labels, num_classes):
    ours = to_categorical(labels, num_classes)
    theirs = keras.utils.to_categorical(labels, num_classes)
    assert ours.dtype == np.float32
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_squeezes_trailing_one():
    assert to_categorical(np.zeros((1000, 1), np.uint8) + 9).shape == (1000, 10)
    assert to_categorical(rng.integers(0, 10, (1000, 1)), 10).shape == (1000, 10)


def test_to_categorical_dtype_and_tensor():
    assert to_categorical([1, 0], dtype="int64").dtype == np.int64
    out = to_categorical(torch.tensor([[2], [0]]), 3)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_to_categorical_errors():
    with pytest.raises(ValueError, match=r"labels in \[0, 3\), received label 3"):
        to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="received label -1"):
        to_categorical([0, -1])
    with pytest.raises(ValueError, match="integer class labels"):
        to_categorical([0.5, 1.0])
    with pytest.raises(ValueError, match="pass num_classes"):
        to_categorical([])
    assert to_categorical([], num_classes=4).shape == (0, 4)
    np.testing.assert_array_equal(to_categorical([1.0, 0.0]), [[0, 1], [1, 0]])


@pytest.mark.parametrize("axis, order", [(-1, 2), (1, 1), (-1, np.inf), (1, 3)])
def test_normalize_matches_keras(axis, order):
    x = rng.normal(size=(5, 4))
    x[2] = 0.0
    np.testing.assert_allclose(normalize(x, axis, order), keras.utils.normalize(x, axis, order))


@pytest.mark.parametrize("order", [1, 2])
def test_normalize_axis_0(order):
    # Keras 3.15 turns axis=0 into -1 (`axis or -1`) and fails to broadcast; Keras 2 did this:
    x = rng.normal(size=(5, 4))
    x[:, 1] = 0.0
    norm = np.linalg.norm(x, order, axis=0)
    expected = x / np.where(norm == 0, 1, norm)[None, :]
    np.testing.assert_allclose(normalize(x, axis=0, order=order), expected)
    assert np.all(normalize(x, axis=0)[:, 1] == 0)


def test_normalize_3d_and_tensor():
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_allclose(normalize(x, axis=1), keras.utils.normalize(x, axis=1), rtol=1e-6)
    t = normalize(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    assert torch.allclose(t, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))


def test_docstring_examples_run():
    result = doctest.testmod(np_utils, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 2 and result.failed == 0


class Batches(Sequence):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, idx):
        lo = idx * self.batch_size
        return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]

    def on_epoch_end(self):
        self.epochs_ended += 1


class Keras2Style(Sequence):  # never calls super().__init__(), as Keras 2 code often does
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        return np.full((2, 1), idx), np.zeros(2), np.ones(2)


def test_sequence_batches():
    x, y = np.arange(10).reshape(10, 1), np.arange(10) % 2
    data = Batches(x, y, batch_size=4, workers=2)
    assert len(data) == 3 and data.num_batches == 3 and data.workers == 2
    batches = list(data)
    assert [len(bx) for bx, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([bx for bx, _ in batches]), x)
    data.on_epoch_begin()
    data.on_epoch_end()
    assert data.epochs_ended == 1


def test_sequence_without_super_init():
    data = Keras2Style(3)
    assert data.workers == 1 and data.use_multiprocessing is False and data.max_queue_size == 10
    assert len(list(data)) == 3 and len(data[0]) == 3


def test_pydataset_name_and_keras_surface():
    assert PyDataset is Sequence is kaffe.utils.Sequence
    public = {n for n in dir(keras.utils.PyDataset) if not n.startswith("_")}
    assert public <= set(dir(PyDataset))


def test_base_class_methods_are_abstract():
    data = PyDataset()
    with pytest.raises(NotImplementedError, match="__len__"):
        len(data)
    with pytest.raises(NotImplementedError, match="__getitem__"):
        data[0]
    with pytest.raises(ValueError, match="workers=0"):
        PyDataset(workers=0)


def test_endless_dataset_via_num_batches():
    class Endless(PyDataset):
        num_batches = None

        def __getitem__(self, idx):
            return idx, idx

    items = iter(Endless())
    assert [next(items)[0] for _ in range(5)] == [0, 1, 2, 3, 4]


def test_get_file_refuses_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="kaffe cannot download.*local path"):
        get_file("mnist.npz", origin="https://example.invalid/mnist.npz")
    cached = tmp_path / "cache" / "datasets" / "words.txt"
    cached.parent.mkdir(parents=True)
    cached.write_text("hello")
    assert get_file("words.txt", origin="https://example.invalid/words.txt",
                    cache_dir=str(tmp_path / "cache")) == str(cached)


def test_public_names():
    assert set(kaffe.utils.__all__) == {"to_categorical", "normalize", "Sequence", "PyDataset",
                                        "get_file", "plot_model", "model_to_dot", "plot_history",
                                        "set_random_seed", "image_dataset_from_directory",
                                        "text_dataset_from_directory",
                                        "timeseries_dataset_from_array", "pad_sequences",
                                        "Progbar", "load_img", "img_to_array", "array_to_img",
                                        "save_img", "clone_model"}
