"""Layer and model configs in Keras 3's JSON layout, both ways.

``serialize_layer`` writes what Keras 3's ``serialize_keras_object`` writes: ``{"module",
"class_name", "config", "registered_name", "build_config"}``, with Sequential / Functional configs
(``layers``, ``inbound_nodes`` of ``__keras_tensor__`` arguments, ``input_layers``,
``output_layers``) that ``keras.saving.load_model`` rebuilds. ``deserialize_layer`` reads those
configs, whether kaffe or Keras 3 wrote them, plus Keras 2's legacy form (no ``module`` key,
``inbound_nodes`` as nested lists, ``batch_input_shape``).

Node indices follow Keras: a tensor's ``keras_history`` counts only the nodes that belong to the
model being saved; ``input_layers``/``output_layers`` entries that point at a nested functional
model are one higher (Keras 3 reserves index 0 there; Keras 2 did so for every nested model).
No code is ever loaded from a config: a ``Lambda`` keeps only its function's name.
"""
import inspect
import json
import logging

from kaffe.engine.input_layer import InputLayer
from kaffe.engine.layer import Layer

log = logging.getLogger("kaffe")

# Arguments Keras 3 writes that have no effect in kaffe. A layer that takes one of them gets it;
# for one that does not, the value is dropped if it is the do-nothing value listed here
# (``ANY``: whatever it is) and reported as unsupported otherwise.
ANY = object()
_INERT_ARGS = {
    "quantization_config": None, "lora_rank": None, "lora_alpha": None, "lora_enabled": False,
    "ragged": False, "optional": False, "sparse": False, "autocast": True,
    "synchronized": ANY,  # cross-replica batch statistics: DDP is set up elsewhere in kaffe
    "shared_object_id": ANY, "input_length": None, "seed": None, "activity_regularizer": None,
    "renorm": False, "renorm_clipping": None, "renorm_momentum": ANY,
    "zero_output_for_mask": ANY, "unroll": False, "stateful": False,
}
_LAYER_VALUED_KEYS = ("layer", "backward_layer", "forward_layer", "cell", "cells")


class _NotReady(Exception):
    """A node's input tensor does not exist yet (shared layer at another depth)."""


# ---------------------------------------------------------------------------------- writing
def dtype_policy(name="float32"):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
            "registered_name": None}


def _is_model(layer):
    from kaffe.engine.functional import Functional
    return isinstance(layer, Functional)


def _is_functional(layer):
    """A functional model that is not Sequential (Keras 3 offsets its output node indices)."""
    from kaffe.engine.sequential import Sequential
    return _is_model(layer) and not isinstance(layer, Sequential)


def _module_of(layer):
    import kaffe.layers
    name = type(layer).__name__
    if getattr(kaffe.layers, name, None) is type(layer):
        return "keras.layers", None
    return type(layer).__module__, name


def serialize_layer(layer):
    """A layer or model as Keras 3 serialises it (the content of ``config.json``)."""
    from kaffe.engine.sequential import Sequential
    if isinstance(layer, Sequential):
        shape = layer._input_layer.batch_shape if layer._input_layer is not None else None
        out = {"module": "keras", "class_name": "Sequential", "config": sequential_config(layer),
               "registered_name": None,
               "build_config": {"input_shape": list(shape) if shape else None}}
    elif _is_functional(layer) and type(layer).__name__ == "Functional":
        out = {"module": "keras.src.models.functional", "class_name": "Functional",
               "config": functional_config(layer), "registered_name": "Functional",
               "build_config": {"input_shape": None}}
    elif _is_operation(layer):  # an op node: Keras 3's keras.src.ops.<group>.<Class>
        _check_keras_can_load(layer)
        out = {"module": layer.spec.keras_module, "class_name": type(layer).__name__,
               "config": _to_json_values(layer.get_config()),
               "registered_name": type(layer).__name__}
    else:
        module, registered = _module_of(layer)
        out = {"module": module, "class_name": type(layer).__name__,
               "config": layer_config(layer), "registered_name": registered}
        shape = getattr(layer, "_build_input_shape", None)
        if hasattr(layer, "get_build_config"):
            if layer.get_build_config() is not None:
                out["build_config"] = layer.get_build_config()
        elif layer.built and shape is not None and not isinstance(layer, InputLayer):
            out["build_config"] = {"input_shape": _shape_to_json(shape)}
    from kaffe.saving.keras_file import serialize_compile_config
    compile_config = serialize_compile_config(layer)
    if compile_config is not None:
        out["compile_config"] = compile_config
    return out


