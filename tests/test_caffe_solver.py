"""The Caffe solver against real Caffe: ../shared/reference/solvers/ holds, for every solver type,
the weights and solver state after each of 10 updates from the same start, and Caffe's log."""
import logging
import os
import re

import numpy as np
import pytest

from kaffe import caffe
from kaffe.caffe import blobs, prototxt

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "solvers")
SOLVERS = ["sgd_step", "sgd_l1_clip_itersize2_fixed", "nesterov_inv", "adagrad_multistep",
           "rmsprop_poly", "adadelta_sigmoid", "adam_exp"]

pytestmark = pytest.mark.skipif(not os.path.isdir(REF), reason="needs ../shared/reference")


@pytest.fixture
def in_solvers(monkeypatch):
    """Run inside reference/solvers (its paths are relative to it, as for `caffe train`)."""
    monkeypatch.chdir(REF)


def _param(name, tmp_path):
    param = prototxt.read_solver_param(f"{name}.prototxt")
    param.snapshot_prefix = str(tmp_path / name)
    return param


def _caffe_log(name):
    """Caffe's per-iteration losses, learning rates and clipping messages from its train.log."""
    text = open(os.path.join(REF, name, "train.log")).read()
    losses = {int(i): float(v) for i, v in
              re.findall(r"\] Iteration (\d+) \(.*\), loss = (\S+)", text)}
    final = re.search(r"\] Iteration (\d+), loss = (\S+)", text)
    if final:
        losses[int(final.group(1))] = float(final.group(2))
    rates = {int(i): float(v) for i, v in re.findall(r"\] Iteration (\d+), lr = (\S+)", text)}
    clips = re.findall(r"Gradient clipping: .*", text)
    return losses, rates, clips


def _kaffe_log(records):
    text = "\n".join(r.getMessage() for r in records)
    losses = {int(i): float(v) for i, v in
              re.findall(r"^Iteration (\d+)(?: \(.*\))?, loss = (\S+)", text, re.M)}
    rates = {int(i): float(v) for i, v in re.findall(r"^Iteration (\d+), lr = (\S+)", text, re.M)}
    return losses, rates, re.findall(r"Gradient clipping: .*", text)


def _atol(reference):
    """float32 round-off on elements near zero (sums that cancel): a millionth of the blob's
    largest magnitude."""
    return 1e-6 * float(np.abs(reference).max(initial=0.0))


def _assert_weights_equal(mine, ref, where):
    a, b = blobs.load_caffemodel(ref), blobs.load_caffemodel(mine)
    assert list(a) == list(b), where
    for layer in a:
        for i, (x, y) in enumerate(zip(a[layer], b[layer])):
            np.testing.assert_allclose(y, x, rtol=1e-4, atol=_atol(x),
                                       err_msg=f"{where}: {layer} blob {i}")


def _assert_state_equal(mine, ref, where):
    a, b = blobs.load_solverstate(ref), blobs.load_solverstate(mine)
    assert (b.iter, b.current_step) == (a.iter, a.current_step), where
    assert len(b.history) == len(a.history), where
    for i, (x, y) in enumerate(zip(a.history, b.history)):
        assert x.shape == y.shape, f"{where}: history {i}"
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=_atol(x), err_msg=f"{where}: history {i}")


@pytest.mark.parametrize("name", SOLVERS)
def test_each_update_equals_caffe(name, tmp_path, in_solvers, caplog):
    """Weights and history after K = 1..10 updates equal Caffe's snapshots (rtol 1e-4); the
    losses, learning rates and clipping messages equal Caffe's log lines."""
    caplog.set_level(logging.INFO, logger="kaffe")
    solver = caffe.get_solver(_param(name, tmp_path), weights="init.caffemodel")
    assert type(solver.optimizer).caffe_type == solver.param.type
    solver.solve()
    assert solver.iter == 10
    for k in range(1, 11):
        where = f"{name} after {k} updates"
        _assert_weights_equal(tmp_path / f"{name}_iter_{k}.caffemodel",
                              os.path.join(name, f"{name}_iter_{k}.caffemodel"), where)
        _assert_state_equal(tmp_path / f"{name}_iter_{k}.solverstate",
                            os.path.join(name, f"{name}_iter_{k}.solverstate"), where)
    (c_losses, c_rates, c_clips), (k_losses, k_rates, k_clips) = _caffe_log(name), \
        _kaffe_log(caplog.records)
    assert sorted(k_rates) == sorted(c_rates) == list(range(10))
    for i in c_rates:
        assert k_rates[i] == pytest.approx(c_rates[i], rel=2e-5), f"lr at iteration {i}"
    assert sorted(k_losses) == sorted(c_losses) == list(range(11))
    for i in c_losses:
        assert k_losses[i] == pytest.approx(c_losses[i], rel=1e-4), f"loss at iteration {i}"
    assert len(k_clips) == len(c_clips)
    for mine, theirs in zip(k_clips, c_clips):
        got = [float(v) for v in re.findall(r"[\d.]+(?:e[-+]\d+)?", mine)]
        want = [float(v) for v in re.findall(r"[\d.]+(?:e[-+]\d+)?", theirs)]
        np.testing.assert_allclose(got, want, rtol=1e-4)


