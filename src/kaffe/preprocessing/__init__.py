"""Keras 2's ``keras.preprocessing``: ``text`` (``Tokenizer``, ``one_hot``, ...) and ``sequence``
(``pad_sequences``, ``skipgrams``, ...), with Keras's algorithms and outputs.

    from kaffe import preprocessing
    x = preprocessing.sequence.pad_sequences(sequences, maxlen=100)
"""
from kaffe.preprocessing import sequence, text

__all__ = ["sequence", "text"]
