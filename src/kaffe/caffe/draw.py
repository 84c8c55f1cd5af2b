"""pycaffe's ``caffe.draw``: a Caffe net drawn as a graphviz graph (through ``pydot``).

The graph is Caffe's: one record node per layer (labelled with its name and type, plus kernel
size, stride and pad for Convolution, Deconvolution and Pooling; green for in-place layers,
coloured by type otherwise), one box node per blob, an edge from each bottom blob to its layer
and from the layer to each top (labelled with ``num_output`` or a Data layer's batch size).
``phase`` keeps the layers whose include/exclude rules admit that phase (None: every layer).

``draw_net_to_file(net_param, "net.png", rankdir="LR", phase=None)`` writes the image (format
from the extension; ``.dot`` / ``.raw`` give the graphviz source); ``draw_net(...)`` returns
the bytes. Rendering needs graphviz's ``dot`` program.
"""
import os

from kaffe.caffe.proto import caffe_pb2
from kaffe.caffe.prototxt import write_bytes_atomically

LAYER_STYLE = {"shape": "record", "style": "filled"}
NEURON_LAYER_STYLE = {"shape": "record", "fillcolor": "#90EE90", "style": "filled"}
BLOB_STYLE = {"shape": "octagon", "fillcolor": "#E0E0E0", "style": "filled"}
LAYER_COLORS = {"Convolution": "#FF5050", "Deconvolution": "#FF5050", "Pooling": "#FF9900",
                "InnerProduct": "#CC33FF"}
DEFAULT_LAYER_COLOR = "#6495ED"
SOURCE_FORMATS = ("dot", "raw", "gv")


def _pydot():
    try:
        import pydot
    except ImportError:
        raise ImportError("Drawing a Caffe net needs pydot (pip install pydot) and graphviz's "
                          "'dot' program.") from None
    return pydot


def _net_param(net):
    """A ``NetParameter`` from a message or a prototxt path (old formats upgraded)."""
    if isinstance(net, caffe_pb2.NetParameter):
        return net
    from kaffe.caffe.prototxt import read_net_param
    return read_net_param(os.fspath(net))


def _phase(phase):
    if phase is None or (isinstance(phase, str) and phase.upper() == "ALL"):
        return None
    if isinstance(phase, str) and phase.upper() in ("TRAIN", "TEST"):
        return caffe_pb2.TRAIN if phase.upper() == "TRAIN" else caffe_pb2.TEST
    if phase in (caffe_pb2.TRAIN, caffe_pb2.TEST):
        return int(phase)
    raise ValueError(f"phase must be caffe.TRAIN, caffe.TEST or None (all layers); received "
                     f"{phase!r}.")


def included(layer, phase):
    """Whether ``layer`` is drawn for ``phase``, by its include/exclude phase rules alone (as
    pycaffe's draw does; stages and levels are not looked at)."""
    if phase is None:
        return True
    if layer.include and layer.exclude:
        raise ValueError(f"Layer '{layer.name}' has both include and exclude rules; give only "
                         f"one kind.")
    keep = not layer.include or any(rule.phase == phase for rule in layer.include)
    return keep and not any(rule.phase == phase for rule in layer.exclude)


def _spatial(layer):
    """(kernel, stride, pad) as Caffe's drawing shows them."""
    if layer.type == "Pooling":
        p = layer.pooling_param
        kernel = p.kernel_h if p.HasField("kernel_h") else p.kernel_size
        stride = p.stride_h if p.HasField("stride_h") else p.stride
        pad = p.pad_h if p.HasField("pad_h") else p.pad
        return kernel, stride, pad
    p = layer.convolution_param
    kernel = p.kernel_h if p.HasField("kernel_h") else (p.kernel_size[0] if p.kernel_size else 1)
    stride = p.stride_h if p.HasField("stride_h") else (p.stride[0] if p.stride else 1)
    pad = p.pad_h if p.HasField("pad_h") else (p.pad[0] if p.pad else 0)
    return kernel, stride, pad


def _lr_mults(layer):
    mults = [spec.lr_mult if spec.HasField("lr_mult") else 1.0 for spec in layer.param[:2]]
    return (mults + [1.0, 1.0])[:2]


