"""Datasets read from Keras's download cache: small files written here in Keras's own formats
(CIFAR's pickled python batches, npz files with object arrays), read by kaffe and by Keras 3's
loaders (their ``get_file`` pointed at the same file), compared; plus ``get_file`` and the bad
inputs (missing, truncated, unsafe pickle)."""
import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from kaffe.datasets import (boston_housing, cifar10, cifar100, fashion_mnist, imdb, mnist, reuters,
                            safe_pickle)
from kaffe.utils import file_utils, get_file

keras = pytest.importorskip("keras")


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path))
    return home


def ragged(rng, n, vocab=60):
    rows = np.empty(n, dtype=object)
    for i in range(n):
        rows[i] = [int(w) for w in rng.integers(1, vocab, size=rng.integers(1, 12))]
    return rows


def as_lists(xs):
    return [list(map(int, x)) for x in xs]


def keras_loader(module_name, monkeypatch, path):
    """Keras 3's dataset module, its ``get_file`` answering ``path``."""
    import importlib
    module = importlib.import_module(f"keras.src.datasets.{module_name}")
    monkeypatch.setattr(module, "get_file", lambda *a, **k: str(path))
    return module


# -- CIFAR ---------------------------------------------------------------------------------------

def cifar_batch(rng, n, label_keys):
    """A batch dict as CIFAR's python files hold it (bytes keys, uint8 (n, 3072) data)."""
    batch = {b"batch_label": b"testing batch", b"data": rng.integers(0, 256, (n, 3072), np.uint8),
             b"filenames": [b"img%d.png" % i for i in range(n)]}
    for key, classes in label_keys.items():
        batch[key.encode()] = [int(c) for c in rng.integers(0, classes, n)]
    return batch


def write_cifar(folder, files):
    folder.mkdir(parents=True)
    for name, batch in files.items():
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


def tar_folder(folder, archive):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


def test_cifar10_from_the_cached_archive_equals_keras(keras_home, tmp_path):
    rng = np.random.default_rng(0)
    files = {f"data_batch_{i}": cifar_batch(rng, 3, {"labels": 10}) for i in range(1, 6)}
    files["test_batch"] = cifar_batch(rng, 4, {"labels": 10})
    made = tmp_path / "made" / "cifar-10-batches-py"
    write_cifar(made, files)
    tar_folder(made, keras_home / "datasets" / "cifar-10-python.tar.gz")
    (x, y), (xt, yt) = cifar10.load_data()
    assert x.shape == (15, 32, 32, 3) and y.shape == (15, 1) and xt.shape == (4, 32, 32, 3)
    assert (keras_home / "datasets" / "cifar-10-batches-py" / "test_batch").exists()
    # Keras's cifar10.load_data wants 10,000 images a batch: its batch reader is the oracle,
    # assembled as its load_data does (concatenate, labels (N, 1) uint8, channels last).
    from keras.src.datasets.cifar import load_batch
    parts = [load_batch(str(made / name)) for name in files]
    kx = np.concatenate([p[0] for p in parts[:5]]).transpose(0, 2, 3, 1)
    ky = np.array([v for p in parts[:5] for v in p[1]], np.uint8).reshape(-1, 1)
    np.testing.assert_array_equal(x, kx)
    np.testing.assert_array_equal(y, ky)
    np.testing.assert_array_equal(xt, parts[5][0].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(yt[:, 0], parts[5][1])
    assert x.dtype == np.uint8 and y.dtype == np.uint8 and yt.dtype == np.uint8


def test_cifar100_in_keras3_layout_both_label_modes(keras_home, monkeypatch):
    rng = np.random.default_rng(1)
    labels = {"fine_labels": 100, "coarse_labels": 20}
    root = keras_home / "datasets" / "cifar-100-python-target"
    write_cifar(root / "cifar-100-python", {"train": cifar_batch(rng, 5, labels),
                                            "test": cifar_batch(rng, 2, labels)})
    keras_cifar100 = keras_loader("cifar100", monkeypatch, root)
    for mode in ("fine", "coarse"):
        (x, y), (xt, yt) = cifar100.load_data(label_mode=mode)
        (kx, ky), (kxt, kyt) = keras_cifar100.load_data(label_mode=mode)
        for ours, theirs in ((x, kx), (y, ky), (xt, kxt), (yt, kyt)):
            np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="label_mode='middle'"):
        cifar100.load_data(label_mode="middle")


# -- npz datasets --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"num_words": 30, "skip_top": 3, "maxlen": 9, "seed": 4},
                                    {"start_char": None, "oov_char": None, "index_from": 0,
                                     "test_split": 0.5}])