def test_hdf5_snapshots_match_caffe(tmp_path, in_solvers):
    """snapshot_format: HDF5 writes .caffemodel.h5 / .solverstate.h5 in Caffe's layout."""
    import h5py
    solver = caffe.get_solver(_param("sgd_step_hdf5", tmp_path), weights="init.caffemodel")
    solver.solve()
    mine, ref = tmp_path / "sgd_step_hdf5_iter_10", os.path.join("sgd_step_hdf5",
                                                                  "sgd_step_hdf5_iter_10")
    _assert_weights_equal(f"{mine}.caffemodel.h5", f"{ref}.caffemodel.h5", "HDF5 weights")
    _assert_state_equal(f"{mine}.solverstate.h5", f"{ref}.solverstate.h5", "HDF5 state")
    with h5py.File(f"{ref}.solverstate.h5") as a, h5py.File(f"{mine}.solverstate.h5") as b:
        assert sorted(a) == sorted(b)
        assert sorted(a["history"]) == sorted(b["history"])
    # weights equal the binary sgd_step snapshot too
    _assert_weights_equal(f"{mine}.caffemodel.h5", os.path.join(
        "sgd_step", "sgd_step_iter_10.caffemodel"), "HDF5 vs binary")


@pytest.mark.parametrize("name", ["sgd_step", "adam_exp", "adadelta_sigmoid"])
def test_restore_real_caffe_solverstate(name, tmp_path, in_solvers):
    """Resuming from Caffe's own iteration-5 .solverstate reproduces Caffe's iteration 10."""
    solver = caffe.get_solver(_param(name, tmp_path))
    solver.restore(os.path.join(name, f"{name}_iter_5.solverstate"))
    assert solver.iter == 5
    solver.step(5)
    solver.snapshot()
    _assert_weights_equal(tmp_path / f"{name}_iter_10.caffemodel",
                          os.path.join(name, f"{name}_iter_10.caffemodel"), f"{name} resumed")
    _assert_state_equal(tmp_path / f"{name}_iter_10.solverstate",
                        os.path.join(name, f"{name}_iter_10.solverstate"), f"{name} resumed")


def test_typed_solver_classes_and_pycaffe_surface(tmp_path, in_solvers):
    """caffe.AdamSolver(path) is Adam whatever the file says; solver.net / test_nets / iter."""
    param = _param("sgd_step", tmp_path)
    param.snapshot = 0
    path = tmp_path / "solver.prototxt"
    param.net = os.path.join(REF, "tiny_net.prototxt")
    param.ClearField("momentum")  # AdaGrad and RMSProp refuse momentum, as in Caffe
    prototxt.write_prototxt(param, str(path))
    solver = caffe.AdamSolver(str(path))
    assert solver.param.type == "Adam"
    assert type(solver.optimizer).__name__ == "CaffeAdam"
    assert solver.test_nets == [] and solver.iter == 0
    solver.net.copy_from("init.caffemodel")
    solver.step(2)
    assert solver.iter == 2
    assert solver.net.blobs["loss"].data.shape == ()
    assert float(solver.net.blobs["loss"].data) > 0
    for cls in (caffe.SGDSolver, caffe.NesterovSolver, caffe.AdaGradSolver,
                caffe.RMSPropSolver, caffe.AdaDeltaSolver):
        assert cls(str(path)).param.type == cls.__name__[:-len("Solver")]


def test_test_nets_share_weights_and_report_means(tmp_path, in_solvers, caplog):
    """A test net (TEST phase, same file) sees the train net's current weights; its outputs
    are averaged over test_iter batches and logged in Caffe's words."""
    caplog.set_level(logging.INFO, logger="kaffe")
    param = _param("sgd_step", tmp_path)
    param.snapshot = 0
    param.snapshot_after_train = False
    param.test_iter.append(3)
    param.test_interval = 5
    solver = caffe.get_solver(param, weights="init.caffemodel")
    assert len(solver.test_nets) == 1 and solver.test_nets[0].phase == caffe.TEST
    solver.solve()
    text = "\n".join(r.getMessage() for r in caplog.records)
    tests = re.findall(r"Iteration (\d+), Testing net \(#0\)", text)
    assert tests == ["0", "5", "10"]
    losses = [float(v) for v in re.findall(r"Test net output #0: loss = (\S+) \(\* 1 = ", text)]
    # the test loss at iteration 0 and 10 is the train loss at those weights (same data)
    assert losses[0] == pytest.approx(1.0432, rel=1e-4)
    assert losses[2] == pytest.approx(0.390919, rel=1e-4)


def test_average_loss_smooths_like_caffe(tmp_path, in_solvers, caplog):
    """average_loss: 3 displays the running mean of the last 3 losses (Caffe's formula applied
    to Caffe's own per-iteration losses)."""
    caplog.set_level(logging.INFO, logger="kaffe")
    losses, _, _ = _caffe_log("sgd_step")
    param = _param("sgd_step", tmp_path)
    param.snapshot = 0
    param.average_loss = 3
    caffe.get_solver(param, weights="init.caffemodel").step(10)
    shown, _, _ = _kaffe_log(caplog.records)
    for i in range(10):
        window = [losses[j] for j in range(max(0, i - 2), i + 1)]
        assert shown[i] == pytest.approx(np.mean(window), rel=1e-4), f"iteration {i}"


