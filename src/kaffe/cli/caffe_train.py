"""``kaffe train | test | device_query | extract_features | parse_log``: Caffe's command line.

Flags are Caffe's, in both spellings (``-solver x``, ``-solver=x``, ``--solver=x``)::

    kaffe train -solver S [-weights W[,W2]] [-snapshot S.solverstate] [-gpu 0|0,1|all]
                [-iterations N] [-nproc N] [-sigint_effect stop|snapshot|none] [-sighup_effect ...]
                [-level L] [-stage a,b]
    kaffe test -model M -weights W [-iterations 50] [-gpu 0] [-level L] [-stage a,b]
    kaffe device_query [-gpu 0]
    kaffe extract_features W.caffemodel NET.prototxt BLOB[,BLOB] DB[,DB] NUM_BATCHES
                           lmdb|leveldb [CPU|GPU] [DEVICE_ID]
    kaffe parse_log LOG OUTDIR

The log goes to stderr in glog's format (``I1123 04:09:26.167450 pid file:line] message``), so
Caffe's own log parsers read it; on a terminal a progress bar (tqdm) runs below it. ``-gpu`` picks
the CUDA device when torch has one and says CPU otherwise.

Data-parallel: ``-gpu 0,1`` / ``-gpu all`` (one process per listed CUDA device) or ``--nproc N``
(N processes, CPU or GPU) starts the processes itself through torch's launcher
(``kaffe.distribute.launch``, i.e. torchrun) and trains with Caffe's multi-GPU semantics (see
``kaffe.caffe.solver``: batch per process as in the prototxt, gradients averaged, lr
unchanged). Under ``torchrun`` (one or many machines) ``kaffe train`` is such a worker. Only
rank 0 logs, tests and snapshots. ``-gpu 0,1`` where torch sees no CUDA device is an error that
names ``--nproc 2`` (kaffe does not silently turn a GPU request into CPU processes).
"""
import contextlib
import datetime
import logging
import os
import signal
import sys

log = logging.getLogger("kaffe")


def _both(name, **options):
    """The ``-name`` and ``--name`` spellings of one gflags-style option (same dest)."""
    return [(f"-{name}", dict(options, dest=name)), (f"--{name}", dict(options, dest=name))]


_EFFECTS = ("stop", "snapshot", "none")

TRAIN_ARGUMENTS = (
    _both("solver", help="the solver prototxt") +
    _both("weights", help="comma-separated .caffemodel files to fine-tune from (copied by "
                          "layer name)") +
    _both("snapshot", help="a .solverstate to resume training from") +
    _both("gpu", help="CUDA device id(s): 0, 0,1 or all (CPU when torch has no CUDA)") +
    _both("iterations", type=int, help="train this many iterations instead of max_iter") +
    _both("nproc", type=int, default=1, help="processes to train with (data-parallel: started "
                                              "by kaffe.distribute / torchrun)") +
    _both("sigint_effect", default="stop", choices=_EFFECTS,
          help="what Ctrl-C does: stop (snapshot and exit, default), snapshot, none") +
    _both("sighup_effect", default="snapshot", choices=_EFFECTS,
          help="what SIGHUP does: snapshot (default), stop, none") +
    _both("level", type=int, default=0, help="the train net state's level") +
    _both("stage", default="", help="comma-separated train net state stages"))

TEST_ARGUMENTS = (
    _both("model", help="the net prototxt to test (TEST phase)") +
    _both("weights", help="the trained .caffemodel") +
    _both("iterations", type=int, default=50, help="number of batches (50)") +
    _both("gpu", help="CUDA device id") +
    _both("level", type=int, default=0, help="the net state's level") +
    _both("stage", default="", help="comma-separated net state stages"))

DEVICE_QUERY_ARGUMENTS = _both("gpu", default="0", help="CUDA device id(s) to describe")

