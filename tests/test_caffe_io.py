"""kaffe.caffe.io against files written by real pycaffe (shared/reference/pycaffe_io/)."""
import os

import numpy as np
import pytest

from kaffe.caffe import io as caffe_io
from kaffe.caffe.proto import caffe_pb2

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
REF = os.path.join(SHARED, "reference", "pycaffe_io")
CHELSEA = os.path.join(SHARED, "data", "images", "chelsea.png")

needs_ref = pytest.mark.skipif(not os.path.isdir(REF) or not os.path.exists(CHELSEA),
                               reason="shared/reference/pycaffe_io (real-pycaffe oracles) absent")


@pytest.fixture(scope="module")
def oracles():
    return np.load(os.path.join(REF, "io_oracles.npz"))


@pytest.fixture(scope="module")
def chelsea():
    return caffe_io.load_image(CHELSEA)


def _transformer():
    t = caffe_io.Transformer({"data": (1, 3, 227, 227)})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_raw_scale("data", 255)
    t.set_mean("data", np.array([104, 117, 123]))
    t.set_input_scale("data", 0.5)
    return t


@needs_ref
def test_load_image(oracles, chelsea):
    gray = caffe_io.load_image(CHELSEA, color=False)
    ref = oracles["load_image_gray__chelsea"]
    assert gray.dtype == np.float32 and gray.shape == ref.shape == (300, 451, 1)
    np.testing.assert_allclose(gray, ref, rtol=1e-5, atol=1e-7)
    assert chelsea.dtype == np.float32 and chelsea.shape == (300, 451, 3)
    assert 0.0 <= chelsea.min() and chelsea.max() <= 1.0


@needs_ref
def test_resize_image(oracles, chelsea):
    out = caffe_io.resize_image(chelsea, (100, 80))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, oracles["resize_image__chelsea_100x80"], rtol=1e-5,
                               atol=1e-6)


@needs_ref
def test_oversample(oracles, chelsea):
    crops = caffe_io.oversample([caffe_io.resize_image(chelsea, (64, 64))], (48, 48))
    np.testing.assert_allclose(crops, oracles["oversample__chelsea_crops"], rtol=1e-5,
                               atol=1e-6)


@needs_ref
def test_transformer_preprocess_deprocess(oracles, chelsea):
    t = _transformer()
    before = chelsea.copy()
    pre = t.preprocess("data", chelsea)
    np.testing.assert_array_equal(chelsea, before)      # the caller's image is not changed
    assert pre.dtype == np.float32 and pre.shape == (3, 227, 227)
    np.testing.assert_allclose(pre, oracles["transformer_preprocess__chelsea"], rtol=1e-5,
                               atol=1e-4)
    de = t.deprocess("data", oracles["transformer_preprocess__chelsea"])
    np.testing.assert_allclose(de, oracles["transformer_deprocess__chelsea"], rtol=1e-5,
                               atol=1e-6)


def test_transformer_checks():
    t = caffe_io.Transformer({"data": (1, 3, 8, 8)})
    with pytest.raises(Exception, match="not one of the net inputs"):
        t.set_raw_scale("image", 255)
    with pytest.raises(Exception, match="Transpose order needs"):
        t.set_transpose("data", (1, 0))
    with pytest.raises(Exception, match="Channel swap needs"):
        t.set_channel_swap("data", (1, 0))
    with pytest.raises(ValueError, match="Mean channels incompatible"):
        t.set_mean("data", np.zeros(4))
    with pytest.raises(ValueError, match="Mean shape invalid"):
        t.set_mean("data", np.zeros((1, 3, 8, 8)))
    # a full mean image of the input's size is used as is; another size is resized
    t.set_mean("data", np.full((3, 8, 8), 2.0))
    assert t.mean["data"].shape == (3, 8, 8)
    t.set_mean("data", np.full((3, 16, 16), 2.0))
    np.testing.assert_allclose(t.mean["data"], 2.0)
    assert t.mean["data"].shape == (3, 8, 8)
    t.set_transpose("data", (2, 0, 1))
    out = t.preprocess("data", np.full((8, 8, 3), 5.0, np.float32))
    np.testing.assert_allclose(out, 3.0)


@needs_ref
def test_datum_bytes_match_pycaffe():
    arr = np.load(os.path.join(REF, "datum_uint8_array.npy"))
    datum = caffe_io.array_to_datum(arr, 7)
    with open(os.path.join(REF, "datum_uint8_label7.bin"), "rb") as f:
        ref = f.read()
    assert datum.SerializeToString() == ref
    back = caffe_io.datum_to_array(caffe_pb2.Datum.FromString(ref))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, arr)

    farr = np.load(os.path.join(REF, "datum_float_array.npy"))
    datum = caffe_io.array_to_datum(farr.astype(np.float64), 3)
    with open(os.path.join(REF, "datum_float_label3.bin"), "rb") as f:
        ref = f.read()
    assert datum.SerializeToString() == ref
    parsed = caffe_pb2.Datum.FromString(ref)
    assert parsed.label == 3
    np.testing.assert_allclose(caffe_io.datum_to_array(parsed), farr, rtol=1e-6)


@needs_ref
def test_blobproto_bytes_match_pycaffe():
    arr = np.load(os.path.join(REF, "blobproto_array.npy"))
    with open(os.path.join(REF, "blobproto_4d.binaryproto"), "rb") as f:
        ref = f.read()
    assert caffe_io.array_to_blobproto(arr).SerializeToString() == ref
    back = caffe_io.blobproto_to_array(caffe_pb2.BlobProto.FromString(ref))
    np.testing.assert_array_equal(back.astype(np.float32), arr)


def test_datum_and_blobproto_errors_and_vectors():
    with pytest.raises(ValueError, match="Incorrect array shape"):
        caffe_io.array_to_datum(np.zeros((2, 2)))
    legacy = caffe_pb2.BlobProto(num=1, channels=2, height=1, width=3, data=range(6))
    assert caffe_io.blobproto_to_array(legacy).shape == (1, 2, 1, 3)
    arrays = [np.arange(6.0).reshape(1, 2, 3), np.ones((2, 2))]
    s = caffe_io.arraylist_to_blobprotovector_str(arrays)
    back = caffe_io.blobprotovector_str_to_arraylist(s)
    for a, b in zip(arrays, back):
        np.testing.assert_array_equal(a, b)
    assert caffe_io.arraylist_to_blobprotovecor_str(arrays) == s
