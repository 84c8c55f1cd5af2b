"""Keras 2's ``keras.preprocessing``: ``text`` (``Tokenizer``, ``one_hot``, ...), ``sequence``
(``pad_sequences``, ``skipgrams``, ...) and ``image`` (``ImageDataGenerator``, ``load_img``, ...),
with Keras's algorithms and outputs.

    from kaffe import preprocessing
    x = preprocessing.sequence.pad_sequences(sequences, maxlen=100)
"""
from kaffe.preprocessing import image, sequence, text

__all__ = ["image", "sequence", "text"]
