"""Caffe nets on a device, proven on the CPU: inside ``device.cpu_stand_in()`` the CPU plays the
device (every blob and parameter gets a separate device copy, every copy is counted), so a
"GPU-mode" net is checked against real Caffe's layer oracles and LeNet training log, Python's
writes and reads of ``.data`` / ``.diff`` against the values the layers see, and the copy
counters against "no copy when Python does not look". The ``meta`` device (no memory, any
mix-up with a CPU tensor raises) checks that every layer keeps its tensors where its inputs are.
"""
import json
import os
import shutil

import numpy as np
import pytest
import torch

import kaffe.caffe as caffe
from kaffe.caffe import device, parse_net_param, synced
from kaffe.caffe.synced import DEVICE

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                      "reference"))
LAYERS = os.path.join(SHARED, "layers")
MNIST = os.path.join(SHARED, "mnist")
HAVE_LAYERS = os.path.isfile(os.path.join(LAYERS, "index.json"))
CASES = json.load(open(os.path.join(LAYERS, "index.json"))) if HAVE_LAYERS else []
# The real-Caffe layer oracles on the stand-in device: tests/test_caffe_oracles_public.py.


# Layers whose forward reads values on the host (a count, a selection, an index check, the
# sequence breaks of ``cont``): they run on a device but synchronize it, and the meta device
# (no values) cannot run them; the stand-in oracle test above covers them.
READS_VALUES = {
    "SoftmaxWithLoss", "SigmoidCrossEntropyLoss", "InfogainLoss", "Accuracy",  # labels checked
    "Embed", "BatchReindex",   # indices checked in range
    "Filter",                  # the selector's count sets the top shape
    "LSTM", "RNN",             # where ``cont`` breaks the sequences
}


@pytest.mark.skipif(not HAVE_LAYERS, reason="shared/reference/layers is absent")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_every_layer_computes_where_its_inputs_are(case):
    """On the meta device a layer that makes a CPU tensor in its forward or backward (instead
    of one beside its input) raises at once, as it would on CUDA; shapes equal Caffe's."""
    name = case["name"]
    text = open(os.path.join(LAYERS, name + ".prototxt")).read()
    types = {layer.type for layer in parse_net_param(text).layer}
    if types & READS_VALUES:
        pytest.skip(f"reads values on the host: {sorted(types & READS_VALUES)}")
    ref = np.load(os.path.join(LAYERS, name + ".npz"))
    with device.placing(torch.device("meta")):
        net = caffe.Net(os.path.join(LAYERS, name + ".prototxt"), caffe.TEST)
    loss, outputs = net.forward_tensors()
    for key in ref.files:
        if key.startswith("data__") and key[6:] in net._tensors:
            t = net._tensors[key[6:]]
            assert t.device.type == "meta", f"{name}: {key} computed on {t.device}"
            assert tuple(t.shape) == ref[key].shape, f"{name}: {key}"
    if case["backward"] and loss is not None and loss.requires_grad:
        params = [p for p in net.module.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, allow_unused=True) if params else []
        assert all(g is None or g.device.type == "meta" for g in grads)


# ------------------------------------------------------------------ host/device bookkeeping

NET = """name: "n" force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 4 dim: 6 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 1 }
                        bias_filler { type: "gaussian" std: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }
layer { name: "out" type: "InnerProduct" bottom: "ip" top: "out"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 1 } } }
"""
WITH_LOSS = NET + """
layer { name: "target" type: "Input" top: "target" input_param { shape { dim: 4 dim: 3 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "target" top: "loss" }
"""


def _pair():
    """The same net on the host and on the stand-in device, with the host's weights."""
    host = caffe.Net(parse_net_param(NET), caffe.TRAIN)
    with device.cpu_stand_in():
        dev = caffe.Net(parse_net_param(NET), caffe.TRAIN)
    for name, blobs in host.params.items():
        for h, d in zip(blobs, dev.params[name]):
            d.data[...] = h.data
    synced.flush_host_writes()   # the weights go up now, not inside a counted forward
    return host, dev


def _copies(net):
    blobs = [s for b in net.blobs.values() for s in (b._d, b._g)]
    mirrors = [m for bs in net.params.values() for b in bs for m in b._mirrors]
    return (sum(s.downloads for s in blobs) + sum(m.downloads for m in mirrors),
            sum(s.uploads for s in blobs) + sum(m.uploads for m in mirrors))


def test_host_nets_keep_no_device_copies():
    net = caffe.Net(parse_net_param(NET), caffe.TRAIN)
    assert net._device is None
    assert all(b._d.device is None for b in net.blobs.values())
    assert all(b._mirrors is None for bs in net.params.values() for b in bs)
    net.forward(data=np.ones((4, 6), np.float32))
    assert not synced.PENDING   # a host net never queues uploads


