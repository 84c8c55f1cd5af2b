"""What ``kaffe run`` restores for Keras 2-era scripts beyond the keras imports.

NumPy's builtin aliases (``np.float``, ``np.int``, ``np.object``) were the builtins under the
NumPy those scripts ran with (< 1.24); under ``kaffe run`` they are again, for that run only.
"""
import numpy as np
import pytest

from kaffe.cli.main import main
from kaffe.compat.numpy_aliases import numpy_builtin_aliases


def run_in_process(tmp_path, source):
    script = tmp_path / "script.py"
    script.write_text(source)
    return script, main(["run", str(script)])


def test_removed_numpy_aliases_are_the_builtins_inside_kaffe_run(tmp_path, capsys):
    source = ("import numpy as np\n"
              "a = np.zeros((2, 3), dtype=np.float)\n"
              "b = np.array([1.7, 2.2]).astype(np.int)\n"
              "c = np.empty(1, dtype=np.object)\n"
              "print('DTYPES', a.dtype, b.dtype, c.dtype, b.tolist())\n")
    _, code = run_in_process(tmp_path, source)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # NumPy 1.23: np.float is float -> float64, np.int is int -> int64, np.object -> object.
    assert "DTYPES float64 int64 object [1, 2]" in captured.out
    assert captured.err.count("removed in NumPy 1.24") == 1          # said once, not per use
    assert "np.float" in captured.err and "this run only" in captured.err


def test_the_aliases_are_gone_after_the_run_and_other_missing_names_still_fail(tmp_path, capsys):
    _, code = run_in_process(tmp_path, "import numpy as np\nx = np.float\n")
    assert code == 0
    with pytest.raises(AttributeError, match="'float'"):
        np.float  # noqa: B018 - the alias must not outlive the run
    _, code = run_in_process(tmp_path, "import numpy as np\nnp.no_such_name\n")
    assert code == 1 and "no_such_name" in capsys.readouterr().err


def test_alias_context_restores_numpy_getattr():
    before = vars(np).get("__getattr__")
    with numpy_builtin_aliases():
        assert np.int is int and np.bool_ is np.bool_
    assert vars(np).get("__getattr__") is before


# -- K.gradients inside a layer during evaluate / predict (Keras 2's mnist_swwae ``getwhere``) --

def _swwae_where_model():
    import kaffe
    from kaffe import backend as K
    from kaffe import layers

    def getwhere(x):
        y_prepool, y_postpool = x
        return K.gradients(K.sum(y_postpool), y_prepool)

    inputs = kaffe.Input((4, 4, 3))
    prepool = layers.Conv2D(2, 1, name="conv")(inputs)
    postpool = layers.MaxPooling2D(2)(prepool)
    where = layers.Lambda(getwhere, output_shape=lambda shapes: shapes[0])([prepool, postpool])
    out = layers.Multiply()([where, prepool])      # the switches select the pooled values
    return kaffe.Model(inputs, [where, out]), kaffe.Model(inputs, prepool)


def _reference_where(prepool):
    """d sum(maxpool(y)) / d y by PyTorch's own max_pool2d: 1 at each window's maximum."""
    import torch
    y = torch.tensor(prepool).permute(0, 3, 1, 2).requires_grad_(True)
    torch.nn.functional.max_pool2d(y, 2).sum().backward()
    return y.grad.permute(0, 2, 3, 1).numpy()


def test_k_gradients_in_a_lambda_works_in_predict_and_evaluate():
    import torch
    torch.manual_seed(0)
    model, prepool_model = _swwae_where_model()
    x = np.random.default_rng(0).normal(size=(6, 4, 4, 3)).astype("float32")
    where, out = model.predict(x, verbose=0)                  # inference mode, never trained
    expected = _reference_where(prepool_model.predict(x, verbose=0))
    np.testing.assert_allclose(where, expected, atol=1e-6)
    assert where.sum() == 6 * 2 * 2 * 2                       # one switch per pooling window
    model.compile(optimizer="sgd", loss=["mse", "mse"])
    model.fit(x, [expected, x[..., :2]], epochs=1, batch_size=3, verbose=0,
              validation_data=(x, [expected, x[..., :2]]))    # validation: a no-grad pass
    logs = model.evaluate(x, [expected, x[..., :2]], verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"] - logs[model.output_names[1] + "_loss"], 0.0,
                               atol=1e-6)                    # the switches are exact
    with torch.no_grad():
        direct = model(torch.tensor(x))[0]
    assert not direct.requires_grad
    np.testing.assert_allclose(direct.numpy(), _reference_where(prepool_model.predict(x, verbose=0)),
                               atol=1e-6)
