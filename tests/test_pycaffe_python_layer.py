"""type: "Python" layers (caffe.Layer) in caffe.Net, the solver and kaffe train: forward,
backward, propagate_down, loss weights, learnable blobs, data layers, import errors.
Oracles: least squares by SGD written out in torch; the layer's own formula."""
import logging
import textwrap

import numpy as np
import pytest
import torch

import kaffe.caffe as caffe
from kaffe.caffe import parse_net_param

LAYERS = textwrap.dedent('''
    import numpy as np
    import kaffe.caffe as caffe

    class EuclideanLoss(caffe.Layer):
        """BVLC pyloss semantics, scaled by the top's diff (its loss weight)."""
        def setup(self, bottom, top):
            if len(bottom) != 2:
                raise Exception("Need two inputs to compute distance.")
        def reshape(self, bottom, top):
            self.diff = np.zeros_like(bottom[0].data, dtype=np.float32)
            top[0].reshape(1)
        def forward(self, bottom, top):
            self.diff[...] = bottom[0].data - bottom[1].data
            top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.
        def backward(self, top, propagate_down, bottom):
            CALLS.append(list(propagate_down))
            for i in range(2):
                if propagate_down[i]:
                    sign = 1 if i == 0 else -1
                    bottom[i].diff[...] = top[0].diff[0] * sign * self.diff / bottom[i].num

    class Batches(caffe.Layer):
        """A data layer: batch k holds x = k + column index, y = 2 x summed by row."""
        def setup(self, bottom, top):
            self.k = 0
            self.size = int(self.param_str)
        def reshape(self, bottom, top):
            top[0].reshape(self.size, 3)
            top[1].reshape(self.size, 1)
        def forward(self, bottom, top):
            x = self.k + np.tile(np.arange(3, dtype=np.float32), (self.size, 1)) / 10
            top[0].data[...] = x
            top[1].data[...] = 2 * x.sum(1, keepdims=True)
            self.k = (self.k + 1) % 4
            FORWARDS.append(self.phase)

    class Scale(caffe.Layer):
        """top = w * bottom with a learnable scalar w (self.blobs)."""
        def setup(self, bottom, top):
            self.blobs.add_blob(1)
            self.blobs[0].data[0] = 0.5
        def reshape(self, bottom, top):
            top[0].reshape(*bottom[0].data.shape)
        def forward(self, bottom, top):
            top[0].data[...] = self.blobs[0].data[0] * bottom[0].data
        def backward(self, top, propagate_down, bottom):
            self.blobs[0].diff[0] += np.sum(top[0].diff * bottom[0].data)
            if propagate_down[0]:
                bottom[0].diff[...] = self.blobs[0].data[0] * top[0].diff

    CALLS = []
    FORWARDS = []
''')


