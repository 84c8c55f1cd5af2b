"""kaffe.datasets: MNIST / Fashion-MNIST loading from IDX files, search order, bundled sample."""
import gzip
import logging
import os

import numpy as np
import pytest

from kaffe.datasets import _home, _idx, fashion_mnist, mnist

KERAS_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,),
                "x_test": (10000, 28, 28), "y_test": (10000,)}


@pytest.fixture(scope="module")
def full_dir():
    """Folder of the real MNIST IDX files (shared/data/mnist next to the repo), else skip."""
    folder, _ = _home.find_dataset_dir("mnist", _idx.has_split_files)
    if folder is None:
        pytest.skip("full MNIST IDX files not found (shared/data/mnist or $KAFFE_DATA_HOME/mnist)")
    return folder


@pytest.fixture(scope="module")
def full(full_dir):
    return mnist.load_data(path=full_dir)


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """Hide every default data location: empty KAFFE_DATA_HOME, cwd and package dir in tmp_path."""
    home = tmp_path / "data_home"
    home.mkdir()
    monkeypatch.setenv("KAFFE_DATA_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_home, "_PACKAGE_DIR", str(tmp_path / "pkg"))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIR", str(tmp_path / "usr_share_fashion"))
    return home


def write_idx(path, array, dtype_code=0x08, compress=None):
    """Encode ``array`` as IDX (big-endian) at ``path``; gzip when the name ends in .gz."""
    array = np.asarray(array)
    header = bytes([0, 0, dtype_code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    big = array.astype(_idx.IDX_DTYPES[dtype_code])
    raw = header + big.tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if compress else raw)
    return raw


def write_split(folder, n_train=5, n_test=3, gz=True, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for key, stem in _idx.SPLIT_FILES.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arrays[key])
    return arrays


# --- the real MNIST -------------------------------------------------------------------------

def test_first_train_labels_are_5_0_4_1_9(full):
    (_, y_train), _ = full
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]


def test_shapes_and_dtypes_match_keras(full):
    (x_train, y_train), (x_test, y_test) = full
    got = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, array in got.items():
        assert array.shape == KERAS_SHAPES[key], key
        assert array.dtype == np.uint8, key
    assert set(np.unique(y_train)) == set(range(10))
    assert x_train.max() == 255 and x_train.min() == 0


def test_pixels_match_independent_decode(full, full_dir):
    (x_train, y_train), (x_test, _) = full
    with gzip.open(os.path.join(full_dir, "train-images-idx3-ubyte.gz"), "rb") as f:
        pixels = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(full_dir, "train-labels-idx1-ubyte.gz"), "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    with gzip.open(os.path.join(full_dir, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        test_pixels = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    for i in (0, 1, 12345, 59999):
        assert int(x_train[i].sum()) == int(pixels[i].sum(dtype=np.int64))
    assert int(x_test[9999].sum()) == int(test_pixels[9999].sum(dtype=np.int64))
    np.testing.assert_array_equal(y_train, labels)


def test_default_search_finds_full_set(full_dir, monkeypatch):
    monkeypatch.delenv("KAFFE_DATA_HOME", raising=False)
    if _home.find_dataset_dir("mnist", _idx.has_split_files)[0] is None:
        pytest.skip("full MNIST only reachable through $KAFFE_DATA_HOME")
    (x_train, _), (x_test, _) = mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)


def test_bundled_sample_is_head_of_full_set(full):
    (x_train, y_train), (x_test, y_test) = full
    assert os.path.getsize(mnist.SAMPLE_FILE) < 2 * 1024 * 1024
    (sx_train, sy_train), (sx_test, sy_test) = _idx.load_split_npz(mnist.SAMPLE_FILE)
    assert sx_train.shape == (6000, 28, 28) and sx_test.shape == (1000, 28, 28)
    assert sx_train.dtype == np.uint8 and sy_train.dtype == np.uint8
    np.testing.assert_array_equal(sx_train, x_train[:6000])
    np.testing.assert_array_equal(sy_train, y_train[:6000])
    np.testing.assert_array_equal(sx_test, x_test[:1000])
    np.testing.assert_array_equal(sy_test, y_test[:1000])


# --- search order and sources ---------------------------------------------------------------

def test_falls_back_to_sample_with_warning(nowhere, caplog):
    with caplog.at_level(logging.WARNING, logger="kaffe.datasets.mnist"):
        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert x_train.shape == (6000, 28, 28) and y_test.shape == (1000,)
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]
    text = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "sample" in text and "KAFFE_DATA_HOME" in text and "path=" in text


def test_kaffe_data_home(nowhere):
    arrays = write_split(nowhere / "mnist", gz=False)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_upward_search_for_shared_data(nowhere, tmp_path, monkeypatch):
    arrays = write_split(tmp_path / "shared" / "data" / "mnist")
    repo = tmp_path / "main" / "tests"
    repo.mkdir(parents=True)
    monkeypatch.chdir(repo)
    (_, y_train), _ = mnist.load_data()
    np.testing.assert_array_equal(y_train, arrays["y_train"])


