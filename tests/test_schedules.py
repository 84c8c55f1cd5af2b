"""Caffe's lr_policy schedules against real Caffe's logs, the published formulas and Keras 3's
own schedules (where Keras has the same curve)."""
import os
import re

import numpy as np
import pytest

from kaffe import schedules
from kaffe.caffe.prototxt import read_solver_param

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
SOLVERS = ["sgd_step", "sgd_l1_clip_itersize2_fixed", "nesterov_inv", "adagrad_multistep",
           "rmsprop_poly", "adadelta_sigmoid", "adam_exp"]


@pytest.mark.skipif(not os.path.isdir(REF), reason="needs ../shared/reference")
@pytest.mark.parametrize("name", SOLVERS + ["lenet"])
def test_rates_equal_caffes_log(name):
    """Every `Iteration N, lr = X` line real Caffe logged, for every policy."""
    if name == "lenet":
        solver, log = os.path.join(REF, "mnist", "lenet_solver.prototxt"), \
            os.path.join(REF, "mnist", "train.log")
    else:
        solver, log = os.path.join(REF, "solvers", f"{name}.prototxt"), \
            os.path.join(REF, "solvers", name, "train.log")
    schedule = schedules.from_solver_param(read_solver_param(solver))
    rates = re.findall(r"\] Iteration (\d+), lr = (\S+)", open(log).read())
    assert len(rates) >= 10
    for iteration, rate in rates:
        assert f"{schedule(int(iteration)):.6g}" == rate, f"{name} at iteration {iteration}"


FORMULAS = {  # the published formulas (sgd_solver.cpp's comment), in float64
    "fixed": lambda it, p: p["base_lr"],
    "step": lambda it, p: p["base_lr"] * p["gamma"] ** (it // p["stepsize"]),
    "exp": lambda it, p: p["base_lr"] * p["gamma"] ** it,
    "inv": lambda it, p: p["base_lr"] * (1 + p["gamma"] * it) ** -p["power"],
    "multistep": lambda it, p: p["base_lr"] * p["gamma"] ** sum(it >= s for s in p["stepvalue"]),
    "poly": lambda it, p: p["base_lr"] * (1 - it / p["max_iter"]) ** p["power"],
    "sigmoid": lambda it, p: p["base_lr"] / (1 + np.exp(-p["gamma"] * (it - p["stepsize"]))),
}
SETTINGS = {"fixed": {}, "step": {"gamma": 0.3, "stepsize": 7}, "exp": {"gamma": 0.99},
            "inv": {"gamma": 1e-3, "power": 0.75}, "multistep": {"gamma": 0.5,
                                                                 "stepvalue": [5, 20, 21]},
            "poly": {"power": 1.5, "max_iter": 100}, "sigmoid": {"gamma": 0.2, "stepsize": 40}}


@pytest.mark.parametrize("policy", sorted(FORMULAS))
def test_policies_follow_the_formulas(policy):
    params = {"base_lr": 0.05, **SETTINGS[policy]}
    schedule = schedules.from_solver_param(lr_policy=policy, **params)
    assert isinstance(schedule, schedules.LR_POLICIES[policy])
    for it in range(0, 100, 3):
        assert schedule(it) == pytest.approx(FORMULAS[policy](it, params), rel=1e-5), it


def test_same_curves_as_keras():
    """Keras 3's schedules where they draw Caffe's curve: ExponentialDecay (staircase = step,
    every step = exp), InverseTimeDecay (= inv with power 1), PolynomialDecay (= poly),
    PiecewiseConstantDecay (= multistep; Keras switches after the boundary)."""
    keras = pytest.importorskip("keras")
    ks = keras.optimizers.schedules
    pairs = [
        (schedules.Step(0.1, gamma=0.5, stepsize=4),
         ks.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5, staircase=True)),
        (schedules.Exp(0.1, gamma=0.97), ks.ExponentialDecay(0.1, decay_steps=1,
                                                             decay_rate=0.97)),
        (schedules.Inv(0.1, gamma=0.2, power=1.0), ks.InverseTimeDecay(0.1, decay_steps=1,
                                                                      decay_rate=0.2)),
        (schedules.Poly(0.1, power=2.0, max_iter=30), ks.PolynomialDecay(
            0.1, decay_steps=30, end_learning_rate=0.0, power=2.0)),
        (schedules.MultiStep(0.1, gamma=0.1, stepvalue=[5, 12]), ks.PiecewiseConstantDecay(
            [4, 11], [0.1, 0.01, 0.001])),
    ]
    for caffe_schedule, keras_schedule in pairs:
        for step in range(30):
            assert caffe_schedule(step) == pytest.approx(
                float(keras_schedule(step)), rel=1e-6), (caffe_schedule, step)


