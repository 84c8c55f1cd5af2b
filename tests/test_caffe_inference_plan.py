"""The inference plan (``kaffe.caffe.plan``): a deploy net's whole ``Net.forward()`` as steps
worked out once, and the tile MAX-pool kernel it and ``Pooling`` use.

Oracles: real Caffe's LeNet outputs for 64 test digits (reference/zoo/lenet_forward.npz:
pool2, ip1, ip2, prob) and PyTorch reference ops (``F.conv2d``, ``F.max_pool2d``, ``F.linear``)
on the same weights for every blob; ``F.max_pool2d`` for the pool kernel. The pycaffe
behaviours (blobs written from Python between calls, held numpy views, parameter writes,
``start``/``end``, reshape, Python layers) are checked against those same references.
"""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kaffe.caffe as caffe
from kaffe.caffe.builders.vision import max_pool_tiles

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
ZOO = os.path.join(REF, "zoo")
WEIGHTS = os.path.join(REF, "mnist", "lenet_iter_200.caffemodel")
needs_ref = pytest.mark.skipif(not os.path.exists(os.path.join(ZOO, "lenet_forward.npz")),
                               reason="reference/zoo (real Caffe outputs) not found")


def _lenet(batch):
    net = caffe.Net(os.path.join(ZOO, "lenet_deploy.prototxt"), WEIGHTS, caffe.TEST)
    net.blobs["data"].reshape(batch, 1, 28, 28)
    net.reshape()
    return net


def _torch_blobs(net, x):
    """Every LeNet blob by PyTorch's reference ops on the net's current weights."""
    p = {name: [torch.from_numpy(b.data.copy()) for b in blobs]
         for name, blobs in net.params.items()}
    out = {"data": torch.from_numpy(x)}
    out["conv1"] = F.conv2d(out["data"], *p["conv1"])
    out["pool1"] = F.max_pool2d(out["conv1"], 2, 2)
    out["conv2"] = F.conv2d(out["pool1"], *p["conv2"])
    out["pool2"] = F.max_pool2d(out["conv2"], 2, 2)
    out["ip1"] = F.relu(F.linear(out["pool2"].flatten(1), *p["ip1"]))   # relu1 in place
    out["ip2"] = F.linear(out["ip1"], *p["ip2"])
    out["prob"] = torch.softmax(out["ip2"], 1)
    return {k: v.numpy() for k, v in out.items()}


def _assert_blobs(net, x):
    want = _torch_blobs(net, x)
    assert list(net.blobs) == list(want)
    for name, value in want.items():
        np.testing.assert_allclose(net.blobs[name].data, value, rtol=1e-5, atol=1e-5,
                                   err_msg=name)


@needs_ref
def test_plan_forward_matches_real_caffe_and_torch_for_every_blob():
    ref = np.load(os.path.join(ZOO, "lenet_forward.npz"))
    x = ref["input__data"]
    net = _lenet(len(x))
    out = net.forward(data=x)
    assert net._plan is not None                  # the deploy net took the plan
    np.testing.assert_allclose(out["prob"], ref["data__prob"], rtol=1e-4, atol=1e-6)
    for blob in ("pool2", "ip1", "ip2"):
        np.testing.assert_allclose(net.blobs[blob].data, ref[f"data__{blob}"], rtol=1e-4,
                                   atol=1e-4, err_msg=blob)
    _assert_blobs(net, x)


@needs_ref
def test_plan_batch_one_twice_and_layer_walk_agree():
    ref = np.load(os.path.join(ZOO, "lenet_forward.npz"))
    net = _lenet(1)
    for i in (3, 7):                              # second call: blobs Python viewed, reused
        x = ref["input__data"][i:i + 1]
        np.testing.assert_allclose(net.forward(data=x)["prob"], ref["data__prob"][i:i + 1],
                                   rtol=1e-4, atol=1e-6)
        _assert_blobs(net, x)
    # the layer-by-layer walk (start=) gives the same blobs
    walked = net.forward(start="conv1")["prob"].copy()
    np.testing.assert_allclose(walked, ref["data__prob"][7:8], rtol=1e-4, atol=1e-6)


