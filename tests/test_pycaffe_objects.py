"""pycaffe's object model on kaffe: Blob views, layer-by-layer backward(start=, end=) and on
hand-set diffs, names, HDF5 weights, weight-file checks, Solver.apply_update, runtime switches.
Oracles: the formulas (W^T . dy, SGD with Caffe's inv policy) computed with torch ops."""
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kaffe.caffe as caffe
from kaffe.caffe import parse_net_param

NET = """name: "small" force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 1 dim: 5 dim: 5 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 2 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 2 weight_filler { type: "gaussian" std: 1 }
                      bias_filler { type: "gaussian" std: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
  inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 1 }
                        bias_filler { type: "gaussian" std: 1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def _net(text=NET, phase=caffe.TRAIN, **kw):
    net = caffe.Net(parse_net_param(text), phase, **kw)
    rng = np.random.RandomState(0)
    net.blobs["data"].data[...] = rng.randn(*net.blobs["data"].shape)
    net.blobs["label"].data[...] = [1, 3]
    return net


def _reference(net):
    """The net's forward in torch ops from its blobs: (x, conv, ip, loss) with grads on x."""
    w, b = (torch.tensor(p.data) for p in net.params["conv"])
    w2, b2 = (torch.tensor(p.data) for p in net.params["ip"])
    x = torch.tensor(net.blobs["data"].data, requires_grad=True)
    conv = F.relu(F.conv2d(x, w, b))
    ip = conv.reshape(2, -1) @ w2.T + b2
    loss = F.cross_entropy(ip, torch.tensor(net.blobs["label"].data).long())
    return x, conv, ip, loss


def test_blob_views_shapes_and_names():
    net = _net()
    blob = net.blobs["data"]
    assert isinstance(blob, caffe.Blob)
    assert (blob.num, blob.channels, blob.height, blob.width, blob.count) == (2, 1, 5, 5, 50)
    assert net.blobs["label"].shape == (2,) and net.blobs["label"].channels == 1
    weights = net.layers[list(net._layer_names).index("ip")].blobs
    assert weights[0].data.shape == (4, 48) and net.layers[2].type == "Convolution"
    weights[0].data[...] = 0            # a writable view of the parameter
    assert not net.params["ip"][0].data.any()
    assert net._blob_names == list(net.blobs) == ["data", "label", "conv", "ip", "loss"]
    assert net.top_names["relu"] == ["conv"] and net.bottom_names["loss"] == ["ip", "label"]
    assert net.blob_loss_weights["loss"] == 1.0 and net.blob_loss_weights["ip"] == 0.0
    blob.reshape(1, 1, 6, 6)
    assert blob.data.shape == (1, 1, 6, 6) and blob.diff.shape == (1, 1, 6, 6)


