"""``keras.models.clone_model``: the same architecture with new layers (fresh weights)."""
from kaffe.engine.graph import map_graph
from kaffe.engine.input_layer import Input, InputLayer
from kaffe.engine.keras_tensor import flatten
from kaffe.engine.operation import Operation


def clone_layer(layer):
    """A new layer of ``layer``'s class and config: same settings and name, new weights."""
    return layer.__class__.from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None, **kwargs):
    """A new model with ``model``'s architecture; each layer is replaced by
    ``clone_function(layer)`` (default: a new layer from its config, so weights are freshly
    initialised, as in Keras; a layer shared in ``model`` is cloned once and stays shared).
    ``input_tensors`` (symbolic ``Input`` tensors) replace the model's inputs."""
    from kaffe.engine.functional import Functional
    from kaffe.engine.sequential import Sequential
    if kwargs:
        raise TypeError(f"clone_model got unexpected arguments {sorted(kwargs)} (Keras 3's "
                        "recursive / call_function are not supported)")
    clone_function = clone_function or clone_layer
    if isinstance(model, Sequential):
        return _clone_sequential(model, input_tensors, clone_function)
    if isinstance(model, Functional):
        return _clone_functional(model, input_tensors, clone_function)
    raise ValueError(f"clone_model expected a Sequential or functional model; received "
                     f"{type(model).__name__} (a subclassed model: build a new instance of it)")


def _clone_sequential(model, input_tensors, clone_function):
    from kaffe.engine.sequential import Sequential
    layers = [clone_function(layer) for layer in model.layers
              if not isinstance(layer, InputLayer)]
    if input_tensors is not None:
        inputs = flatten(input_tensors)
        if len(inputs) != 1:
            raise ValueError(f"clone_model of a Sequential model takes one input tensor; "
                             f"received {len(inputs)}")
        clone = Sequential(layers, name=model.name)
        clone(inputs[0])
        return clone
    inputs = getattr(model, "inputs", None)
    if inputs:
        shape = tuple(inputs[0].shape[1:])
        return Sequential([Input(shape=shape, dtype=getattr(inputs[0], "dtype", None))] + layers,
                          name=model.name)
    return Sequential(layers, name=model.name)


def _clone_functional(model, input_tensors, clone_function):
    from kaffe.engine.functional import Functional
    if input_tensors is not None:
        new_inputs = flatten(input_tensors)
        if len(new_inputs) != len(model.inputs):
            raise ValueError(f"clone_model: the model has {len(model.inputs)} inputs; received "
                             f"{len(new_inputs)} input_tensors")
    else:
        new_inputs = [Input(batch_shape=tuple(t.shape), dtype=getattr(t, "dtype", None),
                            name=t.node.layer.name) for t in model.inputs]
    tensors = {id(old): new for old, new in zip(model.inputs, new_inputs)}
    clones = {}
    nodes, _ = map_graph(model.inputs, model.outputs)
    for node in nodes:
        if node.is_input:
            continue
        layer = node.layer
        args = [tensors[id(t)] for t in node.inputs]
        if isinstance(layer, Operation):
            target = layer
        else:
            if id(layer) not in clones:
                clones[id(layer)] = clone_function(layer)
            target = clones[id(layer)]
        outputs = target(args[0] if node.input_structure == "single" else args,
                         **node.call_kwargs)
        for old, new in zip(node.outputs, flatten(outputs)):
            tensors[id(old)] = new
    outputs = [tensors[id(t)] for t in model.outputs]
    single = not isinstance(model._output_structure, (list, tuple))
    return Functional(new_inputs, outputs[0] if single else outputs, name=model.name)
