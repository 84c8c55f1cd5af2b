"""kaffe optimizers against Keras 3's own optimizers (and hand formulas where Keras 3 has none)."""
import copy
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kaffe import optimizers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SHAPES = [(4, 3), (3,), (2, 2, 2)]
STEPS = 5


def _start_and_grads(seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s).astype("float32") for s in SHAPES]
    grads = [[rng.standard_normal(s).astype("float32") for s in SHAPES] for _ in range(steps)]
    return start, grads


def _run_keras(opt, start, grads, on_step=None):
    variables = [keras.Variable(w.copy()) for w in start]
    for t, gs in enumerate(grads):
        if on_step:
            on_step(opt, t)
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in gs], variables))
    return [keras.ops.convert_to_numpy(v) for v in variables]


def _params(start):
    return [torch.nn.Parameter(torch.tensor(w.copy())) for w in start]


def _run_kaffe(opt, start, grads, groups=None, on_step=None):
    params = _params(start)
    opt.build(groups(params) if groups else params)
    for t, gs in enumerate(grads):
        if on_step:
            on_step(opt, t)
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


def _close(a_list, b_list, rtol=1e-5, atol=1e-6):
    for a, b in zip(a_list, b_list):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


CASES = [
    ("SGD", dict(learning_rate=0.1)),
    ("SGD", dict(learning_rate=0.1, momentum=0.9)),
    ("SGD", dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("RMSprop", dict(learning_rate=0.01)),
    ("RMSprop", dict(learning_rate=0.01, centered=True)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.5)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.5, centered=True, rho=0.8)),
    ("Adagrad", dict(learning_rate=0.1)),
    ("Adagrad", dict(learning_rate=0.1, initial_accumulator_value=0.5, epsilon=1e-4)),
    ("Adadelta", dict(learning_rate=1.0)),
    ("Adadelta", dict(learning_rate=0.5, rho=0.8)),
    ("Adam", dict(learning_rate=0.01)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True)),
    ("Adam", dict(learning_rate=0.01, beta_1=0.5, beta_2=0.9, epsilon=1e-3)),
    ("Adam", dict(learning_rate=0.01, weight_decay=0.1)),
    ("AdamW", dict(learning_rate=0.01)),
    ("AdamW", dict(learning_rate=0.01, weight_decay=0.2, amsgrad=True)),
    ("Adamax", dict(learning_rate=0.01)),
    ("Nadam", dict(learning_rate=0.01)),
    ("Nadam", dict(learning_rate=0.01, beta_1=0.8)),
    ("Lion", dict(learning_rate=0.01)),
    ("Lion", dict(learning_rate=0.01, beta_1=0.5, beta_2=0.9, weight_decay=0.1)),
    ("SGD", dict(learning_rate=0.1, momentum=0.9, clipnorm=0.5)),
    ("Adam", dict(learning_rate=0.01, clipnorm=1.0)),
    ("SGD", dict(learning_rate=0.1, clipvalue=0.3)),
    ("RMSprop", dict(learning_rate=0.01, clipvalue=0.2)),
    ("SGD", dict(learning_rate=0.1, global_clipnorm=1.0)),
    ("Adam", dict(learning_rate=0.01, global_clipnorm=0.5)),
]


# The shared conftest makes per-test set-up slow, so each test below runs a whole table.
def test_matches_keras():
    start, grads = _start_and_grads()
    for cls_name, kwargs in CASES:
        expected = _run_keras(getattr(keras.optimizers, cls_name)(**kwargs), start, grads)
        got = _run_kaffe(getattr(optimizers, cls_name)(**kwargs), start, grads)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{cls_name}({kwargs})")


def test_keras3_defaults():
    start, grads = _start_and_grads(seed=1)
    for cls_name in ["SGD", "RMSprop", "Adagrad", "Adadelta", "Adam", "Adamax", "Nadam", "AdamW"]:
        # Adadelta's default is Keras 2's learning rate 1.0 (kaffe's choice, see its docstring);
        # everything else about it is Keras 3's defaults.
        keras_args = {"learning_rate": 1.0} if cls_name == "Adadelta" else {}
        expected = _run_keras(getattr(keras.optimizers, cls_name)(**keras_args), start, grads)
        got = _run_kaffe(getattr(optimizers, cls_name)(), start, grads)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{cls_name}()")
    got = _run_kaffe(optimizers.get("adadelta"), start, grads)  # by name: the same Adadelta
    for a, b in zip(got, _run_keras(keras.optimizers.Adadelta(learning_rate=1.0), start, grads)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg="'adadelta'")
    got = _run_kaffe(optimizers.Adadelta(learning_rate=0.001), start, grads)  # Keras 3's default
    for a, b in zip(got, _run_keras(keras.optimizers.Adadelta(), start, grads)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg="Adadelta(0.001)")


