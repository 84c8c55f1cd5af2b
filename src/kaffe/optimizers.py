"""Keras-style optimizers that become ``torch.optim.Optimizer``s once bound to parameters.

A Keras script writes ``SGD(lr=0.01, momentum=0.9, nesterov=True)`` before any model exists,
so construction only validates and stores hyper-parameters. ``opt.build(params)`` then runs
``torch.optim.Optimizer.__init__`` and from there on the object is a regular torch optimizer
(``zero_grad``, ``step``, ``state_dict``, ``param_groups``, GradScaler all work).

Each ``step()`` does, as Keras 3's ``apply`` does:

1. clip the gradients (``clipnorm`` per tensor, ``clipvalue`` or ``global_clipnorm``);
2. decoupled weight decay ``w -= w * weight_decay * decay_mult * lr_t * lr_mult``;
3. the optimizer's Keras 3 update with ``lr_t * lr_mult``, where
   ``lr_t = learning_rate(iterations) / (1 + decay * iterations)`` (``decay`` is Keras 2's);
4. ``iterations += 1``.

Updates are vectorised per parameter group with ``torch._foreach_*`` ops; all scalars are
Python floats, so a step never waits for the device.

Parameter groups may carry ``lr_mult`` and ``decay_mult`` (default 1.0), Caffe's per-blob
multipliers. Group-level ``lr`` or ``weight_decay`` keys are rejected: use the multipliers.
"""
import importlib
import inspect
import math
from collections import OrderedDict

import torch
from torch.optim import optimizer as torch_optimizer

_GROUP_KEYS = ("params", "param_names", "lr_mult", "decay_mult", "name")
# Keras 3 arguments kaffe does not implement; accepted only at their do-nothing defaults so that
# configs saved by Keras load.
_KERAS3_INERT = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                 "loss_scale_factor": None, "gradient_accumulation_steps": None}

_TORCH_HOOK_DICTS = ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                     "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                     "_optimizer_load_state_dict_pre_hooks", "_optimizer_load_state_dict_post_hooks")


def _snake_case(name):
    return "".join("_" + c.lower() if c.isupper() and i and not name[i - 1].isupper() else c.lower()
                   for i, c in enumerate(name))


