"""Stateful metrics that accumulate on the device and never sync with the host while updating.

A metric keeps its running state in small tensors created on the device of the first batch it
sees. ``update_state`` only queues device ops; ``result()`` returns a tensor, and reading it
(``float(m.result())``) is the one sync, done by the training loop when it logs.

The training engine should resolve each user entry once with
``get(identifier, loss=loss, output_shape=model_output_shape)`` and then, per batch,
``m.update_state(y_true, y_pred, sample_weight)``; per epoch ``m.reset_state()``; at logging
points ``float(m.result())`` under the key ``m.name``.
"""
import torch

from kaffe import config
from kaffe import losses as _losses
from kaffe.losses import as_tensor, divide_no_nan, match_rank


_snake_case = _losses._snake_case


class Metric:
    """Base class. Subclasses declare ``_state_shapes`` and implement ``update_state``/``result``."""

    _state_shapes = {}  # state name -> shape; the tensors appear on the first update

    def __init__(self, name=None, dtype=None):
        self.name = name or _snake_case(type(self).__name__)
        self.dtype = dtype or config.floatx()
        self._state = None

    def _states(self, device):
        """The state tensors, created (zeroed) on ``device`` the first time, moved if the data
        moves (evaluating a GPU-trained model on CPU with the same metric object)."""
        if self._state is None:
            dtype = getattr(torch, self.dtype)
            # Never inference tensors (a first update inside predict), so later in-place
            # updates outside inference mode work.
            with torch.inference_mode(False):
                self._state = {k: torch.zeros(shape, dtype=dtype, device=device)
                               for k, shape in self._state_shapes.items()}
        elif next(iter(self._state.values())).device != device:
            self._state = {k: v.to(device) for k, v in self._state.items()}
        return self._state

    def reset_state(self):
        """Zero the state in place (no new allocation, no sync), and the variables a
        subclass made with ``add_variable`` / ``add_weight``, as Keras does."""
        if self._state is not None:
            for t in self._state.values():
                t.zero_()
        for variable in self.variables:
            variable.zero_()

    reset_states = reset_state  # Keras 2 spelling

    # -- Keras's way for a subclass to hold its own state (keras.io: CategoricalTruePositives)
    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum",
                     name=None):
        """A state tensor of ``shape`` (Keras 3's ``Metric.add_variable``): update it with
        ``assign`` / ``assign_add`` in ``update_state``; ``reset_state`` zeroes it."""
        from kaffe import initializers
        from kaffe.engine.operation import torch_dtype
        value = initializers.get(initializer)(tuple(shape))
        with torch.inference_mode(False):
            variable = torch.as_tensor(value, dtype=torch_dtype(dtype or self.dtype)).clone()
        self.__dict__.setdefault("_variables", []).append(variable)
        return variable

    def add_weight(self, name=None, shape=(), initializer="zeros", dtype=None,
                   aggregation="sum", **unused):
        """Keras 2's spelling of ``add_variable`` (``self.add_weight(name='tp', ...)``)."""
        return self.add_variable(shape, initializer, dtype, aggregation, name)

    @property
    def variables(self):
        return list(self.__dict__.get("_variables", ()))

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """Update with one batch and return the running result (Keras's ``metric(y_true, y_pred)``)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def _zero_result(metric):
    return torch.zeros((), dtype=getattr(torch, metric.dtype))


def _samplewise(values, sample_weight, reduce_fn):
    """Keras's reduce-to-samplewise step: per-sample values (and weights) of shape ``(batch,)``."""
    if sample_weight is not None:
        sample_weight = as_tensor(sample_weight, dtype=values.dtype, device=values.device)
        values, sample_weight = match_rank(values, sample_weight)
        if values.dim() > sample_weight.dim():
            values = reduce_fn(values, dim=tuple(range(sample_weight.dim(), values.dim())))
        sample_weight = torch.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if sample_weight.dim() > 1:
            sample_weight = reduce_fn(sample_weight, dim=tuple(range(1, sample_weight.dim())))
    if values.dim() > 1:
        values = reduce_fn(values, dim=tuple(range(1, values.dim())))
    return values, sample_weight


