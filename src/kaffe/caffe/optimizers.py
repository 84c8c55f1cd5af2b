"""Caffe's update rules as optimizers of kaffe's training engine.

``CaffeSGD``, ``CaffeNesterov``, ``CaffeAdaGrad``, ``CaffeRMSProp``, ``CaffeAdaDelta`` and
``CaffeAdam`` are :class:`kaffe.optimizers.Optimizer` subclasses (hence ``torch.optim.Optimizer``s
with ``lr_mult`` / ``decay_mult`` parameter groups and callable learning-rate schedules), but
their step is Caffe's ``SGDSolver::ApplyUpdate`` (sgd_solver.cpp and the five solver files):

1. ``clip_gradients >= 0``: when the global L2 norm of all gradients exceeds it, every
   gradient is scaled by ``clip_gradients / norm`` (logged as Caffe logs it);
2. with ``iter_size > 1`` the accumulated gradients are divided by ``iter_size``;
3. weight decay is added to the gradient (not decoupled): ``g += weight_decay * decay_mult * w``
   for L2, ``* sign(w)`` for L1;
4. the rule's update ``u`` is computed with ``local_rate = lr * lr_mult`` (Caffe's momentum form:
   ``h = momentum * h + local_rate * g``, ``u = h``) and ``w -= u``.

``p.grad`` is not changed. Each parameter's ``state['history']`` (and ``state['history2']`` for
AdaDelta and Adam) holds Caffe's history blobs; :meth:`CaffeOptimizer.history` lists them in the
order of a ``.solverstate`` (all first histories, then all second ones).
"""
import logging

import torch

from kaffe.optimizers import Optimizer, _takes_step, _to_float

log = logging.getLogger("kaffe")

__all__ = ["CaffeOptimizer", "CaffeSGD", "CaffeNesterov", "CaffeAdaGrad", "CaffeRMSProp",
           "CaffeAdaDelta", "CaffeAdam", "CAFFE_OPTIMIZERS", "from_solver_param"]


class CaffeOptimizer(Optimizer):
    """Caffe's solver update shared by the six rules (see the module docstring).

    ``learning_rate`` is a float or a schedule ``f(iteration)`` (e.g. from
    :mod:`kaffe.schedules`); ``iterations`` counts the updates done, Caffe's ``iter_``."""
    caffe_type = ""
    history_slots = ("history",)

    def __init__(self, learning_rate=0.01, *, weight_decay=0.0, regularization_type="L2",
                 clip_gradients=-1.0, iter_size=1, lr=None, name=None):
        super().__init__(learning_rate, lr=lr, name=name)
        if regularization_type not in ("L1", "L2"):
            raise ValueError(f"Unknown regularization type {regularization_type!r} (solver field "
                             f"regularization_type); use \"L2\" or \"L1\".")
        if int(iter_size) < 1:
            raise ValueError(f"iter_size must be >= 1. Received: iter_size={iter_size}")
        self.weight_decay = float(weight_decay)
        self.regularization_type = regularization_type
        self.clip_gradients = float(clip_gradients)
        self.iter_size = int(iter_size)

    # -- the step ------------------------------------------------------------------------------

    _schedule_seen, _schedule_takes_step = None, True

    def _current_lr(self):
        """The base class's rate, with a schedule's signature inspected once, not every update
        (``inspect.signature`` cost a small net's solver a tenth of a millisecond a step)."""
        schedule = self._learning_rate
        if not callable(schedule):
            return super()._current_lr()
        if self._schedule_seen is not schedule:
            self._schedule_seen, self._schedule_takes_step = schedule, _takes_step(schedule)
        lr = _to_float(schedule(self.iterations) if self._schedule_takes_step else schedule())
        if self.decay:
            lr = lr / (1.0 + self.decay * self.iterations)
        return lr

    def _apply(self, batches):
        if not batches:
            return
        grads = [g for _, _, gs in batches for g in gs]
        if any(g.is_sparse for g in grads):
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients.")
        scale = self._clip_scale(grads) / self.iter_size
        if scale != 1.0:
            grads = torch._foreach_mul(grads, scale)
        lr = self._current_lr()
        t = self.iterations + 1
        start = 0
        for group, params, _ in batches:
            group_grads = grads[start:start + len(params)]
            start += len(params)
            group_grads = self._regularize(params, group_grads, group["decay_mult"])
            states = []
            for p in params:
                state = self.state[p]
                if not state:
                    for slot in self.history_slots:
                        state[slot] = torch.zeros_like(p, memory_format=torch.preserve_format)
                states.append(state)
            self._update(params, group_grads, states, lr * group["lr_mult"], t)
        self.iterations += 1

    def _clip_scale(self, grads):
        """Caffe's ``ClipGradients``: the factor bringing the global L2 norm down to the limit."""
        if self.clip_gradients < 0:
            return 1.0
        norm = float(torch.linalg.vector_norm(
            torch.stack([n.float() for n in torch._foreach_norm(grads)])))
        if norm <= self.clip_gradients:
            return 1.0
        factor = self.clip_gradients / norm
        log.info("Gradient clipping: scaling down gradients (L2 norm %s > %s) by scale factor %s",
                 _g(norm), _g(self.clip_gradients), _g(factor))
        return factor

    def _regularize(self, params, grads, decay_mult):
        """Caffe's ``Regularize``: the decay term added to the gradients (new tensors)."""
        local_decay = self.weight_decay * decay_mult
        if not local_decay:
            return grads
        if self.regularization_type == "L2":
            return torch._foreach_add(grads, params, alpha=local_decay)
        return torch._foreach_add(grads, [torch.sign(p) for p in params], alpha=local_decay)

    def _update(self, params, grads, states, lr, t):
        """Subtract the rule's update from ``params`` (in place); ``grads`` are read only."""
        raise NotImplementedError

    # -- Caffe's history blobs -----------------------------------------------------------------

    def history(self, params):
        """The history tensors of ``params`` in ``.solverstate`` order (zeros where no step was
        taken yet)."""
        out = []
        for slot in self.history_slots:
            for p in params:
                state = self.state.get(p) or {}
                out.append(state[slot] if slot in state else torch.zeros_like(p))
        return out

    def set_history(self, params, arrays, where="solver state"):
        """Load ``.solverstate`` history blobs (``len(history_slots) * len(params)`` arrays)."""
        expected = len(self.history_slots) * len(params)
        if len(arrays) != expected:
            raise ValueError(f"{where}: {len(arrays)} history blobs for a {self.caffe_type} "
                             f"solver over {len(params)} learnable blobs; expected {expected} "
                             f"(Caffe: 'Incorrect length of history blobs').")
        i = 0
        for slot in self.history_slots:
            for p in params:
                value = torch.as_tensor(arrays[i])
                if value.numel() != p.numel():
                    raise ValueError(f"{where}: history blob {i} has shape "
                                     f"{tuple(value.shape)}; the parameter it belongs to has "
                                     f"shape {tuple(p.shape)}.")
                self.state[p][slot] = value.reshape(p.shape).to(p.device, p.dtype).clone()
                i += 1

    def get_config(self):
        return {"name": self.name, "learning_rate": self._config_lr(),
                "weight_decay": self.weight_decay,
                "regularization_type": self.regularization_type,
                "clip_gradients": self.clip_gradients, "iter_size": self.iter_size}

    def _config_lr(self):
        lr = self._learning_rate
        if callable(lr) and hasattr(lr, "get_config"):
            from kaffe import schedules
            return schedules.serialize(lr)
        return lr

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            from kaffe import schedules
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)