#: ops of kaffe.ops that Keras 3 never records as graph nodes (its creation ops take shapes,
#: not tensors, so it has no Operation class for them): a node of one cannot be saved.
OPS_WITHOUT_KERAS_CLASS = frozenset({"empty", "eye", "identity", "ones", "tri", "zeros"})


def _check_keras_can_load(operation):
    """Refuse, before anything is written, an op node Keras 3 could not load from the file."""
    spec = operation.spec
    if spec.name in OPS_WITHOUT_KERAS_CLASS or not spec.keras_module.startswith("keras."):
        raise ValueError(
            f"Cannot save op node '{operation.name}' (ops.{spec.name}) to a .keras file: Keras 3 "
            f"has no graph-node class for ops.{spec.name}, so Keras could not load the file. "
            "Compute it inside a layer instead (a Lambda or a custom Layer's call())"
            + (f", or use ops.{spec.name}_like(x)" if spec.name in ("zeros", "ones", "empty")
               else "") + ".")


def _is_operation(layer):
    from kaffe.engine.operation import Operation
    return isinstance(layer, Operation)


def _to_json_values(value):
    """Call arguments and op configs as Keras 3 writes them: slices, ``...``, arrays and
    tensors as its ``__slice__`` / ``__ellipsis__`` / ``__numpy__`` / ``__tensor__`` dicts."""
    import numpy as np
    import torch
    if isinstance(value, dict):
        return {k: _to_json_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_values(v) for v in value]
    if isinstance(value, slice):
        return {"class_name": "__slice__", "config": {
            "start": _to_json_values(value.start), "stop": _to_json_values(value.stop),
            "step": _to_json_values(value.step)}}
    if value is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(value, torch.Tensor):
        return {"class_name": "__tensor__", "config": {
            "value": value.detach().cpu().tolist(), "dtype": str(value.dtype).replace("torch.", "")}}
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return {"class_name": "__numpy__", "config": {"value": value.tolist(),
                                                      "dtype": value.dtype.name}}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    return value


def _from_json_value(value):
    """The inverse of ``_to_json_values`` for one special dict (else None)."""
    import numpy as np
    import torch
    kind = value.get("class_name")
    inner = value.get("config") or {}
    if kind == "__slice__":
        return slice(inner.get("start"), inner.get("stop"), inner.get("step"))
    if kind == "__ellipsis__":
        return Ellipsis
    if kind == "__numpy__":
        return np.array(inner["value"], dtype=inner["dtype"])
    if kind == "__tensor__":
        from kaffe.engine.operation import torch_dtype
        return torch.tensor(inner["value"], dtype=torch_dtype(inner["dtype"]))
    if kind == "__bytes__":
        return inner["value"].encode("utf-8")
    return None


_SPECIAL_VALUES = ("__slice__", "__ellipsis__", "__numpy__", "__tensor__", "__bytes__")


