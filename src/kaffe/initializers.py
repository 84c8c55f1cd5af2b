"""Weight initializers by Keras name.

Every initializer is called as ``init(shape)`` with the weight's Keras shape (Dense kernel
``(in, out)``, Conv kernel ``(*kernel_size, in, out)``) and returns a float32 tensor; fans are
counted from that shape the way Keras counts them, so scales match Keras's.
"""
import math

import numpy as np
import torch


def compute_fans(shape):
    """(fan_in, fan_out) of a Keras-shaped weight: conv kernels count the receptive field."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class Initializer:
    """Base class: subclasses implement ``__call__(shape, dtype)``; config round-trips."""

    def __call__(self, shape, dtype=torch.float32):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Seeded(Initializer):
    def __init__(self, seed=None):
        self.seed = seed

    def _generator(self):
        if self.seed is None:
            return None
        return torch.Generator().manual_seed(int(self.seed))

    def get_config(self):
        return {"seed": self.seed}


class Zeros(Initializer):
    def __call__(self, shape, dtype=torch.float32):
        return torch.zeros(shape, dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype=torch.float32):
        return torch.ones(shape, dtype=dtype)


class Constant(Initializer):
    """A scalar, or an array broadcast to the weight's shape (Keras 2 programs pass a whole
    pretrained matrix: ``Embedding(..., embeddings_initializer=Constant(embedding_matrix))``)."""

    def __init__(self, value=0.0):
        if isinstance(value, dict) and value.get("class_name") == "__numpy__":
            value = np.asarray(value["config"]["value"], dtype=value["config"]["dtype"])
        self.value = value

    def __call__(self, shape, dtype=torch.float32):
        if np.ndim(self.value) == 0:
            return torch.full(shape, float(self.value), dtype=dtype)
        value = torch.as_tensor(np.asarray(self.value), dtype=dtype)
        try:
            return value.broadcast_to(tuple(shape)).clone()
        except RuntimeError as error:
            raise ValueError(f"Constant initializer: a value of shape {tuple(value.shape)} cannot "
                             f"fill a weight of shape {tuple(shape)}; pass an array of that "
                             "shape (or one that broadcasts to it).") from error

    def get_config(self):
        if np.ndim(self.value) == 0:
            return {"value": self.value}
        array = np.asarray(self.value)   # Keras 3 writes arrays in a config this way
        return {"value": {"class_name": "__numpy__",
                          "config": {"value": array.tolist(), "dtype": str(array.dtype)}}}


class RandomUniform(_Seeded):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=torch.float32):
        out = torch.empty(shape, dtype=dtype)
        return out.uniform_(self.minval, self.maxval, generator=self._generator())

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class RandomNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=torch.float32):
        out = torch.empty(shape, dtype=dtype)
        return out.normal_(self.mean, self.stddev, generator=self._generator())

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class TruncatedNormal(RandomNormal):
    """Normal values re-drawn beyond two standard deviations, as Keras does."""

    def __call__(self, shape, dtype=torch.float32):
        out = torch.empty(shape, dtype=dtype)
        torch.nn.init.trunc_normal_(out, self.mean, self.stddev,
                                    self.mean - 2 * self.stddev, self.mean + 2 * self.stddev,
                                    generator=self._generator())
        return out


class VarianceScaling(_Seeded):
    """Scale / fan, drawn from a truncated normal, a normal or a uniform distribution."""

    # std of a unit normal truncated to [-2, 2]; Keras divides by it so the variance is kept.
    _TRUNCATION_STD = 0.87962566103423978

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"scale must be positive. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be fan_in, fan_out or fan_avg. Received: mode={mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "distribution must be truncated_normal, untruncated_normal or uniform. "
                f"Received: distribution={distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype=torch.float32):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        out = torch.empty(shape, dtype=dtype)
        gen = self._generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return out.uniform_(-limit, limit, generator=gen)
        if self.distribution == "untruncated_normal":
            return out.normal_(0.0, math.sqrt(variance), generator=gen)
        std = math.sqrt(variance) / self._TRUNCATION_STD
        torch.nn.init.trunc_normal_(out, 0.0, std, -2 * std, 2 * std, generator=gen)
        return out

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


def _variance_scaling_preset(class_name, scale, mode, distribution):
    class Preset(VarianceScaling):
        def __init__(self, seed=None):
            super().__init__(scale=scale, mode=mode, distribution=distribution, seed=seed)

        def get_config(self):
            return {"seed": self.seed}

    Preset.__name__ = Preset.__qualname__ = class_name
    return Preset


GlorotUniform = _variance_scaling_preset("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance_scaling_preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _variance_scaling_preset("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling_preset("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance_scaling_preset("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling_preset("LecunNormal", 1.0, "fan_in", "truncated_normal")


class Orthogonal(_Seeded):
    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=torch.float32):
        # Keras flattens all but the last axis, as torch's orthogonal_ does for (rows, cols).
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        flat = torch.empty(shape[-1], rows, dtype=dtype)
        torch.nn.init.orthogonal_(flat, gain=self.gain, generator=self._generator())
        return flat.t().reshape(shape).contiguous()

    def get_config(self):
        return {"gain": self.gain, **super().get_config()}


class Identity(Initializer):
    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=torch.float32):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2D shape. Received: shape={tuple(shape)}")
        return self.gain * torch.eye(*shape, dtype=dtype)

    def get_config(self):
        return {"gain": self.gain}


ALL = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_uniform": RandomUniform, "uniform": RandomUniform,
    "random_normal": RandomNormal, "normal": RandomNormal,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity,
}
_BY_CLASS_NAME = {cls.__name__: cls for cls in ALL.values()}


def get(identifier):
    """Resolve a Keras initializer name, class name, config dict, instance or callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, str):
        cls = ALL.get(identifier.lower()) or _BY_CLASS_NAME.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown initializer {identifier!r}. Valid names: {', '.join(sorted(ALL))}.")
        return cls()
    if isinstance(identifier, dict):
        cls = _BY_CLASS_NAME.get(identifier.get("class_name")) or ALL.get(str(identifier.get("class_name")).lower())
        if cls is None:
            raise ValueError(f"Unknown initializer config {identifier!r}.")
        return cls.from_config(identifier.get("config", {}))
    raise ValueError(f"Could not interpret initializer {identifier!r}.")


def serialize(init):
    """A Keras-3-style config dict for an initializer."""
    return {"module": "keras.initializers", "class_name": type(init).__name__,
            "config": init.get_config(), "registered_name": None}


# Keras's lower-case spellings are the classes themselves (initializers.glorot_uniform(seed=1)).
globals().update(ALL)
IdentityInitializer, OrthogonalInitializer = Identity, Orthogonal  # Keras 3's long names
deserialize = get
