"""Keras 2's ``keras.wrappers.scikit_learn``: ``KerasClassifier`` / ``KerasRegressor`` make a
model-building function a scikit-learn estimator (``fit`` / ``predict`` / ``score``,
``get_params`` / ``set_params``, so ``cross_val_score`` and ``GridSearchCV`` work).
scikit-learn itself is optional: the wrappers only follow its estimator protocol.

``sk_params`` are the build function's arguments and ``fit`` / ``predict`` / ``evaluate``
arguments (``epochs``, ``batch_size``, ``verbose`` ...); each call gets the ones it accepts.
"""
import copy
import inspect
import types

import numpy as np

from kaffe.utils.np_utils import to_categorical

#: The Sequential methods whose arguments sk_params may carry (Keras 2's list).
_FIT_ARGS = ("batch_size", "epochs", "verbose", "callbacks", "validation_split",
             "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
             "steps_per_epoch", "validation_steps", "validation_freq", "nb_epoch")
_PREDICT_ARGS = ("batch_size", "verbose", "steps", "callbacks")
_EVALUATE_ARGS = ("batch_size", "verbose", "sample_weight", "steps", "callbacks")
_LEGAL = {"fit": _FIT_ARGS, "predict": _PREDICT_ARGS, "predict_proba": _PREDICT_ARGS,
          "predict_classes": _PREDICT_ARGS, "evaluate": _EVALUATE_ARGS,
          "score": _EVALUATE_ARGS}


def _accepts(fn, name):
    """Whether ``fn`` names ``name`` among its parameters (``**kwargs`` does not count, as in
    Keras's ``has_arg``)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters and parameters[name].kind not in (
        inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class BaseWrapper:
    """Shared part of the two wrappers (Keras 2's ``BaseWrapper``)."""

    def __init__(self, build_fn=None, **sk_params):
        self.build_fn = build_fn
        self.sk_params = sk_params
        self.check_params(sk_params)

    def _build_callable(self):
        if self.build_fn is None:
            return self.__call__
        if isinstance(self.build_fn, (types.FunctionType, types.MethodType)):
            return self.build_fn
        return self.build_fn.__call__

    def check_params(self, params):
        """Raise ``ValueError`` for a parameter neither the build function nor fit / predict /
        evaluate takes."""
        build = self._build_callable()
        for name in params:
            if any(name in args for args in _LEGAL.values()) or _accepts(build, name):
                continue
            raise ValueError(f"{name} is not a legal parameter: neither the build function nor "
                             "fit / predict / evaluate takes it")

    def get_params(self, **params):
        """The constructor arguments (scikit-learn's protocol; ``deep`` is ignored)."""
        res = dict(self.sk_params)
        res.update({"build_fn": self.build_fn})
        return res

    def set_params(self, **params):
        self.check_params(params)
        self.sk_params.update(params)
        return self

    def filter_sk_params(self, fn_or_names, override=None):
        """The sk_params that ``fn_or_names`` (a callable, or a tuple of argument names)
        accepts, updated by ``override``."""
        if isinstance(fn_or_names, tuple):
            res = {k: v for k, v in self.sk_params.items() if k in fn_or_names}
        else:
            res = {k: v for k, v in self.sk_params.items() if _accepts(fn_or_names, k)}
        res.update(override or {})
        return res

    def fit(self, x, y, **kwargs):
        """Build a new model with the build function and train it; returns the history."""
        build = self._build_callable()
        self.model = build(**self.filter_sk_params(build))
        y = np.asarray(y)
        if _loss_name(self.model) == "categorical_crossentropy" and y.ndim != 2:
            y = to_categorical(y)
        fit_args = copy.deepcopy(self.filter_sk_params(_FIT_ARGS))
        fit_args.update(kwargs)
        if "nb_epoch" in fit_args:
            fit_args["epochs"] = fit_args.pop("nb_epoch")
        return self.model.fit(x, y, **fit_args)

    def _predict_args(self, names, kwargs):
        args = self.filter_sk_params(names, kwargs)
        args.setdefault("verbose", 0)  # Keras 2's predict printed nothing by default
        return args


def _loss_name(model):
    """The compiled loss's name (``model.loss`` holds what compile() was given)."""
    return getattr(model.loss, "__name__", model.loss)


class KerasClassifier(BaseWrapper):
    """A classifier: ``classes_`` from the labels of ``fit``; ``predict`` returns them."""

    _estimator_type = "classifier"

    def fit(self, x, y, sample_weight=None, **kwargs):
        y = np.array(y)
        if y.ndim == 2 and y.shape[1] > 1:
            self.classes_ = np.arange(y.shape[1])
        elif (y.ndim == 2 and y.shape[1] == 1) or y.ndim == 1:
            self.classes_ = np.unique(y)
            y = np.searchsorted(self.classes_, y)
        else:
            raise ValueError(f"Invalid shape for y: {y.shape}")
        self.n_classes_ = len(self.classes_)
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        return super().fit(x, y, **kwargs)

    def predict(self, x, **kwargs):
        proba = self.model.predict(x, **self._predict_args(_PREDICT_ARGS, kwargs))
        classes = proba.argmax(axis=-1) if proba.shape[-1] > 1 else (
            proba > 0.5).astype("int32")
        return self.classes_[classes]

    def predict_proba(self, x, **kwargs):
        probs = self.model.predict(x, **self._predict_args(_PREDICT_ARGS, kwargs))
        if probs.shape[1] == 1:
            probs = np.hstack([1 - probs, probs])
        return probs

    def score(self, x, y, **kwargs):
        """The model's accuracy on ``(x, y)`` (it must be compiled with an accuracy metric)."""
        y = np.searchsorted(self.classes_, y)
        args = self._predict_args(_EVALUATE_ARGS, kwargs)
        if _loss_name(self.model) == "categorical_crossentropy" and np.ndim(y) != 2:
            y = to_categorical(y)
        outputs = self.model.evaluate(x, y, **args)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        for name, output in zip(self.model.metrics_names, outputs):
            if name in ("accuracy", "acc"):
                return output
        raise ValueError("The model is not configured to compute accuracy. You should pass "
                         '`metrics=["accuracy"]` to the `model.compile()` method.')


class KerasRegressor(BaseWrapper):
    """A regressor: ``predict`` squeezes the model's outputs; ``score`` is minus the loss."""

    _estimator_type = "regressor"

    def predict(self, x, **kwargs):
        return np.squeeze(self.model.predict(x, **self._predict_args(_PREDICT_ARGS, kwargs)))

    def score(self, x, y, **kwargs):
        loss = self.model.evaluate(x, y, **self._predict_args(_EVALUATE_ARGS, kwargs))
        return -loss[0] if isinstance(loss, list) else -loss


def _add_sklearn_tags():
    """With scikit-learn >= 1.6 installed, give the wrappers its estimator tags, so its
    checks (``is_classifier``, scorers) know what they are."""
    try:
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags
    except ImportError:
        return

    def tags(kind):
        def __sklearn_tags__(self):
            return Tags(estimator_type=kind, target_tags=TargetTags(required=True),
                        classifier_tags=ClassifierTags() if kind == "classifier" else None,
                        regressor_tags=RegressorTags() if kind == "regressor" else None)
        return __sklearn_tags__
    KerasClassifier.__sklearn_tags__ = tags("classifier")
    KerasRegressor.__sklearn_tags__ = tags("regressor")


_add_sklearn_tags()
