"""Every real-Caffe layer oracle (shared/reference/layers, see its README) through pycaffe's
public API, as a pycaffe user types it: ``caffe.Net(prototxt, caffemodel, caffe.TEST)``, inputs
written into ``net.blobs[name].data``, ``net.forward()``, top diffs written into
``net.blobs[top].diff``, ``net.backward()``, then every blob's data and diff and every
``net.params[layer][i].diff`` compared with what Caffe computed. Each case runs on the host and
on a net placed on a device, the CPU standing in for it (issue 18: the device bookkeeping of
blobs and parameters must give the same values)."""
import contextlib
import json
import os

import numpy as np
import pytest
import torch

import kaffe.caffe as caffe
from kaffe.caffe import device

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "layers")
REF = os.path.abspath(os.environ.get("KAFFE_CAFFE_LAYER_REF", REF))
HAVE_REF = os.path.isfile(os.path.join(REF, "index.json"))
RTOL, ATOL = 1e-4, 1e-5


def _cases():
    if not HAVE_REF:
        return []
    with open(os.path.join(REF, "index.json")) as f:
        return json.load(f)


CASES = _cases()
needs_ref = pytest.mark.skipif(not HAVE_REF, reason="shared/reference/layers is absent")


def _close(got, want, what):
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, Caffe's {want.shape}"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


@needs_ref
def test_all_103_oracles_are_here():
    assert len(CASES) == 103


@needs_ref
@pytest.mark.parametrize("placement", ["host", "stand_in_device"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_oracle_through_caffe_net(case, placement):
    name = case["name"]
    ref = np.load(os.path.join(REF, name + ".npz"))
    on_device = placement == "stand_in_device"
    with device.cpu_stand_in() if on_device else contextlib.nullcontext():
        net = caffe.Net(os.path.join(REF, name + ".prototxt"),
                        os.path.join(REF, name + ".caffemodel"), caffe.TEST)
    if on_device:
        assert net._device == torch.device("cpu")
        assert all(b._mirrors is not None for bs in net.params.values() for b in bs)
    for inp in case["inputs"]:
        net.blobs[inp].data[...] = ref["data__" + inp]
    net.forward()
    for key in ref.files:
        if key.startswith("data__"):
            _close(net.blobs[key[6:]].data, ref[key], f"{name}: {key}")
    if not case["backward"]:
        return
    for key in ref.files:
        if key.startswith("topdiff__"):
            net.blobs[key[9:]].diff[...] = ref[key]
    net.backward()
    for key in ref.files:
        if key.startswith("diff__"):
            _close(net.blobs[key[6:]].diff, ref[key], f"{name}: {key}")
        elif key.startswith("paramdiff__"):
            _, layer, i = key.split("__")
            _close(net.params[layer][int(i)].diff, ref[key], f"{name}: {key}")
