"""One engine, two front ends: Caffe's update rules and lr policies drive a Keras-style ``fit``
and plain torch parameter groups, and follow Caffe's published update formulas there too."""
import numpy as np
import pytest
import torch

from kaffe import schedules
from kaffe.caffe.optimizers import CaffeAdam, CaffeNesterov, CaffeSGD


def _data():
    rng = np.random.RandomState(3)
    return rng.randn(16, 4).astype(np.float32), rng.randn(16, 3).astype(np.float32)


def test_caffe_sgd_with_step_policy_in_keras_fit():
    """model.compile(optimizer=CaffeSGD(Step(...))) trains a Dense layer exactly as Caffe's
    formula says: h = m h + lr_t (g + wd w); w -= h, with lr_t = 0.1 * 0.5^floor(t / 2)."""
    import kaffe
    x, y = _data()
    model = kaffe.Sequential([kaffe.Input((4,)), kaffe.layers.Dense(3)])
    model.compile(optimizer=CaffeSGD(schedules.Step(0.1, gamma=0.5, stepsize=2), momentum=0.9,
                                     weight_decay=0.01), loss="mse")
    start = [np.array(w) for w in model.get_weights()]
    model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0)

    kernel, bias = (torch.tensor(w, dtype=torch.float64) for w in start)
    history = [torch.zeros_like(kernel), torch.zeros_like(bias)]
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    for t in range(5):
        k, b = kernel.clone().requires_grad_(), bias.clone().requires_grad_()
        grads = torch.autograd.grad(((xt @ k + b - yt) ** 2).mean(), [k, b])
        rate = 0.1 * 0.5 ** (t // 2)
        for i, (w, g) in enumerate(zip((kernel, bias), grads)):
            history[i] = 0.9 * history[i] + rate * (g + 0.01 * w)
        kernel, bias = kernel - history[0], bias - history[1]
    got = model.get_weights()
    np.testing.assert_allclose(got[0], kernel.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], bias.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [CaffeNesterov, CaffeAdam])
def test_param_groups_carry_lr_and_decay_multipliers(cls):
    """torch parameter groups with lr_mult / decay_mult (Caffe's per-blob ParamSpec) follow the
    formulas with local_rate = lr * lr_mult and local_decay = wd * decay_mult."""
    rng = np.random.RandomState(5)
    w0, b0 = rng.randn(3, 4), rng.randn(3)
    w, b = (torch.nn.Parameter(torch.tensor(a, dtype=torch.float32)) for a in (w0, b0))
    options = {"momentum": 0.9, "weight_decay": 0.05}
    if cls is CaffeAdam:
        options.update(momentum2=0.99, delta=1e-6)
    opt = cls(0.01, **options)
    opt.build([{"params": [w], "lr_mult": 1.0, "decay_mult": 1.0},
               {"params": [b], "lr_mult": 2.0, "decay_mult": 0.0}])
    grads = [rng.randn(3, 4), rng.randn(3)]
    ref = {"w": w0.copy(), "b": b0.copy()}
    state = {k: [np.zeros_like(v), np.zeros_like(v)] for k, v in ref.items()}
    for t in range(1, 4):
        w.grad, b.grad = (torch.tensor(g, dtype=torch.float32) for g in grads)
        opt.step()
        for key, g, lr_mult, decay_mult in (("w", grads[0], 1, 1), ("b", grads[1], 2, 0)):
            g = g + 0.05 * decay_mult * ref[key]
            rate = 0.01 * lr_mult
            h, h2 = state[key]
            if cls is CaffeNesterov:
                new = 0.9 * h + rate * g
                ref[key] = ref[key] - ((1 + 0.9) * new - 0.9 * h)
                state[key] = [new, h2]
            else:
                m, v = 0.9 * h + 0.1 * g, 0.99 * h2 + 0.01 * g * g
                correction = np.sqrt(1 - 0.99 ** t) / (1 - 0.9 ** t)
                ref[key] = ref[key] - rate * correction * m / (np.sqrt(v) + 1e-6)
                state[key] = [m, v]
    np.testing.assert_allclose(w.detach().numpy(), ref["w"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), ref["b"], rtol=1e-5, atol=1e-6)
    history = opt.history([w, b])
    assert len(history) == (4 if cls is CaffeAdam else 2)
    np.testing.assert_allclose(history[0].numpy(), state["w"][0], rtol=1e-5, atol=1e-6)
