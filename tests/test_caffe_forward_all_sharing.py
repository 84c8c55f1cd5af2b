"""pycaffe's ``forward_all`` / ``forward_backward_all`` batching and ``param { share_mode }``.

Oracles: real Caffe's LeNet outputs for 64 test digits (reference/zoo/lenet_forward.npz, run as
one batch of 64) for the batched forward; PyTorch reference ops on the same weights for the
batched input gradients; numpy formulas for PERMISSIVE sharing (Caffe's ``ShareData``: the
sharing layer reads the owner's values in its own shape).
"""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kaffe.caffe as caffe

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
ZOO = os.path.join(REF, "zoo")
needs_ref = pytest.mark.skipif(not os.path.exists(os.path.join(ZOO, "lenet_forward.npz")),
                               reason="reference/zoo (real Caffe outputs) not found")


def _lenet(batch, force_backward=False):
    param = caffe.read_net_param(os.path.join(ZOO, "lenet_deploy.prototxt"))
    param.force_backward = force_backward  # without it Caffe leaves the input diff at 0
    net = caffe.Net(param, os.path.join(REF, "mnist", "lenet_iter_200.caffemodel"), caffe.TEST)
    net.blobs["data"].reshape(batch, 1, 28, 28)
    net.reshape()
    return net


@needs_ref
def test_forward_all_pads_the_last_batch_and_matches_caffe():
    ref = np.load(os.path.join(ZOO, "lenet_forward.npz"))
    net = _lenet(10)  # 64 digits: 6 full batches and one padded with 6 zero images
    out = net.forward_all(blobs=["ip2"], data=ref["input__data"])
    assert set(out) == {"prob", "ip2"}
    assert out["prob"].shape == (64, 10) and out["ip2"].shape == (64, 10)
    np.testing.assert_allclose(out["ip2"], ref["data__ip2"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["prob"], ref["data__prob"], rtol=1e-4, atol=1e-6)
    # the last forward was the padded batch: its last 6 rows are the zero images' outputs
    zero = net.forward(data=np.zeros((10, 1, 28, 28), np.float32))["prob"][0]
    np.testing.assert_allclose(net.blobs["prob"].data[-1], zero, rtol=1e-6)


def _torch_lenet_input_grad(net, x, prob_diff):
    p = {name: [torch.from_numpy(b.data.copy()) for b in blobs]
         for name, blobs in net.params.items()}
    x = torch.from_numpy(x).requires_grad_(True)
    h = F.max_pool2d(F.conv2d(x, *p["conv1"]), 2, 2)
    h = F.max_pool2d(F.conv2d(h, *p["conv2"]), 2, 2)
    h = F.linear(F.relu(F.linear(h.flatten(1), *p["ip1"])), *p["ip2"])
    prob = torch.softmax(h, 1)
    (prob * torch.from_numpy(prob_diff)).sum().backward()
    return prob.detach().numpy(), x.grad.numpy()


@needs_ref
def test_forward_backward_all_batches_inputs_and_top_diffs():
    ref = np.load(os.path.join(ZOO, "lenet_forward.npz"))
    x = ref["input__data"][:23]
    prob_diff = np.random.RandomState(3).randn(23, 10).astype(np.float32)
    net = _lenet(8, force_backward=True)
    net.params["conv1"][0].diff[...] = 0
    outs, diffs = net.forward_backward_all(blobs=["ip1"], diffs=["conv1"], data=x,
                                           prob=prob_diff)
    want_prob, want_grad = _torch_lenet_input_grad(net, x, prob_diff)
    assert outs["prob"].shape == (23, 10) and outs["ip1"].shape == (23, 500)
    assert diffs["data"].shape == (23, 1, 28, 28) and diffs["conv1"].shape == (23, 20, 24, 24)
    np.testing.assert_allclose(outs["prob"], want_prob, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(diffs["data"], want_grad, rtol=1e-4, atol=1e-7)
    with pytest.raises(KeyError, match="net inputs"):
        net.forward_all(images=x)


SHARED = """
force_backward: true
layer {{ name: "a" type: "Input" top: "a" input_param {{ shape {{ dim: 2 dim: 4 }} }} }}
layer {{ name: "b" type: "Input" top: "b" input_param {{ shape {{ dim: 2 dim: {b_dim} }} }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "a" top: "y1"
        param {{ name: "w" }} inner_product_param {{ num_output: 6
        weight_filler {{ type: "gaussian" std: 1 }} bias_term: false }} }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "b" top: "y2"
        param {{ name: "w" {mode} }} inner_product_param {{ num_output: 8 bias_term: false }} }}
"""


def _write(tmp_path, b_dim, mode):
    path = tmp_path / "shared.prototxt"
    path.write_text(SHARED.format(b_dim=b_dim, mode=mode))
    return str(path)


def test_permissive_sharing_reshapes_the_owners_data(tmp_path):
    net = caffe.Net(_write(tmp_path, 3, "share_mode: PERMISSIVE"), caffe.TRAIN)
    w1, w2 = net.params["ip1"][0], net.params["ip2"][0]
    assert w1.data.shape == (6, 4) and w2.data.shape == (8, 3)
    np.testing.assert_array_equal(w2.data, w1.data.reshape(8, 3))
    w2.data[0, 0] = 5.0  # one storage, as Caffe's ShareData
    assert w1.data[0, 0] == 5.0
    rng = np.random.RandomState(0)
    a, b = rng.randn(2, 4).astype(np.float32), rng.randn(2, 3).astype(np.float32)
    out = net.forward(a=a, b=b)
    np.testing.assert_allclose(out["y1"], a @ w1.data.T, rtol=1e-6)
    np.testing.assert_allclose(out["y2"], b @ w1.data.reshape(8, 3).T, rtol=1e-6)
    d1, d2 = rng.randn(2, 6).astype(np.float32), rng.randn(2, 8).astype(np.float32)
    net.clear_param_diffs()
    net.backward(y1=d1, y2=d2)
    # the shared diff is the sum of both layers' gradients, in the owner's layout
    want = d1.T @ a + (d2.T @ b).reshape(6, 4)
    np.testing.assert_allclose(w1.diff, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w2.diff, want.reshape(8, 3), rtol=1e-5, atol=1e-6)


def test_strict_sharing_needs_equal_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"Cannot share param 'w' owned by layer 'ip1' with "
                                         r"layer 'ip2'; shape mismatch.*6 4 \(24\).*8 3 \(24\)"):
        caffe.Net(_write(tmp_path, 3, ""), caffe.TEST)
    with pytest.raises(ValueError, match="shape mismatch"):
        caffe.Net(_write(tmp_path, 3, "share_mode: STRICT"), caffe.TEST)
    with pytest.raises(ValueError, match=r"count mismatch.*6 4 \(24\).*8 2 \(16\)"):
        caffe.Net(_write(tmp_path, 2, "share_mode: PERMISSIVE"), caffe.TEST)
