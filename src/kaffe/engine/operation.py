"""Op nodes of the functional graph: what ``ops.add(h, 1)``, ``h * 2`` or ``h[:, 0]`` record.

Keras 3 records any op applied to a ``KerasTensor`` as an ``Operation`` node (class ``Add``,
``GetItem``, ``NotEqual``... of module ``keras.src.ops.numpy``). kaffe does the same: each op of
``kaffe.ops`` has an ``OpSpec`` (its torch implementation, Keras's class name, which arguments
are the call's and which the constructor's), and ``Operation`` is the node-holding object made
from it. The constructor arguments are the op's config (``Sum(axis=-1, keepdims=True)``); the
call arguments, with their constants (``2.0``, a slice key), are kept per node as a template
whose ``KerasTensor``s are numbered slots, so the functional runner fills in values and calls
the torch function: no graph walking, nothing for graphs without ops.

The output shape and dtype are found by running the torch function on ``meta``-device tensors
(two sizes for each unknown axis; axes that differ are unknown), so an op that cannot work on
the given shapes fails when the graph is built, naming the op and every input shape.
"""
import inspect

import torch

from kaffe.engine.keras_tensor import KerasTensor, Node
from kaffe.engine.naming import to_snake_case, unique_name

_TORCH_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "int8": torch.int8, "int16": torch.int16, "int32": torch.int32,
    "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool,
    "complex64": torch.complex64, "complex128": torch.complex128,
    "uint16": torch.uint16, "uint32": torch.uint32, "uint64": torch.uint64,
}


def dtype_name(dtype):
    """Keras's name of a torch dtype (``torch.float32`` -> ``'float32'``)."""
    return str(dtype).replace("torch.", "")


def torch_dtype(dtype):
    """A torch dtype from a Keras name, a numpy dtype or a torch dtype (None stays None)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    name = {"float": "float32", "int": "int64", "bool_": "bool", "double": "float64",
            "half": "float16"}.get(name, name)
    if name not in _TORCH_DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}. Expected one of {sorted(_TORCH_DTYPES)}.")
    return _TORCH_DTYPES[name]


class OpError(ValueError):
    """An op cannot work on the symbolic inputs it was given (raised when the graph is built)."""


class _Slot:
    """Place of the i-th symbolic input inside an op node's argument template."""
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


def _template(value, found):
    """``value`` with every KerasTensor replaced by a numbered ``_Slot`` (appended to ``found``)."""
    if type(value) is KerasTensor:
        found.append(value)
        return _Slot(len(found) - 1)
    if isinstance(value, (list, tuple)):
        items = [_template(v, found) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _template(v, found) for k, v in value.items()}
    return value


def fill(template, values):
    """The inverse of ``_template``: slots replaced by the matching entries of ``values``."""
    if type(template) is _Slot:
        return values[template.index]
    if isinstance(template, (list, tuple)):
        items = [fill(v, values) for v in template]
        return items if isinstance(template, list) else tuple(items)
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    return template


def contains_symbolic(values):
    for value in values:
        if type(value) is KerasTensor:
            return True
        if isinstance(value, (list, tuple)) and value and contains_symbolic(value):
            return True
        if isinstance(value, dict) and contains_symbolic(value.values()):
            return True
    return False