EXTRACT_ARGUMENTS = [
    ("weights", {"help": "pretrained .caffemodel"}),
    ("net", {"help": "net prototxt (TEST phase) with a data layer"}),
    ("blobs", {"help": "comma-separated blob names to extract"}),
    ("datasets", {"help": "comma-separated names of the databases to create, one per blob"}),
    ("num_batches", {"type": int, "help": "number of mini-batches to run"}),
    ("backend", {"choices": ("lmdb", "leveldb"), "help": "database type"}),
    ("mode", {"nargs": "?", "default": "CPU", "choices": ("CPU", "GPU"), "help": "CPU or GPU"}),
    ("device_id", {"nargs": "?", "type": int, "default": 0, "help": "GPU device id"}),
]

PARSE_LOG_ARGUMENTS = [
    ("logfile", {"help": "a Caffe or kaffe training log"}),
    ("output_dir", {"help": "folder for <log>.train, <log>.test and <log>.png"}),
    ("--delimiter", {"default": ",", "help": "CSV column delimiter (,)"}),
    ("--no-plot", {"action": "store_true", "dest": "no_plot", "help": "skip the PNG plot"}),
]


# ---------------------------------------------------------------------------------- logging

class GlogFormatter(logging.Formatter):
    """glog's line format: ``I1123 04:09:26.167450 <pid> <file>:<line>] <message>``."""
    _LETTERS = {logging.DEBUG: "I", logging.INFO: "I", logging.WARNING: "W",
                logging.ERROR: "E", logging.CRITICAL: "F"}

    def format(self, record):
        t = datetime.datetime.fromtimestamp(record.created)
        letter = self._LETTERS.get(record.levelno, "I")
        return (f"{letter}{t:%m%d %H:%M:%S}.{t.microsecond:06d} {record.process} "
                f"{record.filename}:{record.lineno}] {record.getMessage()}")


class _TqdmHandler(logging.StreamHandler):
    """Writes log lines above a running tqdm bar."""

    def emit(self, record):
        from tqdm import tqdm
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _on_terminal():
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


@contextlib.contextmanager
def glog_to_stderr(progress=False):
    """Send the ``kaffe`` logger's INFO lines to stderr in glog's format while the command
    runs (through tqdm when a progress bar is shown)."""
    handler = _TqdmHandler() if progress else logging.StreamHandler(sys.stderr)
    handler.setFormatter(GlogFormatter())
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(saved[0])
        log.propagate = saved[1]


# ---------------------------------------------------------------------------------- devices

def parse_gpus(value):
    """Device ids from Caffe's ``-gpu`` value: '' / None -> [], '0,1' -> [0, 1], 'all' -> every
    CUDA device torch sees."""
    import torch
    if value is None or str(value).strip() == "":
        return []
    if str(value).strip().lower() == "all":
        return list(range(torch.cuda.device_count())) or [0]
    try:
        ids = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"-gpu expects device ids like 0 or 0,1 or 'all'. Received: "
                         f"-gpu {value}") from None
    if any(i < 0 for i in ids):
        raise ValueError(f"-gpu ids must be >= 0. Received: -gpu {value}")
    return ids


def check_gpu_ids(spec, ids):
    """Every id in ``ids`` must name a CUDA device torch sees; the error gives the count and
    the ids there are (checked before any net is built)."""
    import torch
    count = torch.cuda.device_count()
    missing = [i for i in ids if i >= count]
    if missing:
        fix = ("Use -gpu 0." if count == 1 else
               f"Use ids 0..{count - 1} (e.g. -gpu 0), or -gpu all for every device.")
        raise ValueError(f"-gpu {spec}: torch sees {count} CUDA device"
                         f"{'s' if count != 1 else ''} on this machine, so there is no GPU "
                         f"{missing[0]}. {fix}")


def select_device(gpus):
    """The torch device for a one-process run: the first ``gpus`` id when CUDA is there, else
    the CPU (saying so, as ``caffe`` says "Use CPU.")."""
    import torch
    if gpus and torch.cuda.is_available():
        check_gpu_ids(gpus[0], gpus[:1])
        torch.cuda.set_device(gpus[0])
        log.info("Use GPU with device ID %d", gpus[0])
        log.info("GPU %d: %s", gpus[0], torch.cuda.get_device_name(gpus[0]))
        return torch.device("cuda", gpus[0])
    if gpus:
        log.info("-gpu %s: torch has no CUDA device here; Use CPU.",
                 ",".join(str(g) for g in gpus))
    else:
        log.info("Use CPU.")
    return torch.device("cpu")


