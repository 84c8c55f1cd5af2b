"""Subclassed models, plain torch modules inside kaffe models, kaffe models inside plain torch."""
import numpy as np
import torch

import kaffe
from kaffe.layers import Dense, TorchModuleWrapper


class TwoLayer(kaffe.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = Dense(8, activation="relu")
        self.out = Dense(3, activation="softmax")

    def call(self, inputs):
        return self.out(self.hidden(inputs))


def test_subclassed_model_builds_on_first_batch_and_learns():
    x = np.random.rand(128, 5).astype("float32")
    y = np.eye(3, dtype="float32")[x[:, :3].argmax(1)]
    model = TwoLayer()
    assert model.name == "two_layer"
    model.compile(optimizer=kaffe.optimizers.Adam(0.02), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert [l.name for l in model.layers] == [model.hidden.name, model.out.name]
    assert model.count_params() == 5 * 8 + 8 + 8 * 3 + 3


def test_torch_module_inside_a_functional_model_trains():
    inp = kaffe.Input((6,))
    h = TorchModuleWrapper(torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh()))(inp)
    assert h.shape == (None, 4)
    model = kaffe.Model(inp, Dense(1)(h))
    assert model.count_params() == 6 * 4 + 4 + 5
    model.compile(optimizer="sgd", loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(np.random.rand(32, 6), np.random.rand(32, 1), epochs=1, verbose=0)
    assert not np.allclose(before[0], model.get_weights()[0])


def test_kaffe_model_is_a_plain_torch_module():
    model = kaffe.Sequential([Dense(4, input_shape=(3,)), Dense(2)])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(8, 3), torch.rand(8, 2)
    model.train()
    loss0 = torch.nn.functional.mse_loss(model(x), y)
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < loss0.item()
    assert len(model.state_dict()) == 4