def layer_label(layer, rankdir, display_lrm=False):
    """The node label: name, (type), spatial settings, optionally the lr multipliers; words
    separated by spaces in vertical layouts and by line breaks in horizontal ones."""
    separator = " " if rankdir in ("TB", "BT") else r"\n"
    words = [layer.name]
    if layer.type == "Pooling":
        method = caffe_pb2.PoolingParameter.PoolMethod.Name(layer.pooling_param.pool)
        words.append(f"({layer.type} {method})")
    else:
        words.append(f"({layer.type})")
    if layer.type in ("Convolution", "Deconvolution", "Pooling"):
        kernel, stride, pad = _spatial(layer)
        words.append(separator.join([f"kernel size: {kernel}", f"stride: {stride}",
                                     f"pad: {pad}"]))
    if display_lrm and layer.type in ("Convolution", "Deconvolution", "InnerProduct"):
        lrm0, lrm1 = _lr_mults(layer)
        if lrm0 or lrm1:
            words.append(f"lr mult: {lrm0:.1f}, {lrm1:.1f}")
    return '"' + separator.join(words) + '"'


def edge_label(layer):
    """The label of a layer's edges to its tops: output count or batch size."""
    if layer.type == "Data":
        return f"Batch {layer.data_param.batch_size}"
    if layer.type in ("Convolution", "Deconvolution"):
        return str(layer.convolution_param.num_output)
    if layer.type == "InnerProduct":
        return str(layer.inner_product_param.num_output)
    return '""'


def get_pydot_graph(net, rankdir="LR", label_edges=True, phase=None, display_lrm=False):
    """The ``pydot.Dot`` graph of ``net`` (a ``NetParameter`` or a prototxt path)."""
    pydot = _pydot()
    net, phase = _net_param(net), _phase(phase)
    graph = pydot.Dot(net.name or "Net", graph_type="digraph", rankdir=rankdir)
    nodes, edges = {}, []
    for layer in net.layer:
        if not included(layer, phase):
            continue
        key = f"{layer.name}_{layer.type}"
        in_place = len(layer.bottom) == 1 and list(layer.bottom) == list(layer.top)
        style = NEURON_LAYER_STYLE if in_place else dict(
            LAYER_STYLE, fillcolor=LAYER_COLORS.get(layer.type, DEFAULT_LAYER_COLOR))
        nodes[key] = pydot.Node(layer_label(layer, rankdir, display_lrm), **style)
        for blob in layer.bottom:
            nodes[blob + "_blob"] = pydot.Node(_quoted(blob), **BLOB_STYLE)
            edges.append((blob + "_blob", key, '""'))
        for blob in layer.top:
            nodes[blob + "_blob"] = pydot.Node(_quoted(blob), **BLOB_STYLE)
            edges.append((key, blob + "_blob", edge_label(layer) if label_edges else '""'))
    for node in nodes.values():
        graph.add_node(node)
    for src, dst, label in edges:
        graph.add_edge(pydot.Edge(nodes[src], nodes[dst], label=label))
    return graph


def _quoted(name):
    return '"' + name.replace('"', r'\"') + '"'


def draw_net(net, rankdir="LR", ext="png", phase=None, display_lrm=False):
    """The drawing of ``net`` as bytes in graphviz format ``ext`` (``dot``/``raw``: source)."""
    graph = get_pydot_graph(net, rankdir, phase=phase, display_lrm=display_lrm)
    if ext in SOURCE_FORMATS:
        return graph.to_string().encode("utf-8")
    try:
        return graph.create(format=ext)
    except FileNotFoundError:
        raise RuntimeError("graphviz's 'dot' program was not found; install graphviz (e.g. "
                           "apt-get install graphviz) to render images, or draw to a .dot "
                           "file.") from None


def draw_net_to_file(net, filename, rankdir="LR", phase=None, display_lrm=False):
    """Draw ``net`` into ``filename`` in the format its extension names (written atomically)."""
    filename = os.fspath(filename)
    ext = filename[filename.rfind(".") + 1:] if "." in os.path.basename(filename) else "png"
    write_bytes_atomically(filename, draw_net(net, rankdir, ext, phase, display_lrm))
