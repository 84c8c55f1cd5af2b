"""Learning-rate schedules: Caffe's ``lr_policy`` formulas and Keras's schedules, for both
front ends (``keras.optimizers.schedules`` resolves here under ``kaffe run``).

Each schedule is a callable of the iteration (``schedule(step) -> float``), which is what a
Keras-style optimizer accepts as ``learning_rate`` and what the Caffe solver evaluates once per
update. The formulas are Caffe's ``SGDSolver::GetLearningRate`` (sgd_solver.cpp), with ``iter``
the number of updates done so far:

=============  =================================================================
``fixed``      ``base_lr``
``step``       ``base_lr * gamma ^ floor(iter / stepsize)``
``exp``        ``base_lr * gamma ^ iter``
``inv``        ``base_lr * (1 + gamma * iter) ^ (-power)``
``multistep``  ``base_lr * gamma ^ (number of stepvalues passed)``
``poly``       ``base_lr * (1 - iter / max_iter) ^ power``
``sigmoid``    ``base_lr / (1 + exp(-gamma * (iter - stepsize)))``
=============  =================================================================

Arithmetic follows Caffe's types (float32 ``Dtype`` expressions with ``powf`` / ``expf``,
``pow(float, int)`` in double, the rate stored as float32), so logged rates match Caffe's
digits. ``current_step(iter)`` gives Caffe's ``current_step_`` (what a ``.solverstate`` stores)
after the rate of ``iter`` was computed.

    >>> round(Inv(0.01, gamma=1e-4, power=0.75)(10), 8)
    0.00999251
    >>> round(from_solver_param(base_lr=0.1, lr_policy="step", gamma=0.5, stepsize=3)(7), 6)
    0.025
"""
import math

import numpy as np

__all__ = ["LearningRateSchedule", "CaffePolicy", "Fixed", "Step", "Exp", "Inv", "MultiStep",
           "Poly", "Sigmoid", "LR_POLICIES", "ExponentialDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts",
           "from_solver_param", "get", "serialize", "deserialize"]

_F = np.float32


def _powf(base, exponent):
    """C's ``powf``, correctly rounded (numpy's float32 ``power`` can be an ulp off)."""
    try:
        return _F(math.pow(float(base), float(exponent)))
    except (OverflowError, ValueError):
        return _F(np.power(float(base), float(exponent)))


def _expf(x):
    """C's ``expf``, correctly rounded (numpy's float32 ``exp`` can be an ulp off)."""
    return _F(math.exp(float(x))) if x < 88.8 else _F(np.inf)