class Mean(Metric):
    """Weighted running mean of the values passed to ``update_state(values, sample_weight)``."""

    _state_shapes = {"total": (), "count": ()}

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, values, sample_weight=None):
        values = as_tensor(values, dtype=getattr(torch, self.dtype)).detach()
        if isinstance(sample_weight, torch.Tensor):
            sample_weight = sample_weight.detach()
        values, sample_weight = _samplewise(values, sample_weight, torch.mean)
        state = self._states(values.device)
        state["total"].add_(values.sum())
        if sample_weight is not None:
            state["count"].add_(sample_weight.sum())
        else:
            state["count"].add_(values.shape[0] if values.dim() >= 1 else 1)

    def result(self):
        if self._state is None:
            return _zero_result(self)
        return divide_no_nan(self._state["total"], self._state["count"])


class Sum(Metric):
    """Weighted running sum of the values passed to ``update_state(values, sample_weight)``."""

    _state_shapes = {"total": ()}

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, values, sample_weight=None):
        values = as_tensor(values, dtype=getattr(torch, self.dtype)).detach()
        if isinstance(sample_weight, torch.Tensor):
            sample_weight = sample_weight.detach()
        values, _ = _samplewise(values, sample_weight, torch.sum)
        self._states(values.device)["total"].add_(values.sum())

    def result(self):
        return _zero_result(self) if self._state is None else self._state["total"].clone()


class MeanMetricWrapper(Mean):
    """Weighted mean over samples of ``fn(y_true, y_pred, **kwargs)``.

    A function that returns one scalar per batch (``K.mean(y_pred)``) counts that value once per
    sample of the batch, so the epoch value is the batch-size-weighted mean of the batch values
    (Keras 2's progress-bar averaging; Keras 3 would weight every batch equally).
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", None) or "mean_metric", dtype=dtype)
        self.fn = fn
        self.fn_kwargs = kwargs

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None, mask=None):
        y_pred = as_tensor(y_pred)
        values = as_tensor(self.fn(y_true, y_pred, **self.fn_kwargs), device=y_pred.device)
        if sample_weight is None and mask is None and values.dim() == 1:
            # The common unweighted per-sample case, in two kernels: the fit loop's hot path.
            state = self._states(values.device)
            state["total"].add_(values.sum())
            state["count"].add_(values.shape[0])
            return
        if values.dim() == 0:
            values = values.expand(y_pred.shape[0] if y_pred.dim() else 1)
        if mask is not None:
            mask = as_tensor(mask, dtype=getattr(torch, self.dtype), device=y_pred.device)
            if sample_weight is not None:
                mask, sample_weight = match_rank(mask, as_tensor(sample_weight, device=y_pred.device))
                mask = mask * sample_weight
            sample_weight = mask
        super().update_state(values, sample_weight)

    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype, **self.fn_kwargs}
        if type(self) is MeanMetricWrapper:
            config["fn"] = getattr(self.fn, "__name__", self.fn)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if cls is MeanMetricWrapper:
            fn = config.pop("fn")
            return cls(_FUNCTIONS[fn] if isinstance(fn, str) else fn, **config)
        return cls(**config)


# ---------------------------------------------------------------------------------------------
# Accuracy functions (per-sample 0/1 values)
# ---------------------------------------------------------------------------------------------

def _floatx():
    return getattr(torch, config.floatx())


def accuracy(y_true, y_pred):
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true, dtype=y_pred.dtype, device=y_pred.device)
    y_true, y_pred = match_rank(y_true, y_pred)
    return (y_true == y_pred).to(_floatx())


def binary_accuracy(y_true, y_pred, threshold=0.5):
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true, device=y_pred.device)
    y_true, y_pred = match_rank(y_true, y_pred)
    return (y_true == (y_pred > threshold).to(y_true.dtype)).to(_floatx())


def categorical_accuracy(y_true, y_pred):
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true, device=y_pred.device)
    return (torch.argmax(y_true, dim=-1) == torch.argmax(y_pred, dim=-1)).to(_floatx())


def sparse_categorical_accuracy(y_true, y_pred):
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true, device=y_pred.device)
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    if not y_true.is_floating_point():
        y_true = y_true.to(_floatx())
    matches = (torch.argmax(y_pred, dim=-1).to(y_true.dtype) == y_true).to(_floatx())
    if matches.dim() > 1 and matches.shape[-1] == 1:
        matches = matches.squeeze(-1)
    return matches


def _in_top_k(labels, scores, k):
    """True where the label's score is at least the k-th largest score (ties count as hits)."""
    k = min(k, scores.shape[-1])
    kth = torch.topk(scores, k, dim=-1).values[..., -1:]
    picked = torch.gather(scores, -1, labels.long().unsqueeze(-1))
    return (picked >= kth).squeeze(-1)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true, device=y_pred.device)
    return _in_top_k(torch.argmax(y_true, dim=-1), y_pred, k).to(_floatx())


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true, device=y_pred.device)
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    return _in_top_k(y_true, y_pred, k).to(_floatx())


