"""Host/device bookkeeping of blobs (Caffe's SyncedMemory): a second CPU tensor stands in for
the device, and the copy counters show each copy happens once, only when the other side is
fresher. The net's results with blobs "on the device" equal the host-only net's."""
import numpy as np
import torch

import kaffe.caffe as caffe
from kaffe.caffe import parse_net_param
from kaffe.caffe.synced import DEVICE, HOST, SYNCED, SyncedTensor


def test_copies_happen_once_and_only_when_needed():
    s = SyncedTensor((2, 3), device="cpu")          # the "device" copy is a second tensor
    s.host()[...] = 1.0                             # Python writes the host view
    dev = s.on_device()
    assert (s.uploads, s.head) == (1, SYNCED) and dev.data_ptr() != s.host(False).data_ptr()
    s.on_device()
    assert s.uploads == 1                           # already in sync: no second upload
    s.write(torch.full((2, 3), 5.0))                # a layer wrote on the device
    assert s.head == DEVICE and s.downloads == 0
    assert float(s.host(mutable=False)[0, 0]) == 5.0 and s.downloads == 1
    s.host(mutable=False)
    assert s.downloads == 1 and s.head == SYNCED
    s.host()[0, 0] = 7.0                            # handing out a writable view: host is head
    assert s.head == HOST
    assert float(s.on_device()[0, 0]) == 7.0 and s.uploads == 2


def test_host_only_never_copies():
    s = SyncedTensor((4,))
    s.host()[...] = 2.0
    assert s.on_device() is s.host() and s.uploads == s.downloads == 0
    s.write(torch.ones(4))
    assert s.head == HOST and float(s.host()[0]) == 1.0


NET = """name: "n" force_backward: true
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 3 dim: 5 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
  inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }
layer { name: "out" type: "InnerProduct" bottom: "ip" top: "out"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 1 } } }
"""


def test_net_with_blobs_on_a_device_matches_the_host_net():
    host_net = caffe.Net(parse_net_param(NET), caffe.TRAIN)
    dev_net = caffe.Net(parse_net_param(NET), caffe.TRAIN)
    dev_net.share_with(host_net)
    for blob in dev_net.blobs.values():
        blob.to_device("cpu")
    x = np.random.RandomState(0).randn(3, 5).astype(np.float32)
    host_out = host_net.forward(data=x)
    dev_net.blobs["data"].data[...] = x             # Python writes: uploaded before forward
    out = dev_net.forward()                         # returns the outputs: downloaded once
    data, ip, top = (dev_net.blobs[n]._d for n in ("data", "ip", "out"))
    assert data.uploads == 1 and top.downloads == 1
    assert ip.head == DEVICE and ip.downloads == 0  # an inner blob stays on the device...
    np.testing.assert_allclose(dev_net.blobs["ip"].data, host_net.blobs["ip"].data, rtol=1e-6)
    dev_net.blobs["ip"].data
    assert ip.downloads == 1                        # ...until Python reads it, once
    np.testing.assert_allclose(out["out"], host_out["out"], rtol=1e-6)
    dev_net.blobs["out"].diff[...] = 1.0
    host_net.blobs["out"].diff[...] = 1.0
    dev_net.backward()
    host_net.backward()
    assert dev_net.blobs["out"]._g.uploads == 1 and dev_net.blobs["ip"]._g.head == DEVICE
    np.testing.assert_allclose(dev_net.blobs["data"].diff, host_net.blobs["data"].diff,
                               rtol=1e-6)


def test_gpu_requests_fall_back_to_the_cpu_once(tmp_path, caplog, monkeypatch):
    import logging

    from kaffe.caffe import runtime
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(runtime._STATE, "warned", False)
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(
        f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.01 lr_policy: "fixed" max_iter: 1 '
        f'solver_mode: GPU')
    with caplog.at_level(logging.WARNING, logger="kaffe.caffe"):
        solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
        caffe.set_mode_gpu()
    messages = [r.getMessage() for r in caplog.records if "no CUDA device" in r.getMessage()]
    assert len(messages) == 1 and "solver_mode: GPU" in messages[0]
    assert runtime.mode() == "CPU" and solver.device.type == "cpu"
