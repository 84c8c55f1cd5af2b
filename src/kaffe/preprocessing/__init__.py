"""Keras 2's ``keras.preprocessing``: ``text`` (``Tokenizer``, ``one_hot``, ...), ``sequence``
(``pad_sequences``, ``skipgrams``, ...) and ``image`` (``ImageDataGenerator``, ``load_img``, ...),
with Keras's algorithms and outputs.

    from kaffe import preprocessing
    x = preprocessing.sequence.pad_sequences(sequences, maxlen=100)
"""
from kaffe.preprocessing import image, sequence, text

#: TF 2.3-2.8 exported the dataset utilities here too (``tf.keras.preprocessing.*``).
_FROM_UTILS = ("image_dataset_from_directory", "text_dataset_from_directory",
               "timeseries_dataset_from_array")

__all__ = ["image", "sequence", "text", *_FROM_UTILS]


def __getattr__(name):
    if name in _FROM_UTILS:
        import kaffe.utils
        return getattr(kaffe.utils, name)
    raise AttributeError(f"module 'kaffe.preprocessing' has no attribute {name!r}")
