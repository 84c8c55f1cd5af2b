"""caffe.Net semantics: NetState rules, splits, in-place layers, weight sharing, loss weights,
propagate_down, errors, copy_from/save; mini_convnet and LeNet against real-Caffe outputs."""
import json
import os

import numpy as np
import pytest

import kaffe.caffe as caffe
from kaffe.caffe import parse_net_param
from kaffe.caffe.builders.registry import LAYER_BUILDERS, UnknownLayerType

REF = "/work/shared/reference"
if not os.path.isdir(REF):
    REF = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                       "reference"))
HAVE_REF = os.path.isdir(REF)
needs_ref = pytest.mark.skipif(not HAVE_REF, reason="shared/reference (real-Caffe oracles) "
                                                    "is absent")
INPUT = 'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {} }} }} }}\n'


def _dims(*shape):
    return " ".join(f"dim: {d}" for d in shape)


def _net(text, phase=caffe.TEST, **kw):
    return caffe.Net(parse_net_param(text), phase, **kw)


def test_constants_and_argument_orders(tmp_path):
    assert (caffe.TRAIN, caffe.TEST) == (0, 1)
    caffe.set_mode_cpu()
    caffe.set_mode_gpu()
    caffe.set_device(0)
    text = INPUT.format(_dims(2, 3)) + ('layer { name: "ip" type: "InnerProduct" bottom: "data" '
                                        'top: "ip" inner_product_param { num_output: 4 '
                                        'weight_filler { type: "gaussian" std: 1 } } }')
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    net = caffe.Net(str(path), caffe.TEST)
    net.save(str(tmp_path / "w.caffemodel"))
    a = caffe.Net(str(path), str(tmp_path / "w.caffemodel"), caffe.TEST)
    b = caffe.Net(str(path), caffe.TEST, weights=str(tmp_path / "w.caffemodel"))
    np.testing.assert_array_equal(a.params["ip"][0].data, net.params["ip"][0].data)
    np.testing.assert_array_equal(b.params["ip"][0].data, net.params["ip"][0].data)
    assert net.inputs == ["data"] and net.outputs == ["ip"]
    assert net._layer_names == ["data", "ip"] and len(net.layers) == 2
    assert net.layers[1].type == "InnerProduct"
    # writable views: assigning into params and blobs changes the computation
    net.params["ip"][0].data[...] = 1.0
    net.params["ip"][1].data[...] = 0.5
    net.blobs["data"].data[...] = [[1, 2, 3], [0, 0, 1]]
    out = net.forward()
    np.testing.assert_allclose(out["ip"], [[6.5] * 4, [1.5] * 4])
    # reshape
    net.blobs["data"].reshape(5, 3)
    net.reshape()
    assert net.blobs["ip"].shape == (5, 4)
    assert net.forward(data=np.ones((5, 3)))["ip"].shape == (5, 4)


@needs_ref
def test_netstate_rules_match_caffe():
    with open(os.path.join(REF, "netstate", "netstate_rules_layers.json")) as f:
        cases = json.load(f)
    path = os.path.join(REF, "netstate", "netstate_rules.prototxt")
    for case in cases:
        net = caffe.Net(path, getattr(caffe, case["phase"]), level=case["level"],
                        stages=case["stages"])
        assert net._layer_names == case["layers"], case


