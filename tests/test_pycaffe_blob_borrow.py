"""A forward keeps each top itself (no copy) until Python looks at the blob; the first look
copies it into the blob's own buffer. These tests check pycaffe's semantics survive that: views
Python holds follow later forwards, writes into one blob never reach another blob or autograd's
tensors, and results equal PyTorch's reference ops."""
import numpy as np
import torch
import torch.nn.functional as F

import kaffe.caffe as caffe
from kaffe.caffe import parse_net_param
from kaffe.caffe.synced import SyncedTensor

NET = """name: "n" force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 4 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "r" }
layer { name: "a" type: "Power" bottom: "r" top: "a" power_param { scale: 2 } }
layer { name: "b" type: "Power" bottom: "r" top: "b" power_param { scale: 3 } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }
layer { name: "loss" type: "EuclideanLoss" bottom: "s" bottom: "ip" top: "loss" }
"""


def _net():
    torch.manual_seed(0)
    net = caffe.Net(parse_net_param(NET), caffe.TRAIN)
    net.blobs["data"].data[...] = np.random.RandomState(1).randn(4, 3)
    return net


def _reference(net):
    """Forward and parameter gradients by PyTorch ops on the net's weights."""
    w = torch.tensor(net.params["ip"][0].data, requires_grad=True)
    bias = torch.tensor(net.params["ip"][1].data, requires_grad=True)
    ip = F.linear(torch.tensor(net.blobs["data"].data), w, bias)
    r = torch.relu(ip)
    s = 5 * r
    loss = ((s - ip) ** 2).sum() / (2 * ip.shape[0])
    loss.backward()
    return ip.detach().numpy(), r.detach().numpy(), w.grad.numpy()


def test_unviewed_top_is_kept_without_a_copy_and_copied_on_first_look():
    s = SyncedTensor((2,))
    t = torch.ones(2)
    s.write(t, borrow=True)
    assert s.host(mutable=False).data_ptr() == t.data_ptr()   # kaffe's read: no copy
    view = s.host()                                 # Python looks: its own buffer
    assert view.data_ptr() != t.data_ptr() and torch.equal(view, t)
    view[0] = 9.0
    assert float(t[0]) == 1.0                       # the computed tensor is untouched
    s.write(torch.full((2,), 3.0), borrow=True)     # viewed: copied into the same buffer
    assert s.host() is view and float(view[0]) == 3.0


def test_blob_views_follow_later_forwards_and_match_pytorch():
    net = _net()
    held = net.blobs["r"].data                      # a view taken before any forward
    net.forward()
    ip, r, _ = _reference(net)
    np.testing.assert_allclose(held, r, rtol=1e-6)
    np.testing.assert_allclose(net.blobs["ip"].data, ip, rtol=1e-6)
    net.blobs["data"].data[...] *= -1
    net.forward()
    _, r2, _ = _reference(net)
    np.testing.assert_allclose(held, r2, rtol=1e-6)  # same array, refreshed in place


def test_writes_into_one_blob_reach_neither_others_nor_the_backward():
    net = _net()
    net.forward()
    split = [n for n in net.blobs if n.startswith("r_relu")]
    assert len(split) == 2                          # Caffe's Split tops share one tensor
    net.blobs[split[0]].data[...] = 100.0
    np.testing.assert_array_equal(net.blobs[split[1]].data, net.blobs["r"].data)
    assert net.blobs["r"].data.max() < 100.0
    net.blobs["ip"].data[...] = 0.0                 # after the forward: backward unaffected
    net.clear_param_diffs()
    net.backward()
    _, _, w_grad = _reference(net)
    np.testing.assert_allclose(net.params["ip"][0].diff, w_grad, rtol=1e-5, atol=1e-6)
    a, b = net.blobs["a"].diff, net.blobs["b"].diff
    before = b.copy()
    a[...] = 42.0
    np.testing.assert_array_equal(net.blobs["b"].diff, before)


def test_forward_under_inference_mode_then_without_it():
    """Blob buffers made during a forward under ``torch.inference_mode`` stay writable after
    it (torch refuses in-place writes to inference tensors outside that mode): a benchmark
    timing ``forward`` under inference_mode and then checking one result without it failed."""
    net = _net()
    with torch.inference_mode():
        net.forward()
        held = net.blobs["r"].data                  # Python looks while inference_mode is on
        net.forward()
    ip, r, _ = _reference(net)
    net.blobs["data"].data[...] *= -1
    net.forward()                                   # copies into the buffers kept above
    net.backward()
    _, r2, _ = _reference(net)
    np.testing.assert_allclose(held, r2, rtol=1e-6)
    with torch.inference_mode():
        net.forward()
    np.testing.assert_allclose(net.blobs["r"].data, r2, rtol=1e-6)
