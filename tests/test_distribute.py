"""Data-parallel training on this CPU: 2 processes over gloo, started as users start them.

Three jobs run side by side (process start-up dominates, so each job makes many checks):
``kaffe.distribute.launch(2, ...)`` (torchrun --standalone), two torchrun "nodes" on loopback
(``--nnodes=2``, c10d rendezvous on 127.0.0.1), and two plain processes using the explicit
``DataParallel(init_method=..., rank=..., world_size=...)`` form in which one worker is
killed. Oracles: a hand-written PyTorch loop over the same global batches, and one kaffe
process over them (the issue's rtol 1e-5).
"""
import glob
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import distribute_worker as worker
from kaffe import distribute
from kaffe.distribute import sharding

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "distribute_worker.py")
WAIT_S = 150


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                 "KAFFE_LAUNCHED"):
        env.pop(name, None)
    return env


def _start(command, out, name):
    log = open(os.path.join(out, f"{name}.log"), "w")
    return subprocess.Popen(command, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                            cwd=HERE)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """All three jobs, started at once; each entry: (out dir, processes)."""
    started = {}
    out = str(tmp_path_factory.mktemp("standalone"))
    started["standalone"] = (out, [_start(
        distribute.torchrun_command(2, [SCRIPT, "main", out]), out, "launcher")])
    out = str(tmp_path_factory.mktemp("two_nodes"))
    endpoint = f"127.0.0.1:{_free_port()}"
    started["two_nodes"] = (out, [_start(distribute.torchrun_command(
        1, [SCRIPT, "main", out], nnodes=2, node_rank=node, rdzv_endpoint=endpoint,
        rdzv_id="kaffe-test"), out, f"node{node}") for node in (0, 1)])
    out = str(tmp_path_factory.mktemp("kill"))
    init = f"tcp://127.0.0.1:{_free_port()}"
    started["kill"] = (out, [_start([sys.executable, SCRIPT, "kill", out, str(r), "2", init],
                                    out, f"rank{r}") for r in (0, 1)])
    yield started
    for _, processes in started.values():
        for p in processes:
            if p.poll() is None:
                p.kill()


def _finish(job):
    out, processes = job
    codes = []
    for p in processes:
        try:
            codes.append(p.wait(timeout=WAIT_S))
        except subprocess.TimeoutExpired:
            p.kill()
            pytest.fail(f"a worker of the job in {out} did not finish in {WAIT_S} s (a hang)")
    return out, codes


def _logs(out):
    return "\n".join(open(p).read()[-3000:] for p in sorted(glob.glob(os.path.join(out, "*.log"))))


# ------------------------------------------------------------------------------ oracles
def _hand_loop():
    """PyTorch by hand: kaffe's initial weights, rank 0's shuffling order (seed 1), SGD with
    momentum on softmax cross-entropy, 16-sample global batches."""
    x, y = (torch.from_numpy(a) for a in worker.data())
    w1, b1, w2, b2 = (torch.tensor(w, requires_grad=True) for w in worker.build().get_weights())
    opt = torch.optim.SGD([w1, b1, w2, b2], lr=0.1, momentum=0.9)
    torch.manual_seed(1)
    order = torch.randperm(worker.N)
    for start in range(0, worker.N, worker.BATCH):
        pick = order[start:start + worker.BATCH]
        opt.zero_grad()
        logits = torch.relu(x[pick] @ w1 + b1) @ w2 + b2
        F.cross_entropy(logits, y[pick]).backward()
        opt.step()
    return [w.detach().numpy() for w in (w1, b1, w2, b2)]


@pytest.fixture(scope="module")
def one_process():
    """The same fit (and evaluate) in this one process."""
    x, y = worker.data()
    model = worker.build()
    torch.manual_seed(1)
    history = model.fit(x, y, batch_size=worker.BATCH, epochs=1, shuffle=True, verbose=0,
                        validation_data=(x[:21], y[:21]))
    two = worker.two_heads()
    torch.manual_seed(3)
    two.fit(x, [x[:, :1], x[:, :1]], batch_size=8, epochs=1, verbose=0)
    single = worker.build()
    on_batch = {"train": single.train_on_batch(x[:15], y[:15]),
                "test": single.test_on_batch(x[15:30], y[15:30]),
                "weights": single.get_weights()}
    return {"weights": model.get_weights(), "history": history.history,
            "on_batch": on_batch,
            "two_heads": two.get_weights(),
            "evaluate": model.evaluate(x, y, batch_size=10, verbose=0),
            "hand": _hand_loop()}


