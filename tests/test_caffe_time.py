"""``kaffe time`` (Caffe's ``caffe time``): per-layer lines and totals, parsed."""
import os
import re

import pytest

from kaffe.cli.main import main

REF = "/work/shared/reference"
LENET = os.path.join(REF, "zoo", "lenet_deploy.prototxt")
TIMING = os.path.join(REF, "timing")
needs_ref = pytest.mark.skipif(not os.path.isdir(REF), reason="shared/reference (real-Caffe "
                               "prototxts and caffe time logs) is not present on this machine")

LAYER = re.compile(r"^\s*(\S+)\t(forward|backward): ([0-9.e+-]+) ms\.$")
TOTAL = re.compile(r"^Average (Forward pass|Backward pass|Forward-Backward): ([0-9.e+-]+) ms\.$")


def parse(lines):
    """(per-layer {name: {forward, backward}}, totals) of caffe time's messages; also takes
    Caffe's own glog lines (the prefix up to ``] `` is dropped)."""
    layers, totals, iterations = {}, {}, []
    for line in lines:
        line = line.rstrip("\n")
        if "] " in line and line[:1] in "IWE" and "caffe.cpp" in line:
            line = line.split("] ", 1)[1]
        m = LAYER.match(line)
        if m:
            layers.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3))
        m = TOTAL.match(line)
        if m:
            totals[m.group(1)] = float(m.group(2))
        m = re.match(r"^Iteration: (\d+) forward-backward time: (\d+) ms\.$", line)
        if m:
            iterations.append(int(m.group(1)))
    return layers, totals, iterations


@needs_ref
@pytest.mark.parametrize("spelling", [["-model", LENET, "-iterations", "3"],
                                      [f"--model={LENET}", "--iterations=3"],
                                      [f"-model={LENET}", "-iterations", "3"]])
def test_kaffe_time_lenet(capsys, spelling):
    assert main(["time"] + spelling) == 0
    out = capsys.readouterr().out.splitlines()
    layers, totals, iterations = parse(out)
    assert list(layers) == ["data", "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2",
                            "prob"]
    assert all(set(v) == {"forward", "backward"} and min(v.values()) >= 0
               for v in layers.values())
    assert iterations == [1, 2, 3]
    assert set(totals) == {"Forward pass", "Backward pass", "Forward-Backward"}
    assert totals["Forward pass"] == pytest.approx(
        sum(v["forward"] for v in layers.values()), rel=1e-3, abs=1e-3)
    assert totals["Backward pass"] == pytest.approx(
        sum(v["backward"] for v in layers.values()), rel=1e-3, abs=1e-3)
    assert totals["Forward-Backward"] >= 0.9 * (totals["Forward pass"] + totals["Backward pass"])
    assert out[-1] == "*** Benchmark ends ***" and "Testing for 3 iterations." in out
    # the layer lines are formatted as Caffe's: name right-aligned in 10 columns, a tab
    assert "     conv1\tforward: " in "\n".join(out)


@needs_ref
def test_kaffe_time_format_matches_caffe_log(capsys):
    """The lines kaffe prints parse the same way as real Caffe's lenet_time.log."""
    with open(os.path.join(TIMING, "lenet_time.log")) as f:
        caffe_layers, caffe_totals, caffe_iters = parse(f)
    assert list(caffe_layers)[1:] == ["conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2",
                                      "loss"]
    assert caffe_totals["Forward-Backward"] == pytest.approx(20.42)
    assert len(caffe_iters) == 50
    assert main(["time", "-model", LENET, "-iterations", "1", "-phase", "TEST"]) == 0
    layers, totals, _ = parse(capsys.readouterr().out.splitlines())
    assert set(totals) == set(caffe_totals) and len(layers) == 9


def test_kaffe_time_errors(capsys, tmp_path):
    assert main(["time"]) == 2
    assert "-model" in capsys.readouterr().err
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer { name: "x" type: "Foo" top: "x" }\n')
    assert main(["time", "-model", str(bad)]) == 1
    assert "Foo" in capsys.readouterr().err


def test_time_net_in_place_and_loss():
    """A TRAIN net with in-place ReLU, a split and a loss: backward hands diffs on by layer."""
    import numpy as np

    from kaffe import caffe
    from kaffe.caffe.timing import time_net
    net_param = caffe.parse_net_param('''
        layer { name: "data" type: "Input" top: "data" top: "label"
                input_param { shape { dim: 4 dim: 5 } shape { dim: 4 } } }
        layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
                inner_product_param { num_output: 6 weight_filler { type: "xavier" } } }
        layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
        layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
                inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
        layer { name: "acc" type: "Accuracy" bottom: "ip2" bottom: "label" top: "acc" }
    ''')
    net = caffe.Net(net_param, caffe.TRAIN)
    net.blobs["data"].data[...] = np.random.RandomState(0).randn(4, 5)
    net.blobs["label"].data[...] = [0, 1, 2, 0]
    report = time_net(net, 2)
    assert report.layer_names == net._layer_names
    assert report.initial_loss > 0
    assert all(t >= 0 for t in report.forward_ms + report.backward_ms)
    # reference gradients from the net's own backward
    net.clear_param_diffs()
    net.forward()
    net.backward()
    want = net.params["ip1"][0].diff.copy()
    net.clear_param_diffs()
    time_net(net, 1)  # initial pass + 1 iteration: two backward passes accumulate
    np.testing.assert_allclose(net.params["ip1"][0].diff, 2 * want, rtol=1e-5, atol=1e-6)


def _logged_backward_need(log):
    """{layer: needs backward} from real Caffe's ``net.cpp`` lines in a ``caffe time`` log."""
    need = {}
    for line in open(log):
        m = re.search(r"\] (\S+) (needs|does not need) backward computation\.$", line.rstrip())
        if m:
            need[m.group(1)] = m.group(2) == "needs"
    return need


@needs_ref
@pytest.mark.parametrize("prototxt, log", [("caffenet_deploy.prototxt", "caffenet_time.log"),
                                           ("googlenet_deploy.prototxt", "googlenet_time.log")])
def test_time_net_propagates_down_as_real_caffe(prototxt, log):
    """``caffe time`` hands each layer Caffe's ``bottom_need_backward`` as ``propagate_down``:
    on a deploy net without a loss real Caffe logs that no layer needs backward, so its
    backward pass computes parameter diffs only; kaffe time must do the same work."""
    import kaffe.caffe as caffe
    from kaffe.caffe.timing import _forward, _Timer
    net = caffe.Net(os.path.join(TIMING, prototxt), caffe.TRAIN)
    logged = _logged_backward_need(os.path.join(TIMING, log))
    ours = dict(zip(net._layer_names, net._runs_backward))
    assert {k: ours[k] for k in logged} == logged
    _, steps, _ = _forward(net, _Timer(False), record=True)
    assert not any(x.requires_grad for step in steps if step for x in step[0])
    assert any(p.requires_grad for p in net.module.parameters())

