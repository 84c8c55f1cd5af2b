"""Keras's remaining metric classes: loss-valued means, confusion counts, F-scores, R2.

Each follows Keras 3's formula and default name (``keras.metrics.F1Score()`` logs as
``f1_score``); states accumulate on the device as ``kaffe.metrics`` does, and ``result()`` is
the one read. ``kaffe.metrics`` exports them.
"""
import torch

from kaffe import config
from kaffe import losses as _losses
from kaffe.losses import as_tensor, divide_no_nan
from kaffe.metrics import Metric, MeanMetricWrapper, _ConfusionMetric, _zero_result


def cosine_similarity(y_true, y_pred, axis=-1):
    """Keras's metric form: the cosine of the angle (the loss is its negative)."""
    return -_losses.cosine_similarity(y_true, y_pred, axis=axis)


def _wrapper_class(class_name, fn, default_name, **defaults):
    """A ``MeanMetricWrapper`` subclass over ``fn`` whose keyword options default as Keras's."""
    def __init__(self, name=default_name, dtype=None, **options):
        unknown = set(options) - set(defaults)
        if unknown:
            raise TypeError(f"{class_name} got unexpected argument(s) {sorted(unknown)}; it "
                            f"takes name, dtype{''.join(', ' + k for k in defaults)}.")
        MeanMetricWrapper.__init__(self, fn, name, dtype, **{**defaults, **options})
    return type(class_name, (MeanMetricWrapper,), {"__init__": __init__,
                                                   "__doc__": f"Mean of ``{fn.__name__}``."})


# class name, per-sample function, Keras's default name, keyword options and their defaults
_WRAPPED = [
    ("MeanAbsolutePercentageError", _losses.mean_absolute_percentage_error,
     "mean_absolute_percentage_error", {}),
    ("MeanSquaredLogarithmicError", _losses.mean_squared_logarithmic_error,
     "mean_squared_logarithmic_error", {}),
    ("CosineSimilarity", cosine_similarity, "cosine_similarity", {"axis": -1}),
    ("LogCoshError", _losses.log_cosh, "logcosh", {}),
    ("Hinge", _losses.hinge, "hinge", {}),
    ("SquaredHinge", _losses.squared_hinge, "squared_hinge", {}),
    ("CategoricalHinge", _losses.categorical_hinge, "categorical_hinge", {}),
    ("KLDivergence", _losses.kl_divergence, "kl_divergence", {}),
    ("Poisson", _losses.poisson, "poisson", {}),
    ("BinaryCrossentropy", _losses.binary_crossentropy, "binary_crossentropy",
     {"from_logits": False, "label_smoothing": 0.0}),
    ("CategoricalCrossentropy", _losses.categorical_crossentropy, "categorical_crossentropy",
     {"from_logits": False, "label_smoothing": 0.0, "axis": -1}),
    ("SparseCategoricalCrossentropy", _losses.sparse_categorical_crossentropy,
     "sparse_categorical_crossentropy", {"from_logits": False, "axis": -1}),
]
WRAPPED = {name: _wrapper_class(name, fn, default, **defaults)
           for name, fn, default, defaults in _WRAPPED}