class LearningRateSchedule:
    """Keras's schedule protocol: ``schedule(step) -> learning rate``; ``get_config`` returns
    the constructor's arguments and ``from_config`` rebuilds the schedule from them."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_gamma(policy, gamma):
    if gamma < 0:
        raise ValueError(f"lr_policy {policy!r} expected gamma >= 0 (Caffe stops with 'Check "
                         f"failed: gamma >= 0'). Received: gamma={gamma}. Set a gamma between 0 "
                         f"and 1 to decay the rate.")


def _check_stepsize(policy, stepsize):
    if stepsize <= 0:
        raise ValueError(f"lr_policy {policy!r} expected stepsize > 0. Received: "
                         f"stepsize={stepsize}. Set stepsize to the number of iterations between "
                         f"rate changes.")


class CaffePolicy(LearningRateSchedule):
    """Base of Caffe's policies: ``base_lr`` times the policy's factor at ``iter``."""
    name = ""
    fields = ()

    def __init__(self, base_lr):
        self.base_lr = float(base_lr)

    def __call__(self, step):
        return float(self.rate(int(step)))

    def rate(self, iteration):
        raise NotImplementedError

    def current_step(self, iteration):
        """Caffe's ``current_step_`` once the rate of ``iteration`` was computed (0 for the
        policies that do not count steps)."""
        return 0

    def get_config(self):
        return {"base_lr": self.base_lr, **{f: getattr(self, f) for f in self.fields}}


class Fixed(CaffePolicy):
    """``lr_policy: "fixed"``: always ``base_lr``."""
    name = "fixed"

    def rate(self, iteration):
        return _F(self.base_lr)


class Step(CaffePolicy):
    """``lr_policy: "step"``: ``base_lr * gamma ^ floor(iter / stepsize)``."""
    name = "step"
    fields = ("gamma", "stepsize")

    def __init__(self, base_lr, gamma, stepsize):
        super().__init__(base_lr)
        _check_stepsize(self.name, stepsize)
        _check_gamma(self.name, gamma)
        self.gamma, self.stepsize = float(gamma), int(stepsize)

    def current_step(self, iteration):
        return iteration // self.stepsize

    def rate(self, iteration):
        return _F(_F(self.base_lr) * math.pow(_F(self.gamma), self.current_step(iteration)))


class Exp(CaffePolicy):
    """``lr_policy: "exp"``: ``base_lr * gamma ^ iter``."""
    name = "exp"
    fields = ("gamma",)

    def __init__(self, base_lr, gamma):
        super().__init__(base_lr)
        _check_gamma(self.name, gamma)
        self.gamma = float(gamma)

    def rate(self, iteration):
        return _F(_F(self.base_lr) * math.pow(_F(self.gamma), iteration))


class Inv(CaffePolicy):
    """``lr_policy: "inv"``: ``base_lr * (1 + gamma * iter) ^ (-power)``."""
    name = "inv"
    fields = ("gamma", "power")

    def __init__(self, base_lr, gamma, power):
        super().__init__(base_lr)
        _check_gamma(self.name, gamma)
        self.gamma, self.power = float(gamma), float(power)

    def rate(self, iteration):
        base = _F(1) + _F(self.gamma) * _F(iteration)
        return _F(self.base_lr) * _powf(base, -_F(self.power))


class MultiStep(CaffePolicy):
    """``lr_policy: "multistep"``: ``base_lr * gamma ^ k`` with ``k`` the stepvalues passed.

    Caffe moves at most one step per iteration (step ``i`` is taken at iteration
    ``max(stepvalue[i], iteration of step i-1 + 1)``); that rule is kept, so unsorted or
    repeated stepvalues give Caffe's rates too."""
    name = "multistep"
    fields = ("gamma", "stepvalue")

    def __init__(self, base_lr, gamma, stepvalue):
        super().__init__(base_lr)
        _check_gamma(self.name, gamma)
        self.gamma, self.stepvalue = float(gamma), [int(v) for v in stepvalue]
        self._taken_at, last = [], -1
        for value in self.stepvalue:
            last = max(value, last + 1)
            self._taken_at.append(last)

    def current_step(self, iteration):
        return sum(1 for at in self._taken_at if at <= iteration)

    def rate(self, iteration):
        return _F(_F(self.base_lr) * math.pow(_F(self.gamma), self.current_step(iteration)))


class Poly(CaffePolicy):
    """``lr_policy: "poly"``: ``base_lr * (1 - iter / max_iter) ^ power`` (zero at max_iter)."""
    name = "poly"
    fields = ("power", "max_iter")

    def __init__(self, base_lr, power, max_iter):
        super().__init__(base_lr)
        if max_iter <= 0:
            raise ValueError(f"lr_policy 'poly' expected max_iter > 0 (the rate reaches zero "
                             f"there). Received: max_iter={max_iter}.")
        self.power, self.max_iter = float(power), int(max_iter)

    def rate(self, iteration):
        left = _F(1) - _F(iteration) / _F(self.max_iter)
        return _F(self.base_lr) * _powf(left, _F(self.power))


class Sigmoid(CaffePolicy):
    """``lr_policy: "sigmoid"``: ``base_lr / (1 + exp(-gamma * (iter - stepsize)))``."""
    name = "sigmoid"
    fields = ("gamma", "stepsize")

    def __init__(self, base_lr, gamma, stepsize):
        super().__init__(base_lr)
        _check_gamma(self.name, gamma)
        _check_stepsize(self.name, stepsize)
        self.gamma, self.stepsize = float(gamma), int(stepsize)

    def rate(self, iteration):
        z = -_F(self.gamma) * (_F(iteration) - _F(self.stepsize))
        return _F(self.base_lr) * (_F(1) / (_F(1) + _expf(z)))


LR_POLICIES = {cls.name: cls for cls in (Fixed, Step, Exp, Inv, MultiStep, Poly, Sigmoid)}


