"""The ``kaffe`` command."""
import subprocess
import sys

import kaffe
from kaffe.cli.main import main
from kaffe.layers import Dense


def test_summary_of_a_saved_model(tmp_path, capsys):
    model = kaffe.Sequential([Dense(4, input_shape=(3,), name="hidden"), Dense(2, name="out")])
    path = tmp_path / "m.keras"
    model.save(str(path))
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hidden (Dense)" in out and "out (Dense)" in out and "Total params: 26" in out


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "kaffe.cli.main", "version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("kaffe ")
