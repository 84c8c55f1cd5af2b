"""Focal and overlap losses (kaffe.loss_classes, served as keras.losses) against Keras 3."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kaffe import losses  # noqa: E402

rng = np.random.RandomState(0)
BINARY = rng.randint(0, 2, (6, 5)).astype("float32")
PROB = rng.rand(6, 5).astype("float32") * 0.98 + 0.01
LOGITS = rng.randn(6, 5).astype("float32")
ONE_HOT = np.eye(5, dtype="float32")[rng.randint(0, 5, 6)]
SOFT = rng.dirichlet(np.ones(5), size=6).astype("float32")
WEIGHTS = rng.rand(6).astype("float32")

CASES = [
    ("BinaryFocalCrossentropy", {}, BINARY, PROB),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.3, "gamma": 1.5,
                                 "label_smoothing": 0.1}, BINARY, PROB),
    ("BinaryFocalCrossentropy", {"from_logits": True}, BINARY, LOGITS),
    ("CategoricalFocalCrossentropy", {}, ONE_HOT, SOFT),
    ("CategoricalFocalCrossentropy", {"from_logits": True, "label_smoothing": 0.2, "gamma": 3.0},
     ONE_HOT, LOGITS),
    ("Dice", {}, BINARY, PROB),
    ("Dice", {"axis": 1}, BINARY, PROB),
    ("Tversky", {"alpha": 0.7, "beta": 0.3}, BINARY, PROB),
    ("Tversky", {"axis": 1}, BINARY, PROB),
]


@pytest.mark.parametrize("name,options,y_true,y_pred", CASES,
                         ids=[c[0] + str(c[1]) for c in CASES])
def test_loss_equals_keras(name, options, y_true, y_pred):
    ours, theirs = getattr(losses, name)(**options), getattr(keras.losses, name)(**options)
    assert ours.name == theirs.name
    for sw in (None, WEIGHTS):
        np.testing.assert_allclose(
            float(ours(y_true, y_pred, sample_weight=sw)),
            float(keras.ops.convert_to_numpy(theirs(y_true, y_pred, sample_weight=sw))),
            rtol=1e-5, atol=1e-6)
    function = getattr(losses, theirs.fn.__name__)
    np.testing.assert_allclose(
        np.asarray(function(y_true, y_pred, **options)),
        keras.ops.convert_to_numpy(getattr(keras.losses, theirs.fn.__name__)(y_true, y_pred,
                                                                              **options)),
        rtol=1e-5, atol=1e-6)
    again = type(ours).from_config(ours.get_config())
    assert float(again(y_true, y_pred)) == pytest.approx(float(ours(y_true, y_pred)))