def test_groups_are_independent_of_grouping():
    start, grads = _start_and_grads(seed=2)
    expected = _run_keras(keras.optimizers.Adam(learning_rate=0.01), start, grads)
    got = _run_kaffe(optimizers.Adam(learning_rate=0.01), start, grads,
                     groups=lambda ps: [{"params": ps[:1]}, {"params": ps[1:]}])
    _close(got, expected)


def test_lr_mult_equals_scaled_keras_learning_rate():
    start, grads = _start_and_grads(seed=3)
    fast = _run_keras(keras.optimizers.Adam(learning_rate=0.02), start, grads)
    slow = _run_keras(keras.optimizers.Adam(learning_rate=0.005), start, grads)
    got = _run_kaffe(optimizers.Adam(learning_rate=0.01), start, grads,
                     groups=lambda ps: [{"params": ps[:1], "lr_mult": 2.0},
                                        {"params": ps[1:], "lr_mult": 0.5}])
    _close(got[:1], fast[:1])
    _close(got[1:], slow[1:])


def test_lr_mult_and_decay_mult_hand_formula():
    start, grads = _start_and_grads(seed=4)
    lr, wd = 0.1, 0.05
    mults = [(2.0, 0.0), (0.5, 2.0), (1.0, 1.0)]
    expected = [w.astype("float64") for w in start]
    for gs in grads:
        for i, (lm, dm) in enumerate(mults):
            w = expected[i]
            w = w - w * wd * dm * lr * lm
            expected[i] = w - lr * lm * gs[i]
    got = _run_kaffe(optimizers.SGD(learning_rate=lr, weight_decay=wd), start, grads,
                     groups=lambda ps: [{"params": [p], "lr_mult": lm, "decay_mult": dm}
                                        for p, (lm, dm) in zip(ps, mults)])
    _close(got, expected)


def test_keras2_decay_hand_formula():
    start, grads = _start_and_grads(seed=5)
    lr, decay, momentum = 0.1, 0.5, 0.9
    w = [x.astype("float64") for x in start]
    m = [np.zeros_like(x) for x in w]
    for t, gs in enumerate(grads):
        lr_t = lr / (1.0 + decay * t)
        for i, g in enumerate(gs):
            m[i] = momentum * m[i] - lr_t * g
            w[i] = w[i] + m[i]
    got = _run_kaffe(optimizers.SGD(lr=lr, decay=decay, momentum=momentum), start, grads)
    _close(got, w)


def test_keras2_spellings():
    opt = optimizers.Adam(lr=0.05, epsilon=None, decay=1e-4)
    assert opt.learning_rate == 0.05 and opt.lr == 0.05
    assert opt.epsilon == 1e-7 and opt.decay == 1e-4
    cfg = opt.get_config()
    assert cfg["learning_rate"] == 0.05 and cfg["decay"] == 1e-4


def test_learning_rate_set_after_build_matches_keras():
    start, grads = _start_and_grads(seed=6)

    def halve_at_2(opt, t):
        if t == 2:
            opt.learning_rate = 0.005

    expected = _run_keras(keras.optimizers.Adam(learning_rate=0.01), start, grads, on_step=halve_at_2)
    got = _run_kaffe(optimizers.Adam(learning_rate=0.01), start, grads, on_step=halve_at_2)
    _close(got, expected)


def test_lr_alias_setter_and_keras2_set_value():
    from kaffe import backend as K

    opt = optimizers.SGD(0.1)
    opt.build(_params(_start_and_grads()[0]))
    opt.lr = 0.02
    assert opt.learning_rate == pytest.approx(0.02)
    K.set_value(opt.lr, 0.5 * K.get_value(opt.lr))
    assert opt.learning_rate == pytest.approx(0.01) and type(K.get_value(opt.lr)) is float
    opt.learning_rate.assign(0.03)
    assert opt.get_config()["learning_rate"] == pytest.approx(0.03)
    assert type(opt.get_config()["learning_rate"]) is float


