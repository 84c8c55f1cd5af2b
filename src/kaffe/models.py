"""``kaffe.models``: the import path Keras users type (``from keras.models import ...``)."""
from kaffe.engine.functional import Functional
from kaffe.engine.model import Model
from kaffe.engine.sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True, **kwargs):
    from kaffe.saving import load_model as _load
    return _load(filepath, custom_objects=custom_objects, compile=compile)


def model_from_json(json_string, custom_objects=None):
    from kaffe.saving.serialization import model_from_json as _from_json
    return _from_json(json_string, custom_objects=custom_objects)


def clone_model(model, input_tensors=None, clone_function=None, **kwargs):
    """A new model with ``model``'s architecture and fresh weights (see
    :func:`kaffe.utils.cloning.clone_model`)."""
    from kaffe.utils.cloning import clone_model as _clone
    return _clone(model, input_tensors=input_tensors, clone_function=clone_function, **kwargs)