class OpSpec:
    """One op: its torch function ``impl``, Keras's class name and module, and which of its
    parameters are call arguments (the rest are the op's config)."""

    def __init__(self, impl, class_name, module, call, dynamic=False, name=None):
        self.impl = impl
        self.name = name or impl.__name__
        self.class_name = class_name
        self.module = module  # 'numpy', 'nn', 'math', 'image', 'linalg', 'core'
        self.signature = inspect.signature(impl)
        params = list(self.signature.parameters.values())
        if isinstance(call, int):
            call = tuple(p.name for p in params[:call])
        self.call_params = tuple(call)
        self.init_params = tuple(p.name for p in params if p.name not in self.call_params)
        self.dynamic = dynamic  # output size depends on the values (unique, nonzero)
        self._positional = [(p.name, p.kind) for p in params]
        # a ``**kwargs`` call parameter (rearrange's axes lengths): Keras files hold it as kwargs
        self.var_keyword = next((p.name for p in params
                                 if p.kind is inspect.Parameter.VAR_KEYWORD), None)
        # a ``*operands`` call parameter (einsum, meshgrid): Keras files hold its items as args
        self.var_positional = next((p.name for p in params
                                    if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
        self.operation_class = type(class_name, (Operation,), {"spec": self})

    @property
    def keras_module(self):
        """The module named in saved configs: Keras's ``keras.src.ops.<group>`` for Keras's
        ops, the kaffe module itself for kaffe's own (``kaffe.losses``)."""
        return self.module if "." in self.module else f"keras.src.ops.{self.module}"

    def invoke(self, arguments):
        """Call ``impl`` with a dict of all its arguments (call and config alike)."""
        args, kwargs = [], {}
        for name, kind in self._positional:
            if name not in arguments:
                continue
            value = arguments[name]
            if kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(value)
            elif kind is inspect.Parameter.KEYWORD_ONLY or kwargs:
                kwargs[name] = value
            else:
                args.append(value)
        return self.impl(*args, **kwargs)

    def record(self, args, kwargs):
        """The symbolic call: a new ``Operation`` node for these arguments."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"ops.{self.name}: {error}") from None
        bound.apply_defaults()
        arguments = bound.arguments
        for key in self.init_params:
            if contains_symbolic([arguments[key]]):
                raise TypeError(
                    f"ops.{self.name}: argument '{key}' received a symbolic tensor (KerasTensor), "
                    "but it takes a Python value fixed when the graph is built (Keras 3 refuses "
                    "it too). Use static sizes (x.shape, ops.shape(x)) or compute it inside a "
                    "layer's call(), where tensors have values.")
        operation = self.operation_class(**{k: arguments[k] for k in self.init_params})
        return operation.symbolic_call([arguments[k] for k in self.call_params])


class Operation:
    """A graph node's op: holds the op's config and its nodes; has no weights.

    Not a ``Layer`` (it is not listed in ``model.layers``, as in Keras 3), but speaks enough of
    a layer's language (``name``, ``get_config``, ``count_params``) for summaries and saving.
    """
    spec = None
    built = True
    trainable = True
    weights = trainable_weights = non_trainable_weights = ()
    creates_mask = False

    def __init__(self, name=None, **config):
        unknown = [k for k in config if k not in self.spec.init_params]
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected config {sorted(unknown)}; "
                            f"it takes {list(self.spec.init_params)}.")
        defaults = self.spec.signature.parameters
        self.config = {k: config.get(k, defaults[k].default) for k in self.spec.init_params
                       if k in config or defaults[k].default is not inspect.Parameter.empty}
        self.name = name or unique_name(to_snake_case(type(self).__name__))
        self._inbound_nodes = []

    def __repr__(self):
        return f"<Operation {type(self).__name__} name={self.name}>"

    def get_config(self):
        return {"name": self.name, **self.config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def count_params(self):
        return 0

    def __call__(self, *args, **kwargs):
        """Call with the op's call arguments: records a node on symbolic inputs, computes on
        tensors (``Add()(x, y)``)."""
        names = self.spec.call_params
        if self.spec.var_positional in names:  # Einsum()(a, b): the rest of args is *operands
            at = names.index(self.spec.var_positional)
            args = tuple(args[:at]) + ((tuple(args[at:]),) if len(args) > at else ())
        values = dict(zip(names, args))
        values.update(kwargs)
        if self.spec.var_keyword in names:  # loose keywords (a Keras file's kwargs) go there
            extra = {k: values.pop(k) for k in list(values) if k not in names}
            values[self.spec.var_keyword] = {**values.get(self.spec.var_keyword, {}), **extra}
        call_args = [values[n] if n in values else _default(self.spec, n) for n in names]
        if contains_symbolic(call_args):
            return self.symbolic_call(call_args)
        return self.spec.invoke({**self.config, **dict(zip(names, call_args))})

    def symbolic_call(self, call_args):
        found = []
        template = _template(list(call_args), found)
        structure, outputs = infer_outputs(self, template, found)
        node_index = len(self._inbound_nodes)
        for i, tensor in enumerate(outputs):
            tensor._keras_history = (self, node_index, i)
        node = Node(self, found, outputs, {}, "list")
        node.op_template = template
        self._inbound_nodes.append(node)
        return fill(structure, outputs)

    def run_node(self, template, values):
        """Compute one recorded node on real tensors (the functional runner's path)."""
        arguments = dict(self.config)
        arguments.update(zip(self.spec.call_params, fill(template, values)))
        return self.spec.invoke(arguments)


def _default(spec, name):
    default = spec.signature.parameters[name].default
    if default is inspect.Parameter.empty:
        raise TypeError(f"ops.{spec.name} is missing its argument '{name}'.")
    return default


class OpStep:
    """What the functional runner calls for one op node: looks like a layer to the loop."""
    _call_takes_mask = False

    def __init__(self, node):
        self.operation = node.layer
        self.name = node.layer.name
        self.template = node.op_template

    def __call__(self, values):
        return self.operation.run_node(self.template, values)

    @staticmethod
    def compute_mask(inputs, mask=None):
        return None


# ---------------------------------------------------------------------------------- shapes
_TRACE_SIZES = (2, 3)


def _fake(tensor, size):
    shape = [size if d is None else d for d in tensor.shape]
    return torch.empty(shape, dtype=torch_dtype(tensor.dtype), device="meta")


def infer_outputs(operation, template, inputs):
    """Output KerasTensors (and the structure holding them) of ``operation`` on ``inputs``."""
    spec = operation.spec
    has_unknown = any(d is None for t in inputs for d in t.shape)
    sizes = _TRACE_SIZES if has_unknown else _TRACE_SIZES[:1]
    traced = [_trace(operation, template, inputs, size) for size in sizes]
    flat = [_flatten_result(result) for result in traced]
    structure, first = flat[0]
    outputs = []
    for i, tensor in enumerate(first):
        shapes = [f[1][i].shape for f in flat]
        if spec.dynamic:
            shape = (None,) * len(shapes[0])
        else:
            shape = tuple(d if all(s[k] == d for s in shapes) else None
                          for k, d in enumerate(shapes[0]))
        outputs.append(KerasTensor(shape, dtype_name(tensor.dtype),
                                   name=f"{operation.name}_output"))
    return _rebuild(structure, outputs), outputs


def _trace(operation, template, inputs, size):
    spec = operation.spec
    fakes = [_fake(t, size) for t in inputs]
    arguments = dict(operation.config)
    try:
        with torch.no_grad():
            arguments.update(zip(spec.call_params, fill(template, fakes)))
            return spec.invoke(arguments)
    except (NotImplementedError, RuntimeError) as error:
        if spec.dynamic or _meta_unsupported(error):
            real = [torch.zeros(f.shape, dtype=f.dtype) for f in fakes]
            arguments = dict(operation.config)
            arguments.update(zip(spec.call_params, fill(template, real)))
            try:
                with torch.no_grad():
                    return spec.invoke(arguments)
            except (RuntimeError, ValueError, IndexError, TypeError) as second:
                error = second
        raise _shape_error(operation, inputs, error) from None
    except (ValueError, IndexError, TypeError) as error:
        raise _shape_error(operation, inputs, error) from None


def _meta_unsupported(error):
    text = str(error).lower()
    return "meta" in text or "data-dependent" in text or "item()" in text


def _shape_error(operation, inputs, error):
    shapes = ", ".join(str(t.shape) for t in inputs)
    message = str(error).split("\n")[0].rstrip(".")
    return OpError(f"ops.{operation.spec.name} ({operation.name}) cannot work on symbolic inputs "
                   f"of shapes {shapes}: {message}. (None is the batch axis or another unknown "
                   "size.) Check the shapes of the tensors given to this op.")


def _flatten_result(result):
    """(structure with slots, flat list of tensors) of an op's output."""
    found = []

    def visit(value):
        if isinstance(value, torch.Tensor):
            found.append(value)
            return _Slot(len(found) - 1)
        if isinstance(value, (list, tuple)):
            items = [visit(v) for v in value]
            return items if isinstance(value, list) else tuple(items)
        return value
    return visit(result), found


def _rebuild(structure, outputs):
    return fill(structure, outputs)
