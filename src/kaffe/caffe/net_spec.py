"""pycaffe's NetSpec: nets written as Python code, serialised to a ``NetParameter``.

    from kaffe.caffe import layers as L, params as P
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[64, 1, 28, 28]), dict(dim=[64])], ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20)
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.loss = L.SoftmaxWithLoss(L.InnerProduct(n.pool1, num_output=10), n.label)
    print(n.to_proto())       # the prototxt text

``L.<Type>(*bottoms, **fields)`` makes a layer of that Caffe type: each keyword goes into the
type's own ``<type>_param`` message when that message has the field (``kernel_size`` ->
``convolution_param.kernel_size``), otherwise into the ``LayerParameter`` itself (``loss_weight``,
``include``, ``param``); a keyword ending in ``param`` always goes to the ``LayerParameter``.
Dicts become messages, lists repeated fields (a lone value in a repeated field becomes a list of
one), and ``ntop`` / ``in_place`` are NetSpec's own. ``P.<Type>.<CONSTANT>`` reads an enum value of
``<Type>Parameter`` (``P.Pooling.MAX``).

Naming is pycaffe's, so the prototxt equals what pycaffe writes for the same code: tops assigned
to a ``NetSpec`` take the attribute name, a layer takes the name of its first top (or, for a
layer with no tops, the name it was assigned), and everything unnamed is called ``<Type><k>``
with ``k`` counting per type in the order the layers are serialised. An ``in_place`` layer writes
its tops over its bottoms.
"""
import collections

from kaffe.caffe.proto import caffe_pb2

__all__ = ["NetSpec", "Top", "Function", "Layers", "Parameters", "layers", "params",
           "to_proto", "assign_proto", "param_name_dict"]


def param_name_dict():
    """``{'Convolution': 'convolution', ...}``: each ``<X>Parameter`` message of
    ``LayerParameter`` -> the stem of its ``<x>_param`` field."""
    out = {}
    for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param") and field.message_type is not None:
            out[field.message_type.name[:-len("Parameter")]] = field.name[:-len("_param")]
    return out


_PARAM_NAMES = param_name_dict()


def _is_repeated(proto, name):
    return hasattr(getattr(proto, name), "extend")


def assign_proto(proto, name, value):
    """Set field ``name`` of the message ``proto`` from a Python value: a dict fills a message
    (recursively), a list a repeated field (a tuple too) (a list of dicts adds one message per
    dict); a single value in a repeated field is a list of one. An unknown field raises
    ``AttributeError`` before anything is written."""
    repeated = _is_repeated(proto, name)
    if repeated:
        value = list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, list):
        target = getattr(proto, name)
        if value and isinstance(value[0], dict):
            for item in value:
                message = target.add()
                for key, sub in item.items():
                    assign_proto(message, key, sub)
        else:
            target.extend(value)
    elif isinstance(value, dict):
        message = getattr(proto, name)
        for key, sub in value.items():
            assign_proto(message, key, sub)
    else:
        setattr(proto, name, value)


class Top:
    """One output blob of a layer: output ``n`` of the :class:`Function` ``fn``."""

    def __init__(self, fn, n):
        self.fn = fn
        self.n = n

    def to_proto(self):
        """The ``NetParameter`` of every layer this top needs."""
        return to_proto(self)

    def _to_proto(self, layers, names, autonames):
        return self.fn._to_proto(layers, names, autonames)

    def __repr__(self):
        return f"<Top {self.n} of {self.fn.type_name}>"


