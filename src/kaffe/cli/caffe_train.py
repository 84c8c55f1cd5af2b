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
the CUDA device when torch has one and says CPU otherwise; more than one device is the job of
``kaffe.distribute`` (started under ``torchrun``), not of this command.
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


def select_device(gpus):
    """The torch device for a one-process run: the first ``gpus`` id when CUDA is there, else
    the CPU (saying so, as ``caffe`` says "Use CPU.")."""
    import torch
    if gpus and torch.cuda.is_available():
        if gpus[0] >= torch.cuda.device_count():
            raise ValueError(f"-gpu {gpus[0]}: torch sees {torch.cuda.device_count()} CUDA "
                             f"device(s) (ids 0..{torch.cuda.device_count() - 1}).")
        torch.cuda.set_device(gpus[0])
        log.info("Use GPU with device ID %d", gpus[0])
        log.info("GPU %d: %s", gpus[0], torch.cuda.get_device_name(gpus[0]))
        log.warning("Caffe nets run on the CPU in this version of kaffe; the GPU is selected "
                    "but not used for training yet.")
        return torch.device("cpu")
    if gpus:
        log.info("-gpu %s: torch has no CUDA device here; Use CPU.",
                 ",".join(str(g) for g in gpus))
    else:
        log.info("Use CPU.")
    return torch.device("cpu")


def _many_devices(gpus):
    """Multi-process training is started by kaffe.distribute (or torchrun), not here. (The hook
    for it: one process per device, each a Solver whose gradients are averaged in
    ``solver.add_callback(on_gradients_ready=...)``, where Caffe's P2PSync hooks in.)"""
    raise ValueError(f"-gpu {','.join(str(g) for g in gpus)} asks for {len(gpus)} devices: "
                     f"data-parallel training runs one process per device, started with "
                     f"`torchrun --nproc_per_node={len(gpus)} -m kaffe.cli.main train ...` "
                     f"(kaffe.distribute); this command trains in one process. Give one "
                     f"device id.")


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
    progress = _on_terminal()
    with glog_to_stderr(progress):
        try:
            gpus = parse_gpus(args.gpu)
            if len(gpus) > 1 or args.nproc > 1:
                _many_devices(gpus if len(gpus) > 1 else list(range(args.nproc)))
            param = prototxt.read_solver_param(args.solver)
            param.train_state.level = args.level
            param.train_state.stage.extend(s for s in args.stage.split(",") if s)
            if args.iterations is not None:
                param.max_iter = args.iterations
            device = select_device(gpus)
            solver = Solver(param, weights=args.weights, device=device)
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

    from kaffe.caffe.net import TEST, Net
    if not args.model:
        return _fail("test", "Need a model definition to score: -model net.prototxt")
    if not args.weights:
        return _fail("test", "Need model weights to score: -weights net.caffemodel")
    with glog_to_stderr():
        try:
            select_device(parse_gpus(args.gpu)[:1])
            stages = [s for s in args.stage.split(",") if s]
            net = Net(args.model, weights=args.weights, phase=TEST, level=args.level,
                      stages=stages)
        except (ValueError, OSError) as err:
            return _fail("test", err)
        log.info("Running for %d iterations.", args.iterations)
        scores, loss_total = None, 0.0
        names, weights = [], []
        for i in range(args.iterations):
            with torch.no_grad():
                loss, outputs = net.forward_tensors()
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
    from kaffe.caffe.extract import extract_features as run
    with glog_to_stderr():
        if args.mode == "GPU":
            log.info("Using GPU")
            select_device([args.device_id])
        else:
            log.info("Using CPU")
        bar = _progress_bar(args.num_batches, 0, "extract_features")
        try:
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
