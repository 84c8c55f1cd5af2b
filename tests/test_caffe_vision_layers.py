"""Caffe's vision layers against real-Caffe oracles (shared/reference/layers): forward tops,
input diffs and parameter diffs of every conv/deconv/ip/pool/lrn/batchnorm/scale/bias case."""
import json
import os

import numpy as np
import pytest
import torch

import kaffe.caffe as caffe
from kaffe.caffe.builders import vision

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "layers")
REF = os.environ.get("KAFFE_CAFFE_REFERENCE", os.path.abspath(REF))
if not os.path.isdir(REF):
    REF = "/work/shared/reference/layers"
HAVE_REF = os.path.isfile(os.path.join(REF, "index.json"))
PREFIXES = ("conv_", "deconv_", "ip_", "innerproduct_", "pool_", "lrn_", "batchnorm_",
            "scale_", "bias_")


def _cases():
    if not HAVE_REF:
        return []
    with open(os.path.join(REF, "index.json")) as f:
        return [c for c in json.load(f) if c["name"].startswith(PREFIXES)]


CASES = _cases()
needs_ref = pytest.mark.skipif(not HAVE_REF, reason="shared/reference (real-Caffe oracles) "
                                                    "is absent")


def _close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=what)


@needs_ref
def test_cases_found():
    kinds = {c["name"].split("_")[0] for c in CASES}
    assert {"conv", "deconv", "ip", "pool", "lrn", "batchnorm", "scale", "bias"} <= kinds


@needs_ref
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_layer_case(case):
    name = case["name"]
    ref = np.load(os.path.join(REF, name + ".npz"))
    net = caffe.Net(os.path.join(REF, name + ".prototxt"),
                    os.path.join(REF, name + ".caffemodel"), caffe.TEST)
    for key in ref.files:
        if key.startswith("param__"):
            _, layer, i = key.split("__")
            _close(net.params[layer][int(i)].data, ref[key], key)
    out = net.forward(**{i: ref["data__" + i] for i in case["inputs"]})
    for top in case["outputs"]:
        _close(out[top], ref["data__" + top], f"{name}: top {top}")
    if not case["backward"]:
        return
    net.backward(**{o: ref["topdiff__" + o] for o in case["outputs"]})
    for i in case["inputs"]:
        _close(net.blobs[i].diff, ref["diff__" + i], f"{name}: diff of input {i}")
    for key in ref.files:
        if key.startswith("paramdiff__"):
            _, layer, i = key.split("__")
            _close(net.params[layer][int(i)].diff, ref[key], f"{name}: {key}")


def _net(text, phase=caffe.TEST):
    from kaffe.caffe import parse_net_param
    return caffe.Net(parse_net_param(text), phase)


def test_pooling_ceil_size_and_pad_rule():
    # 7x7, k3 s2 p1: ceil((7+2-3)/2)+1 = 4, and window 3 starts at 5 < 7+1, so 4 stays
    net = _net('layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 1 '
               'dim: 7 dim: 7 } } } layer { name: "p" type: "Pooling" bottom: "d" top: "p" '
               'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }')
    assert net.blobs["p"].shape == (1, 1, 4, 4)
    net.blobs["d"].data[...] = 1.0
    out = net.forward()["p"]
    # AVE divides by the window clipped to the padded image: corners see 4 of 9 cells
    assert out[0, 0, 0, 0] == pytest.approx(4 / 9)
    # 6x6, k2 s2 p1: ceil((6+2-2)/2)+1 = 4, the last window would start at 6 >= 6+1? no -> 4
    net = _net('layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 1 '
               'dim: 6 dim: 6 } } } layer { name: "p" type: "Pooling" bottom: "d" top: "p" '
               'pooling_param { pool: MAX kernel_size: 3 stride: 3 pad: 2 } }')
    # ceil((6+4-3)/3)+1 = 4; (4-1)*3 = 9 >= 6+2 -> 3
    assert net.blobs["p"].shape == (1, 1, 3, 3)


def test_lrn_across_equals_caffe_formula():
    torch.manual_seed(0)
    x = torch.randn(2, 7, 3, 3)
    net = _net('layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 2 dim: 7 '
               'dim: 3 dim: 3 } } } layer { name: "l" type: "LRN" bottom: "d" top: "l" '
               'lrn_param { local_size: 5 alpha: 0.3 beta: 0.6 k: 1.5 } }')
    got = net.forward(d=x.numpy())["l"]
    sq = torch.nn.functional.pad(x * x, (0, 0, 0, 0, 2, 2))
    window = sum(sq[:, i:i + 7] for i in range(5))
    want = x / (1.5 + 0.3 / 5 * window) ** 0.6
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_batchnorm_train_updates_running_sums():
    net = _net('layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 4 dim: 2 '
               '} } } layer { name: "bn" type: "BatchNorm" bottom: "d" top: "bn" }', caffe.TRAIN)
    x = np.random.RandomState(0).randn(4, 2).astype(np.float32)
    out = net.forward(d=x)["bn"]
    np.testing.assert_allclose(out, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-4,
                               atol=1e-5)
    mean, var, factor = (b.data for b in net.params["bn"])
    assert factor[0] == pytest.approx(1.0)
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(var, x.var(0, ddof=1), rtol=1e-5)


def test_conv_blob_shapes_and_errors():
    net = _net('layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 4 '
               'dim: 5 dim: 6 } } } layer { name: "c" type: "Convolution" bottom: "d" top: "c" '
               'convolution_param { num_output: 6 group: 2 kernel_h: 3 kernel_w: 1 pad_w: 1 '
               'stride_h: 2 stride_w: 1 } }')
    assert net.params["c"][0].shape == (6, 2, 3, 1)
    assert net.blobs["c"].shape == (1, 6, 2, 8)
    with pytest.raises(ValueError, match="group 3"):
        _net('layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 4 '
             'dim: 5 dim: 5 } } } layer { name: "c" type: "Convolution" bottom: "d" top: "c" '
             'convolution_param { num_output: 6 group: 3 kernel_size: 3 } }')


def test_fillers():
    from kaffe.caffe.proto import caffe_pb2
    t = vision.fill(torch.zeros(3, 4), caffe_pb2.FillerParameter(type="constant", value=2.5))
    assert torch.all(t == 2.5)
    t = vision.fill(torch.zeros(50, 40), caffe_pb2.FillerParameter(type="xavier"))
    assert t.abs().max() <= np.sqrt(3 / 40) + 1e-6
    with pytest.raises(ValueError, match="Unknown filler"):
        vision.fill(torch.zeros(2), caffe_pb2.FillerParameter(type="nope"))
