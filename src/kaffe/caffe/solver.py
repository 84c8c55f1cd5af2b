"""pycaffe's ``Solver``: Caffe's training loop over a train net and its test nets.

``caffe.get_solver("solver.prototxt")`` (or ``caffe.SGDSolver(...)`` and the other types) reads a
solver prototxt, builds the train net (TRAIN phase) from ``net`` / ``net_param`` / ``train_net``
/ ``train_net_param`` and one test net (TEST phase) per ``test_iter``, sharing the train net's
weights by layer name, and an optimizer from :mod:`kaffe.caffe.optimizers` over the net's
learnable blobs (one parameter group per ``lr_mult`` / ``decay_mult`` pair). The loop is Caffe's
``Solver::Step`` / ``Solve`` (solver.cpp): tests every ``test_interval``, ``iter_size`` forward /
backward passes per update, ``average_loss`` smoothing, ``display`` lines in Caffe's words
(so Caffe log parsers read kaffe logs), snapshots every ``snapshot`` iterations as
``<prefix>_iter_N.caffemodel`` + ``.solverstate`` (or ``.h5`` files with ``snapshot_format:
HDF5``; Caffe's layout, each written to a temporary file and renamed), ``restore`` from a
``.solverstate``, and an action hook (``set_action_function``) through which ``kaffe train``
turns SIGINT / SIGHUP into "snapshot" or "stop" as Caffe does.

Paths in the solver (net files, snapshot prefix) are relative to the current directory, as in
Caffe.

Device: the nets compute on ``device`` when given (``kaffe train -gpu N`` passes it), else on
the GPU ``caffe.set_mode_gpu()`` / ``set_device`` chose, else, for ``solver_mode: GPU``, on
``cuda:<device_id>``; without CUDA on the CPU (saying so once). The optimizer's history lives
beside the parameters; pycaffe's numpy views are kept in step by :mod:`kaffe.caffe.synced`.

Data-parallel (started by ``kaffe train --nproc N`` / ``-gpu 0,1`` or under torchrun): Caffe's
multi-GPU training (``NCCL`` in parallel.cpp). Every process builds the train net with the
prototxt's batch and its own share of the records (``kaffe.caffe.builders.data``: records
``rank, rank + N, ...``), starts from rank 0's weights, and after each forward/backward the
gradients are summed over the processes and divided by N (Caffe's ``ncclAllReduce`` +
``caffe_gpu_scal(1 / solver_count)``) before the update: one step trains on N x batch_size
records with the learning rate unchanged. As in Caffe, only rank 0 builds test nets, tests,
logs and snapshots; training-time randomness is seeded ``random_seed + rank``. Beyond Caffe:
data layers' shuffling is seeded alike on every rank (so the split is a partition), and a stop
or snapshot request (a signal) on any rank is agreed by all, so none is left waiting.
"""
import collections
import logging
import os
import time

import numpy as np
import torch

from kaffe import distribute as _distribute
from kaffe import schedules
from kaffe.caffe import blobs as _blobs
from kaffe.caffe import device as _device
from kaffe.caffe import net_weights as _net_weights
from kaffe.caffe import optimizers as _optimizers
from kaffe.caffe import prototxt as _prototxt
from kaffe.caffe import runtime as _runtime
from kaffe.caffe import synced as _synced
from kaffe.caffe import upgrade as _upgrade
from kaffe.caffe.builders import data as _data
from kaffe.caffe.net import TEST, TRAIN, Net
from kaffe.caffe.proto import caffe_pb2
from kaffe.distribute import collectives as _collectives

log = logging.getLogger("kaffe")

__all__ = ["Solver", "get_solver", "SGDSolver", "NesterovSolver", "AdaGradSolver",
           "RMSPropSolver", "AdaDeltaSolver", "AdamSolver", "NONE", "STOP", "SNAPSHOT"]

# Caffe's SolverAction::Enum
NONE, STOP, SNAPSHOT = "none", "stop", "snapshot"