def _devices_to_launch(args):
    """(processes, CUDA ids or None) that ``kaffe train`` must start itself; (1, None) when it
    trains in this process. ``-gpu`` with several ids (or ``all``) needs CUDA."""
    import torch

    from kaffe import distribute
    spec = "" if args.gpu is None else str(args.gpu).strip()
    many = spec.lower() == "all" or len([g for g in spec.split(",") if g.strip()]) > 1
    if many and not torch.cuda.is_available():
        count = len([g for g in spec.split(",") if g.strip()]) if spec.lower() != "all" else 0
        hint = f"--nproc {count}" if count else "--nproc N"
        raise ValueError(f"-gpu {spec}: torch sees no CUDA device on this machine, so there are "
                         f"no GPUs to train on. To train data-parallel on the CPU, start CPU "
                         f"processes instead: kaffe train -solver {args.solver} {hint}.")
    if many:
        gpus = distribute.gpu_list(spec)
        check_gpu_ids(spec, gpus)
        if args.nproc not in (1, len(gpus)):
            raise ValueError(f"-gpu {spec} starts one process per device ({len(gpus)}); "
                             f"--nproc {args.nproc} disagrees. Give one of the two.")
        return len(gpus), gpus
    if args.nproc < 1:
        raise ValueError(f"--nproc must be >= 1; received {args.nproc}.")
    return args.nproc, None


def _worker_argv(args):
    """The ``kaffe train`` command line each launched process runs: this one's flags, without
    the ones that asked for processes (a worker learns its rank from torchrun)."""
    argv = ["-m", "kaffe.cli.main", "train", "-solver", args.solver]
    for flag in ("weights", "snapshot", "iterations", "sigint_effect", "sighup_effect",
                 "level"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"-{flag}", str(value)]
    if args.stage:
        argv += ["-stage", args.stage]
    return argv


def _launch(nproc, gpus, args):
    """Start ``nproc`` workers through torch's launcher and wait for them."""
    from kaffe import distribute
    log.info("Starting %d data-parallel processes%s (torch.distributed.run); each reads its "
             "own 1/%d of the records, batch_size as in the prototxt.", nproc,
             f" on GPUs {','.join(map(str, gpus))}" if gpus else " on the CPU", nproc)
    return distribute.launch(nproc, _worker_argv(args), gpus=gpus,
                             env={"KAFFE_CAFFE_GPU": "1" if gpus else "0"})


def _worker_device():
    """A launched worker's device: the GPU numbered by its LOCAL_RANK when it was given GPUs
    (or CUDA is there under torchrun), else the CPU."""
    import torch

    from kaffe import distribute
    wants_gpu = os.environ.get("KAFFE_CAFFE_GPU", "1") == "1" and torch.cuda.is_available()
    return select_device([distribute.local_rank()] if wants_gpu else [])


@contextlib.contextmanager
def _quiet_unless_rank_zero():
    """Workers other than rank 0 log warnings and errors only (Caffe's LOG_IF(root_solver))."""
    from kaffe import distribute
    if distribute.is_rank_zero():
        yield
        return
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


# ---------------------------------------------------------------------------------- signals

class _Signals:
    """Caffe's SignalHandler: SIGINT / SIGHUP become solver actions (stop, snapshot, none)."""

    def __init__(self, sigint_effect, sighup_effect):
        self.effects = {signal.SIGINT: sigint_effect}
        if hasattr(signal, "SIGHUP"):
            self.effects[signal.SIGHUP] = sighup_effect
        self.pending = []
        self.saved = {}

    def _handle(self, signum, frame):
        self.pending.append(self.effects[signum])

    def action(self):
        """The next requested action ('none' when nothing is pending)."""
        return self.pending.pop(0) if self.pending else "none"

    def __enter__(self):
        for signum in self.effects:
            self.saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


