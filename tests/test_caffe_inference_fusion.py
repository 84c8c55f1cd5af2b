"""Inference fusion of Convolution -> BatchNorm -> Scale -> ReLU (all in place on the conv top):
the fused forward of a deploy net (no layer runs backward) leaves every blob as real Caffe
does, follows writes into ``net.params`` (fresh ones and through kept numpy views) on the next
forward, and runs unfused where a forward stops inside the chain.

Oracle: real Caffe's ``layers/batchnorm_scale`` (BatchNorm with global statistics, eps 1e-3,
then Scale with bias, on recorded data). A 1x1 convolution with identity weights in front
hands the data through exactly, so the chain's Caffe value is ``max(out, 0)`` of that oracle.
"""
import os

import numpy as np
import pytest

import kaffe.caffe as caffe
from kaffe.caffe import parse_net_param

REF = "/work/shared/reference"
if not os.path.isdir(REF):
    REF = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                       "reference"))
pytestmark = pytest.mark.skipif(not os.path.isdir(REF), reason="shared/reference (real-Caffe "
                                                               "oracles) is absent")

CHAIN = """
name: "chain"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 2 dim: 4 dim: 3 dim: 3 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 1 bias_term: false } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv"
        batch_norm_param { use_global_stats: true eps: 0.001 } }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
        pooling_param { pool: MAX kernel_size: 3 } }
"""


def _oracle():
    return dict(np.load(os.path.join(REF, "layers", "batchnorm_scale.npz")))


def _net(force_backward=False):
    text = CHAIN + ("force_backward: true\n" if force_backward else "")
    net = caffe.Net(parse_net_param(text), caffe.TEST)
    ref = _oracle()
    net.params["conv"][0].data[...] = np.eye(4, dtype=np.float32)[:, :, None, None]
    for i in range(3):
        net.params["bn"][i].data[...] = ref[f"param__bn__{i}"]
    for i in range(2):
        net.params["scale"][i].data[...] = ref[f"param__scale__{i}"]
    return net, ref


def test_chain_is_found_and_fused_output_matches_real_caffe():
    net, ref = _net()
    assert net._inference_only and list(net._chains) == [1]
    chain = net._chains[1]
    assert (chain.bn, chain.scale, chain.relu) != (None, None, None) and chain.last == 4
    out = net.forward(data=ref["data__data"])
    expect = np.maximum(ref["data__out"], 0)
    np.testing.assert_allclose(net.blobs["conv"].data, expect, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["pool"], expect.max(axis=(2, 3), keepdims=True), rtol=1e-5,
                               atol=1e-6)


def test_fused_equals_unfused_and_training_nets_keep_autograd():
    fused, ref = _net()
    plain, _ = _net(force_backward=True)   # a layer runs backward: no fusion, autograd kept
    assert not plain._inference_only and not plain._chains
    a = fused.forward(data=ref["data__data"])["pool"].copy()
    b = plain.forward(data=ref["data__data"])["pool"].copy()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fused.blobs["conv"].data, plain.blobs["conv"].data, rtol=1e-6,
                               atol=1e-7)
    plain.blobs["pool"].diff[...] = 1.0
    plain.backward()
    assert np.abs(plain.blobs["data"].diff).sum() > 0


