"""Caffe's RNN, LSTM (plain and with a static input) and LSTMUnit against real Caffe.

The oracle cases in reference/layers/ (see its README) run through pycaffe-style ``caffe.Net``:
same weights (the case's .caffemodel) and inputs, forward outputs compared with Caffe's
``data__*``; then Caffe's top diffs are written into the outputs, ``net.backward()`` runs and
the input and parameter gradients are compared with ``diff__*`` / ``paramdiff__*``.
"""
import json
import os

import numpy as np
import pytest
import torch

import kaffe.caffe as caffe
from kaffe.caffe.builders.recurrent import lstm_unit

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "layers")
CASES = ["lstm", "rnn", "lstm_static", "lstm_unit"]
RTOL, ATOL = 1e-4, 1e-5

needs_ref = pytest.mark.skipif(not os.path.exists(os.path.join(REF, "index.json")),
                               reason="reference/layers/ (real Caffe oracles) not found")


def _index():
    return {case["name"]: case for case in json.load(open(os.path.join(REF, "index.json")))}


def _net(name):
    return caffe.Net(os.path.join(REF, name + ".prototxt"),
                     os.path.join(REF, name + ".caffemodel"), caffe.TEST)


@needs_ref
@pytest.mark.parametrize("name", CASES)
def test_forward_and_backward_match_caffe(name):
    case = _index()[name]
    npz = np.load(os.path.join(REF, name + ".npz"))
    net = _net(name)
    for layer, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            assert blob.data.shape == npz[f"param__{layer}__{i}"].shape
            blob.diff[...] = 0
    out = net.forward(**{b: npz["data__" + b] for b in case["inputs"]})
    for top in case["outputs"]:
        np.testing.assert_allclose(out[top], npz["data__" + top], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name}: data__{top}")
    diffs = net.backward(**{top: npz["topdiff__" + top] for top in case["outputs"]})
    for b in case["inputs"]:
        np.testing.assert_allclose(diffs[b], npz["diff__" + b], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name}: diff__{b}")
    for layer, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            np.testing.assert_allclose(blob.diff, npz[f"paramdiff__{layer}__{i}"], rtol=RTOL,
                                       atol=ATOL, err_msg=f"{name}: paramdiff {layer} {i}")


LSTM_EXPOSED = """
name: "x"
force_backward: true
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 5 dim: 3 dim: 2 } } }
layer { name: "cont" type: "Input" top: "cont" input_param { shape { dim: 5 dim: 3 } } }
layer { name: "h0" type: "Input" top: "h0" input_param { shape { dim: 1 dim: 3 dim: 4 } } }
layer { name: "c0" type: "Input" top: "c0" input_param { shape { dim: 1 dim: 3 dim: 4 } } }
layer { name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" bottom: "h0" bottom: "c0"
        top: "h" top: "hT" top: "cT"
        recurrent_param { num_output: 4 expose_hidden: true
                          weight_filler { type: "uniform" min: -0.5 max: 0.5 }
                          bias_filler { type: "constant" value: 0.25 } } }
"""


def _torch_lstm(net, x, cont, h, c):
    """The published LSTM equations in Caffe's gate order (i, f, o, g), step by step."""
    w_xc, b_c, w_hc = (torch.from_numpy(b.data.copy()) for b in net.params["lstm"])
    x, cont = torch.from_numpy(x), torch.from_numpy(cont)
    h, c = torch.from_numpy(h[0]), torch.from_numpy(c[0])
    hs = []
    for t in range(x.shape[0]):
        z = x[t] @ w_xc.T + b_c + (cont[t, :, None] * h) @ w_hc.T
        i, f, o, g = z.chunk(4, -1)
        c = cont[t, :, None] * torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs).numpy(), h.numpy()[None], c.numpy()[None]


def test_lstm_expose_hidden_and_fillers(tmp_path):
    path = tmp_path / "lstm.prototxt"
    path.write_text(LSTM_EXPOSED)
    net = caffe.Net(str(path), caffe.TRAIN)
    w_xc, b_c, w_hc = (b.data for b in net.params["lstm"])
    assert w_xc.shape == (16, 2) and b_c.shape == (16,) and w_hc.shape == (16, 4)
    assert np.all(b_c == 0.25) and np.abs(w_xc).max() <= 0.5 and w_xc.std() > 0.1
    rng = np.random.RandomState(0)
    x = rng.randn(5, 3, 2).astype(np.float32)
    cont = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1]], np.float32)
    h0, c0 = rng.randn(2, 1, 3, 4).astype(np.float32)
    out = net.forward(x=x, cont=cont, h0=h0, c0=c0)
    want_h, want_hT, want_cT = _torch_lstm(net, x, cont, h0, c0)
    np.testing.assert_allclose(out["h"], want_h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["hT"], want_hT, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["cT"], want_cT, rtol=1e-5, atol=1e-6)
    # Caffe shares only the data of the exposed states: no gradient reaches h0/c0
    net.blobs["h"].diff[...] = 1.0
    diffs = net.backward(diffs=["h0", "c0", "x"])
    assert not diffs["h0"].any() and not diffs["c0"].any() and diffs["x"].any()