# ---------------------------------------------------------------------------------- commands

def _fail(command, error):
    print(f"kaffe {command}: {error}", file=sys.stderr)
    return 1


def _progress_bar(total, initial, desc):
    if not _on_terminal():
        return None
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="iter", file=sys.stderr,
                dynamic_ncols=True, leave=False)


def train(args):
    """``caffe train``."""
    from kaffe.caffe import prototxt
    from kaffe.caffe.solver import Solver
    if not args.solver:
        return _fail("train", "Need a solver definition to train: -solver solver.prototxt")
    if args.snapshot and args.weights:
        return _fail("train", "Give a snapshot to resume training or weights to finetune but "
                              "not both.")
    from kaffe import distribute
    worker = distribute.launched()
    if not worker:
        with glog_to_stderr():
            try:
                nproc, gpus = _devices_to_launch(args)
                if nproc > 1:   # fail here, once, not in N processes
                    from kaffe.caffe.solver import preflight
                    preflight(args.solver)
            except (ValueError, OSError) as err:
                return _fail("train", err)
            if nproc > 1:
                status = _launch(nproc, gpus, args)
                if status != 0:
                    return _fail("train", f"a data-parallel worker failed (exit status "
                                          f"{status}); its error is above.")
                return 0
    elif args.nproc > 1 and distribute.is_rank_zero():
        print(f"kaffe train: --nproc {args.nproc} ignored: this process is a worker of a job "
              f"of {distribute.world_size()} processes started by torchrun.", file=sys.stderr)
    progress = _on_terminal() and distribute.is_rank_zero()
    with glog_to_stderr(progress), _quiet_unless_rank_zero():
        try:
            gpus = [] if worker else parse_gpus(args.gpu)
            param = prototxt.read_solver_param(args.solver)
            param.train_state.level = args.level
            param.train_state.stage.extend(s for s in args.stage.split(",") if s)
            if args.iterations is not None:
                param.max_iter = args.iterations
            device = _worker_device() if worker else select_device(gpus)
            solver = Solver(param, weights=args.weights, device=device, data_parallel=worker)
            if args.snapshot:
                log.info("Resuming from %s", args.snapshot)
                solver.restore(args.snapshot)
        except (ValueError, OSError) as err:
            return _fail("train", err)
        bar = _progress_bar(param.max_iter, solver.iter, param.snapshot_prefix or "train")
        if bar is not None:
            solver.add_callback(on_gradients_ready=lambda: bar.update(1))
        log.info("Starting Optimization")
        try:
            with _Signals(args.sigint_effect, args.sighup_effect) as signals:
                solver.set_action_function(signals.action)
                solver.solve()
        except (ValueError, OSError) as err:
            return _fail("train", err)
        finally:
            if bar is not None:
                bar.close()
    return 0


def test(args):
    """``caffe test``: mean of every output over ``-iterations`` batches of the TEST net."""
    import numpy as np
    import torch

    from kaffe.caffe.device import computing_on, out_of_memory
    from kaffe.caffe.net import TEST, Net
    if not args.model:
        return _fail("test", "Need a model definition to score: -model net.prototxt")
    if not args.weights:
        return _fail("test", "Need model weights to score: -weights net.caffemodel")
    if args.iterations is None or args.iterations < 1:
        return _fail("test", f"-iterations must be at least 1 (the number of test batches to "
                             f"average); received -iterations {args.iterations}.")
    with glog_to_stderr():
        try:
            device = select_device(parse_gpus(args.gpu)[:1])
            stages = [s for s in args.stage.split(",") if s]
            with computing_on(device):
                net = Net(args.model, weights=args.weights, phase=TEST, level=args.level,
                          stages=stages)
        except (ValueError, OSError) as err:
            return _fail("test", err)
        log.info("Running for %d iterations.", args.iterations)
        scores, loss_total = None, 0.0
        names, weights = [], []
        for i in range(args.iterations):
            try:
                with torch.no_grad():
                    loss, outputs = net.forward_tensors()
            except torch.OutOfMemoryError as err:
                return _fail("test", out_of_memory(net, err, "kaffe test"))
            loss_total += float(loss) if loss is not None else 0.0
            values = []
            for name, (tensor, weight) in outputs.items():
                for v in tensor.detach().double().reshape(-1).tolist():
                    log.info("Batch %d, %s = %s", i, name, _g(v))
                    values.append(v)
                    if scores is None:
                        names.append(name)
                        weights.append(weight)
            scores = np.array(values) if scores is None else scores + np.array(values)
        net.sync_blobs()
        loss_total /= max(args.iterations, 1)
        log.info("Loss: %s", _g(loss_total))
        for name, weight, total in zip(names, weights, scores if scores is not None else []):
            mean = total / args.iterations
            extra = f" (* {_g(weight)} = {_g(weight * mean)} loss)" if weight else ""
            log.info("%s = %s%s", name, _g(mean), extra)
    return 0


