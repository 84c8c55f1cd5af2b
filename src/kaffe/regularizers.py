"""Weight and activity regularizers by Keras name: each maps a tensor to a scalar penalty that
training adds to the loss (``L2(0.01)(w) = 0.01 * sum(w**2)``, as in Keras)."""
import torch


class Regularizer:
    def __call__(self, x):
        return torch.zeros((), device=x.device)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _non_negative(value, name):
    value = float(value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0. Received: {name}={value}")
    return value


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _non_negative(l1, "l1")
        self.l2 = _non_negative(l2, "l2")

    def __call__(self, x):
        penalty = x.new_zeros(())
        if self.l1:
            penalty = penalty + self.l1 * x.abs().sum()
        if self.l2:
            penalty = penalty + self.l2 * x.square().sum()
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Penalise non-orthogonal rows (or columns) of a 2D weight: factor * mean |off-diagonal|
    of the Gram matrix of the L2-normalised vectors (Keras 3's definition)."""

    def __init__(self, factor=0.01, mode="rows"):
        if mode not in ("rows", "columns"):
            raise ValueError(f"mode must be 'rows' or 'columns'. Received: mode={mode!r}")
        self.factor, self.mode = float(factor), mode

    def __call__(self, x):
        if x.dim() != 2:
            raise ValueError(f"OrthogonalRegularizer needs a 2D weight. Received shape {tuple(x.shape)}.")
        vectors = x if self.mode == "rows" else x.t()
        vectors = torch.nn.functional.normalize(vectors, dim=1)
        gram = vectors @ vectors.t()
        n = gram.shape[0]
        off = gram - torch.eye(n, device=x.device, dtype=x.dtype)
        return self.factor * off.abs().sum() / (n * (n - 1)) if n > 1 else x.new_zeros(())

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


def l1(l1=0.01):
    return L1(l1)


def l2(l2=0.01):
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    return L1L2(l1, l2)


ALL = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}
_BY_CLASS = {cls.__name__: cls for cls in (L1, L2, L1L2, OrthogonalRegularizer)}


def get(identifier):
    """None, a name ('l2'), a Keras config dict, a Regularizer or any callable."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        cls = ALL.get(identifier.lower()) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown regularizer {identifier!r}. Valid names: {', '.join(sorted(ALL))}.")
        return cls(l1=0.01, l2=0.01) if cls is L1L2 else cls()
    if isinstance(identifier, dict):
        cls = _BY_CLASS.get(identifier.get("class_name")) or ALL.get(str(identifier.get("class_name")).lower())
        if cls is None:
            raise ValueError(f"Unknown regularizer config {identifier!r}.")
        return cls.from_config(identifier.get("config", {}))
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer {identifier!r}.")


def serialize(regularizer):
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


orthogonal_regularizer = OrthogonalRegularizer  # Keras's lower-case spelling
deserialize = get