_TRAIN_NET_FIELDS = ("net", "net_param", "train_net", "train_net_param")


def _g(value):
    """C++ ostream's default float format (6 significant digits), as Caffe's log prints."""
    return f"{value:.6g}"


class SolverError(ValueError):
    """A solver prototxt kaffe cannot train with (names the file and the field)."""


class Solver:
    """Caffe's solver. ``Solver(path_or_SolverParameter, weights=None)``; ``weights`` (a path,
    comma-separated paths or a list) are copied by layer name into the nets before training,
    like ``caffe train -weights`` (so is the solver's own ``weights`` field)."""

    forced_type = None

    def __init__(self, solver, weights=None, device=None, data_parallel=None):
        self.param, self.source = _read_param(solver)
        if self.forced_type:
            self.param.type = self.forced_type
        self._validate()
        self.rank, self.world = _join(data_parallel)
        seed = _base_seed(self.param.random_seed, self.world)
        if seed is not None:
            _seed(seed)
        placement = self._placement(device)
        self.device = placement if placement is not None else torch.device("cpu")
        with _device.placing(placement), _data.solver_split(self.rank, self.world):
            self.net = Net(self._train_net_param(), phase=TRAIN)
        test_params = self._test_net_params()
        with _device.placing(placement):
            self.test_nets = [Net(p, phase=TEST) for p in test_params] if self.rank == 0 \
                else []
        for w in [f for entry in self.param.weights for f in _weight_list(entry)] + \
                _weight_list(weights):
            self.load_weights(w)
        for net in self.test_nets:   # one storage: updates show in the test nets at once
            net.share_with(self.net)
        self._params, groups = self._learnable_params()
        if self.world > 1:
            _distribute.broadcast_parameters(self._params)
            if seed is not None:   # Caffe: random_seed + solver_rank
                _seed(seed + self.rank)
        self.schedule = schedules.from_solver_param(self.param)
        self.optimizer = _optimizers.from_solver_param(self.param, self.schedule)
        self.optimizer.build(groups)
        self.iter = 0
        self.current_step = 0
        self._losses, self._smoothed_loss = [], 0.0
        self._callbacks = []
        self._action = None
        self.requested_early_exit = False
        log.info("Solver scaffolding done.")

    # -------------------------------------------------------------- set-up
    def _placement(self, device):
        """Where the nets compute (None: the host): ``device``, else the mode pycaffe's
        switches set, else the solver's ``solver_mode`` / ``device_id``."""
        if device is not None:
            return _device.resolve(device)
        chosen = _device.compute_device()
        if chosen is not None or _device.overridden():
            return chosen
        if self.param.HasField("solver_mode") and \
                self.param.solver_mode == caffe_pb2.SolverParameter.GPU and \
                _runtime.gpu_or_cpu(f"{self.source}: solver_mode: GPU") == "GPU":
            count = torch.cuda.device_count()
            if self.param.device_id >= count:
                raise SolverError(f"{self.source}: device_id: {self.param.device_id}, but torch "
                                  f"sees {count} CUDA device{'s' if count != 1 else ''}; give "
                                  f"device_id 0..{count - 1}.")
            return torch.device("cuda", self.param.device_id)
        return None

    def _validate(self):
        p, where = self.param, self.source
        count = sum(p.HasField(f) for f in _TRAIN_NET_FIELDS)
        if count != 1:
            raise SolverError(f"{where}: the solver must name exactly one train net with one of "
                              f"the fields {', '.join(_TRAIN_NET_FIELDS)}; it gives {count}.")
        if p.base_lr < 0:
            raise SolverError(f"{where}: base_lr must be >= 0; received base_lr: {_g(p.base_lr)}"
                              f". A negative rate climbs the loss; give a positive base_lr.")
        if p.max_iter < 0:
            raise SolverError(f"{where}: max_iter must be >= 0; received max_iter: {p.max_iter}.")
        if p.max_iter == 0:
            log.warning("%s: max_iter is 0, so solve() trains no iteration (it only tests and "
                        "snapshots the initial weights). Set max_iter to the number of "
                        "iterations to train.", where)
        if p.average_loss < 1:
            raise SolverError(f"{where}: average_loss should be >= 1. Received: "
                              f"average_loss: {p.average_loss}")
        if p.iter_size < 1:
            raise SolverError(f"{where}: iter_size should be >= 1. Received: "
                              f"iter_size: {p.iter_size}")
        if p.snapshot and not p.snapshot_prefix:
            raise SolverError(f"{where}: snapshot is {p.snapshot} but snapshot_prefix is not set;"
                              f" add snapshot_prefix: \"path/prefix\".")
        try:
            schedules.from_solver_param(p)
            _optimizers.from_solver_param(p)
        except ValueError as err:
            raise SolverError(f"{where}: {err}") from None
        if p.snapshot:
            _check_writable(p.snapshot_prefix, where)

    def _read_net(self, path, field):
        if not os.path.exists(path):
            raise SolverError(f"{self.source}: {field}: \"{path}\" does not exist (looked in "
                              f"{os.getcwd()}). Caffe reads the paths in a solver from the "
                              f"current directory: run from the folder the solver's paths are "
                              f"relative to, or fix the path.")
        return _prototxt.read_net_param(path)

    def _train_net_param(self):
        p = self.param
        if p.HasField("train_net_param"):
            net = _copy(p.train_net_param)
        elif p.HasField("train_net"):
            net = self._read_net(p.train_net, "train_net")
        elif p.HasField("net_param"):
            net = _copy(p.net_param)
        else:
            net = self._read_net(p.net, "net")
        return _with_state(net, TRAIN, p.train_state if p.HasField("train_state") else None)

    def _test_net_params(self):
        p = self.param
        nets = [_copy(n) for n in p.test_net_param]
        nets += [self._read_net(f, "test_net") for f in p.test_net]
        generic = p.HasField("net") or p.HasField("net_param")
        if generic and len(p.test_iter) < len(nets) or not generic and len(p.test_iter) != \
                len(nets):
            raise SolverError(f"{self.source}: test_iter must be given once per test net "
                              f"({len(nets)} test nets, {len(p.test_iter)} test_iter).")
        for _ in range(len(p.test_iter) - len(nets)):
            nets.append(_copy(p.net_param) if p.HasField("net_param")
                        else self._read_net(p.net, "net"))
        if p.test_state and len(p.test_state) != len(nets):
            raise SolverError(f"{self.source}: test_state must be unspecified or given once per "
                              f"test net ({len(nets)}); received {len(p.test_state)}.")
        if nets and p.test_interval <= 0:
            raise SolverError(f"{self.source}: there are test nets (test_iter) but "
                              f"test_interval is {p.test_interval}; set test_interval > 0.")
        return [_with_state(n, TEST, p.test_state[i] if p.test_state else None)
                for i, n in enumerate(nets)]

    def _learnable_params(self):
        """The net's learnable blobs in Caffe's order (shared blobs once, with their owner's
        multipliers) and the optimizer's parameter groups."""
        seen, params, groups = set(), [], collections.OrderedDict()
        for name, layer in zip(self.net._layer_names, self.net._layer_modules):
            if name not in self.net.params:
                continue
            specs = layer.param.param
            for i, blob in enumerate(self.net.params[name]):
                tensor = blob.parameter
                if id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                spec = specs[i] if i < len(specs) else caffe_pb2.ParamSpec()
                params.append(tensor)
                key = (float(spec.lr_mult), float(spec.decay_mult))
                groups.setdefault(key, []).append(tensor)
        return params, [{"params": ps, "lr_mult": lr, "decay_mult": decay}
                        for (lr, decay), ps in groups.items()]

    # -------------------------------------------------------------- weights
    def load_weights(self, path):
        """Copy a ``.caffemodel`` (or Caffe HDF5) into the train and test nets by layer name
        (Caffe's ``CopyTrainedLayersFrom``), logging Caffe's "Finetuning from" and "Ignoring
        source layer" lines, and warning when nothing matched or learnable layers found no
        weights in the file."""
        path = os.fspath(path).strip()
        log.info("Finetuning from %s", path)
        source = _net_weights.read_weights(path)
        copied = _net_weights.copy_weights(self.net, path, source)
        for net in self.test_nets:
            _net_weights.copy_weights(net, path, source, verbose=False)
        fresh = [n for n in self.net.params if n not in source]
        if copied and fresh:
            log.warning("-weights %s: no weights in the file for layer(s) %s; they start from "
                        "their fillers.", path, ", ".join(fresh))

    def apply_update(self):
        """pycaffe's ``solver.apply_update()``: one update of the weights from their current
        diffs at the current iteration's learning rate (the iteration count stays)."""
        self.optimizer.iterations = self.iter
        touched = _synced.flush_host_writes()
        self.optimizer.step()
        _synced.device_written()
        _synced.refresh(touched)

    def share_weights(self, net):
        """pycaffe's ``solver.share_weights(net)``: ``net`` uses the train net's weights."""
        net.share_with(self.net)

    # -------------------------------------------------------------- pycaffe surface
    def add_callback(self, on_start=None, on_gradients_ready=None):
        """pycaffe's ``solver.add_callback``: two functions called each iteration, before the
        forward/backward passes and before the update."""
        self._callbacks.append((on_start, on_gradients_ready))

    def set_action_function(self, function):
        """``function()`` is asked after each update (and each test batch) and returns
        ``"none"``, ``"snapshot"`` or ``"stop"`` (Caffe's ``SolverAction``)."""
        self._action = function

    def _requested_action(self):
        return self._action() if self._action is not None else NONE

    @property
    def data_parallel(self):
        """True when this solver is one of several processes training together."""
        return self.world > 1

    def _agreed_action(self):
        """The requested action, agreed by every process (the strongest request wins)."""
        request = self._requested_action()
        if self.world == 1:
            return request
        code = torch.tensor([_ACTION_CODES[request]])   # gloo beside NCCL takes CPU tensors
        torch.distributed.all_reduce(code, op=torch.distributed.ReduceOp.MAX)
        return _ACTIONS[int(code)]

    @property
    def lr(self):
        """The learning rate of the next update (Caffe's ``GetLearningRate``)."""
        return float(self.schedule(self.iter))

    # -------------------------------------------------------------- training
    def step(self, iters):
        """Run ``iters`` updates (Caffe's ``Solver::Step``)."""
        p = self.param
        start_iter, stop_iter = self.iter, self.iter + int(iters)
        self._losses, self._smoothed_loss = [], 0.0
        last_display, timer = self.iter, time.perf_counter()
        while self.iter < stop_iter:
            self.net.clear_param_diffs()
            if p.test_interval and self.iter % p.test_interval == 0 and (
                    self.iter > 0 or p.test_initialization):
                self.test_all()
                if self.world > 1:   # rank 0 may have been told to stop while testing
                    self.requested_early_exit = _collectives.any_rank(self.requested_early_exit)
                if self.requested_early_exit:
                    break
            for on_start, _ in self._callbacks:
                if on_start:
                    on_start()
            display = p.display and self.iter % p.display == 0
            loss, outputs = self._forward_backward()
            self._update_smoothed_loss(loss, start_iter)
            display = display and self.rank == 0
            if display:
                lapse = time.perf_counter() - timer
                per_s = (self.iter - last_display) / (lapse or 1)
                log.info("Iteration %d (%s iter/s, %ss/%d iters), loss = %s", self.iter,
                         _g(per_s), _g(round(lapse, 3)), p.display, _g(self._smoothed_loss))
                timer, last_display = time.perf_counter(), self.iter
                self._log_outputs("Train", outputs)
            if self.world > 1:   # Caffe's NCCL::on_gradients_ready: sum, then / solver_count
                _distribute.average_gradients(self._params)
            for _, on_ready in self._callbacks:
                if on_ready:
                    on_ready()
            self._apply_update(display)
            request = self._agreed_action()
            if ((p.snapshot and self.iter % p.snapshot == 0) or request == SNAPSHOT) and \
                    self.rank == 0:
                self.snapshot()
            if request == STOP:
                self.requested_early_exit = True
                break
        self.net.sync_blobs()

    def _forward_backward(self):
        """``iter_size`` forward/backward passes accumulating parameter gradients; returns the
        mean loss (a float) and the last pass's outputs."""
        total, outputs = 0.0, {}
        for _ in range(self.param.iter_size):
            try:
                loss, outputs = self.net.forward_tensors()
                if loss is not None and loss.requires_grad:
                    loss.backward()
            except torch.OutOfMemoryError as err:
                raise _device.out_of_memory(self.net, err, "Training") from err
            if loss is not None:
                total += float(loss.detach())
        return total / self.param.iter_size, outputs

    def _update_smoothed_loss(self, loss, start_iter):
        """Caffe's ``UpdateSmoothedLoss``: the mean of the last ``average_loss`` losses."""
        average = self.param.average_loss
        if len(self._losses) < average:
            self._losses.append(loss)
            size = len(self._losses)
            self._smoothed_loss = (self._smoothed_loss * (size - 1) + loss) / size
        else:
            idx = (self.iter - start_iter) % average
            self._smoothed_loss += (loss - self._losses[idx]) / average
            self._losses[idx] = loss

    def _apply_update(self, display):
        policy = self.schedule
        if policy.name in ("step", "multistep"):   # the policies that move current_step_
            step = policy.current_step(self.iter)
            if policy.name == "multistep" and step != self.current_step:
                log.info("MultiStep Status: Iteration %d, step = %d", self.iter, step)
            self.current_step = step
        if display:   # the optimizer evaluates the schedule itself; here only for the log
            log.info("Iteration %d, lr = %s", self.iter, _g(self.lr))
        self.optimizer.iterations = self.iter
        touched = _synced.flush_host_writes() if _synced.PENDING else ()
        self.optimizer.step()
        _synced.device_written()
        if touched:
            _synced.refresh(touched)
        self.iter += 1

    def _log_outputs(self, which, outputs):
        index = 0
        for name, (value, weight) in outputs.items():
            values = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor)
                                else value, np.float64).reshape(-1)
            for v in values:
                extra = f" (* {_g(weight)} = {_g(weight * v)} loss)" if weight else ""
                log.info("    %s net output #%d: %s = %s%s", which, index, name, _g(v), extra)
                index += 1

    def solve(self, resume_file=None):
        """Train to ``max_iter`` (Caffe's ``Solver::Solve``), restoring ``resume_file`` first."""
        p = self.param
        log.info("Solving %s", self.net._param.name)
        log.info("Learning Rate Policy: %s", p.lr_policy)
        self.requested_early_exit = False
        if resume_file:
            log.info("Restoring previous solver status from %s", resume_file)
            self.restore(resume_file)
        start_iter = self.iter
        self.step(p.max_iter - self.iter)
        if self.rank != 0:   # Caffe's other solvers only Step; rank 0 finishes the job
            return
        if p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0):
            self.snapshot()
        if self.requested_early_exit:
            log.info("Optimization stopped early.")
            return
        if p.display and self.iter % p.display == 0:
            with torch.no_grad():
                loss, _ = self.net.forward_tensors()
            self.net.sync_blobs()
            self._update_smoothed_loss(float(loss) if loss is not None else 0.0, start_iter)
            log.info("Iteration %d, loss = %s", self.iter, _g(self._smoothed_loss))
        if p.test_interval and self.iter % p.test_interval == 0:
            self.test_all()
        log.info("Optimization Done.")

    # -------------------------------------------------------------- testing
    def test_all(self):
        """Test every test net (Caffe's ``TestAll``); returns a list of ``{output: mean}``."""
        results = []
        if self.rank != 0:   # only the root solver tests (Caffe)
            return results
        for i in range(len(self.test_nets)):
            if self.requested_early_exit:
                break
            results.append(self.test(i))
        return results

    def test(self, test_net_id=0):
        """Run test net ``test_net_id`` for its ``test_iter`` batches with the train net's
        weights and log Caffe's "Test net output" lines; returns ``{output: mean}``."""
        log.info("Iteration %d, Testing net (#%d)", self.iter, test_net_id)
        net = self.test_nets[test_net_id]
        net.share_with(self.net)
        iterations = self.param.test_iter[test_net_id]
        sums, weights, loss_sum = None, {}, 0.0
        with torch.no_grad():
            for _ in range(iterations):
                request = self._requested_action()
                while request != NONE:
                    if request == SNAPSHOT:
                        self.snapshot()
                    elif request == STOP:
                        self.requested_early_exit = True
                    request = self._requested_action()
                if self.requested_early_exit:
                    break
                loss, outputs = net.forward_tensors()
                if self.param.test_compute_loss and loss is not None:
                    loss_sum += float(loss)
                values = {n: t.detach().double().reshape(-1) for n, (t, _) in outputs.items()}
                weights = {n: w for n, (_, w) in outputs.items()}
                sums = values if sums is None else {n: sums[n] + v for n, v in values.items()}
        if sums is not None:
            net.sync_blobs()
        if self.requested_early_exit:
            log.info("Test interrupted.")
            return {}
        if self.param.test_compute_loss:
            log.info("Test loss: %s", _g(loss_sum / iterations))
        means = {n: (s / iterations).cpu().numpy() for n, s in (sums or {}).items()}
        self._log_outputs("Test", {n: (m, weights[n]) for n, m in means.items()})
        return {n: (float(m[0]) if m.size == 1 else m) for n, m in means.items()}

    # -------------------------------------------------------------- snapshots
    def _snapshot_filename(self, extension):
        return f"{self.param.snapshot_prefix}_iter_{self.iter}{extension}"

    def snapshot(self):
        """Write ``<prefix>_iter_N.caffemodel`` and ``.solverstate`` (``.h5`` files with
        ``snapshot_format: HDF5``); returns their paths. Rank 0's job in data-parallel
        training (every rank holds the same weights and history)."""
        hdf5 = self.param.snapshot_format == caffe_pb2.SolverParameter.HDF5
        if hdf5:
            model = self._snapshot_filename(".caffemodel.h5")
            log.info("Snapshotting to HDF5 file %s", model)
        else:
            model = self._snapshot_filename(".caffemodel")
            log.info("Snapshotting to binary proto file %s", model)
        self.net.save(model)
        state_file = self._snapshot_filename(".solverstate.h5" if hdf5 else ".solverstate")
        log.info("Snapshotting solver state to %s file %s", "HDF5" if hdf5 else "binary proto",
                 state_file)
        history = [h.detach().cpu().numpy() for h in self.optimizer.history(self._params)]
        _blobs.save_solverstate(state_file, _blobs.SolverSnapshot(
            self.iter, model, self.current_step, history))
        return model, state_file

    def restore(self, path):
        """Continue from a ``.solverstate`` (binary or ``.h5``): iteration, learning-rate step,
        history blobs and the weights file it names."""
        path = os.fspath(path)
        state = _blobs.load_solverstate(path)
        if state.learned_net:
            weights = state.learned_net
            if not os.path.exists(weights):
                beside = os.path.join(os.path.dirname(path), os.path.basename(weights))
                if not os.path.exists(beside):
                    raise SolverError(f"{path}: the solver state names the weights file "
                                      f"'{weights}', which does not exist (nor beside the "
                                      f"state file). Run from the folder it was written in.")
                weights = beside
            self.net.copy_from(weights)
        self.optimizer.set_history(self._params, state.history, where=path)
        self.iter = state.iter
        self.current_step = state.current_step
        self.optimizer.iterations = self.iter
        log.info("%sSolver: restoring history", self.param.type)