# ------------------------------------------------------------------------------ the jobs
@pytest.mark.parametrize("name", ["standalone", "two_nodes"])
def test_two_processes_train_as_one(jobs, one_process, name):
    out, codes = _finish(jobs[name])
    assert codes == [0] * len(codes), _logs(out)
    ranks = [json.load(open(os.path.join(out, f"rank{r}.json"))) for r in (0, 1)]
    weights = [list(np.load(os.path.join(out, f"rank{r}.npz")).values()) for r in (0, 1)]
    assert ranks[0]["world"] == 2
    # every process holds the same model, equal to one process's and to the hand loop's
    for w0, w1, single, hand in zip(weights[0], weights[1], one_process["weights"],
                                    one_process["hand"]):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_allclose(w0, single, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(w0, hand, rtol=1e-5, atol=1e-6)
    # epoch logs are over all samples of all ranks, identical everywhere
    assert sorted(ranks[0]["history"]) == ["accuracy", "auc", "loss", "val_accuracy", "val_auc",
                                           "val_loss"]
    for rank in ranks:
        for key, values in one_process["history"].items():
            np.testing.assert_allclose(rank["history"][key], values, rtol=1e-5, err_msg=key)
        np.testing.assert_allclose(rank["evaluate"], one_process["evaluate"], rtol=1e-5)
    # each sample is trained on exactly once per epoch, whatever the source
    for source in ("arrays", "generator", "sequence", "dataset", "loader"):
        a, b = ranks[0]["seen"][source], ranks[1]["seen"][source]
        assert sorted(a + b) == list(range(worker.N)), source
        assert len(a) == 25 and len(b) == 24, source  # halves of every global batch
    # train_on_batch / test_on_batch split their batch and report over all of it
    for rank in ranks:
        for key in ("train", "test", "weights"):
            for got, single in zip(rank["on_batch"][key], one_process["on_batch"][key]):
                np.testing.assert_allclose(got, single, rtol=1e-5, atol=1e-6, err_msg=key)
    # weights outside the loss (an output without a loss) are found and left alone
    for rank in ranks:
        for got, single in zip(rank["two_heads"], one_process["two_heads"]):
            np.testing.assert_allclose(got, single, rtol=1e-5, atol=1e-6)
    # average_gradients / broadcast_parameters: means of (1, 2), missing grads as zeros
    for rank in ranks:
        assert rank["helpers"] == {"grads": [[1.5] * 3, [0.0, 0.0]], "values": [0.0] * 3}
    # rank 0 alone writes: one checkpoint, one event file per run, one CSV row
    assert sorted(os.listdir(out)) == sorted(
        ["ckpt.weights.h5", "tb", "log.csv", "rank0.json", "rank1.json", "rank0.npz",
         "rank1.npz"] + [os.path.basename(p) for p in glob.glob(os.path.join(out, "*.log"))])
    for run in ("train", "validation"):
        assert len(os.listdir(os.path.join(out, "tb", run))) == 1, run
    assert len(open(os.path.join(out, "log.csv")).read().splitlines()) == 2


def test_killed_worker_stops_the_other_with_a_clear_error(jobs):
    out, codes = _finish(jobs["kill"])
    assert codes[1] == -9, _logs(out)  # rank 1 killed itself (SIGKILL) in epoch 1, step 3
    assert codes[0] == 0, _logs(out)  # the worker script caught the error and wrote it
    outcome = json.load(open(os.path.join(out, "kill0.json")))
    error = outcome["error"] or ""
    assert error.startswith("DistributedError: kaffe data-parallel job: process rank 0 of 2 "
                            "lost contact with the others in epoch 1, step 3"), error
    assert "timeout (30 s)" in error
    killed_at = float(open(os.path.join(out, "killed_at")).read())
    assert 0 <= outcome["failed_at"] - killed_at < 30  # within the group's timeout: no hang


# ------------------------------------------------------------------------------ in-process
def test_split_bounds_match_torch_tensor_split():
    for size in range(0, 40):
        for world in (1, 2, 3, 4, 7):
            expected = [len(t) for t in torch.tensor_split(torch.arange(size), world)]
            got = [hi - lo for lo, hi in (sharding.bounds(size, r, world) for r in range(world))]
            assert got == expected
            ends = [sharding.bounds(size, r, world) for r in range(world)]
            assert all(ends[r][1] == ends[r + 1][0] for r in range(world - 1))


def test_single_process_is_the_plain_path(monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert distribute.resolve() is None
    assert distribute.resolve(True) is None  # one process: nothing to join
    assert distribute.resolve(distribute.DataParallel()) is None
    assert distribute.world_size() == 1 and distribute.rank() == 0 and distribute.is_rank_zero()
    model = worker.build()
    x, y = worker.data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model._distribution is None
    assert model._select_train_step() == model._train_step


def test_explicit_forms_and_their_errors(monkeypatch):
    import kaffe.distribution
    assert kaffe.distribution.DataParallel is distribute.DataParallel
    with pytest.raises(NotImplementedError, match="device_mesh"):
        distribute.DataParallel(device_mesh=object())
    with pytest.raises(TypeError, match="DataParallel"):
        distribute.set_distribution("data_parallel")
    with pytest.raises(TypeError, match="distribute="):
        worker.build().fit(*worker.data(), verbose=0, distribute="yes")
    with pytest.raises(ValueError, match="positive"):
        distribute.DataParallel(timeout=0)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(distribute.DistributedError, match="rank 1 of 2.*torchrun"):
        distribute.resolve()
    with pytest.raises(RuntimeError, match="already"):
        distribute.launch(2, ["train.py"])


def test_torchrun_command_forms():
    py = sys.executable
    run = [py, "-m", "torch.distributed.run"]
    assert distribute.torchrun_command(2, ["train.py", "--epochs", "3"]) == run + [
        "--nproc-per-node", "2", "--max-restarts", "0", "--standalone", "train.py",
        "--epochs", "3"]
    module = distribute.torchrun_command(4, ["-m", "kaffe.cli.main", "train"])
    assert module[3:5] == ["--nproc-per-node", "4"]
    assert module[-4:] == ["--standalone", "-m", "kaffe.cli.main", "train"]
    multi = distribute.torchrun_command(1, ["kaffe", "train"], nnodes=2, node_rank=1,
                                        rdzv_endpoint="10.0.0.1:29500")
    assert multi[multi.index("--rdzv-endpoint") + 1] == "10.0.0.1:29500"
    assert multi[-3:] == ["--no-python", "kaffe", "train"] and "--standalone" not in multi
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        distribute.torchrun_command(1, ["t.py"], nnodes=2)
    with pytest.raises(ValueError, match="positive"):
        distribute.torchrun_command(0, ["t.py"])
    assert distribute.gpu_list("0, 2") == [0, 2]
    with pytest.raises(ValueError, match="-gpu"):
        distribute.gpu_list("0,x")