def test_param_writes_after_a_forward_change_the_next_forward():
    net, ref = _net()
    kept_mean = net.params["bn"][0].data   # a numpy view kept across forwards
    net.forward(data=ref["data__data"])
    # new Scale factors and bias, through fresh views: Caffe's BN output times the new affine
    new_scale = np.array([2.0, -1.0, 0.5, 3.0], np.float32)
    new_bias = np.array([0.1, 0.2, -0.3, 0.0], np.float32)
    net.params["scale"][0].data[...] = new_scale
    net.params["scale"][1].data[...] = new_bias
    net.forward(data=ref["data__data"])
    expect = np.maximum(ref["data__bn"] * new_scale[:, None, None] + new_bias[:, None, None], 0)
    np.testing.assert_allclose(net.blobs["conv"].data, expect, rtol=1e-5, atol=1e-6)
    # the BatchNorm mean through the view taken before the first forward
    s = ref["param__bn__2"][0]
    factor = 0.0 if s == 0 else 1.0 / s
    kept_mean += 0.5 / factor if factor else 0.0   # the mean statistic moves by +0.5
    net.forward(data=ref["data__data"])
    var = ref["param__bn__1"] * factor
    shifted = ref["data__bn"] - 0.5 / np.sqrt(var + 1e-3)[:, None, None]
    expect = np.maximum(shifted * new_scale[:, None, None] + new_bias[:, None, None], 0)
    np.testing.assert_allclose(net.blobs["conv"].data, expect, rtol=1e-4, atol=1e-5)
    # and the convolution's weights (doubling them doubles BN's input)
    net.params["conv"][0].data[...] *= 2
    net.forward(data=ref["data__data"] / 2)
    np.testing.assert_allclose(net.blobs["conv"].data, expect, rtol=1e-4, atol=1e-5)


def test_forward_stopping_inside_the_chain_leaves_caffes_intermediate_value():
    net, ref = _net()
    out = net.forward(data=ref["data__data"], end="bn")
    np.testing.assert_allclose(out["conv"], ref["data__bn"], rtol=1e-5, atol=1e-6)
    net.forward(start="scale", end="scale")   # Scale alone, on the blob as it stands
    np.testing.assert_allclose(net.blobs["conv"].data, ref["data__out"], rtol=1e-5, atol=1e-6)
    net.forward(start="conv")   # the whole chain again, fused
    np.testing.assert_allclose(net.blobs["conv"].data, np.maximum(ref["data__out"], 0),
                               rtol=1e-5, atol=1e-6)



def _deploy_net(name):
    """A real-Caffe layer oracle as a deploy net (force_backward dropped: no layer runs
    backward, so the inference paths run), its weights and recorded blobs."""
    path = os.path.join(REF, "layers", name)
    text = open(path + ".prototxt").read().replace("force_backward: true", "")
    weights = path + ".caffemodel" if os.path.exists(path + ".caffemodel") else None
    net = caffe.Net(parse_net_param(text), caffe.TEST, weights=weights)
    assert net._inference_only
    return net, dict(np.load(path + ".npz"))


DEPLOY_ORACLES = ["conv_basic", "conv_rect_nobias", "conv_group_pad_stride", "conv_dilation",
                  "pool_max_6_k2_s2", "pool_max_7_k3_s2", "pool_max_7_k3_s2_p1",
                  "pool_max_8_k3_s2", "pool_max_rect", "pool_global_max", "lrn_across",
                  "lrn_across_default", "lrn_within"]


@pytest.mark.parametrize("name", DEPLOY_ORACLES)
def test_deploy_layers_match_real_caffe(name):
    """Convolution (torch's direct kernel when small), MAX pooling (channels-last, torch's own
    padding where its windows are Caffe's) and LRN (summed channel window) at inference give
    Caffe's recorded outputs."""
    net, ref = _deploy_net(name)
    out = net.forward(data=ref["data__data"])
    for top, value in out.items():
        np.testing.assert_allclose(value, ref[f"data__{top}"], rtol=1e-5, atol=1e-5,
                                   err_msg=f"{name}: blob {top}")


def test_small_plain_convolutions_skip_onednn_at_inference(monkeypatch):
    import torch
    calls = []
    direct = torch._C._nn.thnn_conv2d
    monkeypatch.setattr(torch._C._nn, "thnn_conv2d",
                        lambda *a: calls.append(1) or direct(*a))
    for name, plain in [("conv_basic", True), ("conv_rect_nobias", True),
                        ("conv_group_pad_stride", False), ("conv_dilation", False)]:
        calls.clear()
        net, ref = _deploy_net(name)
        net.forward(data=ref["data__data"])
        assert bool(calls) == plain, name   # group 1, no dilation: the direct kernel


