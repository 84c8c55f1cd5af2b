"""Shared test set-up: Keras 3 (the oracle) runs on its torch backend; names restart per test."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_session():
    """Each test starts with layer numbering reset (kaffe and Keras) and fixed seeds."""
    from kaffe.engine.naming import clear_session
    clear_session()
    try:
        import keras
        keras.backend.clear_session()
    except ImportError:
        pass
    np.random.seed(0)
    torch.manual_seed(0)
    yield