# Classes for the functions above; arguments in Keras's order.

class Accuracy(MeanMetricWrapper):
    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name, dtype)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name, dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name, dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name, dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(sparse_top_k_categorical_accuracy, name, dtype, k=k)
        self.k = k


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(_losses.mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(_losses.mean_absolute_error, name, dtype)


# ---------------------------------------------------------------------------------------------
# Confusion-matrix metrics
# ---------------------------------------------------------------------------------------------

class _ConfusionMetric(Metric):
    """Counts of true/false positives/negatives at fixed thresholds (``y_pred > threshold``)."""

    _counts = ()

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default = 0.5 if top_k is None else -1e10  # Keras: with top_k, every kept score counts
        values = default if thresholds is None else thresholds
        self._single = not isinstance(values, (list, tuple))
        self.thresholds = [float(values)] if self._single else [float(t) for t in values]
        self._state_shapes = {k: (len(self.thresholds),) for k in self._counts}

    def _states(self, device):
        state = super()._states(device)
        if getattr(self, "_threshold_tensor", None) is None or self._threshold_tensor.device != device:
            self._threshold_tensor = torch.tensor(self.thresholds, dtype=getattr(torch, self.dtype),
                                                  device=device)
        return state

    @torch.no_grad()
    def update_state(self, y_true, y_pred, sample_weight=None):
        dtype = getattr(torch, self.dtype)
        y_pred = as_tensor(y_pred, dtype=dtype)
        y_true = as_tensor(y_true, dtype=dtype, device=y_pred.device)
        y_pred, y_true = match_rank(y_pred, y_true)
        weight = None
        if sample_weight is not None:
            weight = as_tensor(sample_weight, dtype=dtype, device=y_pred.device).unsqueeze(-1)
            _, weight = match_rank(y_true, weight, expand_rank_1=False)
            weight = torch.broadcast_to(weight, y_true.shape)
        if self.top_k is not None:
            kth = torch.topk(y_pred, self.top_k, dim=-1).values[..., -1:]
            y_pred = torch.where(y_pred >= kth, y_pred, torch.full_like(y_pred, -1e10))
        if self.class_id is not None:
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
            weight = None if weight is None else weight[..., self.class_id]
        state = self._states(y_pred.device)
        predicted = y_pred.reshape(1, -1) > self._threshold_tensor.reshape(-1, 1)  # (thresholds, N)
        actual = y_true.reshape(1, -1).bool()
        w = 1.0 if weight is None else weight.reshape(1, -1)
        if "tp" in state:
            state["tp"].add_(((predicted & actual) * w).sum(dim=1))
        if "fp" in state:
            state["fp"].add_(((predicted & ~actual) * w).sum(dim=1))
        if "tn" in state:
            state["tn"].add_(((~predicted & ~actual) * w).sum(dim=1))
        if "fn" in state:
            state["fn"].add_(((~predicted & actual) * w).sum(dim=1))

    def _finish(self, value):
        return value[0] if self._single else value

    def get_config(self):
        return {"thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id, "name": self.name, "dtype": self.dtype}


class Precision(_ConfusionMetric):
    """``tp / (tp + fp)`` of ``y_pred > threshold`` (0.5 by default) against ``y_true``."""

    _counts = ("tp", "fp")

    def result(self):
        if self._state is None:
            return _zero_result(self)
        s = self._state
        return self._finish(divide_no_nan(s["tp"], s["tp"] + s["fp"]))


class Recall(_ConfusionMetric):
    """``tp / (tp + fn)`` of ``y_pred > threshold`` (0.5 by default) against ``y_true``."""

    _counts = ("tp", "fn")

    def result(self):
        if self._state is None:
            return _zero_result(self)
        s = self._state
        return self._finish(divide_no_nan(s["tp"], s["tp"] + s["fn"]))


class AUC(_ConfusionMetric):
    """Area under the ROC (default) or PR curve from ``num_thresholds`` buckets, as Keras.

    Single-label only (all entries are pooled); the trapezoidal rule for ROC and the
    Davis & Goadrich interpolation for PR, Keras's defaults.
    """

    _counts = ("tp", "fp", "tn", "fn")

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, from_logits=False):
        if curve.upper() not in ("ROC", "PR"):
            raise ValueError(f"AUC curve must be 'ROC' or 'PR'. Received: curve={curve!r}")
        if summation_method != "interpolation":
            raise ValueError("AUC supports summation_method='interpolation' only. "
                             f"Received: summation_method={summation_method!r}")
        if thresholds is None:
            if num_thresholds <= 1:
                raise ValueError(f"num_thresholds must be an integer > 1. Received: {num_thresholds}")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        else:
            inner = sorted(float(t) for t in thresholds)
        eps = config.epsilon()
        super().__init__(thresholds=[0.0 - eps] + inner + [1.0 + eps], name=name or "auc", dtype=dtype)
        self.num_thresholds = len(self.thresholds)
        self.curve = curve.upper()
        self.summation_method = summation_method
        self.from_logits = from_logits
        self._user_thresholds = thresholds

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            y_pred = torch.sigmoid(as_tensor(y_pred))
        super().update_state(y_true, y_pred, sample_weight)

    def result(self):
        if self._state is None:
            return _zero_result(self)
        s = self._state
        tp, fp, tn, fn = s["tp"], s["fp"], s["tn"], s["fn"]
        if self.curve == "PR":
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            dp = p[:-1] - p[1:]
            slope = divide_no_nan(dtp, torch.clamp(dp, min=0))
            intercept = tp[1:] - slope * p[1:]
            both = (p[:-1] > 0) & (p[1:] > 0)
            ratio = torch.where(both, divide_no_nan(p[:-1], torch.clamp(p[1:], min=0)),
                                torch.ones_like(p[1:]))
            increments = divide_no_nan(slope * (dtp + intercept * torch.log(ratio)),
                                       torch.clamp(tp[1:] + fn[1:], min=0))
            return increments.sum()
        recall = divide_no_nan(tp, tp + fn)
        fp_rate = divide_no_nan(fp, fp + tn)
        heights = (recall[:-1] + recall[1:]) / 2.0
        return ((fp_rate[:-1] - fp_rate[1:]) * heights).sum()

    def get_config(self):
        return {"num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "name": self.name, "dtype": self.dtype,
                "thresholds": self._user_thresholds, "from_logits": self.from_logits}


# ---------------------------------------------------------------------------------------------
# Resolution of what users write in compile(metrics=[...])
# ---------------------------------------------------------------------------------------------

_ACCURACY_BY_KIND = {"binary": binary_accuracy, "sparse": sparse_categorical_accuracy,
                     "categorical": categorical_accuracy}
_ACCURACY_CLASS_BY_KIND = {"binary": BinaryAccuracy, "sparse": SparseCategoricalAccuracy,
                           "categorical": CategoricalAccuracy}
_CROSSENTROPY_BY_KIND = {"binary": _losses.binary_crossentropy,
                         "sparse": _losses.sparse_categorical_crossentropy,
                         "categorical": _losses.categorical_crossentropy}

_FUNCTIONS = {f.__name__: f for f in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    top_k_categorical_accuracy, sparse_top_k_categorical_accuracy)}
_FUNCTIONS.update(_losses._FUNCTIONS)
_FUNCTIONS.update(_losses._ALIASES)
_FUNCTIONS.update({"top_k_acc": top_k_categorical_accuracy})
_CLASSES = {c.__name__: c for c in (
    Mean, Sum, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
    Precision, Recall, AUC)}


