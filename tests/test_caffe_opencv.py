"""OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``) as a second oracle.

- LeNet (reference/mnist, real Caffe's trained weights): kaffe's forward equals OpenCV's on the
  64 test digits Caffe recorded; the weights kaffe's ``net.save`` writes load in OpenCV and give
  the same logits; the V1-format caffemodel too.
- GoogLeNet (reference/zoo, weights by the README's formula, written by ``net.save``): OpenCV
  reads kaffe's caffemodel and its logits equal kaffe's and real Caffe's recorded ones.
"""
import os
import zlib

import numpy as np
import pytest

import kaffe.caffe as caffe

cv2 = pytest.importorskip("cv2")
if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromCaffe"):
    pytest.skip("this OpenCV has no Caffe importer", allow_module_level=True)

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
ZOO = os.path.join(REF, "zoo")
LENET_WEIGHTS = os.path.join(REF, "mnist", "lenet_iter_200.caffemodel")
pytestmark = pytest.mark.skipif(not os.path.isdir(ZOO), reason="shared/reference/zoo not found")


def _opencv(prototxt, caffemodel, x, blob):
    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.setInput(np.ascontiguousarray(x, np.float32))
    return net.forward(blob)


def _close(got, want, what):
    scale = float(np.abs(want).max()) or 1.0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


def test_lenet_matches_opencv_and_opencv_reads_kaffes_caffemodel(tmp_path):
    prototxt = os.path.join(ZOO, "lenet_deploy.prototxt")
    digits = np.load(os.path.join(ZOO, "lenet_forward.npz"))["input__data"]
    net = caffe.Net(prototxt, LENET_WEIGHTS, caffe.TEST)
    ours = net.forward(data=digits, blobs=["ip2"])["ip2"].copy()
    _close(ours, _opencv(prototxt, LENET_WEIGHTS, digits, "ip2"), "kaffe vs OpenCV, LeNet")

    saved = str(tmp_path / "lenet_saved.caffemodel")
    net.save(saved)
    _close(_opencv(prototxt, saved, digits, "ip2"), ours, "OpenCV on kaffe's caffemodel")

    v1 = os.path.join(REF, "upgrade", "lenet_v1_iter_200.caffemodel")
    net_v1 = caffe.Net(prototxt, v1, caffe.TEST)
    _close(net_v1.forward(data=digits, blobs=["ip2"])["ip2"], _opencv(prototxt, v1, digits, "ip2"),
           "V1 caffemodel: kaffe vs OpenCV")


def _formula_weights(net, layer_types):
    """reference/README's zoo weights: seed crc32("<layer>/<i>"), He-normal conv/ip weights,
    every other blob randn*0.01 (GoogLeNet has no BatchNorm/Scale)."""
    for name, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            shape = blob.data.shape
            rng = np.random.RandomState(zlib.crc32(f"{name}/{i}".encode()) & 0x7fffffff)
            if layer_types[name] in ("Convolution", "InnerProduct") and i == 0:
                value = rng.randn(*shape) * np.sqrt(2.0 / np.prod(shape[1:]))
            else:
                value = rng.randn(*shape) * 0.01
            blob.data[...] = value.astype(np.float32)


def test_googlenet_saved_by_kaffe_matches_opencv_and_caffe(tmp_path):
    prototxt = os.path.join(ZOO, "googlenet_deploy.prototxt")
    ref = np.load(os.path.join(ZOO, "googlenet_forward.npz"))
    net = caffe.Net(prototxt, caffe.TEST)
    net.blobs["data"].reshape(*ref["input__data"].shape)
    net.reshape()
    _formula_weights(net, dict(zip(net._layer_names, [layer.type for layer in net.layers])))
    logits = "loss3/classifier"
    ours = net.forward(data=ref["input__data"], blobs=[logits])[logits].copy()
    _close(ours, ref["data__" + logits], "kaffe vs real Caffe, GoogLeNet")

    saved = str(tmp_path / "googlenet.caffemodel")
    net.save(saved)
    theirs = _opencv(prototxt, saved, ref["input__data"], logits)
    _close(theirs, ours, "OpenCV on kaffe's GoogLeNet caffemodel vs kaffe")
    _close(theirs, ref["data__" + logits], "OpenCV vs real Caffe, GoogLeNet")