class Function:
    """One layer: its Caffe ``type_name``, its ``inputs`` (Tops) and its ``params`` (the
    keyword arguments, ``ntop`` and ``in_place`` taken out)."""

    def __init__(self, type_name, inputs, params):
        self.type_name = type_name
        for index, value in enumerate(inputs):
            if not isinstance(value, Top):
                raise TypeError(f"{type_name} input {index} is not a Top (type is "
                                f"{type(value)})")
        self.inputs = inputs
        self.params = params
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _auto_name(self, key, autonames):
        autonames[self.type_name] += 1
        return f"{self.type_name}{autonames[self.type_name]}"

    def _top_name(self, top, names, autonames):
        if top not in names:
            names[top] = top.fn._auto_name(top, autonames)
        return names[top]

    def _layer_name(self, names, autonames):
        if self not in names:
            names[self] = (self._top_name(self.tops[0], names, autonames) if self.ntop > 0
                           else self._auto_name(self, autonames))
        return names[self]

    def _to_proto(self, layers, names, autonames):
        if self in layers:
            return
        bottoms = []
        for value in self.inputs:
            value._to_proto(layers, names, autonames)
            bottoms.append(layers[value.fn].top[value.n])
        layer = caffe_pb2.LayerParameter()
        layer.type = self.type_name
        layer.bottom.extend(bottoms)
        if self.in_place:
            layer.top.extend(layer.bottom)
        else:
            layer.top.extend(self._top_name(top, names, autonames) for top in self.tops)
        layer.name = self._layer_name(names, autonames)
        for key, value in self.params.items():
            self._assign(layer, key, value)
        layers[self] = layer

    def _assign(self, layer, key, value):
        """``key`` into this type's ``<x>_param`` if it has that field, else into the layer."""
        if not key.endswith("param") and self.type_name in _PARAM_NAMES:
            own = getattr(layer, _PARAM_NAMES[self.type_name] + "_param")
            if key in own.DESCRIPTOR.fields_by_name:
                assign_proto(own, key, value)
                return
        if key not in layer.DESCRIPTOR.fields_by_name:
            raise AttributeError(
                f"{self.type_name} layer: unknown field {key!r}; it is neither a field of "
                f"LayerParameter nor of {self.type_name}Parameter.")
        assign_proto(layer, key, value)

    def __repr__(self):
        return f"<Function {self.type_name}>"


def to_proto(*tops):
    """The ``NetParameter`` holding every layer needed to compute ``tops`` (names made up)."""
    layers = collections.OrderedDict()
    autonames = collections.Counter()
    for top in tops:
        top.fn._to_proto(layers, {}, autonames)
    net = caffe_pb2.NetParameter()
    net.layer.extend(layers.values())
    return net


class NetSpec:
    """Named tops: assign ``n.name = L.Type(...)`` (or ``n['name'] = ...``); :meth:`to_proto`
    writes every layer the assigned tops need, named after the attributes."""

    def __init__(self):
        super().__setattr__("tops", collections.OrderedDict())

    def __setattr__(self, name, value):
        self.tops[name] = value

    def __getattr__(self, name):
        if name == "tops" or name.startswith("__"):   # copy/pickle probe an unset instance
            raise AttributeError(name)
        try:
            return self.tops[name]
        except KeyError:
            raise AttributeError(f"NetSpec has no top named {name!r}; assigned: "
                                 f"{', '.join(self.tops) or 'none'}.") from None

    def __setitem__(self, key, value):
        self.__setattr__(key, value)

    def __getitem__(self, item):
        try:
            return self.tops[item]
        except KeyError:   # pycaffe: n['x'] raises KeyError, n.x AttributeError here
            raise KeyError(f"NetSpec has no top named {item!r}; assigned: "
                           f"{', '.join(self.tops) or 'none'}.") from None

    def to_proto(self):
        names = {value: key for key, value in self.tops.items()}
        autonames = collections.Counter()
        layers = collections.OrderedDict()
        for top in self.tops.values():
            top._to_proto(layers, names, autonames)
        net = caffe_pb2.NetParameter()
        net.layer.extend(layers.values())
        return net


class Layers:
    """``L.<Type>(*bottoms, **fields)``: a :class:`Top`, a tuple of them (``ntop`` > 1) or, for
    ``ntop=0``, the :class:`Function` itself."""

    def __getattr__(self, type_name):
        if type_name.startswith("__"):
            raise AttributeError(type_name)

        def layer(*bottoms, **fields):
            fn = Function(type_name, bottoms, fields)
            if fn.ntop == 0:
                return fn
            return fn.tops[0] if fn.ntop == 1 else fn.tops
        layer.__name__ = type_name
        return layer


class _EnumValues:
    def __init__(self, type_name):
        self._type_name = type_name

    def __getattr__(self, constant):
        if constant.startswith("__"):
            raise AttributeError(constant)
        message = getattr(caffe_pb2, self._type_name + "Parameter", None)
        if message is None:
            raise AttributeError(f"caffe.params.{self._type_name}: Caffe has no message "
                                 f"{self._type_name}Parameter.")
        try:
            return getattr(message, constant)
        except AttributeError:
            raise AttributeError(f"caffe.params.{self._type_name}.{constant}: "
                                 f"{self._type_name}Parameter has no value {constant!r}.") \
                from None


class Parameters:
    """``P.<Type>.<CONSTANT>``: the enum value ``<Type>Parameter.<CONSTANT>``
    (``P.Pooling.MAX``)."""

    def __getattr__(self, type_name):
        if type_name.startswith("__"):
            raise AttributeError(type_name)
        return _EnumValues(type_name)


layers = Layers()
params = Parameters()
