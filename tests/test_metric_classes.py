"""kaffe's loss-valued, count, F-score and R2 metric classes against Keras 3's: the same
batches (with and without sample weights), running results after each, then reset."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kaffe import metrics  # noqa: E402

rng = np.random.RandomState(0)
PROBS = [rng.dirichlet(np.ones(4), size=6).astype("float32") for _ in range(3)]
ONE_HOT = [np.eye(4, dtype="float32")[rng.randint(0, 4, 6)] for _ in range(3)]
LABELS = [rng.randint(0, 4, (6, 1)) for _ in range(3)]
REAL = [rng.rand(6, 3).astype("float32") + 0.1 for _ in range(6)]
BINARY = [rng.randint(0, 2, (6, 3)).astype("float32") for _ in range(3)]
WEIGHTS = [rng.rand(6).astype("float32") for _ in range(3)]

# class name, constructor options, (y_true batches, y_pred batches)
CASES = [
    ("MeanAbsolutePercentageError", {}, (REAL[:3], REAL[3:])),
    ("MeanSquaredLogarithmicError", {}, (REAL[:3], REAL[3:])),
    ("CosineSimilarity", {}, (REAL[:3], REAL[3:])),
    ("LogCoshError", {}, (REAL[:3], REAL[3:])),
    ("RootMeanSquaredError", {}, (REAL[:3], REAL[3:])),
    ("Hinge", {}, (BINARY, REAL[3:])),
    ("SquaredHinge", {}, (BINARY, REAL[3:])),
    ("CategoricalHinge", {}, (ONE_HOT, PROBS)),
    ("KLDivergence", {}, (ONE_HOT, PROBS)),
    ("Poisson", {}, (REAL[:3], REAL[3:])),
    ("BinaryCrossentropy", {}, (BINARY, [r / 1.2 for r in REAL[3:]])),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1},
     (BINARY, REAL[3:])),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, (ONE_HOT, PROBS)),
    ("SparseCategoricalCrossentropy", {}, (LABELS, PROBS)),
    ("TruePositives", {}, (BINARY, [r / 1.2 for r in REAL[3:]])),
    ("FalsePositives", {"thresholds": [0.3, 0.6]}, (BINARY, [r / 1.2 for r in REAL[3:]])),
    ("TrueNegatives", {}, (BINARY, [r / 1.2 for r in REAL[3:]])),
    ("FalseNegatives", {}, (BINARY, [r / 1.2 for r in REAL[3:]])),
    ("F1Score", {}, (ONE_HOT, PROBS)),
    ("F1Score", {"average": "macro", "threshold": 0.3}, (ONE_HOT, PROBS)),
    ("F1Score", {"average": "micro"}, (ONE_HOT, PROBS)),
    ("FBetaScore", {"average": "weighted", "beta": 2.0}, (ONE_HOT, PROBS)),
    ("R2Score", {}, (REAL[:3], REAL[3:])),
    ("R2Score", {"class_aggregation": "variance_weighted_average", "num_regressors": 2},
     (REAL[:3], REAL[3:])),
    ("R2Score", {"class_aggregation": None}, (REAL[:3], REAL[3:])),
]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name,options,data", CASES, ids=[c[0] + str(c[1]) for c in CASES])
def test_metric_class_equals_keras(name, options, data, weighted):
    ours, theirs = getattr(metrics, name)(**options), getattr(keras.metrics, name)(**options)
    assert theirs.name.startswith(ours.name)  # Keras numbers a repeated default name
    for i, (y_true, y_pred) in enumerate(zip(*data)):
        sw = WEIGHTS[i] if weighted else None
        ours.update_state(y_true, y_pred, sample_weight=sw)
        theirs.update_state(y_true, y_pred, sample_weight=sw)
        np.testing.assert_allclose(np.asarray(ours.result()),
                                   keras.ops.convert_to_numpy(theirs.result()),
                                   rtol=2e-5, atol=2e-6)
    ours.reset_state()
    again = getattr(metrics, name)(**options)
    again.update_state(data[0][0], data[1][0])
    ours.update_state(data[0][0], data[1][0])
    np.testing.assert_allclose(np.asarray(ours.result()), np.asarray(again.result()))


def test_cosine_similarity_metric_is_the_cosine_and_compiles_by_name():
    y = REAL[0]
    np.testing.assert_allclose(metrics.cosine_similarity(y, y).numpy(), np.ones(6), rtol=1e-6)
    assert metrics.get("CosineSimilarity").name == "CosineSimilarity"
    assert metrics.get("cosine_similarity").fn is metrics.cosine_similarity