class Optimizer(torch.optim.Optimizer):
    """Base class. Subclasses implement ``_init_state(param, state)`` and
    ``_update(params, grads, states, lr, t)`` (``t`` = 1-based step number)."""

    def __init__(self, learning_rate=0.001, *, lr=None, decay=0.0, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, weight_decay=None, name=None, **unknown):
        for key, inert in _KERAS3_INERT.items():
            if key in unknown and unknown[key] == inert:
                del unknown[key]
        if unknown:
            valid = [p for p in inspect.signature(type(self).__init__).parameters
                     if p not in ("self", "kwargs", "unknown")]
            valid += [p for p in inspect.signature(Optimizer.__init__).parameters
                      if p not in ("self", "unknown") and p not in valid]
            raise TypeError(f"{type(self).__name__} got unexpected argument(s) "
                            f"{', '.join(sorted(unknown))}. Valid arguments: {', '.join(valid)}.")
        if lr is not None:  # Keras 2 spelling wins over the class default
            learning_rate = lr
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of clipnorm, clipvalue and global_clipnorm can be set. "
                             f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        if decay is None or decay < 0:
            raise ValueError(f"decay must be a float >= 0. Received: decay={decay}")
        self._learning_rate = _check_learning_rate(learning_rate)
        self.decay = float(decay)
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.weight_decay = weight_decay
        self.name = name or _snake_case(type(self).__name__)
        self.iterations = 0
        self.built = False
        # torch's step wrapper reads these even before build; build() keeps what they hold.
        for hooks in _TORCH_HOOK_DICTS:
            setattr(self, hooks, OrderedDict())

    # -- binding -----------------------------------------------------------------------------

    def build(self, params):
        """Bind to ``params`` (tensors, ``(name, tensor)`` pairs or group dicts); makes this a
        working ``torch.optim.Optimizer``. Building again with the same tensors does nothing."""
        params = list(params)
        if self.built:
            known = [p for g in self.param_groups for p in g["params"]]
            given = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
            if [id(p) for p in known] != [id(p) if isinstance(p, torch.Tensor) else id(p[1])
                                          for p in given]:
                raise ValueError(f"Optimizer {self.name!r} is already built on other parameters; "
                                 "create a new optimizer or use add_param_group().")
            return
        if not params:
            params = [{"params": []}]
        registered = {name: getattr(self, name) for name in _TORCH_HOOK_DICTS}
        torch.optim.Optimizer.__init__(self, params, {"lr_mult": 1.0, "decay_mult": 1.0})
        for name, hooks in registered.items():  # hooks registered before build stay
            getattr(self, name).update(hooks)
        self.built = True

    def add_param_group(self, param_group):
        unknown = set(param_group) - set(_GROUP_KEYS)
        if unknown:
            raise ValueError(f"Parameter group keys {sorted(unknown)} are not supported by kaffe "
                             f"optimizers (valid: {list(_GROUP_KEYS)}); scale the learning rate and "
                             "weight decay per group with lr_mult and decay_mult.")
        super().add_param_group(param_group)

    def _require_built(self):
        if not self.built:
            raise RuntimeError(f"Optimizer {self.name!r} is not built yet: call "
                               "optimizer.build(model.parameters()) first (compile/fit do this).")

    # -- learning rate -----------------------------------------------------------------------

    @property
    def learning_rate(self):
        """The base learning rate at the current step (a schedule is evaluated, ``decay`` is not
        applied), as a float. Set a float to change it, or a callable ``f(step)`` to schedule it;
        Keras 2's ``K.set_value(model.optimizer.lr, v)`` also works."""
        lr = self._learning_rate
        if callable(lr):
            lr = _to_float(lr(self.iterations) if _takes_step(lr) else lr())
        return LearningRateValue(lr, self)

    @learning_rate.setter
    def learning_rate(self, value):
        if not callable(value) and callable(self._learning_rate):
            raise TypeError("This optimizer's learning_rate is a schedule, so it cannot be set to "
                            "a number; create the optimizer with a float learning_rate instead.")
        self._learning_rate = _check_learning_rate(value)

    lr = learning_rate  # Keras 2 alias (``model.optimizer.lr``)

    def _current_lr(self):
        lr = float(self.learning_rate)
        if self.decay:
            lr = lr / (1.0 + self.decay * self.iterations)
        return lr

    # -- the step ----------------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient (others are skipped)."""
        self._require_built()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._apply(self._gradient_batches())
        return loss

    def _gradient_batches(self):
        """``(group, params, grads)`` per group, for the parameters that have a gradient."""
        batches = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                batches.append((group, params, [p.grad for p in params]))
        return batches

    def clear_gradients(self):
        """``zero_grad(set_to_none=True)`` without torch's profiler record (fit calls it every
        step; a record costs as much as a small layer's forward)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step_unhooked(self):
        """``step()`` for fit's loop: torch's wrapper (a profiler record and the step hooks)
        is skipped when no hook is registered and ``step`` is kaffe's own (a subclass that
        overrides it, or a registered hook, gets the full ``step()``)."""
        step = type(self).step
        if (getattr(step, "__wrapped__", step) is not Optimizer.step
                or self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                or torch_optimizer._global_optimizer_pre_hooks
                or torch_optimizer._global_optimizer_post_hooks):
            self.step()
            return
        with torch.no_grad():
            self._apply(self._gradient_batches())

    @torch.no_grad()
    def apply_gradients(self, grads_and_vars):
        """Keras-style ``apply_gradients(zip(grads, vars))`` for custom loops (builds if needed)."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not self.built:
            self.build([v for _, v in pairs])
        where = {id(p): i for i, group in enumerate(self.param_groups) for p in group["params"]}
        per_group = {}
        for g, v in pairs:
            if id(v) not in where:
                raise ValueError("apply_gradients got a tensor this optimizer was not built with; "
                                 "use add_param_group() first.")
            params, grads = per_group.setdefault(where[id(v)], ([], []))
            params.append(v)
            grads.append(g)
        self._apply([(self.param_groups[i], p, g) for i, (p, g) in sorted(per_group.items())])
        return self.iterations

    def apply(self, grads, trainable_variables):
        return self.apply_gradients(zip(grads, trainable_variables))

    def _apply(self, batches):
        if not batches:  # nothing has a gradient: not a step (Keras does not count it either)
            return
        all_grads = [g for _, _, grads in batches for g in grads]
        if any(g.is_sparse for g in all_grads):
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients.")
        all_grads = self._clip(all_grads)
        lr = self._current_lr()
        t = self.iterations + 1
        self._begin_step(t)
        start = 0
        for group, params, _ in batches:
            grads = all_grads[start:start + len(params)]
            start += len(params)
            grads = [g if g.dtype == p.dtype else g.to(p.dtype) for g, p in zip(grads, params)]
            group_lr = lr * group["lr_mult"]
            if self.weight_decay:
                factor = 1.0 - self.weight_decay * group["decay_mult"] * group_lr
                if factor != 1.0:
                    torch._foreach_mul_(params, factor)
            states = []
            for p in params:
                state = self.state[p]
                if not state:
                    self._init_state(p, state)
                states.append(state)
            self._update(params, grads, states, group_lr, t)
        self.iterations += 1

    def _clip(self, grads):
        """Keras's clipping; returns new tensors, ``p.grad`` is left as it was."""
        if not grads:
            return grads
        if self.clipnorm and self.clipnorm > 0:
            # g * c / max(||g||, c), per tensor
            norms = torch._foreach_clamp_min(torch._foreach_norm(grads), self.clipnorm)
            return torch._foreach_div(torch._foreach_mul(grads, self.clipnorm), norms)
        if self.global_clipnorm and self.global_clipnorm > 0:
            c = self.global_clipnorm
            norm = torch.linalg.vector_norm(torch.stack([n.float() for n in torch._foreach_norm(grads)]))
            # Keras: a NaN/inf norm makes the scale NaN instead of silently passing the update.
            scale = c * torch.clamp(1.0 / norm, max=1.0 / c) + (norm - norm)
            return [g * scale.to(g.dtype) for g in grads]
        if self.clipvalue and self.clipvalue > 0:
            clipped = torch._foreach_clamp_min(grads, -self.clipvalue)
            torch._foreach_clamp_max_(clipped, self.clipvalue)
            return clipped
        return grads

    def _begin_step(self, t):
        """Hook for optimizer-wide scalars updated once per step (Nadam)."""

    def _init_state(self, param, state):
        raise NotImplementedError

    def _update(self, params, grads, states, lr, t):
        raise NotImplementedError

    # -- (de)serialisation ---------------------------------------------------------------------

    def _extra_state(self):
        return {}

    def _load_extra_state(self, extra):
        pass

    def state_dict(self):
        self._require_built()
        sd = super().state_dict()
        lr = self._learning_rate
        sd["kaffe"] = {"iterations": self.iterations,
                       "learning_rate": None if callable(lr) else lr, **self._extra_state()}
        return sd

    def load_state_dict(self, state_dict):
        self._require_built()
        state_dict = dict(state_dict)
        extra = state_dict.pop("kaffe", None) or {}
        super().load_state_dict(state_dict)
        self.iterations = int(extra.get("iterations", self.iterations))
        if extra.get("learning_rate") is not None and not callable(self._learning_rate):
            self._learning_rate = float(extra["learning_rate"])
        self._load_extra_state(extra)

    def __getstate__(self):
        return dict(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.__dict__.get("built"):
            super().__setstate__({})

    def get_config(self):
        lr = self._learning_rate
        if callable(lr):
            lr = _serialize_schedule(lr)
        return {"name": self.name, "learning_rate": lr, "decay": self.decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "weight_decay": self.weight_decay}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _deserialize_schedule(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        where = (f", built on {sum(len(g['params']) for g in self.param_groups)} tensors"
                 if self.built else "")
        return f"{type(self).__name__}({args}){where}"


class LearningRateValue(float):
    """The float that ``optimizer.learning_rate`` returns, remembering its optimizer so that Keras 2
    idioms writing it back (``K.set_value(opt.lr, v)``, ``opt.lr.assign(v)``) reach the optimizer."""

    def __new__(cls, value, optimizer):
        obj = float.__new__(cls, value)
        obj._optimizer = optimizer
        return obj

    def assign(self, value):
        self._optimizer.learning_rate = _to_float(value)

    def numpy(self):
        return float(self)

    def __reduce__(self):  # pickles (and deep-copies) as a plain float
        return (float, (float(self),))


def _takes_step(fn):
    """Keras schedules take the step; Keras 3 also allows zero-argument callables."""
    try:
        return len(inspect.signature(fn).parameters) > 0
    except (TypeError, ValueError):
        return True


def _to_float(value):
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def _check_learning_rate(value):
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return _to_float(value)  # numpy scalars, 0-d tensors
        except (TypeError, ValueError):
            raise ValueError("learning_rate must be a float or a callable of the step. "
                             f"Received: learning_rate={value!r}") from None
    return float(value)


def _serialize_schedule(schedule):
    if hasattr(schedule, "get_config"):
        return {"module": type(schedule).__module__, "class_name": type(schedule).__name__,
                "config": schedule.get_config()}
    return schedule


def _deserialize_schedule(config):
    module = importlib.import_module(config.get("module") or "keras.optimizers.schedules")
    cls = getattr(module, config["class_name"])
    return cls.from_config(config["config"]) if hasattr(cls, "from_config") else cls(**config["config"])


def _zeros_states(state, param, *names):
    for n in names:
        state[n] = torch.zeros_like(param, memory_format=torch.preserve_format)


class SGD(Optimizer):
    """Keras 3 SGD: ``m = momentum * m - lr * g``; ``w += m`` or, with Nesterov,
    ``w += momentum * m - lr * g``."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"SGD expected momentum in [0, 1]. Received: momentum={momentum}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _init_state(self, param, state):
        if self.momentum:
            _zeros_states(state, param, "momentum")

    def _update(self, params, grads, states, lr, t):
        if not self.momentum:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        bufs = [s["momentum"] for s in states]
        torch._foreach_mul_(bufs, self.momentum)
        torch._foreach_add_(bufs, grads, alpha=-lr)
        if self.nesterov:
            torch._foreach_add_(params, grads, alpha=-lr)
            torch._foreach_add_(params, bufs, alpha=self.momentum)
        else:
            torch._foreach_add_(params, bufs)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """Keras 3 RMSprop: ``v = rho v + (1 - rho) g^2``; ``w -= lr g / sqrt(v + eps)`` (``v - mean_g^2``
    when centered), optionally through a momentum accumulator."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = 1e-7 if epsilon is None else float(epsilon)
        self.centered = bool(centered)

    def _init_state(self, param, state):
        _zeros_states(state, param, "velocity")
        if self.momentum > 0:
            _zeros_states(state, param, "momentum")
        if self.centered:
            _zeros_states(state, param, "average_gradient")

    def _update(self, params, grads, states, lr, t):
        rho = self.rho
        velocities = [s["velocity"] for s in states]
        torch._foreach_mul_(velocities, rho)
        torch._foreach_add_(velocities, torch._foreach_mul(grads, grads), alpha=1 - rho)
        denominators = torch._foreach_add(velocities, self.epsilon)
        if self.centered:
            averages = [s["average_gradient"] for s in states]
            torch._foreach_mul_(averages, rho)
            torch._foreach_add_(averages, grads, alpha=1 - rho)
            torch._foreach_add_(denominators, torch._foreach_mul(averages, averages), alpha=-1)
        torch._foreach_sqrt_(denominators)
        increments = torch._foreach_div(torch._foreach_mul(grads, lr), denominators)
        if self.momentum > 0:
            moms = [s["momentum"] for s in states]
            torch._foreach_mul_(moms, self.momentum)
            torch._foreach_add_(moms, increments)
            torch._foreach_add_(params, moms, alpha=-1)
        else:
            torch._foreach_add_(params, increments, alpha=-1)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Keras 3 Adagrad: ``a += g^2``; ``w -= lr g / sqrt(a + eps)``, ``a`` starting at
    ``initial_accumulator_value``."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = 1e-7 if epsilon is None else float(epsilon)

    def _init_state(self, param, state):
        state["accumulator"] = torch.full_like(param, self.initial_accumulator_value,
                                               memory_format=torch.preserve_format)

    def _update(self, params, grads, states, lr, t):
        accs = [s["accumulator"] for s in states]
        torch._foreach_add_(accs, torch._foreach_mul(grads, grads))
        denominators = torch._foreach_sqrt(torch._foreach_add(accs, self.epsilon))
        torch._foreach_add_(params, torch._foreach_div(torch._foreach_mul(grads, lr), denominators),
                            alpha=-1)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Keras 3 Adadelta: ``delta = -sqrt(D + eps) / sqrt(G + eps) * g``; ``w += lr * delta``.

    The default learning rate is 1.0, as in Keras 2, Zeiler's paper and ``torch.optim.Adadelta``
    (``optimizer='adadelta'`` too): the Keras 2 scripts that name it were tuned for that, and
    Keras 3's default of 0.001 barely trains them (the seed's MNIST autoencoder: validation
    loss 0.678 after 50 epochs vs 0.102). ``Adadelta(learning_rate=0.001)`` is Keras 3's."""

    def __init__(self, learning_rate=1.0, rho=0.95, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho = float(rho)
        self.epsilon = 1e-7 if epsilon is None else float(epsilon)

    def _init_state(self, param, state):
        _zeros_states(state, param, "accumulated_grad", "accumulated_delta_var")

    def _update(self, params, grads, states, lr, t):
        rho, eps = self.rho, self.epsilon
        acc_grads = [s["accumulated_grad"] for s in states]
        acc_deltas = [s["accumulated_delta_var"] for s in states]
        torch._foreach_mul_(acc_grads, rho)
        torch._foreach_add_(acc_grads, torch._foreach_mul(grads, grads), alpha=1 - rho)
        rms_delta = torch._foreach_sqrt(torch._foreach_add(acc_deltas, eps))
        rms_grad = torch._foreach_sqrt(torch._foreach_add(acc_grads, eps))
        deltas = torch._foreach_div(torch._foreach_mul(rms_delta, grads), rms_grad)
        torch._foreach_neg_(deltas)
        torch._foreach_mul_(acc_deltas, rho)
        torch._foreach_add_(acc_deltas, torch._foreach_mul(deltas, deltas), alpha=1 - rho)
        torch._foreach_add_(params, deltas, alpha=lr)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adam(Optimizer):
    """Keras 3 Adam: ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`` (the epsilon is
    outside the bias correction, as in Keras); ``amsgrad`` uses ``max`` over past ``v``."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = 1e-7 if epsilon is None else float(epsilon)
        self.amsgrad = bool(amsgrad)

    def _init_state(self, param, state):
        _zeros_states(state, param, "momentum", "velocity")
        if self.amsgrad:
            _zeros_states(state, param, "velocity_hat")

    def _update(self, params, grads, states, lr, t):
        b1, b2 = self.beta_1, self.beta_2
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        ms = [s["momentum"] for s in states]
        vs = [s["velocity"] for s in states]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, grads, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_add_(vs, torch._foreach_mul(grads, grads), alpha=1 - b2)
        if self.amsgrad:
            v_hats = [s["velocity_hat"] for s in states]
            torch._foreach_maximum_(v_hats, vs)
            vs = v_hats
        denominators = torch._foreach_add(torch._foreach_sqrt(vs), self.epsilon)
        torch._foreach_add_(params, torch._foreach_div(torch._foreach_mul(ms, alpha), denominators),
                            alpha=-1)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay on by default (``weight_decay=0.004``, Keras 3)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay; use Adam for none.")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)


class Adamax(Optimizer):
    """Keras 3 Adamax: ``u = max(b2 u, |g|)``; ``w -= lr m / ((1 - b1^t)(u + eps))``."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = 1e-7 if epsilon is None else float(epsilon)

    def _init_state(self, param, state):
        _zeros_states(state, param, "momentum", "norm")

    def _update(self, params, grads, states, lr, t):
        b1 = self.beta_1
        ms = [s["momentum"] for s in states]
        us = [s["norm"] for s in states]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, grads, alpha=1 - b1)
        torch._foreach_mul_(us, self.beta_2)
        torch._foreach_maximum_(us, torch._foreach_abs(grads))
        denominators = torch._foreach_mul(torch._foreach_add(us, self.epsilon), 1 - b1 ** t)
        torch._foreach_add_(params, torch._foreach_div(torch._foreach_mul(ms, lr), denominators),
                            alpha=-1)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Keras 3 Nadam (momentum schedule ``u_t = b1 (1 - 0.5 * 0.96^t)``).

    ``schedule_decay`` (Keras 2's argument) switches to Keras 2's schedule
    ``u_t = b1 (1 - 0.5 * 0.96^(t * schedule_decay))``; leave it ``None`` for Keras 3's.
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 schedule_decay=None, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = 1e-7 if epsilon is None else float(epsilon)
        self.schedule_decay = schedule_decay
        self._u_product = 1.0

    def _u(self, t):
        exponent = t if self.schedule_decay is None else t * self.schedule_decay
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** exponent)

    def _begin_step(self, t):
        self._u_t, self._u_next = self._u(t), self._u(t + 1)
        self._u_product *= self._u_t

    def _init_state(self, param, state):
        _zeros_states(state, param, "momentum", "velocity")

    def _update(self, params, grads, states, lr, t):
        b1, b2 = self.beta_1, self.beta_2
        u_t, u_next, u_prod = self._u_t, self._u_next, self._u_product
        ms = [s["momentum"] for s in states]
        vs = [s["velocity"] for s in states]
        torch._foreach_mul_(ms, b1)
        torch._foreach_add_(ms, grads, alpha=1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_add_(vs, torch._foreach_mul(grads, grads), alpha=1 - b2)
        m_hat = torch._foreach_mul(ms, u_next / (1 - u_prod * u_next))
        torch._foreach_add_(m_hat, grads, alpha=(1 - u_t) / (1 - u_prod))
        v_hat = torch._foreach_div(vs, 1 - b2 ** t)
        denominators = torch._foreach_add(torch._foreach_sqrt(v_hat), self.epsilon)
        torch._foreach_add_(params, torch._foreach_div(torch._foreach_mul(m_hat, lr), denominators),
                            alpha=-1)

    def _extra_state(self):
        return {"u_product": self._u_product}

    def _load_extra_state(self, extra):
        self._u_product = float(extra.get("u_product", self._u_product))

    def get_config(self):
        config = {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                  "epsilon": self.epsilon}
        if self.schedule_decay is not None:
            config["schedule_decay"] = self.schedule_decay
        return config


class Lion(Optimizer):
    """Keras 3 Lion (Chen et al. 2023): ``w -= lr * sign(b1 m + (1 - b1) g)``, then
    ``m = b2 m + (1 - b2) g``."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, **kwargs):
        super().__init__(learning_rate, **kwargs)
        if not 0 < beta_1 <= 1:
            raise ValueError(f"beta_1 must be in (0, 1]. Received: beta_1={beta_1}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def _init_state(self, param, state):
        _zeros_states(state, param, "momentum")

    def _update(self, params, grads, states, lr, t):
        ms = [s["momentum"] for s in states]
        direction = torch._foreach_add(torch._foreach_mul(ms, self.beta_1), grads,
                                       alpha=1 - self.beta_1)
        torch._foreach_add_(params, torch._foreach_sign(direction), alpha=-lr)
        torch._foreach_mul_(ms, self.beta_2)
        torch._foreach_add_(ms, grads, alpha=1 - self.beta_2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}


_CLASSES = {c.__name__.lower(): c for c in (SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, Adamax,
                                            Nadam, Lion)}


def get(identifier):
    """Resolve ``compile(optimizer=...)``: a name (``'sgd'``, ``'Adam'``...), a kaffe optimizer or a
    plain ``torch.optim.Optimizer`` (returned as is), an optimizer class, or a
    ``{'class_name', 'config'}`` dict."""
    if isinstance(identifier, torch.optim.Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier.lower() in _CLASSES:
        return _CLASSES[identifier.lower()]()
    raise ValueError(f"Could not interpret optimizer identifier {identifier!r}. "
                     f"Valid names: {', '.join(sorted(_CLASSES))}; or pass an optimizer instance.")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    class_name = str(config.get("class_name", ""))
    cls = _CLASSES.get(class_name.lower())
    if cls is None:
        raise ValueError(f"Unknown optimizer class {class_name!r}. Valid: {', '.join(sorted(_CLASSES))}.")
    return cls.from_config(config.get("config", {}))
