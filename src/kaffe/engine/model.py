"""``Model``: a layer that can be trained. ``Model(inputs, outputs)`` makes a functional model;
subclassing ``Model`` and writing ``call`` makes a custom one; ``Sequential`` stacks layers."""
import torch

from kaffe.engine.layer import Layer
from kaffe.training.trainer import Trainer


class Model(Trainer, Layer):
    """Group layers into an object with training and inference features.

    ``Model(inputs, outputs)`` returns a functional model (``kaffe.engine.functional.Functional``),
    as in Keras; ``class MyModel(Model)`` with a ``call`` method is a subclassed model whose layers
    are the ``Layer`` attributes it holds.
    """

    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from kaffe.engine.functional import Functional
            return Functional.__new__(Functional)
        return super().__new__(cls)

    def __init__(self, *args, name=None, trainable=True, **kwargs):
        if (args or "inputs" in kwargs) and not _is_functional(self):
            # ``class CustomModel(Model)`` built as ``CustomModel(inputs, outputs)`` (Keras 3's
            # way to give a functional model its own train_step): becomes a Functional subclass.
            from kaffe.engine.functional import Functional
            self.__class__ = _functional_subclass(type(self))
            Functional.__init__(self, *args, name=name, trainable=trainable, **kwargs)
            return
        if args or kwargs:
            raise TypeError(f"Model() got unexpected arguments {args or ''} {sorted(kwargs)}. "
                            "Use Model(inputs, outputs) or subclass Model.")
        Layer.__init__(self, name=name, trainable=trainable)
        Trainer.__init__(self)

    @property
    def layers(self):
        return [l for l in self._sublayers() if isinstance(l, Layer)]

    def _raw_input_dtypes(self, inputs):
        """A subclassed model called on arrays: floats become float32, other dtypes stay (its
        ``call`` decides, as in Keras 3); functional models use their ``Input`` dtypes."""
        return None

    def get_layer(self, name=None, index=None):
        """A layer by ``name`` or by position ``index`` in ``layers``."""
        if index is not None:
            if name is not None:
                raise ValueError("Give get_layer a name or an index, not both.")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer(index={index}) but the model has "
                                 f"{len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named '{name}' in model '{self.name}'. "
                         f"Layers: {[l.name for l in self.layers]}.")

    def reset_states(self):
        """Zero the carried-over states of every stateful layer (Keras's ``reset_states``)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_states") and \
                    getattr(module, "stateful", False):
                module.reset_states()

    reset_state = reset_states

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        from kaffe.engine.summary import print_summary
        print_summary(self, line_length=line_length, print_fn=print_fn,
                      show_trainable=show_trainable)

    def count_params(self):
        if not self.built:
            raise ValueError(
                f"Model '{self.name}' is not built yet: give the first layer an input_shape, "
                "start with an Input, or call the model on data first.")
        return super().count_params()

    # saving ---------------------------------------------------------------
    def save(self, filepath, overwrite=True, **kwargs):
        """Write the model; in data-parallel training only rank 0 writes (every rank holds the
        same weights), so a script's ``model.save`` runs unedited under torchrun."""
        from kaffe.distribute.environment import is_rank_zero
        from kaffe.saving import save_model
        if is_rank_zero():
            save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath, overwrite=True, **kwargs):
        """Write the weights (rank 0 only in data-parallel training, like ``save``)."""
        from kaffe.distribute.environment import is_rank_zero
        from kaffe.saving import save_weights
        if is_rank_zero():
            save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False, by_name=False, **kwargs):
        from kaffe.saving import load_weights
        load_weights(self, filepath, skip_mismatch=skip_mismatch, by_name=by_name)

    def export(self, filepath, format="onnx", verbose=None, dynamic_batch=True, **kwargs):
        """Keras 3's ``model.export``: ``format="onnx"`` writes an ONNX file (dynamic batch;
        input names from the ``Input`` layers, output names from the output layers); see
        ``kaffe.export``."""
        from kaffe.export import export_model
        return export_model(self, filepath, format=format, dynamic_batch=dynamic_batch,
                            verbose=verbose, **kwargs)

    def to_json(self, **kwargs):
        import json
        from kaffe.saving.serialization import serialize_layer
        return json.dumps(serialize_layer(self), **kwargs)

    @property
    def device(self):
        for t in self.weights:
            return t.device
        return torch.device("cpu")


def _is_functional(model):
    from kaffe.engine.functional import Functional
    return isinstance(model, Functional)


_FUNCTIONAL_SUBCLASSES = {}


def _functional_subclass(cls):
    """``cls`` with ``Functional`` mixed in after it (its own methods win), made once per class."""
    from kaffe.engine.functional import Functional
    if cls not in _FUNCTIONAL_SUBCLASSES:
        _FUNCTIONAL_SUBCLASSES[cls] = type(cls.__name__, (cls, Functional),
                                           {"__module__": cls.__module__,
                                            "__qualname__": cls.__qualname__})
    return _FUNCTIONAL_SUBCLASSES[cls]