@needs_ref
def test_plan_steady_state_writes_into_the_blobs_buffers():
    ref = np.load(os.path.join(ZOO, "lenet_forward.npz"))
    net = _lenet(2)
    held = net.blobs["pool1"].data                # Python's view: the blob's own buffer
    for i in range(4):                            # nothing else looked at between calls
        x = ref["input__data"][2 * i:2 * i + 2]
        out = net.forward(data=x)
        np.testing.assert_allclose(out["prob"], ref["data__prob"][2 * i:2 * i + 2],
                                   rtol=1e-4, atol=1e-6)
        if i == 1:
            assert net._plan._steady is not None
            buffers = [b._d._host for b in net.blobs.values()]
    # the steady runs wrote into the same buffers (no new tensors, no stores)
    assert all(b._d._host is t for b, t in zip(net.blobs.values(), buffers))
    np.testing.assert_allclose(held, _torch_blobs(net, x)["pool1"], rtol=1e-5, atol=1e-5)
    _assert_blobs(net, x)
    net.params["ip1"][0].data[...] *= -1          # weights still read afresh
    x = ref["input__data"][:2]
    net.forward(data=x)
    net.forward(data=x)
    _assert_blobs(net, x)
    net.blobs["data"].reshape(3, 1, 28, 28)       # a reshape: a full run, then steady again
    net.reshape()
    for _ in range(2):
        net.forward(data=ref["input__data"][:3])
    _assert_blobs(net, ref["input__data"][:3])


@needs_ref
def test_plan_sees_python_writes_between_calls():
    ref = np.load(os.path.join(ZOO, "lenet_forward.npz"))
    net = _lenet(2)
    held = net.blobs["conv2"].data                # a numpy view held across forwards
    net.blobs["data"].data[...] = ref["input__data"][:2]
    net.forward()                                 # input written through .data, no kwargs
    np.testing.assert_allclose(net.blobs["prob"].data, ref["data__prob"][:2], rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(held, _torch_blobs(net, ref["input__data"][:2])["conv2"],
                               rtol=1e-5, atol=1e-5)   # the held view shows this forward
    net.params["ip2"][1].data[...] += 1.0         # a parameter written from Python
    net.params["conv1"][0].data[...] *= 0.5
    x = ref["input__data"][2:4]
    net.forward(data=x)
    _assert_blobs(net, x)


@needs_ref
def test_plan_follows_reshape_and_end():
    ref = np.load(os.path.join(ZOO, "lenet_forward.npz"))
    net = _lenet(1)
    net.forward(data=ref["input__data"][:1])
    net.blobs["data"].reshape(5, 1, 28, 28)
    net.reshape()
    x = ref["input__data"][:5]
    assert net.forward(data=x)["prob"].shape == (5, 10)
    _assert_blobs(net, x)
    out = net.forward(end="pool2")                # a partial forward: the layer walk
    assert list(out) == ["pool2"]
    np.testing.assert_allclose(out["pool2"], ref["data__pool2"][:5], rtol=1e-4, atol=1e-4)


class _Double:
    """A pycaffe Python layer: top = 2 * bottom."""

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = 2 * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        pass


def test_plan_runs_python_layers_and_in_place_elementwise_on_the_input(tmp_path, monkeypatch):
    import sys
    import types
    module = types.ModuleType("plan_test_layers")
    module.Double = type("Double", (_Double, caffe.Layer), {})
    monkeypatch.setitem(sys.modules, "plan_test_layers", module)
    path = tmp_path / "net.prototxt"
    path.write_text("""
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
        layer { name: "relu" type: "ReLU" bottom: "data" top: "data" }
        layer { name: "double" type: "Python" bottom: "data" top: "twice"
                python_param { module: "plan_test_layers" layer: "Double" } }
        layer { name: "ip" type: "InnerProduct" bottom: "twice" top: "ip"
                inner_product_param { num_output: 4 weight_filler { type: "gaussian" } } }
        layer { name: "sig" type: "Sigmoid" bottom: "ip" top: "sig" }
    """)
    net = caffe.Net(str(path), caffe.TEST)
    x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], np.float32)
    net.forward(data=x)
    assert net._plan is not None
    relu = np.maximum(x, 0)
    w = torch.from_numpy(net.params["ip"][0].data.copy())
    b = torch.from_numpy(net.params["ip"][1].data.copy())
    ip = F.linear(torch.from_numpy(2 * relu), w, b)
    np.testing.assert_allclose(net.blobs["data"].data, relu)   # in place, as in Caffe
    np.testing.assert_allclose(net.blobs["twice"].data, 2 * relu)
    np.testing.assert_allclose(net.blobs["ip"].data, ip.numpy(), rtol=1e-6)
    np.testing.assert_allclose(net.blobs["sig"].data, torch.sigmoid(ip).numpy(), rtol=1e-6)
    net.forward(data=-x)                           # the input blob was not written into early
    np.testing.assert_allclose(net.blobs["data"].data, np.maximum(-x, 0))