def test_state_carries_over_between_forward_passes(tmp_path):
    """Without expose_hidden, Caffe starts each forward from the previous final state."""
    path = tmp_path / "lstm.prototxt"
    path.write_text(LSTM_EXPOSED.replace("expose_hidden: true", "expose_hidden: false")
                    .replace('bottom: "h0" bottom: "c0"', "").replace('top: "hT" top: "cT"', ""))
    net = caffe.Net(str(path), caffe.TEST)
    rng = np.random.RandomState(1)
    x = rng.randn(5, 3, 2).astype(np.float32)
    cont = np.ones((5, 3), np.float32)
    zero = np.zeros((1, 3, 4), np.float32)
    first = net.forward(x=x, cont=cont)["h"].copy()
    h_end, c_end = _torch_lstm(net, x, cont, zero, zero)[1:]
    np.testing.assert_allclose(first, _torch_lstm(net, x, cont, zero, zero)[0], rtol=1e-5,
                               atol=1e-6)
    second = net.forward(x=x, cont=cont)["h"]
    np.testing.assert_allclose(second, _torch_lstm(net, x, cont, h_end, c_end)[0], rtol=1e-5,
                               atol=1e-6)
    net.layer_dict["lstm"].reset()
    np.testing.assert_allclose(net.forward(x=x, cont=cont)["h"], first, rtol=1e-6)


def test_lstm_unit_gradient_is_autograd_for_binary_cont():
    torch.manual_seed(0)
    c_prev = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    gates = torch.randn(3, 20, dtype=torch.float64, requires_grad=True)
    cont = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda c, g: lstm_unit(c, g, cont), (c_prev, gates))


def test_bad_shapes_name_the_layer(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text(LSTM_EXPOSED.replace("dim: 5 dim: 3 }", "dim: 4 dim: 3 }", 1))
    message = r"LSTM layer 'lstm'.*cont.*\(5, 3\).*received \(4, 3\)"
    with pytest.raises(ValueError, match=message):
        caffe.Net(str(path), caffe.TEST)
    path.write_text(LSTM_EXPOSED.replace("num_output: 4", "num_output: 0"))
    with pytest.raises(ValueError, match="num_output"):
        caffe.Net(str(path), caffe.TEST)


RNN_STATIC = """
force_backward: true
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 4 dim: 2 dim: 3 } } }
layer { name: "cont" type: "Input" top: "cont" input_param { shape { dim: 4 dim: 2 } } }
layer { name: "xs" type: "Input" top: "xs" input_param { shape { dim: 2 dim: 5 } } }
layer { name: "rnn" type: "RNN" bottom: "x" bottom: "cont" bottom: "xs" top: "o"
        recurrent_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 }
                          bias_filler { type: "gaussian" std: 0.5 } } }
"""


def test_rnn_static_input_and_restarts_follow_caffes_equations(tmp_path):
    path = tmp_path / "rnn.prototxt"
    path.write_text(RNN_STATIC)
    net = caffe.Net(str(path), caffe.TEST)
    shapes = [b.data.shape for b in net.params["rnn"]]
    assert shapes == [(3, 3), (3,), (3, 5), (3, 3), (3, 3), (3,)]
    w_xh, b_h, w_xs, w_hh, w_ho, b_o = (torch.from_numpy(b.data.copy())
                                        for b in net.params["rnn"])
    rng = np.random.RandomState(2)
    x, xs = rng.randn(4, 2, 3).astype(np.float32), rng.randn(2, 5).astype(np.float32)
    cont = np.array([[0, 0], [1, 1], [1, 0], [0.5, 1]], np.float32)  # restarts and a fraction
    h, want = torch.zeros(2, 3), []
    for t in range(4):
        h = torch.tanh(torch.from_numpy(x[t]) @ w_xh.T + b_h + torch.from_numpy(xs) @ w_xs.T
                       + (torch.from_numpy(cont[t])[:, None] * h) @ w_hh.T)
        want.append(torch.tanh(h @ w_ho.T + b_o))
    out = net.forward(x=x, cont=cont, xs=xs)["o"]
    np.testing.assert_allclose(out, torch.stack(want).numpy(), rtol=1e-5, atol=1e-6)
