"""Shared test set-up: Keras 3 (the oracle) runs on its torch backend; names restart per test."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_session():
    """Each test starts with kaffe's layer numbering reset and fixed seeds. (Tests comparing
    layer names with Keras clear Keras's session themselves: it costs ~0.15 s a call.)"""
    from kaffe.engine.naming import clear_session
    clear_session()
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Caffe training tests on one torch thread: on a busy 2-core box two OpenMP threads wait
    for cores other jobs hold (several times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_kaffe(*argv):
    """Run ``kaffe argv...`` in-process; returns (exit code, what it wrote to stderr + stdout)."""
    import contextlib
    import io
    from kaffe.cli.main import main
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, err.getvalue() + out.getvalue()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip, saying "no CUDA device", where torch sees none. With
    KAFFE_CUDA_TESTS_ON_CPU=1 (gpu_check.sh --dry-run-cpu) those taking the ``cuda_device``
    fixture run on the CPU instead, so their logic is checked without a GPU."""
    if torch.cuda.is_available():
        return
    on_cpu = os.environ.get("KAFFE_CUDA_TESTS_ON_CPU") == "1"
    skip = pytest.mark.skip(reason="no CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("cuda") and not (on_cpu and "cuda_device" in item.fixturenames):
            item.add_marker(skip)


@pytest.fixture
def cuda_device():
    """The CUDA device a ``cuda`` test runs on (the CPU under KAFFE_CUDA_TESTS_ON_CPU=1)."""
    if torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")