def test_device_net_equals_host_net_forward_backward_and_param_diffs():
    host, dev = _pair()
    x = np.random.RandomState(0).randn(4, 6).astype(np.float32)
    np.testing.assert_array_equal(dev.forward(data=x)["out"], host.forward(data=x)["out"])
    g = np.random.RandomState(1).randn(4, 3).astype(np.float32)
    np.testing.assert_array_equal(dev.backward(out=g)["data"], host.backward(out=g)["data"])
    for name in host.params:
        for h, d in zip(host.params[name], dev.params[name]):
            np.testing.assert_array_equal(d.diff, h.diff)
    np.testing.assert_array_equal(dev.blobs["ip"].diff, host.blobs["ip"].diff)


def test_no_copy_when_python_does_not_look():
    _, dev = _pair()
    dev.blobs["data"].data[...] = 1.0
    before = _copies(dev)
    for _ in range(5):   # the solver's path: tensors only
        loss, outputs = dev.forward_tensors()
        outputs["out"][0].sum().backward()
        dev.sync_blobs()
    downloads, uploads = _copies(dev)
    assert downloads == before[0]            # nothing came back to the host
    assert uploads == before[1] + 1          # the input went up once, not once per forward
    assert dev.blobs["ip"]._d.head == DEVICE and dev.blobs["out"]._d.head == DEVICE


def test_python_writes_reach_the_next_forward_and_reads_see_fresh_values():
    host, dev = _pair()
    x = np.arange(24, dtype=np.float32).reshape(4, 6) / 10
    for net in (host, dev):
        net.blobs["data"].data[...] = x
        net.forward()
    out, ip = dev.blobs["out"], dev.blobs["ip"]
    assert out._d.downloads == 1 and ip._d.downloads == 0   # forward returned the output
    np.testing.assert_array_equal(out.data, host.blobs["out"].data)
    np.testing.assert_array_equal(ip.data, host.blobs["ip"].data)   # read: fresh, once
    ip.data
    assert out._d.downloads == 1 and ip._d.downloads == 1
    for net in (host, dev):   # a weight written from Python is what the next forward uses
        net.params["out"][0].data[0, :] = 0.5
        net.blobs["data"].data[1] = -x[1]
        net.forward()
    np.testing.assert_array_equal(dev.blobs["out"].data, host.blobs["out"].data)
    np.testing.assert_array_equal(dev.params["out"][0].data[0], np.full(5, 0.5, np.float32))
    # a diff written from Python is what the next backward reads
    for net in (host, dev):
        net.blobs["out"].diff[...] = 2.0
        net.backward()
    np.testing.assert_array_equal(dev.params["ip"][0].diff, host.params["ip"][0].diff)


def test_param_reads_follow_device_updates_and_writes_are_not_lost():
    _, dev = _pair()
    ip = dev.params["ip"][0]
    first = ip.data.copy()
    assert ip._mirrors[0].downloads == 1
    ip.data
    assert ip._mirrors[0].downloads == 1     # unchanged on the device: no second copy
    synced.flush_host_writes()               # as the solver does before its update
    with torch.no_grad():
        ip.parameter.mul_(2)                 # a device-side update (as an optimizer's)
    np.testing.assert_allclose(ip.data, 2 * first)
    assert ip._mirrors[0].downloads == 2
    ip.diff[...] = 3.0                       # then clear_param_diffs: zeros win, as in Caffe
    dev.clear_param_diffs()
    assert not ip.diff.any()


# ------------------------------------------------------------------ the solver on the device

def _stage_lenet(tmp_path):
    for f in ("lenet_solver.prototxt", "lenet_train_test.prototxt"):
        shutil.copy(os.path.join(MNIST, f), tmp_path)
    for d in ("mnist_train_lmdb", "mnist_test_lmdb"):
        os.symlink(os.path.join(MNIST, d), tmp_path / d)
    solver = (tmp_path / "lenet_solver.prototxt").read_text()
    (tmp_path / "lenet_solver.prototxt").write_text(
        solver.replace("solver_mode: CPU", "solver_mode: GPU").replace("snapshot: 200",
                                                                      "snapshot: 0"))
    return str(tmp_path / "lenet_solver.prototxt")


def _caffe_losses():
    import re
    text = open(os.path.join(MNIST, "train.log")).read()
    return {int(i): float(v) for i, v in
            re.findall(r"\] Iteration (\d+)(?: \([^)]*\))?, loss = (\S+)", text)}


