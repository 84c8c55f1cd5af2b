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
