"""Start N copies of a command under torch's elastic launcher (``torch.distributed.run``,
i.e. ``torchrun``), for commands that start their own processes (``kaffe train --nproc N``,
``kaffe train -gpu 0,1``).

``launch(2, ["-m", "kaffe.cli.main", "train", "-solver", "s.prototxt"])`` runs, in a child::

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        -m kaffe.cli.main train -solver s.prototxt

and returns its exit status. Each worker sees ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT`` (and ``KAFFE_LAUNCHED=1``), which is all ``fit`` and the
Caffe solver need to train data-parallel. When one worker fails, torchrun stops the others
and the status is non-zero.
"""
import os
import subprocess
import sys

from kaffe.distribute import environment


def launched():
    """True inside a worker started by ``launch`` or torchrun: don't launch again."""
    return os.environ.get("KAFFE_LAUNCHED") == "1" or environment.launched_by_torchrun()


def gpu_list(spec):
    """Caffe's ``-gpu`` value (``"0,1"``, ``"all"``) as a list of device ids."""
    import torch
    if str(spec).strip().lower() == "all":
        count = torch.cuda.device_count()
        if count == 0:
            raise ValueError("-gpu all: no CUDA device is visible to torch on this machine.")
        return list(range(count))
    try:
        ids = [int(part) for part in str(spec).split(",") if part.strip() != ""]
    except ValueError:
        raise ValueError(f"-gpu expects device ids like '0' or '0,1', or 'all'; received "
                         f"{spec!r}.") from None
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ValueError(f"-gpu expects distinct non-negative device ids; received {spec!r}.")
    return ids


def torchrun_command(nproc, argv, *, nnodes=1, node_rank=None, rdzv_endpoint=None,
                     rdzv_id=None, max_restarts=0, python=None):
    """The argument list ``launch`` runs (exposed for logging and tests)."""
    argv = [os.fspath(a) for a in argv]
    if not argv:
        raise ValueError("launch() needs a command to run in every process, e.g. "
                         "['train.py', '--epochs', '3'] or ['-m', 'kaffe.cli.main', 'train', ...].")
    if not (isinstance(nproc, int) and nproc >= 1) and nproc not in ("gpu", "cpu", "auto"):
        raise ValueError(f"nproc must be a positive number of processes (or 'gpu'/'auto'); "
                         f"received {nproc!r}.")
    command = [python or sys.executable, "-m", "torch.distributed.run",
               "--nproc-per-node", str(nproc), "--max-restarts", str(int(max_restarts))]
    if str(nnodes) == "1" and rdzv_endpoint is None:
        command.append("--standalone")
    else:
        if rdzv_endpoint is None:
            raise ValueError(f"nnodes={nnodes}: every machine needs the same rdzv_endpoint "
                             "(host:port of one of them), e.g. rdzv_endpoint='10.0.0.1:29500'.")
        command += ["--nnodes", str(nnodes), "--rdzv-backend", "c10d",
                    "--rdzv-endpoint", str(rdzv_endpoint), "--rdzv-id", str(rdzv_id or "kaffe")]
        if node_rank is not None:
            command += ["--node-rank", str(int(node_rank))]
    if argv[0] == "-m":
        if len(argv) < 2:
            raise ValueError("launch(): '-m' must be followed by a module name.")
        command += ["-m"] + argv[1:]
    elif argv[0].endswith(".py"):
        command += argv
    else:
        command += ["--no-python"] + argv
    return command


def launch(nproc, argv, *, nnodes=1, node_rank=None, rdzv_endpoint=None, rdzv_id=None,
           gpus=None, max_restarts=0, env=None):
    """Run ``argv`` in ``nproc`` processes on this machine (times ``nnodes`` machines) under
    torchrun; block until they end and return the exit status (0: all succeeded).

    Args:
        nproc: processes on this machine (an int, or ``"gpu"`` for one per visible GPU).
        argv: the command each process runs: a script and its arguments
            (``["train.py", "--epochs", "3"]``), a module (``["-m", "pkg.mod", ...]``) or an
            executable (``["kaffe", "train", ...]``).
        nnodes, node_rank, rdzv_endpoint, rdzv_id: several machines: the same call on each,
            with the same ``rdzv_endpoint`` ("host:port" of one machine, c10d rendezvous).
        gpus: device ids for the workers (Caffe's ``-gpu 0,2``): sets
            ``CUDA_VISIBLE_DEVICES``, so worker ``LOCAL_RANK`` i drives the i-th listed GPU.
        max_restarts: torchrun's restarts of the whole group after a failure (default none).
        env: extra environment variables for the workers.
    """
    if launched():
        raise RuntimeError("kaffe.distribute.launch() was called inside a worker that a "
                           "launcher already started (RANK/KAFFE_LAUNCHED set); the job "
                           "already runs data-parallel, launch nothing more.")
    child_env = dict(os.environ)
    child_env.update({k: str(v) for k, v in (env or {}).items()})
    child_env["KAFFE_LAUNCHED"] = "1"
    if gpus is not None:
        ids = gpu_list(gpus) if isinstance(gpus, str) else [int(g) for g in gpus]
        child_env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, ids))
        if nproc in (None, "gpu"):
            nproc = len(ids)
    command = torchrun_command(nproc, argv, nnodes=nnodes, node_rank=node_rank,
                               rdzv_endpoint=rdzv_endpoint, rdzv_id=rdzv_id,
                               max_restarts=max_restarts)
    process = subprocess.Popen(command, env=child_env)
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C: torchrun forwards the signal to its workers
        process.terminate()
        return process.wait()
