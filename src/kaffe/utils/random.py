"""``set_random_seed``: one call that makes a kaffe run repeatable, as ``keras.utils.set_random_seed``."""
import random

import numpy as np
import torch


def set_random_seed(seed):
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    kaffe's initializers, dropout masks and data shuffling draw from these, so a script that
    calls this first builds and trains the same model twice (on the same device; some CUDA
    kernels are non-deterministic unless ``torch.use_deterministic_algorithms(True)``).

    Args:
        seed: an integer in ``[0, 2**32)`` (NumPy's range).

    >>> set_random_seed(1); a = torch.rand(2)
    >>> set_random_seed(1); bool((a == torch.rand(2)).all())
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"set_random_seed expected an integer seed. Received: seed={seed!r} "
                         f"of type {type(seed).__name__}")
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"set_random_seed expected a seed in [0, 2**32). Received: seed={seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CUDA generators too (lazily, if CUDA is not yet up)
