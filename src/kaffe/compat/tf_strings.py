"""``tf.strings`` for the text-cleaning functions Keras programs pass to ``TextVectorization``
(``standardize=custom_standardization``): kaffe's text batches are NumPy string arrays, so these
work element-wise on a string, bytes, a list or an array of them and return the same shape.
Patterns are Python ``re`` patterns (TensorFlow's RE2 syntax agrees on the common cases).
"""
import re

import numpy as np


def _elementwise(fn):
    def apply(value):
        if isinstance(value, bytes):
            return fn(value.decode("utf-8")).encode("utf-8")
        if isinstance(value, str):
            return fn(value)
        array = np.asarray(value)
        out = np.empty(array.shape, dtype=object)
        for index, item in np.ndenumerate(array):
            out[index] = apply(item.item() if isinstance(item, np.generic) else item)
        return out.astype(str) if array.dtype.kind in "OU" and all(
            isinstance(v, str) for v in out.flat) else out
    return apply


def lower(input, encoding="", name=None):
    return _elementwise(str.lower)(input)


def upper(input, encoding="", name=None):
    return _elementwise(str.upper)(input)


def strip(input, name=None):
    return _elementwise(str.strip)(input)


def regex_replace(input, pattern, rewrite, replace_global=True, name=None):
    """Replace matches of ``pattern`` by ``rewrite`` (all of them unless ``replace_global`` is
    False); RE2's ``\\1`` group references work as in Python."""
    compiled = re.compile(pattern)
    count = 0 if replace_global else 1
    return _elementwise(lambda s: compiled.sub(rewrite, s, count=count))(input)


def length(input, unit="BYTE", name=None):
    measure = (lambda s: len(s.encode("utf-8"))) if unit == "BYTE" else len
    result = _elementwise(lambda s: measure(s))(input)
    return np.asarray(result, dtype=np.int32)


STRINGS = {"lower": lower, "upper": upper, "strip": strip, "regex_replace": regex_replace,
           "length": length}