def test_eltwise_and_inner_product_take_their_in_place_relu():
    """ResNet's ``Eltwise -> ReLU`` and CaffeNet's ``InnerProduct -> ReLU``: the ReLU runs in
    place on the fresh sum / product; the bottoms keep their values."""
    text = """
layer { name: "a" type: "Input" top: "a" input_param { shape { dim: 2 dim: 6 } } }
layer { name: "b" type: "Input" top: "b" input_param { shape { dim: 2 dim: 6 } } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }
layer { name: "sum_relu" type: "ReLU" bottom: "sum" top: "sum" }
layer { name: "ip" type: "InnerProduct" bottom: "sum" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 1 }
                              bias_filler { type: "gaussian" std: 1 } } }
layer { name: "ip_relu" type: "ReLU" bottom: "ip" top: "ip" relu_param { negative_slope: 0.1 } }
"""
    net = caffe.Net(parse_net_param(text), caffe.TEST)
    assert sorted(net._chains) == [2, 4]
    rng = np.random.RandomState(0)
    a, b = rng.randn(2, 6).astype(np.float32), rng.randn(2, 6).astype(np.float32)
    out = net.forward(a=a, b=b)["ip"]
    s = np.maximum(a + b, 0)
    np.testing.assert_allclose(net.blobs["sum"].data, s, rtol=1e-6)
    w, bias = net.params["ip"][0].data, net.params["ip"][1].data
    ip = s @ w.T + bias
    np.testing.assert_allclose(out, np.where(ip > 0, ip, 0.1 * ip), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(net.blobs["a"].data, a)
    np.testing.assert_array_equal(net.blobs["b"].data, b)


POINTWISE = """
name: "pointwise"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: %d dim: 8 dim: 30 dim: 30 } } }
layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
        convolution_param { num_output: 6 kernel_size: 1
                            weight_filler { type: "gaussian" std: 1 }
                            bias_filler { type: "gaussian" std: 1 } } }
layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2"
        convolution_param { num_output: 5 kernel_size: 1 stride: 2 bias_term: false
                            weight_filler { type: "gaussian" std: 1 } } }
"""


@pytest.mark.parametrize("batch", [1, 3])
def test_pointwise_convolutions_run_as_matrix_products(monkeypatch, batch):
    """1x1 convolutions without padding at inference are matrix products on the NCHW memory
    (batch 1, or at least 28x28 output pixels): equal to torch's ``conv2d``, in the plan's
    first and steady-state forwards, after a weight write through a kept numpy view."""
    import torch
    import torch.nn.functional as F
    from kaffe.caffe.builders import vision
    calls = []
    gemm = vision.pointwise_conv
    monkeypatch.setattr(vision, "pointwise_conv", lambda *a: calls.append(a[3]) or gemm(*a))
    net = caffe.Net(parse_net_param(POINTWISE % batch), caffe.TEST)
    assert net._inference_only
    x = np.random.RandomState(0).randn(batch, 8, 30, 30).astype(np.float32)
    w1 = net.params["c1"][0].data   # a kept view: writes must reach the next forward

    def expected():
        p = {k: [torch.from_numpy(b.data.copy()) for b in v] for k, v in net.params.items()}
        c1 = F.conv2d(torch.from_numpy(x), p["c1"][0], p["c1"][1])
        return c1, F.conv2d(c1, p["c2"][0], None, stride=2)

    for step in range(3):
        if step == 2:
            w1[...] *= -0.5
        net.forward(data=x)
        c1, c2 = expected()
        np.testing.assert_allclose(net.blobs["c1"].data, c1.numpy(), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(net.blobs["c2"].data, c2.numpy(), rtol=1e-5, atol=1e-4)
    # batch 1: both layers; batch 3: the 30x30 one (900 pixels), not the 15x15 one (225)
    assert set(map(tuple, calls)) == ({(1, 1), (2, 2)} if batch == 1 else {(1, 1)})