_ACTIONS = (NONE, SNAPSHOT, STOP)
_ACTION_CODES = {a: i for i, a in enumerate(_ACTIONS)}


def _join(data_parallel):
    """(rank, world): (0, 1) for one process; in a data-parallel job the process group's.
    ``None`` means: data-parallel when a launcher (torchrun) started several processes."""
    if data_parallel is None:
        data_parallel = _distribute.world_size() > 1
    if not data_parallel:
        return 0, 1
    return _distribute.ensure_process_group()


def _base_seed(random_seed, world):
    """The seed the nets are built with: the solver's ``random_seed``; in a data-parallel job
    without one, rank 0's draw, so every rank's data layers shuffle alike."""
    if random_seed >= 0:
        return int(random_seed)
    if world == 1:
        return None
    return int(_collectives.broadcast(torch.randint(0, 2 ** 31 - 1, (1,)))[0])


def _seed(seed):
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)


def _read_param(solver):
    if isinstance(solver, caffe_pb2.SolverParameter):
        param = _copy(solver)
        if _upgrade.solver_needs_upgrade(param):
            param = _upgrade.upgrade_solver(param)
        return param, "<SolverParameter>"
    path = os.fspath(solver)
    return _prototxt.read_solver_param(path), path


def _copy(message):
    out = type(message)()
    out.CopyFrom(message)
    return out