@pytest.mark.skipif(not os.path.isdir(MNIST), reason="needs shared/reference/mnist")
@pytest.mark.usefixtures("one_torch_thread")
def test_lenet_solver_on_the_device_follows_caffe_and_the_host(tmp_path, monkeypatch):
    """``solver_mode: GPU`` LeNet from Caffe's initial weights: the device solver's losses
    equal the host solver's, and both follow real Caffe's train.log (iterations 0 and 10)."""
    monkeypatch.chdir(tmp_path)
    path = _stage_lenet(tmp_path)
    init = os.path.join(MNIST, "lenet_init.caffemodel")
    runs = {}
    for where in ("host", "device"):
        if where == "device":
            with device.cpu_stand_in():
                solver = caffe.get_solver(path)
        else:
            solver = caffe.get_solver(path)
        solver.net.copy_from(init)
        losses = []
        for _ in range(11):   # average_loss 1: the loss of each iteration, as train.log shows
            solver.step(1)
            losses.append(solver._smoothed_loss)
        runs[where] = (solver, losses)
    (host, host_losses), (dev, dev_losses) = runs["host"], runs["device"]
    assert dev.net._device == torch.device("cpu") and host.net._device is None
    np.testing.assert_allclose(dev_losses, host_losses, rtol=1e-6)
    caffe_losses = _caffe_losses()
    assert dev_losses[0] == pytest.approx(caffe_losses[0], rel=1e-5)
    assert dev_losses[10] == pytest.approx(caffe_losses[10], rel=1e-4)
    for name in host.net.params:
        for h, d in zip(host.net.params[name], dev.net.params[name]):
            np.testing.assert_allclose(d.data, h.data, rtol=1e-5, atol=1e-7)
    # the test net shares the trained weights on the device; its host copy follows them
    np.testing.assert_array_equal(dev.test_nets[0].params["ip2"][0].data,
                                  dev.net.params["ip2"][0].data)


def test_solver_device_choice(tmp_path, monkeypatch):
    (tmp_path / "net.prototxt").write_text(NET)
    text = (f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.01 lr_policy: "fixed" '
            f'max_iter: 1 solver_mode: GPU device_id: 3')
    (tmp_path / "solver.prototxt").write_text(text)
    with device.cpu_stand_in():   # the stand-in wins over solver_mode
        assert caffe.get_solver(str(tmp_path / "solver.prototxt")).net._device.type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="device_id: 3, but torch sees 1 CUDA device; give "
                                         "device_id 0..0"):
        caffe.get_solver(str(tmp_path / "solver.prototxt"))
    with pytest.raises(ValueError, match=r"set_device\(2\): torch sees 1 CUDA device"):
        caffe.set_device(2)
    solver = caffe.Solver(str(tmp_path / "solver.prototxt"), device="cpu")   # -gpu absent
    assert solver.net._device is None and solver.device.type == "cpu"


