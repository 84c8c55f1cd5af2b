"""kaffe losses and metrics against keras.losses / keras.metrics on random data."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kaffe import losses, metrics  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

B, C = 8, 5
RTOL, ATOL = 1e-5, 1e-6


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _data(kind, seed=0, shape=(B, C)):
    rng = np.random.default_rng(seed)
    f = lambda a: np.asarray(a, dtype="float32")  # noqa: E731
    if kind == "regression":
        return f(rng.standard_normal(shape)), f(rng.standard_normal(shape))
    if kind == "positive":
        return f(rng.uniform(0.1, 3, shape)), f(rng.uniform(0.1, 3, shape))
    if kind == "binary":
        return f(rng.integers(0, 2, shape)), f(rng.uniform(0.001, 0.999, shape))
    if kind == "binary_logits":
        return f(rng.integers(0, 2, shape)), f(rng.standard_normal(shape) * 3)
    if kind == "signed":
        return f(rng.choice([-1.0, 1.0], shape)), f(rng.standard_normal(shape))
    if kind == "onehot":
        labels = rng.integers(0, shape[-1], shape[:-1])
        return f(np.eye(shape[-1])[labels]), f(_softmax(rng.standard_normal(shape)))
    if kind == "onehot_logits":
        labels = rng.integers(0, shape[-1], shape[:-1])
        return f(np.eye(shape[-1])[labels]), f(rng.standard_normal(shape) * 2)
    if kind == "distribution":
        return f(_softmax(rng.standard_normal(shape))), f(_softmax(rng.standard_normal(shape)))
    raise KeyError(kind)


FUNCTION_CASES = [
    ("mean_squared_error", "regression", {}),
    ("mean_absolute_error", "regression", {}),
    ("mean_absolute_percentage_error", "regression", {}),
    ("mean_squared_logarithmic_error", "positive", {}),
    ("binary_crossentropy", "binary", {}),
    ("binary_crossentropy", "binary", {"label_smoothing": 0.2}),
    ("binary_crossentropy", "binary_logits", {"from_logits": True}),
    ("binary_crossentropy", "binary_logits", {"from_logits": True, "label_smoothing": 0.1}),
    ("categorical_crossentropy", "onehot", {}),
    ("categorical_crossentropy", "onehot", {"label_smoothing": 0.1}),
    ("categorical_crossentropy", "onehot_logits", {"from_logits": True}),
    ("hinge", "binary_logits", {}),
    ("hinge", "signed", {}),
    ("squared_hinge", "binary_logits", {}),
    ("squared_hinge", "signed", {}),
    ("categorical_hinge", "onehot_logits", {}),
    ("kl_divergence", "distribution", {}),
    ("poisson", "positive", {}),
    ("log_cosh", "regression", {}),
    ("cosine_similarity", "regression", {}),
    ("huber", "regression", {}),
    ("huber", "regression", {"delta": 0.3}),
]


# The shared conftest makes per-test set-up slow, so most tests below run a whole table.
def test_functions_match_keras():
    for name, kind, kwargs in FUNCTION_CASES:
        y_true, y_pred = _data(kind)
        expected = _np(getattr(keras.losses, name)(y_true, y_pred, **kwargs))
        got = getattr(losses, name)(torch.tensor(y_true), torch.tensor(y_pred), **kwargs)
        assert tuple(got.shape) == expected.shape == (B,), name
        np.testing.assert_allclose(_np(got), expected, rtol=RTOL, atol=ATOL, err_msg=f"{name} {kind} {kwargs}")


def test_temporal_shapes_reduce_last_axis_only():
    y_true, y_pred = _data("regression", shape=(B, 3, C))
    got = losses.mse(torch.tensor(y_true), torch.tensor(y_pred))
    expected = _np(keras.losses.mean_squared_error(y_true, y_pred))
    assert tuple(got.shape) == (B, 3)
    np.testing.assert_allclose(_np(got), expected, rtol=RTOL, atol=ATOL)


def test_sparse_categorical_crossentropy():
    for from_logits in (False, True):
        for label_form in ("int", "int_col", "float", "float_col"):
            _check_sparse(from_logits, label_form)


def _check_sparse(from_logits, label_form):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, C, (B,))
    y_pred = _softmax(rng.standard_normal((B, C))).astype("float32")
    if from_logits:
        y_pred = rng.standard_normal((B, C)).astype("float32")
    expected = _np(keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=from_logits))
    y_true = {"int": labels, "int_col": labels[:, None], "float": labels.astype("float32"),
              "float_col": labels[:, None].astype("float32")}[label_form]
    got = losses.sparse_categorical_crossentropy(torch.tensor(y_true), torch.tensor(y_pred),
                                                 from_logits=from_logits)
    np.testing.assert_allclose(_np(got), expected, rtol=RTOL, atol=ATOL)
    obj = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    expected_obj = _np(keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)(labels, y_pred))
    np.testing.assert_allclose(_np(obj(torch.tensor(y_true), torch.tensor(y_pred))), expected_obj,
                               rtol=RTOL, atol=ATOL)


def test_sparse_ignore_class_matches_keras():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, C, (B,))
    labels[[1, 4]] = -1
    y_pred = _softmax(rng.standard_normal((B, C))).astype("float32")
    expected = _np(keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)(labels, y_pred))
    got = losses.SparseCategoricalCrossentropy(ignore_class=-1)(torch.tensor(labels), torch.tensor(y_pred))
    np.testing.assert_allclose(_np(got), expected, rtol=RTOL, atol=ATOL)


CLASS_CASES = [
    ("MeanSquaredError", "regression", {}),
    ("MeanAbsoluteError", "regression", {}),
    ("MeanAbsolutePercentageError", "regression", {}),
    ("MeanSquaredLogarithmicError", "positive", {}),
    ("BinaryCrossentropy", "binary", {}),
    ("BinaryCrossentropy", "binary_logits", {"from_logits": True, "label_smoothing": 0.1}),
    ("CategoricalCrossentropy", "onehot", {"label_smoothing": 0.05}),
    ("CategoricalCrossentropy", "onehot_logits", {"from_logits": True}),
    ("Hinge", "signed", {}),
    ("SquaredHinge", "binary_logits", {}),
    ("CategoricalHinge", "onehot_logits", {}),
    ("KLDivergence", "distribution", {}),
    ("Poisson", "positive", {}),
    ("LogCosh", "regression", {}),
    ("CosineSimilarity", "regression", {}),
    ("Huber", "regression", {"delta": 0.5}),
]


def test_classes_with_sample_weight_match_keras():
    sw = np.random.default_rng(4).uniform(0, 2, (B,)).astype("float32")
    for name, kind, kwargs in CLASS_CASES:
        y_true, y_pred = _data(kind, seed=3)
        for reduction in ("sum_over_batch_size", "sum", "none", "mean_with_sample_weight"):
            keras_loss = getattr(keras.losses, name)(reduction=reduction, **kwargs)
            ours = getattr(losses, name)(reduction=reduction, **kwargs)
            for weight in (None, sw):
                expected = _np(keras_loss(y_true, y_pred, sample_weight=weight))
                got = ours(torch.tensor(y_true), torch.tensor(y_pred),
                           sample_weight=None if weight is None else torch.tensor(weight))
                np.testing.assert_allclose(_np(got), expected, rtol=RTOL, atol=ATOL,
                                           err_msg=f"{name} {reduction} weighted={weight is not None}")


def test_rank_matching_and_column_weights():
    # y_true (B,) against y_pred (B, 1), weights (B, 1): Keras squeezes/expands the trailing 1.
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 2, (B,)).astype("float32")
    y_pred = rng.uniform(0.01, 0.99, (B, 1)).astype("float32")
    sw = rng.uniform(0, 1, (B, 1)).astype("float32")
    expected = _np(keras.losses.BinaryCrossentropy()(y_true, y_pred, sample_weight=sw))
    got = losses.BinaryCrossentropy()(torch.tensor(y_true), torch.tensor(y_pred), torch.tensor(sw))
    np.testing.assert_allclose(_np(got), expected, rtol=RTOL, atol=ATOL)


def test_temporal_sample_weight():
    y_true, y_pred = _data("regression", seed=6, shape=(B, 3, C))
    sw = np.random.default_rng(7).uniform(0, 1, (B, 3)).astype("float32")
    expected = _np(keras.losses.MeanSquaredError()(y_true, y_pred, sample_weight=sw))
    got = losses.MeanSquaredError()(torch.tensor(y_true), torch.tensor(y_pred), torch.tensor(sw))
    np.testing.assert_allclose(_np(got), expected, rtol=RTOL, atol=ATOL)


def test_losses_are_differentiable():
    y_true, y_pred = _data("onehot_logits")
    logits = torch.tensor(y_pred, requires_grad=True)
    losses.CategoricalCrossentropy(from_logits=True)(torch.tensor(y_true), logits).backward()
    expected = (torch.softmax(logits.detach(), -1) - torch.tensor(y_true)) / B
    torch.testing.assert_close(logits.grad, expected)


def test_custom_loss_wrapper_and_get_loss_object():
    def my_loss(y_true, y_pred):
        return torch.mean(torch.abs(y_true - y_pred) ** 3, dim=-1)

    y_true, y_pred = _data("regression", seed=8)
    sw = np.linspace(0, 1, B).astype("float32")
    obj = losses.get_loss_object(my_loss)
    assert isinstance(obj, losses.Loss) and obj.name == "my_loss"
    expected = np.sum(np.mean(np.abs(y_true - y_pred) ** 3, -1) * sw) / B
    np.testing.assert_allclose(_np(obj(torch.tensor(y_true), torch.tensor(y_pred), torch.tensor(sw))),
                               expected, rtol=RTOL)
    assert losses.get_loss_object("mse").name == "mse"
    assert isinstance(losses.get_loss_object("categorical_crossentropy"), losses.Loss)
    inst = losses.Huber()
    assert losses.get_loss_object(inst) is inst
    int_labels = torch.tensor([0, 2, 1])
    probs = torch.tensor(_softmax(np.random.default_rng(0).standard_normal((3, 3))), dtype=torch.float32)
    sparse = losses.get_loss_object("sparse_categorical_crossentropy")
    torch.testing.assert_close(sparse(int_labels, probs),
                               losses.sparse_categorical_crossentropy(int_labels, probs).mean())


def test_get_names_and_errors():
    assert losses.get("mse") is losses.mean_squared_error
    assert losses.get("MSE") is losses.mean_squared_error
    assert losses.get("kullback_leibler_divergence") is losses.kl_divergence
    assert losses.get("logcosh") is losses.log_cosh
    assert isinstance(losses.get("BinaryCrossentropy"), losses.BinaryCrossentropy)
    assert isinstance(losses.get({"class_name": "Huber", "config": {"delta": 2.0}}), losses.Huber)
    with pytest.raises(ValueError, match="mean_squared_error"):
        losses.get("mean_sqared_error")


def test_loss_kind():
    assert losses.loss_kind("binary_crossentropy") == "binary"
    assert losses.loss_kind(losses.BinaryCrossentropy(from_logits=True)) == "binary"
    assert losses.loss_kind(losses.get_loss_object("bce")) == "binary"
    assert losses.loss_kind(keras.losses.BinaryCrossentropy()) == "binary"
    assert losses.loss_kind("sparse_categorical_crossentropy") == "sparse"
    assert losses.loss_kind(losses.SparseCategoricalCrossentropy()) == "sparse"
    assert losses.loss_kind(losses.categorical_crossentropy) == "categorical"
    assert losses.loss_kind("mse") is None and losses.loss_kind(None) is None
    assert losses.is_binary_crossentropy("binary_crossentropy")
    assert losses.is_sparse_categorical("sparse_categorical_crossentropy")


def test_config_round_trip():
    obj = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, name="cce")
    again = losses.deserialize(losses.serialize(obj))
    assert type(again) is losses.CategoricalCrossentropy
    assert again.get_config() == obj.get_config()
    assert again.get_config()["from_logits"] is True


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

def _batches(kind, sizes=(3, 7, 5), seed=10, classes=C):
    out = []
    for i, n in enumerate(sizes):
        y_true, y_pred = _data(kind, seed=seed + i, shape=(n, classes))
        sw = np.random.default_rng(seed + 100 + i).uniform(0, 1, (n,)).astype("float32")
        out.append((y_true, y_pred, sw))
    return out


def _accumulate(keras_metric, ours, batches, weighted, transform=lambda yt, yp: (yt, yp), msg=""):
    for y_true, y_pred, sw in batches:
        y_true, y_pred = transform(y_true, y_pred)
        keras_metric.update_state(y_true, y_pred, sample_weight=sw if weighted else None)
        ours.update_state(torch.tensor(y_true), torch.tensor(y_pred),
                          torch.tensor(sw) if weighted else None)
    np.testing.assert_allclose(_np(ours.result()), _np(keras_metric.result()), rtol=RTOL, atol=ATOL,
                               err_msg=msg)


def _to_sparse(y_true, y_pred):
    return np.argmax(y_true, -1).astype("int64"), y_pred


def _to_sparse_col(y_true, y_pred):
    return np.argmax(y_true, -1)[:, None].astype("float32"), y_pred


def _single_column(y_true, y_pred):
    return y_true[:, :1], y_pred[:, :1]


METRIC_CASES = [
    ("BinaryAccuracy", {}, "binary", None),
    ("BinaryAccuracy", {"threshold": 0.7}, "binary", None),
    ("BinaryAccuracy", {}, "binary", _single_column),
    ("CategoricalAccuracy", {}, "onehot", None),
    ("SparseCategoricalAccuracy", {}, "onehot", _to_sparse),
    ("SparseCategoricalAccuracy", {}, "onehot", _to_sparse_col),
    ("TopKCategoricalAccuracy", {"k": 2}, "onehot", None),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "onehot", _to_sparse),
    ("MeanSquaredError", {}, "regression", None),
    ("MeanAbsoluteError", {}, "regression", None),
    ("Precision", {}, "binary", None),
    ("Precision", {"thresholds": 0.3}, "binary", None),
    ("Precision", {"top_k": 2}, "binary", None),
    ("Recall", {}, "binary", None),
    ("Recall", {"class_id": 1}, "binary", None),
    ("AUC", {}, "binary", None),
    ("AUC", {"curve": "PR"}, "binary", None),
    ("AUC", {"num_thresholds": 50, "from_logits": True}, "binary_logits", None),
]


def test_metric_accumulation_matches_keras():
    for name, kwargs, kind, transform in METRIC_CASES:
        batches = _batches(kind)
        for weighted in (False, True):
            _accumulate(getattr(keras.metrics, name)(**kwargs), getattr(metrics, name)(**kwargs), batches,
                        weighted, transform or (lambda yt, yp: (yt, yp)),
                        msg=f"{name}({kwargs}) weighted={weighted}")


def test_accuracy_exact_match():
    y_true = np.array([[1.0], [2.0], [3.0], [4.0]], dtype="float32")
    y_pred = np.array([[0.0], [2.0], [3.0], [4.0]], dtype="float32")
    k, ours = keras.metrics.Accuracy(), metrics.Accuracy()
    k.update_state(y_true, y_pred)
    ours.update_state(torch.tensor(y_true), torch.tensor(y_pred))
    np.testing.assert_allclose(_np(ours.result()), _np(k.result()))


def test_mean_and_sum_match_keras():
    values = np.random.default_rng(0).standard_normal((6, 3)).astype("float32")
    sw = np.random.default_rng(1).uniform(0, 1, (6,)).astype("float32")
    for name in ("Mean", "Sum"):
        k, ours = getattr(keras.metrics, name)(), getattr(metrics, name)()
        k.update_state(values, sample_weight=sw)
        ours.update_state(torch.tensor(values), sample_weight=torch.tensor(sw))
        k.update_state(values[:2])
        ours.update_state(torch.tensor(values[:2]))
        np.testing.assert_allclose(_np(ours.result()), _np(k.result()), rtol=RTOL)


def test_loss_names_as_metrics_match_keras():
    batches = _batches("onehot")
    for name in ("mse", "categorical_crossentropy", "kld", "mae"):
        m = metrics.get(name)
        assert m.name == name
        fn = keras.losses.get(name)
        _accumulate(keras.metrics.MeanMetricWrapper(fn), m, batches, weighted=True)


def test_reset_state_zeroes_in_place():
    m = metrics.CategoricalAccuracy()
    y_true, y_pred = _data("onehot")
    m.update_state(torch.tensor(y_true), torch.tensor(y_pred))
    total = m._state["total"]
    m.reset_state()
    assert m._state["total"] is total and float(total) == 0.0
    assert float(m.result()) == 0.0
    m.update_state(torch.tensor(y_true), torch.tensor(y_pred))
    expected = float(np.mean(np.argmax(y_true, -1) == np.argmax(y_pred, -1)))
    assert float(m.result()) == pytest.approx(expected)


def test_metric_state_does_not_keep_autograd_graph():
    y_true, y_pred = _data("regression")
    pred = torch.tensor(y_pred, requires_grad=True)
    m = metrics.get("mse")
    m.update_state(torch.tensor(y_true), pred)
    assert not m.result().requires_grad


def test_scalar_metric_is_weighted_by_batch_size():
    def mean_pred(y_true, y_pred):
        return torch.mean(y_pred)

    m = metrics.get(mean_pred)
    assert isinstance(m, metrics.MeanMetricWrapper) and m.name == "mean_pred"
    a = torch.full((2, 1), 1.0)
    b = torch.full((6, 1), 3.0)
    m.update_state(torch.zeros(2, 1), a)
    m.update_state(torch.zeros(6, 1), b)
    assert float(m.result()) == pytest.approx((2 * 1.0 + 6 * 3.0) / 8)


ACC_TABLE = [
    # (typed, loss, output_shape, y_true_shape, expected class)
    ("acc", "binary_crossentropy", (None, 10), None, metrics.BinaryAccuracy),
    ("accuracy", losses.BinaryCrossentropy(), None, None, metrics.BinaryAccuracy),
    ("acc", "mse", (None, 1), None, metrics.BinaryAccuracy),
    ("acc", "categorical_crossentropy", (None, 1), None, metrics.BinaryAccuracy),
    ("acc", "sparse_categorical_crossentropy", (None, 10), None, metrics.SparseCategoricalAccuracy),
    ("Accuracy", losses.SparseCategoricalCrossentropy(from_logits=True), None, None,
     metrics.SparseCategoricalAccuracy),
    ("acc", "categorical_crossentropy", (None, 10), None, metrics.CategoricalAccuracy),
    ("acc", "mse", (None, 10), (None, 10), metrics.CategoricalAccuracy),
    ("acc", "mse", (None, 10), (None,), metrics.SparseCategoricalAccuracy),
    ("acc", "mse", (None, 10), (None, 1), metrics.SparseCategoricalAccuracy),
]


def test_accuracy_resolution_table():
    for typed, loss, output_shape, y_true_shape, expected in ACC_TABLE:
        m = metrics.get(typed, loss=loss, output_shape=output_shape, y_true_shape=y_true_shape)
        assert type(m) is expected, (typed, loss, output_shape, y_true_shape)
        assert m.name == typed


def test_accuracy_resolved_from_first_batch_when_unknown():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, (B,))
    probs = _softmax(rng.standard_normal((B, C))).astype("float32")
    m = metrics.get("acc", loss=lambda yt, yp: yp)
    m.update_state(torch.tensor(labels), torch.tensor(probs))
    assert m.name == "acc"
    assert float(m.result()) == pytest.approx(float(np.mean(np.argmax(probs, -1) == labels)))


def test_crossentropy_metric_resolution():
    m = metrics.get("ce", loss="binary_crossentropy")
    assert m.name == "ce" and m.fn is losses.binary_crossentropy
    m = metrics.get("crossentropy", loss="sparse_categorical_crossentropy")
    assert m.fn is losses.sparse_categorical_crossentropy
    m = metrics.get("crossentropy", loss="categorical_crossentropy", output_shape=(None, 4))
    assert m.fn is losses.categorical_crossentropy


def test_get_metric_identifiers():
    assert isinstance(metrics.get("AUC"), metrics.AUC)
    assert isinstance(metrics.get("precision"), metrics.Precision)
    assert metrics.get("top_k_categorical_accuracy").name == "top_k_categorical_accuracy"
    inst = metrics.Recall()
    assert metrics.get(inst) is inst
    cfg = metrics.serialize(metrics.BinaryAccuracy(threshold=0.3, name="b"))
    again = metrics.deserialize(cfg)
    assert type(again) is metrics.BinaryAccuracy and again.threshold == 0.3 and again.name == "b"
    with pytest.raises(ValueError, match="binary_accuracy"):
        metrics.get("acuracy")


def test_function_forms_match_keras():
    y_true, y_pred = _data("onehot", seed=20)
    for name in ("categorical_accuracy", "top_k_categorical_accuracy"):
        expected = _np(getattr(keras.metrics, name)(y_true, y_pred))
        np.testing.assert_allclose(_np(getattr(metrics, name)(torch.tensor(y_true), torch.tensor(y_pred))),
                                   expected)
    labels = np.argmax(y_true, -1)
    np.testing.assert_allclose(
        _np(metrics.sparse_categorical_accuracy(torch.tensor(labels), torch.tensor(y_pred))),
        _np(keras.metrics.sparse_categorical_accuracy(labels, y_pred)))
    yb, pb = _data("binary", seed=21)
    np.testing.assert_allclose(_np(metrics.binary_accuracy(torch.tensor(yb), torch.tensor(pb))),
                               _np(keras.metrics.binary_accuracy(yb, pb)))


def test_updates_never_read_device_values():
    # Meta tensors have no data: any .item()/float()/bool() on them raises.
    meta = torch.device("meta")
    y_true, y_pred = torch.empty(B, C, device=meta), torch.empty(B, C, device=meta)
    labels = torch.empty(B, dtype=torch.long, device=meta)
    sw = torch.empty(B, device=meta)
    dense = [metrics.get("acc", loss="categorical_crossentropy"), metrics.BinaryAccuracy(),
             metrics.TopKCategoricalAccuracy(k=2), metrics.Precision(), metrics.Recall(),
             metrics.AUC(), metrics.get("mse"), metrics.get("hinge"), metrics.get("ce", loss="bce")]
    sparse = [metrics.get("acc", loss="sparse_categorical_crossentropy"), metrics.get("acc"),
              metrics.SparseTopKCategoricalAccuracy(k=2)]
    for m in dense:
        m.update_state(y_true, y_pred, sw)
        m.update_state(y_true, y_pred)
        assert m.result().device == meta
    for m in sparse:
        m.update_state(labels, y_pred, sw)
        assert m.result().device == meta
    for loss in (losses.CategoricalCrossentropy(), losses.BinaryCrossentropy(from_logits=True),
                 losses.Hinge(), losses.Huber(), losses.CosineSimilarity(), losses.KLDivergence()):
        assert loss(y_true, y_pred, sw).device == meta
    assert losses.SparseCategoricalCrossentropy(ignore_class=0)(labels, y_pred, sw).device == meta


def test_metric_subclass_with_add_variable_counts_like_keras():
    import kaffe
    # keras.io "Training & evaluation with the built-in methods": CategoricalTruePositives
    def make(lib):
        ops = lib.ops

        class CategoricalTruePositives(lib.metrics.Metric):
            def __init__(self, name="categorical_true_positives", **kwargs):
                super().__init__(name=name, **kwargs)
                self.true_positives = self.add_variable(shape=(), name="ctp",
                                                        initializer="zeros")
                self.seen = self.add_weight(name="seen", initializer="zeros")  # Keras 2 spelling

            def update_state(self, y_true, y_pred, sample_weight=None):
                y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
                values = ops.cast(ops.cast(y_true, "int32") == ops.cast(y_pred, "int32"),
                                  "float32")
                self.true_positives.assign_add(ops.sum(values))
                self.seen.assign_add(ops.cast(ops.shape(values)[0], "float32"))

            def result(self):
                return self.true_positives / self.seen
        return CategoricalTruePositives()

    rng = np.random.RandomState(0)
    batches = [(rng.randint(0, 3, (8, 1)), rng.rand(8, 3).astype("float32")) for _ in range(3)]
    results = []
    for lib in (keras, kaffe):
        metric = make(lib)
        values = []
        for y_true, y_pred in batches:
            metric.update_state(y_true, y_pred)
            values.append(float(metric.result()))
        metric.reset_state()  # Keras's default: every variable back to zero
        values.append([float(v) for v in (metric.true_positives, metric.seen)])
        results.append(values)
    np.testing.assert_allclose(results[1][:3], results[0][:3], rtol=1e-6)
    assert results[1][3] == results[0][3] == [0.0, 0.0]

    model = kaffe.Sequential([kaffe.Input((3,)), kaffe.layers.Dense(3)])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=[make(kaffe)])
    history = model.fit(batches[0][1], batches[0][0], epochs=2, verbose=0)
    assert 0 <= history.history["categorical_true_positives"][-1] <= 1