def test_keras_schedule_matches_keras():
    start, grads = _start_and_grads(seed=7)
    make = lambda: keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)  # noqa: E731
    expected = _run_keras(keras.optimizers.SGD(learning_rate=make(), momentum=0.5), start, grads)
    got = _run_kaffe(optimizers.SGD(learning_rate=make(), momentum=0.5), start, grads)
    _close(got, expected)
    opt = optimizers.SGD(learning_rate=make())
    with pytest.raises(TypeError):
        opt.learning_rate = 0.1


def test_state_dict_round_trip():
    for cls_name in ("Adam", "Nadam", "RMSprop"):
        _check_state_dict_round_trip(cls_name)


def _check_state_dict_round_trip(cls_name):
    start, grads = _start_and_grads(seed=8)
    whole = _run_kaffe(getattr(optimizers, cls_name)(learning_rate=0.01), start, grads)

    opt = getattr(optimizers, cls_name)(learning_rate=0.01)
    params = _params(start)
    opt.build(params)
    for gs in grads[:3]:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g)
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    assert saved["kaffe"]["iterations"] == 3

    params2 = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = getattr(optimizers, cls_name)(learning_rate=0.01)
    opt2.build(params2)
    opt2.load_state_dict(saved)
    assert opt2.iterations == 3
    for gs in grads[3:]:
        for p, g in zip(params2, gs):
            p.grad = torch.tensor(g)
        opt2.step()
    _close([p.detach().numpy() for p in params2], whole)


def test_none_grad_is_skipped():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = optimizers.Adam(0.1)
    opt.build([a, b])
    a.grad = torch.ones(3)
    opt.step()
    assert torch.equal(b.detach(), torch.ones(2)) and len(opt.state[b]) == 0
    assert opt.iterations == 1
    assert not torch.equal(a.detach(), torch.ones(3))


def test_clipping_leaves_grad_untouched():
    p = torch.nn.Parameter(torch.zeros(4))
    opt = optimizers.SGD(1.0, clipvalue=0.1)
    opt.build([p])
    p.grad = torch.full((4,), 5.0)
    opt.step()
    assert torch.allclose(p.detach(), torch.full((4,), -0.1))
    assert torch.equal(p.grad, torch.full((4,), 5.0))


def test_closure_and_torch_protocol():
    p = torch.nn.Parameter(torch.tensor([3.0]))
    opt = optimizers.SGD(0.1)
    opt.build([p])
    assert isinstance(opt, torch.optim.Optimizer) and opt.built

    def closure():
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.detach()) == pytest.approx(9.0)
    assert float(p.detach()) == pytest.approx(3.0 - 0.1 * 6.0)


def test_apply_gradients_keras_style():
    start, grads = _start_and_grads(seed=9)
    expected = _run_keras(keras.optimizers.RMSprop(0.01), start, grads)
    params = _params(start)
    opt = optimizers.RMSprop(0.01)
    for gs in grads:
        opt.apply_gradients(zip([torch.tensor(g) for g in gs], params))
    _close([p.detach().numpy() for p in params], expected)


def test_unbuilt_optimizer_errors_clearly():
    opt = optimizers.SGD()
    assert not opt.built
    with pytest.raises(RuntimeError, match="build"):
        opt.step()
    assert "SGD(" in repr(opt)


def test_constructor_validation():
    with pytest.raises(TypeError, match="foo") as info:
        optimizers.SGD(foo=1)
    assert "momentum" in str(info.value)
    with pytest.raises(ValueError):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError):
        optimizers.SGD(momentum=-0.5)
    optimizers.Adam(use_ema=False, loss_scale_factor=None)  # Keras 3 inert defaults are fine
    with pytest.raises(TypeError, match="use_ema"):
        optimizers.Adam(use_ema=True)
    opt = optimizers.SGD()
    with pytest.raises(ValueError, match="lr_mult"):
        opt.build([{"params": [torch.nn.Parameter(torch.ones(1))], "lr": 0.1}])


