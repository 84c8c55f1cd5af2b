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