class RootMeanSquaredError(MeanMetricWrapper):
    """``sqrt`` of the weighted mean squared error."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(_losses.mean_squared_error, name, dtype)

    def result(self):
        return torch.sqrt(super().result())


def _count_class(class_name, count):
    def result(self):
        return _zero_result(self) if self._state is None else self._finish(
            self._state[count].clone())
    return type(class_name, (_ConfusionMetric,), {
        "_counts": (count,), "result": result,
        "__doc__": f"Weighted count of {class_name} at ``thresholds`` (0.5 by default)."})


COUNTS = {name: _count_class(name, count) for name, count in (
    ("TruePositives", "tp"), ("FalsePositives", "fp"), ("TrueNegatives", "tn"),
    ("FalseNegatives", "fn"))}


class FBetaScore(Metric):
    """Keras's F-beta: per class (or globally, ``average='micro'``) from weighted tp/fp/fn of
    ``y_pred > threshold`` (``threshold=None``: each row's maximum counts as predicted)."""

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError("average must be one of None, 'micro', 'macro', 'weighted'. "
                             f"Received: average={average!r}")
        if beta <= 0:
            raise ValueError(f"beta must be a float > 0. Received: beta={beta}")
        self.average, self.beta, self.threshold = average, float(beta), threshold
        self._state_shapes = None  # (classes,) or () with 'micro': known at the first batch

    def _states(self, device, classes=None):
        if self._state is None and classes is not None:
            shape = () if self.average == "micro" else (classes,)
            self._state_shapes = {k: shape for k in ("tp", "fp", "fn", "support")}
        return super()._states(device)

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None):
        dtype = getattr(torch, self.dtype)
        y_pred = as_tensor(y_pred, dtype=dtype)
        y_true = as_tensor(y_true, dtype=dtype, device=y_pred.device)
        if self.threshold is None:
            top = y_pred.max(dim=-1, keepdim=True).values
            predicted = ((y_pred >= top) & (y_pred.abs() > 1e-9)).to(dtype)
        else:
            predicted = (y_pred > self.threshold).to(dtype)
        weight = None if sample_weight is None else as_tensor(
            sample_weight, dtype=dtype, device=y_pred.device).reshape(-1, 1)
        axis = None if self.average == "micro" else 0

        def weighted_sum(values):
            values = values if weight is None else values * weight
            return values.sum() if axis is None else values.sum(dim=0)
        state = self._states(y_pred.device, y_pred.shape[-1])
        state["tp"].add_(weighted_sum(predicted * y_true))
        state["fp"].add_(weighted_sum(predicted * (1 - y_true)))
        state["fn"].add_(weighted_sum((1 - predicted) * y_true))
        state["support"].add_(weighted_sum(y_true))

    def result(self):
        if self._state is None:
            return _zero_result(self)
        s, eps = self._state, config.epsilon()
        precision = s["tp"] / (s["tp"] + s["fp"] + eps)
        recall = s["tp"] / (s["tp"] + s["fn"] + eps)
        b2 = self.beta ** 2
        score = (1 + b2) * precision * recall / (b2 * precision + recall + eps)
        if self.average == "weighted":
            return (score * s["support"] / (s["support"].sum() + eps)).sum()
        return score.mean() if self.average is not None else score

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "average": self.average,
                "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    """F-beta with beta 1."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self):
        config_ = super().get_config()
        del config_["beta"]
        return config_


class R2Score(Metric):
    """Coefficient of determination per output column, then averaged
    (``class_aggregation``: 'uniform_average', 'variance_weighted_average' or None); with
    ``num_regressors`` > 0, adjusted R2."""

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError("class_aggregation must be None, 'uniform_average' or "
                             f"'variance_weighted_average'. Received: {class_aggregation!r}")
        if num_regressors < 0:
            raise ValueError(f"num_regressors must be >= 0. Received: {num_regressors}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        self._state_shapes = None

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None):
        dtype = getattr(torch, self.dtype)
        y_pred = as_tensor(y_pred, dtype=dtype)
        y_true = as_tensor(y_true, dtype=dtype, device=y_pred.device)
        if y_true.dim() == 1:
            y_true, y_pred = y_true.unsqueeze(-1), y_pred.reshape(y_true.shape[0], -1)
        weight = torch.ones((), dtype=dtype, device=y_pred.device) if sample_weight is None \
            else as_tensor(sample_weight, dtype=dtype, device=y_pred.device)
        if weight.dim() == 1:
            weight = weight.unsqueeze(1)
        weight = torch.broadcast_to(weight, y_true.shape)
        if self._state is None:
            columns = (y_true.shape[-1],)
            self._state_shapes = {"sum": columns, "squared_sum": columns, "total_mse": columns,
                                  "count": columns, "num_samples": ()}
        state = self._states(y_pred.device)
        state["sum"].add_((y_true * weight).sum(dim=0))
        state["squared_sum"].add_((y_true * y_true * weight).sum(dim=0))
        state["total_mse"].add_(((y_true - y_pred) ** 2 * weight).sum(dim=0))
        state["count"].add_(weight.sum(dim=0))
        state["num_samples"].add_(y_true.numel())

    def result(self):
        if self._state is None:
            return _zero_result(self)
        s = self._state
        mean = s["sum"] / s["count"]
        total = s["squared_sum"] - s["sum"] * mean
        raw = 1 - s["total_mse"] / total
        raw = torch.where(torch.isinf(raw), torch.zeros_like(raw), raw)
        if self.class_aggregation == "uniform_average":
            score = raw.mean()
        elif self.class_aggregation == "variance_weighted_average":
            score = divide_no_nan((total * raw).sum(), total.sum())
        else:
            score = raw
        n, p = float(s["num_samples"]), self.num_regressors
        if p and p < n - 1:  # Keras falls back to plain R2 otherwise (and warns)
            score = 1 - (1 - score) * (n - 1) / (n - p - 1)
        return score

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype,
                "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


CLASSES = {**WRAPPED, **COUNTS, "RootMeanSquaredError": RootMeanSquaredError,
           "FBetaScore": FBetaScore, "F1Score": F1Score, "R2Score": R2Score}