def _g(value):
    """C++ ostream's default float format (6 significant digits)."""
    return f"{value:.6g}"


class CaffeSGD(CaffeOptimizer):
    """Caffe's SGD: ``h = momentum * h + local_rate * g``; ``w -= h``."""
    caffe_type = "SGD"

    def __init__(self, learning_rate=0.01, momentum=0.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = float(momentum)

    def _update(self, params, grads, states, lr, t):
        history = [s["history"] for s in states]
        torch._foreach_mul_(history, self.momentum)
        torch._foreach_add_(history, grads, alpha=lr)
        torch._foreach_sub_(params, history)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


class CaffeNesterov(CaffeSGD):
    """Caffe's Nesterov: ``h' = momentum * h + local_rate * g``;
    ``w -= (1 + momentum) * h' - momentum * h``."""
    caffe_type = "Nesterov"

    def _update(self, params, grads, states, lr, t):
        history = [s["history"] for s in states]
        previous = torch._foreach_mul(history, self.momentum)
        torch._foreach_mul_(history, self.momentum)
        torch._foreach_add_(history, grads, alpha=lr)
        torch._foreach_add_(params, previous)
        torch._foreach_add_(params, history, alpha=-(1.0 + self.momentum))


class _NoMomentum(CaffeOptimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, delta=1e-8, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if momentum:
            raise ValueError(f"Momentum cannot be used with {self.caffe_type} (Caffe refuses "
                             f"it). Received: momentum={_g(momentum)}; remove it from the solver.")
        self.delta = float(delta)

    def _step_by_root(self, params, grads, history, lr):
        """``w -= local_rate * g / (sqrt(h) + delta)``."""
        denom = torch._foreach_sqrt(history)
        torch._foreach_add_(denom, self.delta)
        update = torch._foreach_div(grads, denom)
        torch._foreach_add_(params, update, alpha=-lr)

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class CaffeAdaGrad(_NoMomentum):
    """Caffe's AdaGrad: ``h += g^2``; ``w -= local_rate * g / (sqrt(h) + delta)``."""
    caffe_type = "AdaGrad"

    def _update(self, params, grads, states, lr, t):
        history = [s["history"] for s in states]
        torch._foreach_addcmul_(history, grads, grads)
        self._step_by_root(params, grads, history, lr)


class CaffeRMSProp(_NoMomentum):
    """Caffe's RMSProp: ``h = rms_decay * h + (1 - rms_decay) * g^2``;
    ``w -= local_rate * g / (sqrt(h) + delta)``."""
    caffe_type = "RMSProp"

    def __init__(self, learning_rate=0.01, rms_decay=0.99, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rms_decay = float(rms_decay)

    def _update(self, params, grads, states, lr, t):
        history = [s["history"] for s in states]
        torch._foreach_mul_(history, self.rms_decay)
        torch._foreach_addcmul_(history, grads, grads, value=1.0 - self.rms_decay)
        self._step_by_root(params, grads, history, lr)

    def get_config(self):
        return {**super().get_config(), "rms_decay": self.rms_decay}


class CaffeAdaDelta(CaffeOptimizer):
    """Caffe's AdaDelta (momentum = decay ``rho``): ``h = m h + (1 - m) g^2``;
    ``u = g sqrt((h2 + delta) / (h + delta))``; ``h2 = m h2 + (1 - m) u^2``;
    ``w -= local_rate u``."""
    caffe_type = "AdaDelta"
    history_slots = ("history", "history2")

    def __init__(self, learning_rate=1.0, momentum=0.0, delta=1e-8, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.delta = float(momentum), float(delta)

    def _update(self, params, grads, states, lr, t):
        m = self.momentum
        history = [s["history"] for s in states]
        updates = [s["history2"] for s in states]
        torch._foreach_mul_(history, m)
        torch._foreach_addcmul_(history, grads, grads, value=1.0 - m)
        step = torch._foreach_add(updates, self.delta)
        torch._foreach_div_(step, torch._foreach_add(history, self.delta))
        torch._foreach_sqrt_(step)
        torch._foreach_mul_(step, grads)
        torch._foreach_mul_(updates, m)
        torch._foreach_addcmul_(updates, step, step, value=1.0 - m)
        torch._foreach_add_(params, step, alpha=-lr)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "delta": self.delta}


class CaffeAdam(CaffeOptimizer):
    """Caffe's Adam (``momentum`` = beta1, ``momentum2`` = beta2, ``delta`` = epsilon):
    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``w -= local_rate * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + delta)``, ``t = iter + 1``."""
    caffe_type = "Adam"
    history_slots = ("history", "history2")

    def __init__(self, learning_rate=0.001, momentum=0.9, momentum2=0.999, delta=1e-8,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.momentum2, self.delta = float(momentum), float(momentum2), \
            float(delta)

    def _update(self, params, grads, states, lr, t):
        b1, b2 = self.momentum, self.momentum2
        m = [s["history"] for s in states]
        v = [s["history2"] for s in states]
        torch._foreach_mul_(m, b1)
        torch._foreach_add_(m, grads, alpha=1.0 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - b2)
        correction = (1.0 - b2 ** t) ** 0.5 / (1.0 - b1 ** t)
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, self.delta)
        torch._foreach_addcdiv_(params, m, denom, value=-lr * correction)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "momentum2": self.momentum2,
                "delta": self.delta}


CAFFE_OPTIMIZERS = {cls.caffe_type: cls for cls in (CaffeSGD, CaffeNesterov, CaffeAdaGrad,
                                                     CaffeRMSProp, CaffeAdaDelta, CaffeAdam)}

# SolverParameter fields each rule reads besides the shared ones.
_RULE_FIELDS = {"SGD": ("momentum",), "Nesterov": ("momentum",), "AdaGrad": ("momentum", "delta"),
                "RMSProp": ("momentum", "delta", "rms_decay"), "AdaDelta": ("momentum", "delta"),
                "Adam": ("momentum", "momentum2", "delta")}


def from_solver_param(param, learning_rate=None):
    """The optimizer a ``SolverParameter`` asks for (``type``, default SGD), not yet built on
    parameters. ``learning_rate`` defaults to the solver's ``lr_policy`` schedule."""
    from kaffe import schedules
    if param.type not in CAFFE_OPTIMIZERS:
        raise ValueError(f"Unknown solver type {param.type!r} (solver field type). Known: "
                         f"{', '.join(CAFFE_OPTIMIZERS)}.")
    if learning_rate is None:
        learning_rate = schedules.from_solver_param(param)
    extra = {f: getattr(param, f) for f in _RULE_FIELDS[param.type]}
    return CAFFE_OPTIMIZERS[param.type](
        learning_rate, weight_decay=param.weight_decay,
        regularization_type=param.regularization_type, clip_gradients=param.clip_gradients,
        iter_size=param.iter_size, **extra)