def kind_for(loss=None, output_shape=None, y_true_shape=None):
    """Which accuracy/cross-entropy 'acc' and 'ce' stand for: 'binary' | 'sparse' | 'categorical',
    or ``None`` when it can only be told from the first batch.

    Binary if the loss is binary cross-entropy or the output has one unit; sparse if the loss is
    sparse categorical cross-entropy; categorical if the loss is categorical cross-entropy;
    otherwise Keras 3's shape rule on ``y_true_shape`` against ``output_shape``.
    """
    kind = _losses.loss_kind(loss)
    if kind == "binary":
        return "binary"
    if output_shape is not None and tuple(output_shape)[-1:] == (1,):
        return "binary"
    if kind is not None:
        return kind
    return _losses.kind_from_shapes(output_shape, y_true_shape)


class _ShapeResolvedMetric(MeanMetricWrapper):
    """'acc'/'ce' whose kind is decided from the shapes of the first batch (Keras 3's rule)."""

    def __init__(self, functions, name, dtype=None):
        super().__init__(None, name=name, dtype=dtype)
        self._functions = functions

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None):
        if self.fn is None:
            kind = _losses.kind_from_shapes(tuple(y_pred.shape), tuple(as_tensor(y_true).shape))
            self.fn = self._functions[kind]
        super().update_state(y_true, y_pred, sample_weight, mask)