@pytest.fixture
def pylayers(tmp_path, monkeypatch, request):
    """A fresh module of the layers above on sys.path, named after the test."""
    name = f"pylayers_{request.node.name.replace('[', '_').replace(']', '_')}"
    (tmp_path / f"{name}.py").write_text(LAYERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _python(name, module, layer, bottoms, tops, extra=""):
    return (f'layer {{ name: "{name}" type: "Python" '
            + "".join(f'bottom: "{b}" ' for b in bottoms) + "".join(f'top: "{t}" ' for t in tops)
            + f'python_param {{ module: "{module}" layer: "{layer}" }} {extra} }}\n')


def _linreg(module, loss_extra=""):
    return ('name: "linreg"\n'
            + _python("data", module, "Batches", [], ["x", "y"]).replace(
                'layer: "Batches" }', 'layer: "Batches" param_str: "4" }')
            + 'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip" inner_product_param '
              '{ num_output: 1 weight_filler { type: "gaussian" std: 0.1 } } }\n'
            + _python("loss", module, "EuclideanLoss", ["ip", "y"], ["loss"], loss_extra))


def test_python_loss_and_data_layer_train_like_sgd_in_torch(tmp_path, pylayers, caplog):
    (tmp_path / "net.prototxt").write_text(_linreg(pylayers, "loss_weight: 2"))
    (tmp_path / "solver.prototxt").write_text(
        f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.05 lr_policy: "fixed" momentum: 0 '
        f'max_iter: 6 display: 0 snapshot_after_train: false')
    with caplog.at_level(logging.INFO, logger="kaffe.caffe"):
        solver = caffe.SGDSolver(str(tmp_path / "solver.prototxt"))
    assert f"imported module '{pylayers}'" in caplog.text
    w = torch.tensor(solver.net.params["ip"][0].data.copy(), requires_grad=True)
    b = torch.tensor(solver.net.params["ip"][1].data.copy(), requires_grad=True)
    solver.step(6)
    for k in range(6):   # the same batches, loss weight 2, plain SGD
        x = (k % 4) + torch.arange(3.0).repeat(4, 1) / 10
        y = 2 * x.sum(1, keepdim=True)
        loss = 2 * ((x @ w.T + b - y) ** 2).sum() / 4 / 2
        gw, gb = torch.autograd.grad(loss, [w, b])
        with torch.no_grad():
            w -= 0.05 * gw
            b -= 0.05 * gb
    np.testing.assert_allclose(solver.net.params["ip"][0].data, w.detach().numpy(), rtol=1e-4)
    np.testing.assert_allclose(solver.net.params["ip"][1].data, b.detach().numpy(), rtol=1e-4)
    import importlib
    module = importlib.import_module(pylayers)
    assert module.FORWARDS[:6] == [caffe.TRAIN] * 6
    assert module.CALLS[0] == [True, False]   # Caffe: no diff for a data layer's label


def test_propagate_down_and_learnable_blobs(pylayers):
    text = ('name: "p" force_backward: true\n'
            'layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 '
            'dim: 3 } shape { dim: 2 dim: 3 } } }\n'
            + _python("scale", pylayers, "Scale", ["a"], ["s"])
            + _python("loss", pylayers, "EuclideanLoss", ["s", "b"], ["loss"],
                      "propagate_down: true propagate_down: false loss_weight: 1"))
    net = caffe.Net(parse_net_param(text), caffe.TRAIN)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((2, 3), np.float32)
    out = net.forward(a=a, b=b)
    np.testing.assert_allclose(out["loss"], np.sum((0.5 * a - b) ** 2) / 2 / 2, rtol=1e-6)
    net.backward()
    import importlib
    assert importlib.import_module(pylayers).CALLS[-1] == [True, False]
    dtop = (0.5 * a - b) / 2
    np.testing.assert_allclose(net.blobs["a"].diff, 0.5 * dtop, rtol=1e-6)
    assert not net.blobs["b"].diff.any()
    np.testing.assert_allclose(net.params["scale"][0].diff[0], np.sum(dtop * a), rtol=1e-6)
    layer = net.layers[list(net._layer_names).index("scale")]
    assert layer.type == "Python" and layer.blobs[0].data[0] == 0.5


def test_backward_on_hand_set_diffs_runs_python_backward(pylayers):
    text = ('name: "p" force_backward: true\n'
            'layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 4 } } }\n'
            + _python("scale", pylayers, "Scale", ["a"], ["s"]))
    net = caffe.Net(parse_net_param(text), caffe.TRAIN)
    net.blobs["s"].diff[...] = [1, 2, 3, 4]
    net.backward()
    np.testing.assert_allclose(net.blobs["a"].diff, [0.5, 1, 1.5, 2])


def test_missing_module_or_class_names_both_and_sys_path(pylayers):
    text = ('layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 4 } } }\n'
            + _python("mine", "no_such_module_xyz", "Scale", ["a"], ["s"]))
    with pytest.raises(ImportError, match=r"'mine': cannot import module 'no_such_module_xyz' "
                                          r"\(for class 'Scale'\).*sys.path = \["):
        caffe.Net(parse_net_param(text), caffe.TEST)
    text = text.replace("no_such_module_xyz", pylayers).replace('"Scale"', '"NoClass"')
    with pytest.raises(ImportError, match=rf"module '{pylayers}' .* has no class 'NoClass'"):
        caffe.Net(parse_net_param(text), caffe.TEST)


def test_kaffe_train_finds_a_layer_module_in_the_working_directory(tmp_path, monkeypatch):
    from conftest import run_kaffe
    module = "cwd_layers_for_kaffe_train"
    (tmp_path / f"{module}.py").write_text(LAYERS)
    (tmp_path / "net.prototxt").write_text(_linreg(module))
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt" base_lr: 0.01 lr_policy: "fixed" max_iter: 3 display: 1 '
        'snapshot_after_train: false')
    monkeypatch.chdir(tmp_path)
    code, out = run_kaffe("train", "-solver", "solver.prototxt")
    assert code == 0, out
    assert f"imported module '{module}'" in out and "Iteration 3" in out
