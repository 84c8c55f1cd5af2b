"""``kaffe.random``: Keras 3's ``keras.random`` with torch's generators.

``seed`` is, as in Keras: ``None`` (torch's global generator: ``torch.manual_seed`` /
``keras.utils.set_random_seed`` make runs repeatable), an int (the same numbers on every call)
or a ``SeedGenerator`` (a new seed drawn from it on every call, the whole sequence repeatable
from its own seed). Numbers are drawn on kaffe's compute device (CUDA when present, as Keras's
torch backend does), or on the device of the given tensor.
"""
import numpy as np
import torch

from kaffe.engine.operation import torch_dtype
from kaffe.layers import dropout_mask


class SeedGenerator:
    """A repeatable stream of seeds for the random functions (Keras's ``SeedGenerator``)."""

    def __init__(self, seed=None, name=None, **kwargs):
        if seed is None:
            seed = int(torch.randint(0, 2 ** 31 - 1, ()).item())
        if not isinstance(seed, (int, np.integer)):
            raise ValueError(f"SeedGenerator(seed=...) takes an int or None. Received: {seed!r}")
        self.initial_seed = int(seed)
        self.name = name or "seed_generator"
        self._draws = 0

    def next(self):
        """The next seed of the stream (a Python int)."""
        self._draws += 1
        mixed = np.random.SeedSequence([self.initial_seed, self._draws]).generate_state(1)
        return int(mixed[0])

    def get_config(self):
        return {"seed": self.initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _device(like=None):
    if isinstance(like, torch.Tensor):
        return like.device
    from kaffe.engine.device import default_device
    return default_device()


def _generator(seed, device):
    """A torch generator for ``seed`` (None: the global one)."""
    if seed is None:
        return None
    if isinstance(seed, SeedGenerator):
        seed = seed.next()
    elif not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be None, an int or a SeedGenerator. Received: {seed!r}")
    return torch.Generator(device=device).manual_seed(int(seed))


def _float(dtype):
    return torch_dtype(dtype) if dtype is not None else torch.float32


def _shape(shape):
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(d) for d in shape)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of N(mean, stddev^2)."""
    device = _device()
    out = torch.randn(_shape(shape), dtype=_float(dtype), device=device,
                      generator=_generator(seed, device))
    return out * stddev + mean


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples of U[minval, maxval)."""
    device = _device()
    out = torch.rand(_shape(shape), dtype=_float(dtype), device=device,
                     generator=_generator(seed, device))
    return out * (maxval - minval) + minval


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers drawn uniformly from [minval, maxval)."""
    device = _device()
    return torch.randint(int(minval), int(maxval), _shape(shape), device=device,
                         generator=_generator(seed, device)).to(torch_dtype(dtype))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal samples re-drawn until within two standard deviations of the mean."""
    device = _device()
    generator = _generator(seed, device)
    out = torch.empty(_shape(shape), dtype=_float(dtype), device=device)
    torch.nn.init.trunc_normal_(out, 0.0, 1.0, -2.0, 2.0, generator=generator)
    return out * stddev + mean


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Zero entries with probability ``rate``; scale the rest by ``1 / (1 - rate)``."""
    x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1). Received: rate={rate}")
    keep_shape = tuple(x.shape) if noise_shape is None else tuple(
        d if n is None else n for n, d in zip(noise_shape, x.shape))
    return dropout_mask.dropout(x, rate, keep_shape, _generator(seed, x.device))


def shuffle(x, axis=0, seed=None):
    """``x`` with its entries along ``axis`` in a random order."""
    x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    order = torch.randperm(x.shape[axis], device=x.device, generator=_generator(seed, x.device))
    return torch.index_select(x, axis, order)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """``num_samples`` class indices per row of ``logits`` (unnormalised log-probabilities)."""
    logits = logits if isinstance(logits, torch.Tensor) else torch.as_tensor(np.asarray(logits))
    probs = torch.softmax(logits.float(), dim=-1)
    draws = torch.multinomial(probs, int(num_samples), replacement=True,
                              generator=_generator(seed, logits.device))
    return draws.to(torch_dtype(dtype))


def gamma(shape, alpha, dtype=None, seed=None):
    """Samples of Gamma(alpha, 1)."""
    device = _device()
    generator = _generator(seed, device)
    if generator is not None:
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
            torch.manual_seed(generator.initial_seed())
            return _gamma(shape, alpha, dtype, device)
    return _gamma(shape, alpha, dtype, device)


def _gamma(shape, alpha, dtype, device):
    concentration = torch.full(_shape(shape), float(alpha), dtype=_float(dtype), device=device)
    return torch._standard_gamma(concentration)


def beta(shape, alpha, beta, dtype=None, seed=None):
    """Samples of Beta(alpha, beta), from two gamma draws."""
    seeds = (None, None) if seed is None else _two_seeds(seed)
    a = gamma(shape, alpha, dtype, seeds[0])
    b = gamma(shape, beta, dtype, seeds[1])
    return a / (a + b)


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Samples of Binomial(counts, probabilities)."""
    device = _device()
    generator = _generator(seed, device)
    total = torch.broadcast_to(torch.as_tensor(counts, dtype=torch.float32, device=device),
                               _shape(shape))
    p = torch.broadcast_to(torch.as_tensor(probabilities, dtype=torch.float32, device=device),
                           _shape(shape))
    if generator is not None:
        with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
            torch.manual_seed(generator.initial_seed())
            out = torch.binomial(total, p)
    else:
        out = torch.binomial(total, p)
    return out.to(_float(dtype))


def _two_seeds(seed):
    if isinstance(seed, SeedGenerator):
        return seed.next(), seed.next()
    return int(seed), int(seed) + 1