def _with_state(net, phase, override):
    """Caffe's NetState precedence: the phase, then the net's own state, then the solver's."""
    state = caffe_pb2.NetState(phase=phase)
    state.MergeFrom(net.state)
    if override is not None:
        state.MergeFrom(override)
    net.state.CopyFrom(state)
    return net


def _weight_list(weights):
    if weights is None:
        return []
    if isinstance(weights, (str, os.PathLike)):
        return [w for w in os.fspath(weights).split(",") if w.strip()]
    return [os.fspath(w) for w in weights]


def _check_writable(prefix, where):
    """Caffe's ``CheckSnapshotWritePermissions``: fail now, not after hours of training."""
    folder = os.path.dirname(prefix) or "."
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise SolverError(f"{where}: cannot write to snapshot prefix '{prefix}'. Make sure that "
                          f"the directory '{folder}' exists and is writable.")


def preflight(solver):
    """Check what a solver needs to start (its fields, its net files, the snapshot folder)
    without building nets: a launcher runs this before starting N processes, so a bad
    prototxt fails once, at once. Raises ``SolverError`` / ``ValueError`` / ``OSError``."""
    checker = Solver.__new__(Solver)
    checker.param, checker.source = _read_param(solver)
    checker._validate()
    checker._train_net_param()
    checker._test_net_params()
    return checker.param


def get_solver(solver, weights=None):
    """pycaffe's ``caffe.get_solver(path)``: the solver its ``type`` names."""
    return Solver(solver, weights=weights)


def _typed(caffe_type):
    return type(f"{caffe_type}Solver", (Solver,), {
        "forced_type": caffe_type,
        "__doc__": f"pycaffe's ``caffe.{caffe_type}Solver(path)``: a solver of type "
                   f"\"{caffe_type}\" whatever the prototxt's ``type`` says."})


SGDSolver = _typed("SGD")
NesterovSolver = _typed("Nesterov")
AdaGradSolver = _typed("AdaGrad")
RMSPropSolver = _typed("RMSProp")
AdaDeltaSolver = _typed("AdaDelta")
AdamSolver = _typed("Adam")