def _g(value):
    return f"{value:.6g}"


def device_query(args):
    """``caffe device_query``: the CUDA device's properties, or that there is none."""
    import torch
    with glog_to_stderr():
        try:
            gpus = parse_gpus(args.gpu)
        except ValueError as err:
            return _fail("device_query", err)
        if not torch.cuda.is_available():
            log.info("No CUDA device: torch %s runs kaffe on the CPU (%d threads).",
                     torch.__version__, torch.get_num_threads())
            return 0
        for gpu in gpus or [0]:
            if gpu >= torch.cuda.device_count():
                return _fail("device_query", f"no CUDA device {gpu}; torch sees "
                                             f"{torch.cuda.device_count()}.")
            p = torch.cuda.get_device_properties(gpu)
            log.info("Querying GPUs %d", gpu)
            for label, value in (("Device id", gpu), ("Major revision number", p.major),
                                 ("Minor revision number", p.minor), ("Name", p.name),
                                 ("Total global memory", p.total_memory),
                                 ("Number of multiprocessors", p.multi_processor_count)):
                log.info("%-29s%s", label + ":", value)
    return 0


def extract_features(args):
    """``extract_features``."""
    from kaffe.caffe.device import computing_on
    from kaffe.caffe.extract import extract_features as run
    with glog_to_stderr():
        device = None
        if args.mode == "GPU":
            log.info("Using GPU")
            device = select_device([args.device_id])
        else:
            log.info("Using CPU")
        bar = _progress_bar(args.num_batches, 0, "extract_features")
        try:
            with computing_on(device):
                run(args.weights, args.net, args.blobs.split(","), args.datasets.split(","),
                    args.num_batches, args.backend,
                    progress=(lambda i: bar.update(1)) if bar is not None else None)
        except (ValueError, OSError) as err:
            return _fail("extract_features", err)
        finally:
            if bar is not None:
                bar.close()
    return 0


def parse_log(args):
    """Caffe's ``tools/extra/parse_log.py`` plus a plot: ``<log>.train`` / ``<log>.test`` CSV
    files and ``<log>.png`` in ``output_dir``."""
    from kaffe.caffe import parse_log as parser
    if not os.path.isfile(args.logfile):
        return _fail("parse_log", f"{args.logfile}: no such log file")
    if not os.path.isdir(args.output_dir):
        return _fail("parse_log", f"{args.output_dir}: no such folder (create it first)")
    train_rows, test_rows = parser.parse_log(args.logfile)
    if not train_rows and not test_rows:
        return _fail("parse_log", f"{args.logfile}: no 'Train net output' or 'Test net "
                                  f"output' lines; is it a Caffe/kaffe training log?")
    written = [p for p in parser.save_csv_files(args.logfile, args.output_dir, train_rows,
                                                test_rows, args.delimiter) if p]
    if not args.no_plot:
        written.append(parser.plot_log(train_rows, test_rows, os.path.join(
            args.output_dir, os.path.basename(args.logfile) + ".png"),
            title=os.path.basename(args.logfile)))
    for path in written:
        print(f"Wrote {path}")
    return 0