# --------------------------------------------------------------------- Keras's own schedules

def _positive(name, value):
    if value <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")


class ExponentialDecay(LearningRateSchedule):
    """Keras: ``initial_learning_rate * decay_rate ^ (step / decay_steps)`` (the exponent
    floored with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        _positive("decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def __call__(self, step):
        p = float(step) / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase
                                                                else p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """Keras: ``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]``."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"The length of boundaries should be 1 less than the length of "
                             f"values. Received: boundaries={boundaries} of length "
                             f"{len(boundaries)}, and values={values} of length {len(values)}.")
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        index = sum(1 for b in self.boundaries if float(step) > b)
        return self.values[index]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """Keras: ``(initial - end) * (1 - step / decay_steps) ^ power + end``; with ``cycle`` the
    horizon grows to the next multiple of ``decay_steps``, else ``step`` stops there."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        _positive("decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power, self.cycle = end_learning_rate, power, cycle
        self.name = name

    def __call__(self, step):
        step, horizon = float(step), float(self.decay_steps)
        if self.cycle:
            horizon *= 1.0 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, horizon)
        return ((self.initial_learning_rate - self.end_learning_rate) *
                (1 - step / horizon) ** self.power + self.end_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """Keras: ``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (floored with
    ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        _positive("decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def __call__(self, step):
        p = float(step) / self.decay_steps
        return self.initial_learning_rate / (1 + self.decay_rate * (math.floor(p)
                                                                    if self.staircase else p))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Keras: an optional linear warm-up from ``initial_learning_rate`` to ``warmup_target``
    over ``warmup_steps``, then ``lr * ((1 - alpha) * (1 + cos(pi * t / decay_steps)) / 2 +
    alpha)``, held after ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        _positive("decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.alpha = alpha
        self.name, self.warmup_target, self.warmup_steps = name, warmup_target, warmup_steps

    def _decay(self, step, start):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        step = float(step)
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            return (self.warmup_target - self.initial_learning_rate) * step / \
                self.warmup_steps + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Keras (SGDR): cosine decay restarted after ``first_decay_steps``, each period ``t_mul``
    times longer and ``m_mul`` times lower."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        _positive("first_decay_steps", first_decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul, self._m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def __call__(self, step):
        fraction = float(step) / self.first_decay_steps
        t_mul = self._t_mul
        if t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            restart = math.floor(math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            done = (1.0 - t_mul ** restart) / (1.0 - t_mul)
            fraction = (fraction - done) / t_mul ** restart
        cosine = 0.5 * self._m_mul ** restart * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


KERAS_SCHEDULES = (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay,
                   CosineDecay, CosineDecayRestarts)


def from_solver_param(param=None, **fields):
    """The schedule a Caffe ``SolverParameter`` (or keyword fields with its names) asks for.

    Raises ``ValueError`` naming the policy and field when a value is missing or out of range
    (Caffe would stop at the first update)."""
    if param is not None:
        fields = {f.name: (list(v) if f.is_repeated else v) for f, v in param.ListFields()}
    policy = fields.get("lr_policy", "")
    if policy not in LR_POLICIES:
        raise ValueError(f"Unknown learning rate policy {policy!r} (solver field lr_policy). "
                         f"Known: {', '.join(LR_POLICIES)}.")
    cls = LR_POLICIES[policy]
    defaults = {"gamma": 0.0, "power": 0.0, "stepsize": 0, "stepvalue": [], "max_iter": 0}
    args = {f: fields.get(f, defaults[f]) for f in cls.fields}
    return cls(fields.get("base_lr", 0.0), **args)


_KERAS_NAMES = {cls.__name__: cls for cls in (*LR_POLICIES.values(), *KERAS_SCHEDULES)}


def get(identifier):
    """A schedule from a schedule, a ``{'class_name', 'config'}`` dict or a Caffe policy name."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret schedule {identifier!r}; pass a schedule object or "
                     f"a dict from serialize().")


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    name = config.get("class_name", "")
    if name not in _KERAS_NAMES:
        raise ValueError(f"Unknown schedule class {name!r}. Known: {', '.join(_KERAS_NAMES)}.")
    return _KERAS_NAMES[name].from_config(config.get("config", {}))