def test_reuters_equals_keras(keras_home, monkeypatch, kwargs):
    rng = np.random.default_rng(2)
    path = keras_home / "datasets" / "reuters.npz"
    np.savez(path, x=ragged(rng, 40), y=rng.integers(0, 46, 40))
    (x, y), (xt, yt) = reuters.load_data(**kwargs)
    (kx, ky), (kxt, kyt) = keras_loader("reuters", monkeypatch, path).load_data(**kwargs)
    assert as_lists(x) == as_lists(kx) and as_lists(xt) == as_lists(kxt)
    np.testing.assert_array_equal(y, ky)
    np.testing.assert_array_equal(yt, kyt)


def test_reuters_word_index(keras_home):
    (keras_home / "datasets" / "reuters_word_index.json").write_text('{"the": 1, "oil": 7}')
    assert reuters.get_word_index() == {"the": 1, "oil": 7}


@pytest.mark.parametrize("kwargs", [{}, {"num_words": 25, "maxlen": 8, "seed": 7}])
def test_real_imdb_npz_from_the_cache_equals_keras(keras_home, monkeypatch, kwargs):
    rng = np.random.default_rng(3)
    path = keras_home / "datasets" / "imdb.npz"
    np.savez(path, x_train=ragged(rng, 30), y_train=rng.integers(0, 2, 30),
             x_test=ragged(rng, 20), y_test=rng.integers(0, 2, 20))
    (keras_home / "datasets" / "imdb_word_index.json").write_text('{"film": 1}')
    (x, y), (xt, yt) = imdb.load_data(**kwargs)
    (kx, ky), (kxt, kyt) = keras_loader("imdb", monkeypatch, path).load_data(**kwargs)
    assert as_lists(x) == as_lists(kx) and as_lists(xt) == as_lists(kxt)
    np.testing.assert_array_equal(y, ky)
    np.testing.assert_array_equal(yt, kyt)
    assert imdb.get_word_index() == {"film": 1}


def test_boston_housing_equals_keras(keras_home, monkeypatch):
    rng = np.random.default_rng(4)
    path = keras_home / "datasets" / "boston_housing.npz"
    np.savez(path, x=rng.normal(size=(25, 13)), y=rng.normal(size=25))
    for kwargs in ({}, {"test_split": 0.3, "seed": 1}):
        ours = boston_housing.load_data(**kwargs)
        theirs = keras_loader("boston_housing", monkeypatch, path).load_data(**kwargs)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])