def test_multistep_moves_one_step_per_iteration_like_caffe():
    """Caffe's multistep takes at most one step per iteration, so unsorted stepvalues step at
    7 and then 8 (not at 3)."""
    schedule = schedules.MultiStep(1.0, gamma=0.5, stepvalue=[7, 3])
    assert [schedule.current_step(i) for i in (2, 3, 6, 7, 8, 9)] == [0, 0, 0, 1, 2, 2]
    assert schedule(8) == 0.25


def test_step_counter_is_caffes_current_step():
    """`current_step` is what Caffe stores in a .solverstate after computing that rate."""
    assert [schedules.Step(1, gamma=0.5, stepsize=3).current_step(i) for i in (0, 2, 3, 8, 9)] \
        == [0, 0, 1, 2, 3]
    assert schedules.Inv(1, gamma=0.1, power=0.5).current_step(50) == 0


def test_schedule_drives_a_keras_style_optimizer():
    """A Caffe policy is a Keras-style schedule: kaffe's Keras SGD evaluates it at its step."""
    import torch

    from kaffe import optimizers
    w = torch.nn.Parameter(torch.ones(3))
    schedule = schedules.Step(0.1, gamma=0.5, stepsize=2)
    opt = optimizers.SGD(learning_rate=schedule)
    opt.build([w])
    seen = []
    for _ in range(5):
        seen.append(float(opt.learning_rate))
        w.grad = torch.ones(3)
        opt.step()
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-6)
    np.testing.assert_allclose(w.detach().numpy(), 1 - sum(seen), rtol=1e-6)


def test_config_round_trip():
    for schedule in (schedules.Fixed(0.1), schedules.Sigmoid(0.1, gamma=0.3, stepsize=9),
                     schedules.MultiStep(0.2, gamma=0.1, stepvalue=[3, 9])):
        again = schedules.deserialize(schedules.serialize(schedule))
        assert type(again) is type(schedule) and again.get_config() == schedule.get_config()
        assert [again(i) for i in range(12)] == [schedule(i) for i in range(12)]


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match=r"'sigmoid' expected gamma >= 0.*gamma=-0.5"):
        schedules.from_solver_param(lr_policy="sigmoid", base_lr=0.1, gamma=-0.5, stepsize=3)
    with pytest.raises(ValueError, match=r"'step' expected stepsize > 0.*stepsize=0"):
        schedules.from_solver_param(lr_policy="step", base_lr=0.1, gamma=0.5)
    with pytest.raises(ValueError, match=r"Unknown learning rate policy ''.*fixed, step, exp"):
        schedules.from_solver_param(base_lr=0.1)
    with pytest.raises(ValueError, match=r"'poly' expected max_iter > 0"):
        schedules.from_solver_param(lr_policy="poly", base_lr=0.1, power=1)


KERAS_CASES = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.8)),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.8,
                              staircase=True)),
    ("PiecewiseConstantDecay", dict(boundaries=[5, 17], values=[1.0, 0.5, 0.1])),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=20, power=2.0)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=20, end_learning_rate=0.01,
                             cycle=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5,
                              staircase=True)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=30, alpha=0.1)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=30, warmup_target=0.2,
                         warmup_steps=10)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=6)),
    ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=6, t_mul=1.0,
                                 m_mul=0.5, alpha=0.05)),
]


@pytest.mark.parametrize("name,config", KERAS_CASES)
def test_keras_schedules_equal_keras(name, config):
    """keras.optimizers.schedules under kaffe: the same values as Keras 3's classes and the
    same config (so `from keras.optimizers.schedules import ...` scripts run unedited)."""
    keras = pytest.importorskip("keras")
    mine, theirs = getattr(schedules, name)(**config), \
        getattr(keras.optimizers.schedules, name)(**config)
    for step in range(0, 60):
        assert mine(step) == pytest.approx(float(theirs(step)), rel=1e-5, abs=1e-7), step
    assert mine.get_config() == theirs.get_config()
    again = schedules.deserialize(schedules.serialize(mine))
    assert again(13) == mine(13)
    with pytest.raises(ValueError, match="must be > 0"):
        if "decay_steps" in config:
            getattr(schedules, name)(**{**config, "decay_steps": 0})
        elif "first_decay_steps" in config:
            getattr(schedules, name)(**{**config, "first_decay_steps": 0})
        else:
            raise ValueError("must be > 0")