def test_snapshot_survives_kill_during_write(tmp_path):
    """kill -9 while a snapshot is being rewritten leaves a complete file (old or new)."""
    import signal
    import subprocess
    import sys
    import time
    script = tmp_path / "loop.py"
    script.write_text(
        "import sys, numpy as np\n"
        "from kaffe.caffe import blobs\n"
        "w = {'ip': [np.full((2000, 1000), float(i), np.float32) for i in range(2)]}\n"
        "blobs.save_caffemodel(sys.argv[1], w)\n"
        "print('ready', flush=True)\n"
        "k = 0\n"
        "while True:\n"
        "    k += 1\n"
        "    blobs.save_caffemodel(sys.argv[1], {'ip': [a + k for a in w['ip']]})\n"
        "    blobs.save_solverstate(sys.argv[2], blobs.SolverSnapshot(k, sys.argv[1], 0,\n"
        "                                                           w['ip']))\n")
    model, state = tmp_path / "net_iter_1.caffemodel", tmp_path / "net_iter_1.solverstate"
    proc = subprocess.Popen([sys.executable, str(script), str(model), str(state)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.7)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    weights = blobs.load_caffemodel(model)["ip"]
    assert weights[0].shape == (2000, 1000)
    assert np.all(weights[0] == weights[0].flat[0])
    assert weights[1].flat[0] == weights[0].flat[0] + 1
    if state.exists():
        assert len(blobs.load_solverstate(state).history) == 2


def test_bad_inputs_name_the_problem(tmp_path, in_solvers):
    """A missing net file, an unknown solver field, a bad policy or type, a negative sigmoid
    gamma: errors name the file, line or field before any training."""
    bad = tmp_path / "missing_net.prototxt"
    bad.write_text('net: "no_such_net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n')
    with pytest.raises(ValueError, match=r"no_such_net\.prototxt.*does not exist"):
        caffe.get_solver(str(bad))
    typo = tmp_path / "typo.prototxt"
    typo.write_text('net: "tiny_net.prototxt"\nbase_lr: 0.1\nlr_polcy: "fixed"\n')
    with pytest.raises(caffe.PrototxtError, match=r"typo\.prototxt:3.*lr_polcy") as err:
        caffe.get_solver(str(typo))
    assert err.value.line == 3
    policy = tmp_path / "policy.prototxt"
    policy.write_text('net: "tiny_net.prototxt"\nbase_lr: 0.1\nlr_policy: "cosine"\n')
    with pytest.raises(ValueError, match=r"policy\.prototxt.*'cosine'.*fixed, step"):
        caffe.get_solver(str(policy))
    kind = tmp_path / "kind.prototxt"
    kind.write_text('net: "tiny_net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\ntype: "Sgd"\n')
    with pytest.raises(ValueError, match=r"Unknown solver type 'Sgd'.*SGD, Nesterov"):
        caffe.get_solver(str(kind))
    gamma = os.path.join(REF, "..", "errors", "solver_sigmoid_negative_gamma.prototxt")
    if os.path.exists(gamma):
        with pytest.raises(ValueError, match=r"gamma >= 0.*gamma=-"):
            caffe.get_solver(gamma)
    momentum = tmp_path / "adagrad_momentum.prototxt"
    momentum.write_text('net: "tiny_net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n'
                        'type: "AdaGrad"\nmomentum: 0.9\n')
    with pytest.raises(ValueError, match=r"Momentum cannot be used with AdaGrad"):
        caffe.get_solver(str(momentum))
    prefix = tmp_path / "snap.prototxt"
    prefix.write_text('net: "tiny_net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n'
                      'snapshot: 5\nsnapshot_prefix: "/no/such/dir/x"\n')
    with pytest.raises(ValueError, match=r"snapshot prefix '/no/such/dir/x'.*exists"):
        caffe.get_solver(str(prefix))


def test_weights_warn_when_no_layer_matches(tmp_path, in_solvers, caplog):
    """-weights whose layer names match nothing in the net: a warning listing both sides."""
    blobs.save_caffemodel(str(tmp_path / "other.caffemodel"),
                          {"fc_other": [np.zeros((3, 6), np.float32)]})
    param = _param("sgd_step", tmp_path)
    with caplog.at_level(logging.WARNING, logger="kaffe"):
        caffe.get_solver(param, weights=str(tmp_path / "other.caffemodel"))
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "no layer of the net matches" in message
    assert "ip1, ip2" in message and "fc_other" in message
    # the solver's own `weights` field, comma-separated like -weights, is split the same way
    param = _param("sgd_step", tmp_path)
    param.weights.append(f"{tmp_path / 'other.caffemodel'}, init.caffemodel")
    solver = caffe.get_solver(param)
    np.testing.assert_array_equal(solver.net.params["ip1"][0].data,
                                  blobs.load_caffemodel("init.caffemodel")["ip1"][0])