def test_forward_and_backward_match_torch():
    net = _net()
    out = net.forward()
    x, conv, ip, loss = _reference(net)
    np.testing.assert_allclose(out["loss"], loss.item(), rtol=1e-5)
    loss.backward()
    net.backward()
    np.testing.assert_allclose(net.blobs["data"].diff, x.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_backward_start_end_is_one_layer():
    """After a forward, backward(start='ip', end='ip') sets conv.diff = dy . W (pycaffe)."""
    net = _net()
    net.forward()
    net.blobs["ip"].diff[...] = np.random.RandomState(1).randn(2, 4)
    got = net.backward(start="ip", end="ip")
    assert list(got) == ["conv"]
    expected = net.blobs["ip"].diff @ net.params["ip"][0].data
    np.testing.assert_allclose(got["conv"].reshape(2, -1), expected, rtol=1e-5, atol=1e-6)
    # parameter diff of that layer alone: dy^T . conv
    np.testing.assert_allclose(net.params["ip"][0].diff,
                               net.blobs["ip"].diff.T @ net.blobs["conv"].data.reshape(2, -1),
                               rtol=1e-5, atol=1e-6)
    assert not net.params["conv"][0].diff.any()    # layers before 'ip' did not run


def test_backward_without_forward_uses_hand_set_diffs():
    """No forward, no autograd state: each layer's backward runs on the blobs' data."""
    net = _net()
    net.forward()
    fresh = caffe.Net(parse_net_param(NET), caffe.TRAIN)
    fresh.share_with(net)
    for name in net.blobs:
        fresh.blobs[name].data[...] = net.blobs[name].data
    dy = np.random.RandomState(2).randn(2, 4).astype(np.float32)
    fresh.blobs["ip"].diff[...] = dy
    fresh.backward(start="ip")
    x, conv, ip, _ = _reference(net)
    ip.backward(torch.tensor(dy))
    np.testing.assert_allclose(fresh.blobs["data"].diff, x.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_forward_start_end_and_returned_blobs():
    net = _net()
    net.forward()
    net.blobs["conv"].data[...] = 1.0
    out = net.forward(start="ip", end="ip", blobs=["conv"])
    w, b = net.params["ip"][0].data, net.params["ip"][1].data
    np.testing.assert_allclose(out["ip"], np.ones((2, 48)) @ w.T + b, rtol=1e-5)
    assert set(out) == {"ip", "conv"}


def test_hdf5_round_trip_and_sniffing(tmp_path):
    net = _net()
    net.save_hdf5(str(tmp_path / "w.h5"))
    other = caffe.Net(parse_net_param(NET), caffe.TRAIN)
    other.load_hdf5(str(tmp_path / "w.h5"))
    for name in net.params:
        for a, b in zip(net.params[name], other.params[name]):
            np.testing.assert_array_equal(a.data, b.data)
    # content, not suffix, decides: HDF5 named .caffemodel, protobuf named .h5
    (tmp_path / "h5.caffemodel").write_bytes((tmp_path / "w.h5").read_bytes())
    net.save(str(tmp_path / "proto.caffemodel"))
    (tmp_path / "proto.h5").write_bytes((tmp_path / "proto.caffemodel").read_bytes())
    for path in ("h5.caffemodel", "proto.h5"):
        third = caffe.Net(parse_net_param(NET), caffe.TRAIN, weights=str(tmp_path / path))
        np.testing.assert_array_equal(third.params["ip"][0].data, net.params["ip"][0].data)


def test_weight_file_checks(tmp_path, caplog):
    net = _net()
    (tmp_path / "empty.caffemodel").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.caffemodel is empty"):
        net.copy_from(str(tmp_path / "empty.caffemodel"))
    caffe.save_caffemodel(str(tmp_path / "other.caffemodel"),
                          {"fc_x": [np.zeros((4, 48), np.float32)]})
    with caplog.at_level(logging.INFO, logger="kaffe.caffe"):
        net.copy_from(str(tmp_path / "other.caffemodel"))
    text = caplog.text
    assert "Ignoring source layer fc_x" in text and "nothing was copied" in text
    caplog.clear()
    bad = np.full((4, 48), np.nan, np.float32)
    caffe.save_caffemodel(str(tmp_path / "nan.caffemodel"), {"ip": [bad, np.zeros(4, np.float32)]})
    with caplog.at_level(logging.WARNING, logger="kaffe.caffe"):
        net.copy_from(str(tmp_path / "nan.caffemodel"))
    assert "layer 'ip' blob 0 holds 192 NaN/Inf" in caplog.text


SOLVER = """net: "{net}" base_lr: 0.01 momentum: 0.0 weight_decay: 0 lr_policy: "inv"
gamma: 0.0001 power: 0.75 max_iter: {max_iter} display: 0 snapshot_after_train: false
snapshot_prefix: "{prefix}" """


def _solver_file(tmp_path, max_iter=5, base_lr=None):
    (tmp_path / "net.prototxt").write_text(NET)
    text = SOLVER.format(net=tmp_path / "net.prototxt", max_iter=max_iter,
                         prefix=tmp_path / "snap")
    if base_lr is not None:
        text = text.replace("base_lr: 0.01", f"base_lr: {base_lr}")
    (tmp_path / "solver.prototxt").write_text(text)
    return str(tmp_path / "solver.prototxt")


def test_apply_update_and_share_weights(tmp_path):
    solver = caffe.SGDSolver(_solver_file(tmp_path))
    net = solver.net
    data = net.layers[list(net._layer_names).index("ip")].blobs[0].data
    data[...] = 0
    net.layers[list(net._layer_names).index("ip")].blobs[0].diff[...] = 1
    solver.apply_update()
    np.testing.assert_allclose(data, -0.01, rtol=1e-6)
    assert solver.iter == 0
    other = caffe.Net(parse_net_param(NET), caffe.TEST)
    solver.share_weights(other)
    np.testing.assert_array_equal(other.params["ip"][0].data, data)


def test_solver_checks(tmp_path, caplog):
    with pytest.raises(caffe.SolverError, match="base_lr must be >= 0; received base_lr: -0.1"):
        caffe.get_solver(_solver_file(tmp_path, base_lr=-0.1))
    with caplog.at_level(logging.WARNING, logger="kaffe"):
        caffe.get_solver(_solver_file(tmp_path, max_iter=0))
    assert "max_iter is 0" in caplog.text


def test_kaffe_test_refuses_zero_iterations(tmp_path):
    from conftest import run_kaffe
    net = _net()
    net.save(str(tmp_path / "w.caffemodel"))
    (tmp_path / "net.prototxt").write_text(NET)
    code, out = run_kaffe("test", "-model", str(tmp_path / "net.prototxt"), "-weights",
                          str(tmp_path / "w.caffemodel"), "-iterations", "0")
    assert code != 0 and "-iterations must be at least 1" in out and "received -iterations 0" \
        in out


def test_runtime_switches():
    assert "Python" in caffe.layer_type_list() and "Convolution" in caffe.layer_type_list()
    assert caffe.has_nccl() is False
    caffe.set_random_seed(7)
    a = caffe.Net(parse_net_param(NET), caffe.TRAIN).params["ip"][0].data.copy()
    caffe.set_random_seed(7)
    b = caffe.Net(parse_net_param(NET), caffe.TRAIN).params["ip"][0].data.copy()
    np.testing.assert_array_equal(a, b)
    timer = caffe.Timer()
    timer.start()
    timer.stop()
    assert timer.ms >= 0.0
    caffe.set_mode_gpu()      # no CUDA here: falls back to the CPU with a message
    caffe.set_mode_cpu()