def test_mnist_and_fashion_mnist_from_the_keras_cache(keras_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFFE_DATA_HOME", raising=False)
    monkeypatch.setattr(mnist._home, "find_dataset_dir", lambda *a, **k: (None, []))
    rng = np.random.default_rng(5)
    arrays = {"x_train": rng.integers(0, 256, (6, 28, 28), np.uint8),
              "y_train": rng.integers(0, 10, 6).astype(np.uint8),
              "x_test": rng.integers(0, 256, (2, 28, 28), np.uint8),
              "y_test": rng.integers(0, 10, 2).astype(np.uint8)}
    np.savez(keras_home / "datasets" / "mnist.npz", **arrays)
    (x, y), (xt, yt) = mnist.load_data()
    np.testing.assert_array_equal(x, arrays["x_train"])
    np.testing.assert_array_equal(yt, arrays["y_test"])
    (x2, _), _ = mnist.load_data(path="mnist.npz")  # Keras's default name, found in the cache
    np.testing.assert_array_equal(x2, arrays["x_train"])

    folder = keras_home / "datasets" / "fashion-mnist"
    folder.mkdir()
    for split, n in (("train", 6), ("t10k", 2)):
        images = rng.integers(0, 256, (n, 28, 28), np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as f:
            f.write(np.array([0, 0, 8, 3], np.uint8).tobytes()
                    + np.array([n, 28, 28], ">i4").tobytes() + images.tobytes())
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(np.array([0, 0, 8, 1], np.uint8).tobytes() + np.array([n], ">i4").tobytes()
                    + labels.tobytes())
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(fashion_mnist._home, "find_dataset_dir",
                        lambda name, has, system_dirs=(): (
                            next((d for d in system_dirs if os.path.isdir(d) and has(d)), None),
                            list(system_dirs)))
    (fx, fy), (fxt, fyt) = fashion_mnist.load_data()
    assert fx.shape == (6, 28, 28) and fyt.shape == (2,)
    from keras.src.datasets import fashion_mnist as keras_fashion
    monkeypatch.setattr(keras_fashion, "get_file", lambda fname, **k: str(folder / fname))
    (kx, ky), (kxt, kyt) = keras_fashion.load_data()
    np.testing.assert_array_equal(fx, kx)
    np.testing.assert_array_equal(fyt, kyt)


# -- get_file ------------------------------------------------------------------------------------

def test_get_file_returns_cached_files_and_extracts_as_keras2(keras_home, tmp_path):
    datadir = keras_home / "datasets"
    (datadir / "words.txt").write_text("hello")
    assert get_file("words.txt", origin="https://example.invalid/words.txt") == str(
        datadir / "words.txt")
    assert get_file(origin="https://example.invalid/words.txt?x=1") == str(datadir / "words.txt")
    md5 = file_utils.hash_file(datadir / "words.txt", "md5")
    assert get_file("words.txt", "https://example.invalid/w", md5_hash=md5)
    sha = file_utils.hash_file(datadir / "words.txt")
    assert file_utils.validate_file(datadir / "words.txt", sha)

    made = tmp_path / "made" / "babi"
    made.mkdir(parents=True)
    (made / "qa1.txt").write_text("1 Mary moved.")
    tar_folder(made, datadir / "babi.tar.gz")
    assert get_file("babi", "https://example.invalid/babi.tar.gz", untar=True) == str(
        datadir / "babi")
    assert (datadir / "babi" / "qa1.txt").read_text() == "1 Mary moved."

    sub = keras_home / "models"
    sub.mkdir()
    tar_folder(made, sub / "bundle.tar.gz")
    path = get_file("bundle.tar.gz", "https://example.invalid/bundle.tar.gz", extract=True,
                    cache_subdir="models")
    assert path == str(sub / "bundle.tar.gz") and (sub / "babi" / "qa1.txt").exists()


def test_get_file_missing_names_url_and_exact_path(keras_home):
    with pytest.raises(FileNotFoundError) as e:
        get_file("nietzsche.txt", origin="https://s3.amazonaws.com/text-datasets/nietzsche.txt")
    message = str(e.value)
    assert "https://s3.amazonaws.com/text-datasets/nietzsche.txt" in message
    assert str(keras_home / "datasets" / "nietzsche.txt") in message
    with pytest.raises(FileNotFoundError, match=r"11,490,434 bytes"):  # a Keras dataset URL
        get_file("mnist.npz", "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
                              "mnist.npz")


def test_missing_dataset_names_url_path_and_size(keras_home):
    with pytest.raises(FileNotFoundError) as e:
        reuters.load_data()
    message = str(e.value)
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/reuters.npz" in message
    assert str(keras_home / "datasets" / "reuters.npz") in message and "2,110,848 bytes" in message
    with pytest.raises(FileNotFoundError, match=r"cifar-10-python\.tar\.gz.*170,498,071 bytes"):
        cifar10.load_data()


def test_hash_mismatch_is_named(keras_home):
    (keras_home / "datasets" / "words.txt").write_text("hello")
    with pytest.raises(file_utils.CorruptCachedFileError) as e:
        get_file("words.txt", "https://example.invalid/words.txt", file_hash="0" * 64)
    assert "words.txt has sha256 2cf24dba" in str(e.value) and "0" * 64 in str(e.value)


def test_truncated_cached_file_is_named_with_its_hash(keras_home):
    rng = np.random.default_rng(6)
    path = keras_home / "datasets" / "reuters.npz"
    np.savez(path, x=ragged(rng, 40), y=rng.integers(0, 46, 40))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(file_utils.CorruptCachedFileError) as e:
        reuters.load_data()
    message = str(e.value)
    assert str(path) in message and "d6586e694ee5" in message and "truncated" in message
    archive = keras_home / "datasets" / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 50)
    with pytest.raises(file_utils.CorruptCachedFileError, match="cifar-10-python.tar.gz"):
        cifar10.load_data()


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_with_code_is_refused_naming_it(keras_home, tmp_path):
    rng = np.random.default_rng(7)
    x = ragged(rng, 4)
    x[2] = Evil()
    path = keras_home / "datasets" / "reuters.npz"
    np.savez(path, x=x, y=np.arange(4))
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"reuters.npz:x.npy tried to load "
                                                            r"(posix|os|nt)\.system"):
        reuters.load_data()
    folder = keras_home / "datasets" / "cifar-10-batches-py"
    write_cifar(folder, {"data_batch_1": {b"data": Evil()}})
    with pytest.raises(safe_pickle.UnsafePickleError, match=r"data_batch_1 tried to load"):
        cifar10.load_data()
    buffer = io.BytesIO(pickle.dumps({"a": [1, 2.5, "s", b"b", (None, True)],
                                      "n": np.arange(3, dtype=np.int16), "f": np.float32(2)}))
    plain = safe_pickle.PlainDataUnpickler(buffer).load()
    assert plain["a"] == [1, 2.5, "s", b"b", (None, True)] and plain["n"].dtype == np.int16
    assert plain["f"] == 2.0