def test_plan_runs_layers_without_tops_and_with_several(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text("""
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 6 } } }
        layer { name: "slice" type: "Slice" bottom: "data" top: "a" top: "b"
                slice_param { axis: 1 slice_point: 2 } }
        layer { name: "ip" type: "InnerProduct" bottom: "b" top: "ip"
                inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
        layer { name: "silence" type: "Silence" bottom: "a" }
    """)
    net = caffe.Net(str(path), caffe.TEST)
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    w = torch.from_numpy(net.params["ip"][0].data.copy())
    b = torch.from_numpy(net.params["ip"][1].data.copy())
    for scale in (1.0, -2.0, 3.0):                 # full run, then steady runs
        out = net.forward(data=scale * x)
        np.testing.assert_allclose(out["ip"], F.linear(torch.from_numpy(scale * x[:, 2:]), w,
                                                       b).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(net.blobs["a"].data, 3.0 * x[:, :2])


def test_nets_that_record_gradients_keep_the_layer_walk():
    param = caffe.read_net_param(os.path.join(ZOO, "lenet_deploy.prototxt"))
    param.force_backward = True
    net = caffe.Net(param, WEIGHTS, caffe.TEST)
    net.forward()
    assert net._plan is None


@pytest.mark.parametrize("shape,kernel", [((2, 3, 8, 6), (2, 2)), ((1, 20, 24, 24), (2, 2)),
                                          ((2, 4, 9, 6), (3, 2)), ((1, 2, 6, 9), (3, 3))])
def test_max_pool_tiles_equals_torch_max_pool(shape, kernel):
    torch.manual_seed(0)
    x = torch.randint(-3, 4, shape).float()       # many ties
    np.testing.assert_array_equal(max_pool_tiles(x, *kernel).numpy(),
                                  F.max_pool2d(x, kernel, kernel).numpy())
    cl = x.contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(max_pool_tiles(cl, *kernel).numpy(),
                                  F.max_pool2d(x, kernel, kernel).numpy())


def test_pooling_with_a_tile_that_does_not_divide_uses_caffe_ceil_windows(tmp_path):
    path = tmp_path / "pool.prototxt"
    path.write_text("""
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 5 dim: 7 } } }
        layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
                pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    """)
    net = caffe.Net(str(path), caffe.TEST)
    x = np.random.RandomState(0).randn(1, 2, 5, 7).astype(np.float32)
    out = net.forward(data=x)["pool"]
    # Caffe's ceil mode: 3 x 4 windows, the last ones clipped to the input
    np.testing.assert_array_equal(out, F.max_pool2d(torch.from_numpy(x), 2, 2,
                                                    ceil_mode=True).numpy())


@pytest.mark.skipif(not os.path.exists(os.path.join(REF, "layers", "batchnorm_scale.npz")),
                    reason="reference/layers (real Caffe outputs) not found")
def test_load_model_predict_runs_the_fused_chain_and_matches_real_caffe(tmp_path):
    """Oracle: real Caffe's BatchNorm (global stats) + Scale on recorded data; a 1x1 identity
    convolution in front hands the data through, ReLU after (the fusion tests' chain net)."""
    from test_caffe_inference_fusion import CHAIN, _net
    net, ref = _net()
    proto = tmp_path / "chain.prototxt"
    proto.write_text(CHAIN)
    net.save(str(tmp_path / "chain.caffemodel"))
    model = caffe.load_model(str(proto), str(tmp_path / "chain.caffemodel"), outputs="conv")
    assert list(model.caffe_net._chains) == [0]       # conv + bn + scale + relu, one step
    expect = np.maximum(ref["data__out"], 0)
    got = model.predict(ref["data__data"], verbose=0)
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
    with torch.enable_grad():                          # recording gradients: layer by layer
        plain = model(torch.from_numpy(ref["data__data"]))
    np.testing.assert_allclose(plain.detach().numpy(), expect, rtol=1e-5, atol=1e-6)