def test_get_serialize_deserialize():
    assert isinstance(optimizers.get("sgd"), optimizers.SGD)
    assert isinstance(optimizers.get("Adam"), optimizers.Adam)
    assert isinstance(optimizers.get("RMSPROP"), optimizers.RMSprop)
    inst = optimizers.Nadam()
    assert optimizers.get(inst) is inst
    plain = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    assert optimizers.get(plain) is plain
    with pytest.raises(ValueError, match="adam"):
        optimizers.get("adamx")
    with pytest.raises(ValueError):
        optimizers.get(3)

    opt = optimizers.RMSprop(learning_rate=0.02, rho=0.8, momentum=0.1, centered=True, clipnorm=2.0)
    config = optimizers.serialize(opt)
    again = optimizers.deserialize(config)
    assert type(again) is optimizers.RMSprop
    assert again.get_config() == opt.get_config()
    assert optimizers.get({"class_name": "SGD", "config": {"learning_rate": 0.3}}).learning_rate == 0.3
    assert optimizers.Adam.from_config(optimizers.Adam(0.2).get_config()).learning_rate == 0.2


def test_step_never_reads_device_values():
    # Meta tensors have no data: any .item()/float()/bool() on them raises, so a step that runs
    # on them cannot be syncing with the device.
    meta = torch.device("meta")
    for cls_name, kwargs in CASES + [("SGD", dict(decay=0.1, weight_decay=0.1))]:
        params = [torch.nn.Parameter(torch.empty(s, device=meta)) for s in SHAPES]
        opt = getattr(optimizers, cls_name)(**kwargs)
        opt.build([{"params": params[:1], "lr_mult": 2.0}, {"params": params[1:]}])
        for p in params:
            p.grad = torch.empty_like(p)
        opt.step()
        opt.step()
        assert opt.iterations == 2


def _fit_three_batches(optimizer):
    import kaffe
    torch.manual_seed(0)
    model = kaffe.Sequential([kaffe.layers.Dense(3, input_shape=(4,))])
    model.compile(optimizer=optimizer, loss="mse")
    x, y = np.random.RandomState(0).rand(6, 4), np.random.RandomState(1).rand(6, 3)
    start = [w.detach().clone() for w in model.parameters()]
    model.fit(x.astype("float32"), y.astype("float32"), batch_size=2, epochs=1, shuffle=False,
              verbose=0)
    return model, start, x, y


def test_fit_steps_equal_torch_sgd_and_still_run_hooks_and_overrides():
    # fit's step skips torch's profiler wrapper; the update must stay torch's SGD update
    model, start, x, y = _fit_three_batches(optimizers.SGD(learning_rate=0.1, momentum=0.9,
                                                           nesterov=True))
    weights = [torch.nn.Parameter(w.clone()) for w in start]  # kernel stored (units, in), bias
    reference = torch.optim.SGD(weights, lr=0.1, momentum=0.9, nesterov=True)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    for i in range(0, 6, 2):
        reference.zero_grad()
        out = torch.nn.functional.linear(xt[i:i + 2], weights[0], weights[1])
        torch.nn.functional.mse_loss(out, yt[i:i + 2]).backward()
        reference.step()
    for mine, theirs in zip(model.parameters(), weights):
        torch.testing.assert_close(mine.detach(), theirs.detach())

    # a plain torch optimizer given to compile() takes torch's own zero_grad/step
    import kaffe
    torch.manual_seed(0)
    plain = kaffe.Sequential([kaffe.layers.Dense(3, input_shape=(4,))])
    plain.set_weights([w.detach().numpy().T if w.dim() == 2 else w.detach().numpy()
                       for w in start])
    plain.compile(optimizer=torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9,
                                            nesterov=True), loss="mse")
    plain.fit(x.astype("float32"), y.astype("float32"), batch_size=2, shuffle=False, verbose=0)
    for mine, theirs in zip(plain.parameters(), weights):
        torch.testing.assert_close(mine.detach(), theirs.detach())

    calls = []
    hooked = optimizers.SGD(learning_rate=0.1)
    hooked.register_step_pre_hook(lambda *args: calls.append("pre"))
    _fit_three_batches(hooked)
    assert calls == ["pre"] * 3

    class CountingSGD(optimizers.SGD):
        def step(self, closure=None):
            calls.append("step")
            return super().step(closure)

    calls.clear()
    _fit_three_batches(CountingSGD(learning_rate=0.1))
    assert calls == ["step"] * 3