def layer_config(layer):
    """``layer.get_config()`` in the form Keras 3 takes: a DTypePolicy, no ``batch_input_shape``
    (a Sequential model gets an ``InputLayer`` instead), a Lambda's function by name only."""
    config = dict(layer.get_config())
    config.pop("batch_input_shape", None)
    if isinstance(layer, InputLayer):
        return config
    dtype = config.get("dtype")
    if dtype is None or isinstance(dtype, str):
        config["dtype"] = dtype_policy(dtype or "float32")
    function = config.get("function")
    if function == "<lambda>" or (callable(function) and not isinstance(function, type)):
        log.warning("Lambda layer '%s' wraps an anonymous function; its code is not saved, so "
                    "loading the file needs custom_objects={'%s': fn}.", layer.name, layer.name)
        config["function"] = getattr(function, "__name__", function)
    return config


def _shape_to_json(shape):
    if isinstance(shape, list):
        return [_shape_to_json(s) for s in shape]
    return [None if d is None else int(d) for d in shape]


def sequential_config(model):
    layers = [serialize_layer(layer) for layer in model.layers]
    if model._input_layer is not None:
        layers.insert(0, serialize_layer(model._input_layer))
    config = {"name": model.name, "trainable": model.trainable, "dtype": dtype_policy(),
              "layers": layers}
    if model._input_layer is not None:
        config["build_input_shape"] = list(model._input_layer.batch_shape)
    return config


def inference_graph(model):
    """``(nodes, operations)`` a file holds for ``model``: those between its inputs and its
    outputs. A model with losses added on symbolic tensors (Keras 2's ``model.add_loss``) has
    more; Keras 3 has no place for them in a ``.keras`` file, so they (and layers used only by
    them) are left out, with a warning naming them."""
    if not getattr(model, "_loss_slots", None):
        return model._nodes, getattr(model, "operations", model.layers)
    from kaffe.engine.graph import map_graph
    nodes, operations = map_graph(model.inputs, model.outputs)
    kept = set(operations)
    dropped = [op.name for op in model.operations if op not in kept and op.count_params()]
    log.warning("Model '%s' has %d loss(es) added on symbolic tensors (add_loss): a .keras file "
                "holds the graph from the inputs to the outputs only, as Keras 3's does, so the "
                "added losses%s are not saved. The loaded model predicts the same; to train it "
                "again, build it in code and load_weights() from model.save_weights().",
                model.name, len(model._loss_slots),
                f" and the layers used only by them ({', '.join(dropped)})" if dropped else "")
    return set(nodes), operations


def functional_config(model):
    own, operations = inference_graph(model)

    def own_index(layer, node_index):
        nodes = layer._inbound_nodes[:node_index]
        return node_index - sum(1 for n in nodes if n not in own)

    def tensor_config(tensor):
        layer, node_index, tensor_index = tensor._keras_history
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(tensor.shape), "dtype": tensor.dtype,
                           "keras_history": [layer.name, own_index(layer, node_index),
                                             tensor_index]}}

    def endpoint(tensor):
        layer, node_index, tensor_index = tensor._keras_history
        return [layer.name, own_index(layer, node_index) + int(_is_functional(layer)),
                tensor_index]

    layer_configs = []
    for layer in operations:
        config = serialize_layer(layer)
        config["name"] = layer.name
        config["inbound_nodes"] = []
        for node in layer._inbound_nodes:
            if node in own and not node.is_input:
                kwargs = dict(node.call_kwargs)
                if getattr(node, "op_template", None) is not None:
                    from kaffe.engine.operation import fill
                    tensors = [tensor_config(t) for t in node.inputs]
                    args, keywords = fill(node.op_template, tensors), {}
                    if layer.spec.var_keyword in layer.spec.call_params[-1:]:
                        args, keywords = args[:-1], args[-1]  # f(x, **lengths): as Keras writes
                    if layer.spec.var_positional in layer.spec.call_params:  # f(*operands)
                        at = layer.spec.call_params.index(layer.spec.var_positional)
                        args = args[:at] + list(args[at]) + args[at + 1:]
                    config["inbound_nodes"].append({"args": _to_json_values(args),
                                                    "kwargs": _to_json_values(keywords)})
                    continue
                if getattr(node, "args_template", None) is not None:  # layer(a, b, key=c)
                    from kaffe.engine.operation import fill
                    args, extra = fill(node.args_template,
                                       [tensor_config(t) for t in node.inputs])
                    kwargs.update(extra)
                    config["inbound_nodes"].append({"args": _to_json_values(args),
                                                    "kwargs": kwargs})
                    continue
                if hasattr(layer, "_keras_node_args"):  # layers Keras calls as f(a, b, key=c)
                    args, extra = layer._keras_node_args(node.inputs)
                    args = [tensor_config(t) for t in args]
                    kwargs.update({k: tensor_config(t) for k, t in extra.items()})
                else:
                    inputs = [tensor_config(t) for t in node.inputs]
                    args = [inputs[0] if node.input_structure == "single" else inputs]
                config["inbound_nodes"].append({"args": args, "kwargs": kwargs})
        layer_configs.append(config)
    return {"name": model.name, "trainable": model.trainable, "layers": layer_configs,
            "input_layers": map_structure(endpoint, model._input_structure),
            "output_layers": map_structure(endpoint, model._output_structure)}


