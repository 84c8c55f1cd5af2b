"""A model whose Input is ``dtype="string"`` (Keras 3's end-to-end text model: raw strings ->
TextVectorization -> ...) takes numpy arrays of str in ``model(x)``, ``predict``, ``fit`` and
``evaluate``; the strings stay numpy arrays until the vectorizer turns them into ids."""
import numpy as np
import torch

import kaffe
from kaffe import layers

TEXTS = np.array(["good movie", "bad movie", "great film", "awful film", "good film",
                  "bad film"] * 6)
LABELS = np.array([1, 0, 1, 0, 1, 0] * 6, dtype="float32")


def _models():
    vectorize = layers.TextVectorization(max_tokens=20, output_sequence_length=3)
    vectorize.adapt(TEXTS)
    ids = kaffe.Input(shape=(3,), dtype="int64")
    h = layers.GlobalAveragePooling1D()(layers.Embedding(20, 4)(ids))
    on_ids = kaffe.Model(ids, layers.Dense(1, activation="sigmoid")(h))
    text = kaffe.Input(shape=(1,), dtype="string")
    end_to_end = kaffe.Model(text, on_ids(vectorize(text)))
    return vectorize, on_ids, end_to_end


def test_string_input_predicts_what_the_model_on_ids_predicts():
    vectorize, on_ids, end_to_end = _models()
    ids = vectorize(TEXTS[:, None])
    expected = on_ids.predict(np.asarray(ids), verbose=0)
    np.testing.assert_allclose(end_to_end.predict(TEXTS[:, None], verbose=0), expected,
                               rtol=1e-6)
    np.testing.assert_allclose(end_to_end(TEXTS[:4, None]).detach().numpy(), expected[:4],
                               rtol=1e-6)


def test_string_input_fits_and_evaluates_like_the_ids():
    vectorize, on_ids, end_to_end = _models()
    end_to_end.compile(optimizer=kaffe.optimizers.Adam(0.05), loss="binary_crossentropy",
                       metrics=["accuracy"])
    torch.manual_seed(0)
    before = end_to_end.evaluate(TEXTS[:, None], LABELS, verbose=0)
    end_to_end.fit(TEXTS[:, None], LABELS, batch_size=8, epochs=15, shuffle=True, verbose=0)
    loss, accuracy = end_to_end.evaluate(TEXTS[:, None], LABELS, verbose=0)
    assert loss < before[0] and accuracy == 1.0
    on_ids.compile(loss="binary_crossentropy", metrics=["accuracy"])
    ids = np.asarray(vectorize(TEXTS[:, None]))
    np.testing.assert_allclose(on_ids.evaluate(ids, LABELS, verbose=0), [loss, accuracy],
                               rtol=1e-5)


def test_string_batches_from_a_dataset_reach_the_model_as_text():
    """keras.io's text_classification_from_scratch: ``end_to_end.evaluate(raw_test_ds)`` where
    the dataset yields 1-D batches of str for an ``Input(shape=(1,), dtype="string")``."""
    vectorize, on_ids, end_to_end = _models()
    end_to_end.compile(loss="binary_crossentropy", metrics=["accuracy"])
    on_ids.compile(loss="binary_crossentropy", metrics=["accuracy"])

    def batches():
        for start in range(0, len(TEXTS), 8):   # 36 samples: 5 batches, the last of 4
            yield TEXTS[start:start + 8], LABELS[start:start + 8]
    ids = np.asarray(vectorize(TEXTS[:, None]))
    np.testing.assert_allclose(end_to_end.evaluate(batches(), steps=5, verbose=0),
                               on_ids.evaluate(ids, LABELS, verbose=0), rtol=1e-5)