def test_in_place_relu_and_splits():
    net = _net("force_backward: true\n" + INPUT.format(_dims(2, 3)) +
               'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
               'inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }\n'
               'layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }\n'
               'layer { name: "a" type: "Scale" bottom: "ip" top: "a" }\n'
               'layer { name: "b" type: "Bias" bottom: "ip" top: "b" }\n')
    assert net._layer_names == ["data", "ip", "relu", "ip_relu_0_split", "a", "b"]
    assert list(net.blobs) == ["data", "ip", "ip_relu_0_split_0", "ip_relu_0_split_1", "a", "b"]
    x = np.random.RandomState(1).randn(2, 3).astype(np.float32)
    out = net.forward(data=x)
    w, bias = (p.data for p in net.params["ip"])
    pre = x @ w.T + bias
    np.testing.assert_allclose(net.blobs["ip"].data, np.maximum(pre, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["a"], np.maximum(pre, 0), rtol=1e-5, atol=1e-6)
    net.backward(a=np.ones((2, 3)), b=2 * np.ones((2, 3)))
    # in-place blob's diff is the gradient before the ReLU (as Caffe's shared diff buffer)
    np.testing.assert_allclose(net.blobs["ip"].diff, 3.0 * (pre > 0), rtol=1e-6)
    np.testing.assert_allclose(net.blobs["data"].diff, (3.0 * (pre > 0)) @ w, rtol=1e-5,
                               atol=1e-6)


def test_weight_sharing_by_param_name():
    net = _net("force_backward: true\n" + INPUT.format(_dims(2, 3)) +
               'layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" '
               'param { name: "w" } param { name: "b" } inner_product_param { num_output: 3 '
               'weight_filler { type: "gaussian" } } }\n'
               'layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" '
               'param { name: "w" } param { name: "b" } inner_product_param { num_output: 3 } }\n')
    p1, p2 = net.params["ip1"], net.params["ip2"]
    assert p1[0].parameter is p2[0].parameter
    net.params["ip2"][1].data[...] = 0.25
    assert np.all(net.params["ip1"][1].data == 0.25)
    x = np.random.RandomState(2).randn(2, 3).astype(np.float32)
    w = p1[0].data.copy()
    out = net.forward(data=x)["ip2"]
    h = x @ w.T + 0.25
    np.testing.assert_allclose(out, h @ w.T + 0.25, rtol=1e-5, atol=1e-6)
    net.backward(ip2=np.ones((2, 3), np.float32))
    # shared diff = sum of both uses
    g2 = np.ones((2, 3))
    g1 = g2 @ w
    np.testing.assert_allclose(p1[0].diff, g2.T @ h + g1.T @ x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p2[1].diff, g2.sum(0) + g1.sum(0), rtol=1e-5)
    # a second backward accumulates parameter diffs, as Caffe does until they are cleared
    net.backward(ip2=np.ones((2, 3), np.float32))
    np.testing.assert_allclose(p2[1].diff, 2 * (g2.sum(0) + g1.sum(0)), rtol=1e-5)
    net.clear_param_diffs()
    assert not p2[1].diff.any()
    with pytest.raises(ValueError, match="Cannot share param 'w'"):
        _net(INPUT.format(_dims(2, 3)) +
             'layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" '
             'param { name: "w" } inner_product_param { num_output: 3 } }\n'
             'layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" '
             'param { name: "w" } inner_product_param { num_output: 4 } }\n')


def test_loss_weight_propagate_down_and_lr_mult_zero():
    net = _net(INPUT.format(_dims(2, 3)) +
               'layer { name: "bias" type: "Bias" bottom: "data" top: "x" '
               'bias_param { filler { type: "constant" value: 1 } } }\n'
               'layer { name: "s" type: "Scale" bottom: "x" top: "y" loss_weight: 0.5 '
               'param { lr_mult: 0 } }\n'
               'layer { name: "t" type: "Scale" bottom: "x" bottom: "x" top: "z" '
               'propagate_down: true propagate_down: false loss_weight: 2 '
               'scale_param { axis: 0 } }\n')
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    net.forward(data=x)
    net.backward()
    # d/dx [0.5 * sum(s*x) + 2 * sum(x * stopgrad(x))] = 0.5 + 2 * x
    np.testing.assert_allclose(net.params["bias"][0].diff, (0.5 + 2 * (x + 1)).sum(0),
                               rtol=1e-6)
    assert not net.params["s"][0].diff.any()      # lr_mult 0: no diff
    assert not net.blobs["data"].diff.any()       # no force_backward: input gets no diff


def test_include_exclude_by_phase_and_stage():
    layer = 'layer {{ name: "{}" type: "Bias" bottom: "{}" top: "{}" {} }}\n'
    text = (INPUT.format(_dims(1, 2)) +
            layer.format("train", "data", "t", "include { phase: TRAIN }") +
            layer.format("test", "data", "t", "include { phase: TEST }") +
            layer.format("deploy", "t", "d", 'include { stage: "deploy" }') +
            layer.format("no_deploy", "t", "e", 'exclude { stage: "deploy" }'))
    assert _net(text, caffe.TRAIN)._layer_names == ["data", "train", "no_deploy"]
    assert _net(text, caffe.TEST, stages=["deploy"])._layer_names == ["data", "test", "deploy"]
    with pytest.raises(ValueError, match="both include and exclude"):
        _net(INPUT.format(_dims(1)) + 'layer { name: "x" type: "Bias" bottom: "data" top: "y" '
             'include { phase: TEST } exclude { phase: TRAIN } }')


def test_missing_bottom_names_layer_and_blob():
    with pytest.raises(ValueError, match=r"Unknown bottom blob 'dta' \(layer 'relu', bottom "
                                         r"index 0\)"):
        _net(INPUT.format(_dims(1, 2)) + 'layer { name: "relu" type: "Bias" bottom: "dta" '
             'top: "out" }')


def test_unknown_layer_type_and_database_layers():
    with pytest.raises(UnknownLayerType, match="'Foo'.*layer 'f'"):
        _net(INPUT.format(_dims(1)) + 'layer { name: "f" type: "Foo" bottom: "data" top: "o" }')
    if "Data" not in LAYER_BUILDERS:
        with pytest.raises(UnknownLayerType, match="'Data'"):
            _net('layer { name: "d" type: "Data" top: "data" data_param { source: "x" } }')


@needs_ref
def test_caffemodel_shape_mismatch_error():
    path = os.path.join(REF, "errors", "lenet_ip1_400.prototxt")
    weights = os.path.join(REF, "mnist", "lenet_iter_200.caffemodel")
    text = open(path).read()
    net_param = parse_net_param(text)
    for layer in net_param.layer:     # Data layers are a later issue: same net with an Input
        if layer.type == "Data":
            layer.type, layer.top[:] = "Input", ["data", "label"]
            layer.ClearField("data_param")
            layer.ClearField("transform_param")
            layer.input_param.shape.add(dim=[100, 1, 28, 28])
            layer.input_param.shape.add(dim=[100])
    with pytest.raises(ValueError) as err:
        caffe.Net(net_param, weights, caffe.TEST)
    message = str(err.value)
    assert "Cannot copy param 0 weights from layer 'ip1'; shape mismatch." in message
    assert "Source param shape is 500 800 (400000); target param shape is 400 800 (320000)" \
        in message
    assert weights in message


@needs_ref
def test_lenet_forward_matches_caffe():
    ref = np.load(os.path.join(REF, "zoo", "lenet_forward.npz"))
    net = caffe.Net(os.path.join(REF, "zoo", "lenet_deploy.prototxt"),
                    os.path.join(REF, "mnist", "lenet_iter_200.caffemodel"), caffe.TEST)
    out = net.forward(data=ref["input__data"])
    for key in ref.files:
        if key.startswith("data__"):
            blob = key[len("data__"):]
            np.testing.assert_allclose(net.blobs[blob].data, ref[key], rtol=1e-4, atol=1e-5,
                                       err_msg=blob)
    np.testing.assert_allclose(out["prob"], ref["data__prob"], rtol=1e-4, atol=1e-5)


@needs_ref
def test_mini_convnet_matches_caffe(tmp_path):
    base = os.path.join(REF, "layers", "mini_convnet")
    ref = np.load(base + ".npz")
    net_param = parse_net_param(open(base + ".prototxt").read())
    net = caffe.Net(net_param, base + ".caffemodel", caffe.TEST)
    net.forward(data=ref["data__data"], label=ref["data__label"])
    for blob in net.blobs:
        if "data__" + blob in ref.files:
            np.testing.assert_allclose(net.blobs[blob].data, ref["data__" + blob], rtol=1e-4,
                                       atol=1e-5, err_msg=blob)
    net.backward()
    np.testing.assert_allclose(net.blobs["data"].diff, ref["diff__data"], rtol=1e-4, atol=1e-5)
    for key in ref.files:
        if key.startswith("paramdiff__"):
            _, layer, i = key.split("__")
            np.testing.assert_allclose(net.params[layer][int(i)].diff, ref[key], rtol=1e-4,
                                       atol=1e-5, err_msg=key)


@needs_ref
def test_save_round_trip(tmp_path):
    base = os.path.join(REF, "layers", "conv_basic")
    net = caffe.Net(base + ".prototxt", base + ".caffemodel", caffe.TEST)
    net.save(str(tmp_path / "copy.caffemodel"))
    again = caffe.Net(base + ".prototxt", str(tmp_path / "copy.caffemodel"), caffe.TEST)
    for a, b in zip(net.params["conv"], again.params["conv"]):
        np.testing.assert_array_equal(a.data, b.data)


def test_blob_legacy_dims_pad_missing_axes_at_the_end():
    """Caffe's Blob::LegacyShape counts absent axes as 1 after the real ones, so an ip output
    (100, 500) is num 100, channels 500, height 1, width 1 (what extract_features writes)."""
    from kaffe.caffe.net import Blob
    blob = Blob((100, 500))
    assert (blob.num, blob.channels, blob.height, blob.width) == (100, 500, 1, 1)
    blob = Blob((2, 3, 4, 5))
    assert (blob.num, blob.channels, blob.height, blob.width) == (2, 3, 4, 5)
