"""Keras-style automatic names: the first Dense is ``dense``, then ``dense_1``, ``dense_2`` ..."""
import collections
import re

_counts = collections.defaultdict(int)


def to_snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """Number names per prefix across the session, as Keras 3 does."""
    _counts[prefix] += 1
    n = _counts[prefix]
    return prefix if n == 1 else f"{prefix}_{n - 1}"


def clear_session():
    """Restart layer numbering (Keras's ``backend.clear_session``)."""
    _counts.clear()