def test_path_folder_and_keras_npz(tmp_path):
    arrays = write_split(tmp_path / "idx")
    (x_train, _), _ = mnist.load_data(path=tmp_path / "idx")
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.savez(tmp_path / "mnist.npz", **arrays)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=str(tmp_path / "mnist.npz"))
    np.testing.assert_array_equal(x_test, arrays["x_test"])


def test_npz_missing_key_and_pickles_rejected(tmp_path):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="lacks the key"):
        mnist.load_data(path=tmp_path / "bad.npz")
    objects = np.array([None, 1], dtype=object)
    np.savez(tmp_path / "pickled.npz", **{key: objects for key in _idx.NPZ_KEYS})
    with pytest.raises(ValueError, match="allow_pickle"):
        mnist.load_data(path=tmp_path / "pickled.npz")


def test_missing_explicit_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot download"):
        mnist.load_data(path=tmp_path / "nope" / "mnist.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mnist.load_data(path=tmp_path / "empty")


def test_keras_default_name_falls_back_to_search(nowhere):
    arrays = write_split(nowhere / "mnist")
    (_, y_train), _ = mnist.load_data(path="mnist.npz")  # Keras's default: a cache file name
    np.testing.assert_array_equal(y_train, arrays["y_train"])


# --- the IDX reader -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"])
def test_truncated_idx_names_file_and_sizes(tmp_path, name):
    path = tmp_path / name
    raw = write_idx(path, np.zeros((10, 28, 28), np.uint8), compress=False)
    cut = raw[:16 + 100]
    path.write_bytes(gzip.compress(cut) if name.endswith(".gz") else cut)
    with pytest.raises(ValueError, match=r"truncated: expected 7856 bytes .* got 116") as info:
        _idx.read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 10, 5000))
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ValueError, match=r"truncated \(its gzip stream ends early\): expected 5008 "
                       r"bytes for shape \(5000,\), got \d+") as info:
        _idx.read_idx(path)
    assert str(path) in str(info.value)


def test_bad_header(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(ValueError, match="x.idx has a bad magic number"):
        _idx.read_idx(path)
    path.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 0]))
    with pytest.raises(ValueError, match="unknown dtype code 0x07"):
        _idx.read_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match="expected 16 header bytes for 3 dimensions, got 8"):
        _idx.read_idx(path)
    path.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 7, 7, 7]))
    with pytest.raises(ValueError, match="too long: expected 10 bytes"):
        _idx.read_idx(path)


@pytest.mark.parametrize("code", sorted(_idx.IDX_DTYPES))
def test_idx_dtypes_round_trip(tmp_path, code):
    values = np.array([[0, 1, 2], [3, 255, 7]] if code == 0x08 else [[0, 1, -2], [3, 100, 7]])
    path = tmp_path / "a.idx"
    write_idx(path, values, dtype_code=code)
    got = _idx.read_idx(path, expected_shape=(2, None))
    assert got.dtype == _idx.IDX_DTYPES[code].newbyteorder("=")
    np.testing.assert_array_equal(got, values)
    with pytest.raises(ValueError, match=r"has shape \(2, 3\): expected \(3, 2\)"):
        _idx.read_idx(path, expected_shape=(3, 2))


def test_mismatched_image_and_label_counts(tmp_path):
    write_split(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=r"train images .* got \(5, 28, 28\) and \(4,\)"):
        mnist.load_data(path=tmp_path)


# --- Fashion-MNIST --------------------------------------------------------------------------

def test_fashion_mnist_not_found_says_where_and_how(nowhere):
    with pytest.raises(FileNotFoundError) as info:
        fashion_mnist.load_data()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(nowhere / "fashion-mnist") in message
    assert fashion_mnist.SYSTEM_DIR in message


def test_fashion_mnist_from_data_home_and_system_dir(nowhere, tmp_path):
    arrays = write_split(tmp_path / "usr_share_fashion", gz=False, seed=1)
    (_, y_train), (x_test, _) = fashion_mnist.load_data()
    np.testing.assert_array_equal(x_test, arrays["x_test"])
    home_arrays = write_split(nowhere / "fashion-mnist", seed=2)  # $KAFFE_DATA_HOME wins
    (_, y_train), _ = fashion_mnist.load_data()
    np.testing.assert_array_equal(y_train, home_arrays["y_train"])
    (x_train, _), _ = fashion_mnist.load_data(path=tmp_path / "usr_share_fashion")
    np.testing.assert_array_equal(x_train, arrays["x_train"])


def test_make_mnist_sample_script_reproduces_bundle(full_dir, tmp_path):
    import importlib.util
    script = os.path.join(os.path.dirname(__file__), "..", "tools", "make_mnist_sample.py")
    spec = importlib.util.spec_from_file_location("make_mnist_sample", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "sample.npz"
    module.main(["--source", full_dir, "--out", str(out)])
    new, bundled = _idx.load_split_npz(out), _idx.load_split_npz(mnist.SAMPLE_FILE)
    for a, b in zip(new, bundled):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
