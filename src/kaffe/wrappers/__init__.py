"""``keras.wrappers``: Keras 2's scikit-learn wrappers (``kaffe.wrappers.scikit_learn``)."""
from kaffe.wrappers import scikit_learn

__all__ = ["scikit_learn"]