def map_structure(fn, structure):
    """``fn`` on each leaf of nested dicts/lists; a serialized object (a dict with a
    ``class_name``, as Keras writes a loss or metric object) is one leaf."""
    if isinstance(structure, dict) and "class_name" not in structure:
        return {k: map_structure(fn, v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [map_structure(fn, v) for v in structure]
    return fn(structure)


# ---------------------------------------------------------------------------------- reading
def model_from_json(json_string, custom_objects=None):
    """A model from ``model.to_json()`` (kaffe, Keras 3 or Keras 2), not compiled, fresh weights."""
    try:
        config = json.loads(json_string)
    except json.JSONDecodeError as error:
        raise ValueError(f"model_from_json: not valid JSON ({error}).") from error
    config.pop("compile_config", None)
    return deserialize_layer(config, custom_objects, source="the JSON string")


def deserialize_layer(config, custom_objects=None, source="the config"):
    """Build a kaffe layer or model from a Keras-style config dict. ``source`` (the file) is
    named in every error."""
    custom_objects = custom_objects or {}
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"{source}: expected a layer config with a 'class_name', "
                         f"received {str(config)[:200]}")
    class_name = config["class_name"]
    legacy = "module" not in config
    inner = config.get("config") or {}
    if class_name not in custom_objects:
        if class_name == "Sequential":
            return _sequential_from_config(inner, custom_objects, source, legacy)
        if class_name in ("Functional", "Model"):
            return _functional_from_config(inner, custom_objects, source, legacy)
    operation = _operation_class(config, custom_objects)
    if operation is not None:
        try:
            return operation.from_config(_resolve_values(inner))
        except TypeError as error:
            raise ValueError(f"{source}: cannot create op node '{inner.get('name')}' "
                             f"({class_name}) from its config: {error}") from error
    cls = _resolve_layer_class(config, custom_objects, source)
    kwargs = clean_layer_args(cls, inner, custom_objects, source)
    try:
        layer = cls.from_config(kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: cannot create layer '{inner.get('name')}' ({class_name}) "
                         f"from its config: {error}") from error
    build_config = config.get("build_config") or {}
    if hasattr(layer, "build_from_config") and "shapes_dict" in build_config:
        layer.build_from_config(build_config)
    shape = build_config.get("input_shape")
    if shape is not None and isinstance(layer, Layer) and not layer.built:
        _build(layer, _shape_from_json(shape))
    return layer


def _build(layer, shape):
    """Create the weights of a layer loaded from a config, as Keras's ``build_from_config``: a
    subclassed model (whose layers build on their first call) runs once on zeros."""
    from kaffe.engine.model import Model
    if not isinstance(layer, Model):
        layer._build_once(shape)
        return
    import torch

    def zeros(s):
        return torch.zeros([1] + [1 if d is None else d for d in s[1:]])
    with torch.no_grad():
        layer(zeros(shape) if isinstance(shape, tuple) else [zeros(s) for s in shape])


def _shape_from_json(shape):
    if shape and isinstance(shape[0], list):
        return [tuple(s) for s in shape]
    return tuple(shape)


def _operation_class(config, custom_objects):
    """The kaffe ``Operation`` class of an op node (module ``keras.src.ops.<group>``)."""
    module = str(config.get("module") or "")
    if config["class_name"] in custom_objects or not module.startswith(("keras.src.ops.",
                                                                        "keras.ops",
                                                                        "kaffe.losses")):
        return None
    from kaffe.ops import BY_CLASS
    from kaffe.ops.registry import EXTRA_CLASSES
    spec = EXTRA_CLASSES.get((module, config["class_name"])) or BY_CLASS.get(
        config["class_name"])
    if spec is None:
        name = (config.get("config") or {}).get("name")
        if config["class_name"] in _KERAS_CONTROL_FLOW:
            raise ValueError(
                f"op node '{name}' is Keras's control-flow op {config['class_name']}, saved "
                "without the Python functions it runs: Keras 3 cannot load this file either. "
                "Rebuild the model in code (a custom Layer's call() holding the control flow) "
                "and load only its weights (model.load_weights).")
        raise ValueError(f"op node '{name}' is Keras's {module}.{config['class_name']}, an op "
                         "kaffe.ops does not have. Ops kaffe has: see kaffe.ops.__all__.")
    return spec.operation_class


#: Keras 3 op classes whose configs lack the functions they call (ops.cond, ops.scan, ...).
_KERAS_CONTROL_FLOW = frozenset({"Cond", "Switch", "WhileLoop", "ForiLoop", "Scan", "Map",
                                 "AssociativeScan", "VectorizedMap"})


def _resolve_values(value):
    if isinstance(value, dict):
        if value.get("class_name") in _SPECIAL_VALUES:
            return _from_json_value(value)
        return {k: _resolve_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_values(v) for v in value]
    return value


def _resolve_layer_class(config, custom_objects, source):
    import kaffe.layers
    class_name = config["class_name"]
    for key in (class_name, config.get("registered_name")):
        if key and key in custom_objects:
            return custom_objects[key]
    if class_name == "InputLayer":
        return InputLayer
    cls = getattr(kaffe.layers, class_name, None)
    if isinstance(cls, type) and issubclass(cls, Layer):
        return cls
    name = (config.get("config") or {}).get("name")
    raise ValueError(
        f"{source}: layer '{name}' is a {class_name}, and kaffe has no layer {class_name}. "
        f"If it is a custom layer, pass its class: custom_objects={{'{class_name}': cls}}.")


def accepted_args(cls):
    """Keyword arguments ``cls(...)`` takes, following ``**kwargs`` up to ``Layer``."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        names.update(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self")
        if klass is Layer or not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def clean_layer_args(cls, config, custom_objects, source):
    """Keras's layer arguments as ``cls`` takes them: DTypePolicy to its name, nested layer configs
    built, a Lambda's function looked up by name, inert Keras 3 extras dropped; anything else
    ``cls`` does not take is an error naming it."""
    config = dict(config)
    name, class_name = config.get("name"), cls.__name__
    where = f"{source}: layer '{name}' ({class_name})"
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        if dtype.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy", None):
            raise ValueError(f"{where} uses dtype policy {dtype.get('class_name')} "
                             "(quantized weights), which kaffe cannot load.")
        config["dtype"] = (dtype.get("config") or {}).get("name", "float32")
    for key, value in config.items():
        module = str(value.get("module", "")) if isinstance(value, dict) else ""
        if module.startswith("keras.initializers"):
            inner = {k: v for k, v in (value.get("config") or {}).items()
                     if not (k in ("input_axes", "output_axes") and v is None)}
            config[key] = {**value, "config": inner}
        elif key in _LAYER_VALUED_KEYS and _looks_like_layer(value):
            config[key] = deserialize_layer(value, custom_objects, source)
        elif key in _LAYER_VALUED_KEYS and isinstance(value, list) and value \
                and all(map(_looks_like_layer, value)):
            config[key] = [deserialize_layer(v, custom_objects, source) for v in value]
    if "function" in config and not callable(config["function"]):
        config["function"] = _lambda_function(config["function"], "function", name,
                                              custom_objects, source)
    if isinstance(config.get("output_shape"), dict):
        config["output_shape"] = _lambda_function(config["output_shape"], "output_shape", name,
                                                  custom_objects, source)
    accepted = accepted_args(cls)
    unknown = {}
    for key in [k for k in config if k not in accepted]:
        value = config.pop(key)
        inert = _INERT_ARGS.get(key, ...)
        if inert is ANY or (inert is not ... and value == inert):
            continue
        if key.endswith(("_regularizer", "_constraint")) and value is None:
            continue
        unknown[key] = value
    if unknown:
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(unknown.items()))
        raise ValueError(f"{where}: kaffe's {class_name} does not take {shown}. It takes: "
                         f"{', '.join(sorted(accepted))}.")
    return config


def _looks_like_layer(value):
    return (isinstance(value, dict) and "class_name" in value
            and isinstance(value.get("config"), dict))


def _lambda_function(spec, what, layer_name, custom_objects, source):
    """The callable a Lambda's ``function`` (or ``output_shape``) names; never code from a file."""
    if isinstance(spec, (list, tuple)) or spec is None:
        return spec
    fn_name = spec
    if isinstance(spec, dict):
        if spec.get("class_name") == "__lambda__":
            if layer_name in custom_objects:
                return custom_objects[layer_name]
            raise ValueError(
                f"{source}: Lambda layer '{layer_name}' holds its {what} as Python bytecode (an "
                "anonymous lambda saved by Keras). kaffe never runs code from a file: pass the "
                f"function again with custom_objects={{'{layer_name}': fn}}.")
        is_function = spec.get("class_name") == "function"
        fn_name = spec.get("config") if is_function else spec.get("class_name")
    for key in (fn_name, layer_name):
        if key in custom_objects:
            return custom_objects[key]
    raise ValueError(
        f"{source}: Lambda layer '{layer_name}' needs its {what} '{fn_name}', which files never "
        f"hold as code. Pass it when loading: custom_objects={{'{fn_name}': {fn_name}}}.")


def _drop_explicit_masks(config):
    """Keras 3 writes masks into functional configs as explicit graph edges: an op layer such
    as ``NotEqual(ids, 0)`` feeding ``mask=`` of the next call. kaffe recomputes masks from
    the layers that make them (``Embedding(mask_zero=True)``, ``Masking``), so those ``mask``
    arguments are removed and layers used only to compute them are skipped (their names are
    returned). Works on ``config`` in place."""
    def names_in(value, found):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            found.add(value["config"]["keras_history"][0])
        elif isinstance(value, dict):
            for v in value.values():
                names_in(v, found)
        elif isinstance(value, list):
            for v in value:
                names_in(v, found)
        return found

    in_masks, elsewhere = set(), set()
    for layer_config in config.get("layers", []):
        for node in layer_config.get("inbound_nodes") or []:
            if not isinstance(node, dict):
                continue
            kwargs = node.get("kwargs") or {}
            if "mask" in kwargs:
                names_in(kwargs.pop("mask"), in_masks)
            names_in(node.get("args"), elsewhere)
            names_in(kwargs, elsewhere)
    outputs = {e[0] for e in _endpoint_list(config.get("output_layers"))}
    return in_masks - elsewhere - outputs


def _endpoint_list(structure):
    if isinstance(structure, list) and len(structure) == 3 and isinstance(structure[0], str):
        return [structure]
    if isinstance(structure, dict):
        structure = list(structure.values())
    return [e for item in structure or [] for e in _endpoint_list(item)]


def _sequential_from_config(config, custom_objects, source, legacy):
    from kaffe.engine.sequential import Sequential
    layer_configs = config if isinstance(config, list) else config.get("layers", [])
    model = Sequential(name=None if isinstance(config, list) else config.get("name"))
    for layer_config in layer_configs:
        model.add(deserialize_layer(layer_config, custom_objects, source))
    shape = None if isinstance(config, list) else config.get("build_input_shape")
    if not model.built and shape:
        model.build(tuple(shape))
    if not isinstance(config, list) and config.get("trainable") is False:
        model.trainable = False
    return model


def _functional_from_config(config, custom_objects, source, legacy):
    """Keras's algorithm: make every layer, then call each on its inputs, in the order of the
    config, deferring a call whose inputs do not exist yet (a shared layer at another depth)."""
    from kaffe.engine.functional import Functional
    created, pending = {}, []
    mask_only = _drop_explicit_masks(config)
    for layer_config in config["layers"]:
        if layer_config.get("name") in mask_only:
            continue
        layer = deserialize_layer(layer_config, custom_objects, source)
        name = layer_config.get("name") or layer.name
        created[name] = layer
        pending.append((layer, list(layer_config.get("inbound_nodes") or [])))

    def tensor(history, endpoint):
        name, node_index, tensor_index = history[0], int(history[1]), int(history[2])
        if name not in created:
            raise ValueError(f"{source}: the model config refers to a layer '{name}' it does "
                             "not define.")
        layer = created[name]
        if (legacy and _is_model(layer)) or (endpoint and not legacy and _is_functional(layer)):
            node_index -= 1
        if node_index >= len(layer._inbound_nodes):
            raise _NotReady(name)
        return layer._inbound_nodes[node_index].outputs[tensor_index]

    def resolve(value):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            return tensor(value["config"]["keras_history"], endpoint=False)
        if isinstance(value, dict) and value.get("class_name") in _SPECIAL_VALUES:
            return _from_json_value(value)
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    while any(nodes for _, nodes in pending):
        progressed = False
        for layer, nodes in pending:
            while nodes:
                try:
                    args, kwargs = _node_call(nodes[0], resolve, tensor)
                except _NotReady:
                    break
                layer(*args, **kwargs)
                nodes.pop(0)
                progressed = True
        if not progressed:
            stuck = [layer.name for layer, nodes in pending if nodes]
            raise ValueError(f"{source}: the model graph cannot be rebuilt: the inputs of layers "
                             f"{stuck} are never produced (a cycle or a missing layer).")

    def endpoints(structure):
        if isinstance(structure, list) and len(structure) == 3 and isinstance(structure[0], str):
            return tensor(structure, endpoint=True)
        return _map_structure_container(endpoints, structure)

    model = Functional(endpoints(config["input_layers"]), endpoints(config["output_layers"]),
                       name=config.get("name"))
    if config.get("trainable") is False:
        model.trainable = False
    return model


def _map_structure_container(fn, structure):
    if isinstance(structure, dict):
        return {k: fn(v) for k, v in structure.items()}
    return [fn(v) for v in structure]


def _node_call(node_data, resolve, tensor):
    """(args, kwargs) of one recorded layer call, Keras 3 or Keras 2 form."""
    if isinstance(node_data, dict):
        args = resolve(node_data.get("args", []))
        kwargs = resolve(node_data.get("kwargs", {}))
        kwargs = {k: v for k, v in kwargs.items() if not (k == "mask" and v is None)}
        return args, kwargs
    inputs, kwargs = [], {}
    for entry in node_data:  # Keras 2: [[layer_name, node_index, tensor_index, kwargs], ...]
        inputs.append(tensor(entry[:3], endpoint=False))
        if len(entry) > 3 and entry[3]:
            kwargs = dict(entry[3])
    return [inputs[0] if len(inputs) == 1 else inputs], kwargs