def valid_names():
    return sorted(set(_FUNCTIONS) | set(_CLASSES) | {"accuracy", "acc", "crossentropy", "ce"})


def get(identifier, loss=None, output_shape=None, y_true_shape=None):
    """Return a ``Metric`` for what a user wrote in ``compile(metrics=[...])``.

    * ``'accuracy'``/``'acc'`` and ``'crossentropy'``/``'ce'``: see :func:`kind_for`; the metric
      keeps the spelling typed as its ``name`` (``'acc'`` logs as ``acc``);
    * other names: metric classes (``'AUC'``) or functions, including every loss name, wrapped in a
      ``MeanMetricWrapper`` named as typed;
    * a ``Metric`` is returned as is, a class is instantiated, a ``{'class_name', 'config'}`` dict
      deserialised, and any other callable ``f(y_true, y_pred)`` wrapped under ``f.__name__``.
    """
    if identifier is None:
        raise ValueError("Expected a metric, received None.")
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        lowered = identifier.lower()
        if lowered in ("accuracy", "acc", "crossentropy", "ce"):
            kind = kind_for(loss, output_shape, y_true_shape)
            is_acc = lowered in ("accuracy", "acc")
            table = _ACCURACY_BY_KIND if is_acc else _CROSSENTROPY_BY_KIND
            if kind is None:
                return _ShapeResolvedMetric(table, name=identifier)
            if is_acc:
                return _ACCURACY_CLASS_BY_KIND[kind](name=identifier)
            return MeanMetricWrapper(table[kind], name=identifier)
        cls = _CLASSES.get(identifier) or {k.lower(): c for k, c in _CLASSES.items()}.get(lowered)
        if cls is not None:
            metric = cls()
            metric.name = identifier
            return metric
        fn = _FUNCTIONS.get(identifier) or _FUNCTIONS.get(lowered)
        if fn is None:
            raise ValueError(f"Unknown metric {identifier!r}. Valid names: {', '.join(valid_names())}.")
        return MeanMetricWrapper(fn, name=identifier)
    if callable(identifier):
        name = getattr(identifier, "name", None) or getattr(identifier, "__name__", None)
        return MeanMetricWrapper(identifier, name=name or _snake_case(type(identifier).__name__))
    raise ValueError(f"Could not interpret metric identifier {identifier!r}. "
                     f"Valid names: {', '.join(valid_names())}.")


def serialize(metric):
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config):
    class_name = config.get("class_name")
    cls = _CLASSES.get(class_name) or {"MeanMetricWrapper": MeanMetricWrapper}.get(class_name)
    if cls is None:
        raise ValueError(f"Unknown metric class {class_name!r}. Valid: {', '.join(sorted(_CLASSES))}.")
    return cls.from_config(config.get("config", {}))


# Function forms of the loss-derived metrics, so ``metrics.mse`` etc. exist as in Keras.
mean_squared_error = mse = _losses.mean_squared_error
mean_absolute_error = mae = _losses.mean_absolute_error
mean_absolute_percentage_error = mape = _losses.mean_absolute_percentage_error
mean_squared_logarithmic_error = msle = _losses.mean_squared_logarithmic_error
binary_crossentropy = _losses.binary_crossentropy
categorical_crossentropy = _losses.categorical_crossentropy
sparse_categorical_crossentropy = _losses.sparse_categorical_crossentropy
hinge = _losses.hinge
squared_hinge = _losses.squared_hinge
categorical_hinge = _losses.categorical_hinge
kl_divergence = kld = kullback_leibler_divergence = _losses.kl_divergence
poisson = _losses.poisson
log_cosh = logcosh = _losses.log_cosh
cosine_proximity = _losses.cosine_similarity  # Keras 1/2's metric: the negative cosine

# Keras's other metric classes (loss-valued means, confusion counts, F-scores, R2) live in
# their own module; they are served from here, as Keras serves them.
from kaffe import metric_classes as _more  # noqa: E402  (it builds on the classes above)
globals().update(_more.CLASSES)
_CLASSES.update(_more.CLASSES)
cosine_similarity = _more.cosine_similarity  # Keras 3's metric: the cosine itself
_FUNCTIONS["cosine_similarity"] = cosine_similarity
huber = _losses.huber
binary_focal_crossentropy = _losses.binary_focal_crossentropy
categorical_focal_crossentropy = _losses.categorical_focal_crossentropy
top_k_acc = top_k_categorical_accuracy