def test_out_of_memory_names_the_layer_and_the_batch(tmp_path):
    (tmp_path / "net.prototxt").write_text(WITH_LOSS)
    (tmp_path / "solver.prototxt").write_text(
        f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.01 lr_policy: "fixed" max_iter: 1')
    with device.cpu_stand_in():
        solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
    layer = solver.net.layer_dict["out"]

    def no_memory(*args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    layer.module.forward = no_memory
    with pytest.raises(torch.OutOfMemoryError) as caught:
        solver.step(1)
    message = str(caught.value)
    assert "in layer 'out' (InnerProduct) with a batch of 4" in message
    assert "batch_size: 2" in message and "Tried to allocate 2.00 GiB" in message


# ------------------------------------------------------------------ data layers and the CLI

@pytest.mark.skipif(not os.path.isdir(MNIST), reason="needs shared/reference/mnist")
def test_data_layer_pins_batches_for_a_cuda_device(monkeypatch, tmp_path):
    from kaffe.caffe.builders import data as data_layers
    pinned = []
    monkeypatch.setattr(data_layers, "_pin", lambda t: pinned.append(t.shape) or t.clone())
    text = open(os.path.join(MNIST, "lenet_train_test.prototxt")).read()
    monkeypatch.chdir(tmp_path)
    os.symlink(os.path.join(MNIST, "mnist_train_lmdb"), tmp_path / "mnist_train_lmdb")
    net = caffe.Net(parse_net_param(text), caffe.TRAIN)
    layer = net._layer_modules[0]
    reference = caffe.Net(parse_net_param(text), caffe.TRAIN)._layer_modules[0]
    layer.output_device = torch.device("cuda", 0)     # as place_net sets it on CUDA
    batch = layer.next_batch()     # the prefetch thread pins each batch it makes
    layer.close()
    assert pinned[:2] == [(64, 1, 28, 28), (64,)]
    for got, want in zip(batch, reference.next_batch()):
        assert isinstance(got, torch.Tensor)
        np.testing.assert_array_equal(got.numpy(), want)
    reference.close()


@pytest.mark.skipif(not os.path.isdir(MNIST), reason="needs shared/reference/mnist")
def test_kaffe_time_and_test_take_gpu_and_fall_back_without_cuda(monkeypatch):
    from conftest import run_kaffe
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    deploy = os.path.join(SHARED, "zoo", "lenet_deploy.prototxt")
    code, out = run_kaffe("time", "-model", deploy, "-iterations", "1", "-gpu", "0")
    assert code == 0 and "Use CPU." in out and "Average Forward pass" in out
    code, out = run_kaffe("time", "-model", deploy, "-gpu", "0,1")
    assert code == 1 and "kaffe time times one device" in out


def test_views_taken_before_an_update_show_its_result(tmp_path, monkeypatch):
    """BVLC's test_apply_update / test_clear_param_diffs on the device: numpy views Python took
    just before ``apply_update`` or ``clear_param_diffs`` show the result (one copy each)."""
    (tmp_path / "net.prototxt").write_text(WITH_LOSS)
    (tmp_path / "solver.prototxt").write_text(
        f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.01 lr_policy: "fixed" max_iter: 1')
    monkeypatch.setenv("KAFFE_CAFFE_STAND_IN", "1")   # every net "on the device"
    solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
    assert solver.net._device == torch.device("cpu")
    data = solver.net.params["ip"][0].data
    data[...] = 0
    solver.net.params["ip"][0].diff[...] = 1
    solver.apply_update()
    np.testing.assert_allclose(data, np.full(data.shape, -0.01, np.float32), atol=1e-7)
    solver.net.forward()
    solver.net.backward()
    diff = solver.net.params["ip"][0].diff
    assert np.abs(diff).max() > 0
    solver.net.clear_param_diffs()
    assert not diff.any()


@pytest.mark.skipif(not os.path.isdir(MNIST), reason="needs shared/reference/mnist")
def test_kaffe_test_out_of_memory_names_the_layer(monkeypatch):
    from conftest import run_kaffe
    from kaffe.caffe.builders.registry import LAYER_BUILDERS

    def no_memory(self, *args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
    monkeypatch.setattr(LAYER_BUILDERS["Pooling"], "forward", no_memory)
    code, out = run_kaffe("test", "-model", os.path.join(SHARED, "zoo", "lenet_deploy.prototxt"),
                          "-weights", os.path.join(MNIST, "lenet_iter_200.caffemodel"),
                          "-iterations", "1")
    assert code == 1
    assert "kaffe test ran out of device memory in layer 'pool1' (Pooling) with a batch of 64" \
        in out and "batch_size: 32" in out


@pytest.mark.skipif(not os.path.isdir(MNIST), reason="needs shared/reference/mnist")
@pytest.mark.usefixtures("one_torch_thread")
def test_kaffe_train_gpu_flag_places_the_solver_nets(tmp_path, monkeypatch):
    """``kaffe train -gpu 0`` as on a 1-GPU machine, with the CPU standing in for cuda:0: the
    solver's nets are placed on the device the flag names, and the losses follow Caffe's."""
    import re

    from conftest import run_kaffe
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "stand-in")
    asked = []
    real_resolve = device.resolve

    def stand_in(dev):   # cuda:0 -> the CPU playing the device
        asked.append(dev)
        return torch.device("cpu") if torch.device(dev).type == "cuda" else real_resolve(dev)
    monkeypatch.setattr(device, "resolve", stand_in)
    placed = []
    real_place = device.place_net
    monkeypatch.setattr(device, "place_net",
                        lambda net, dev: placed.append(dev) or real_place(net, dev))
    monkeypatch.chdir(tmp_path)
    path = _stage_lenet(tmp_path)
    code, log = run_kaffe("train", "-solver", path, "-gpu", "0", "-iterations", "10",
                          "-weights", os.path.join(MNIST, "lenet_init.caffemodel"))
    assert code == 0, log[-2000:]
    assert "Use GPU with device ID 0" in log
    assert torch.device("cuda", 0) in asked
    assert placed and all(d == torch.device("cpu") for d in placed)   # train + test net
    losses = {int(i): float(v) for i, v in
              re.findall(r"Iteration (\d+) \([^)]*\), loss = (\S+)", log)}
    caffe_losses = _caffe_losses()
    assert losses[0] == pytest.approx(caffe_losses[0], rel=1e-5)
