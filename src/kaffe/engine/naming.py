"""Keras-style automatic names: the first Dense is ``dense``, then ``dense_1``, ``dense_2`` ...

Scripts written for Keras 2 look layers up by Keras 2's names (``dense_1`` for the first Dense,
``input_1``, ``model_1``); ``layer_naming: "keras2"`` in kaffe.json (or ``KAFFE_LAYER_NAMING=keras2``)
numbers layers that way instead.
"""
import collections
import os
import re

from kaffe import config

_counts = collections.defaultdict(int)
_KERAS2_PREFIXES = {"input_layer": "input", "functional": "model"}


def to_snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """Number names per prefix across the session, as Keras 3 does."""
    if os.environ.get("KAFFE_LAYER_NAMING", config.layer_naming()) == "keras2":
        prefix = _KERAS2_PREFIXES.get(prefix, prefix)
        _counts[prefix] += 1
        return f"{prefix}_{_counts[prefix]}"
    _counts[prefix] += 1
    n = _counts[prefix]
    return prefix if n == 1 else f"{prefix}_{n - 1}"


def clear_session():
    """Restart layer numbering (Keras's ``backend.clear_session``)."""
    _counts.clear()
