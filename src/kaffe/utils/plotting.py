"""Pictures of models and of training: ``plot_model`` / ``model_to_dot`` (Graphviz, through
``pydot``, as Keras does) and ``plot_history`` (matplotlib).

Neither ``pydot`` nor matplotlib is imported until a function here is called.
"""
import os
import shutil

INSTALL_HELP = ("Install pydot with `pip install pydot` (or `pip install 'kaffe[plot]'`) and "
                "Graphviz's `dot` program with `apt-get install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS) or `conda install graphviz`.")


class GraphvizNotFoundError(ImportError, RuntimeError):
    """Graphviz's ``dot`` program is not installed (an ``ImportError`` as in Keras, so
    ``except ImportError`` around ``plot_model`` keeps working; also a ``RuntimeError``)."""


def _import_pydot():
    try:
        import pydot
    except ImportError as error:
        raise ImportError(f"plot_model needs the pydot package, which is not installed. "
                          f"{INSTALL_HELP}") from error
    return pydot


# -- the graph --------------------------------------------------------------------------------

def _is_graph_model(layer):
    from kaffe.engine.functional import Functional
    return isinstance(layer, Functional)


def _drawn_layers(model):
    """The boxes of ``model``: a Sequential's input layer (when it has one) and its layers, or
    a functional model's layers (InputLayers included), in the model's order."""
    from kaffe.engine.sequential import Sequential
    if isinstance(model, Sequential):
        head = [model._input_layer] if model._input_layer is not None else []
        return head + model.layers
    return model.layers


def _model_nodes(layer, model):
    """The calls of ``layer`` that belong to ``model`` (a shared layer has one per use)."""
    nodes = getattr(model, "_nodes", None)
    return [node for node in layer._inbound_nodes if nodes is None or node in nodes]


def _shapes_text(tensors):
    shapes = [tuple(t.shape) for t in tensors]
    return "?" if not shapes else str(shapes[0] if len(shapes) == 1 else shapes)


def _escape(text):
    """Text safe inside a Graphviz record label (``{ } | < >`` and quotes are syntax)."""
    for char in "\\{}|<>\"":
        text = text.replace(char, "\\" + char)
    return text


def _label(layer, model, show_shapes, show_dtype, show_layer_names, show_layer_activations,
           show_trainable):
    """Keras 2's record label: ``name: Class``, then activation, dtype, shapes, trainable."""
    class_name = type(layer).__name__
    label = _escape(f"{layer.name}: {class_name}" if show_layer_names else class_name)
    activation = getattr(layer, "activation", None)
    if show_layer_activations and activation is not None:
        name = getattr(activation, "__name__", None) or getattr(activation, "name", None)
        label = "{%s|%s}" % (label, _escape(str(name or activation)))
    nodes = _model_nodes(layer, model) or [n for n in layer._inbound_nodes if n.is_input]
    if show_dtype:
        dtype = nodes[0].outputs[0].dtype if nodes and nodes[0].outputs else layer.dtype
        label = "{%s|%s}" % (label, _escape(str(dtype)))
    if show_shapes:
        if nodes:
            node = nodes[0]
            inputs = _shapes_text(node.inputs if node.inputs else node.outputs)
            outputs = _shapes_text(node.outputs)
        else:
            inputs = outputs = "?"
        label = "{%s}|{input:|output:}|{{%s}|{%s}}" % (label, _escape(inputs), _escape(outputs))
    if show_trainable:
        label = "{%s|%s}" % (label, "Trainable" if layer.trainable else "Non_trainable")
    return label


def _outlet(layer, tensor_index):
    """The drawn box that produces output ``tensor_index`` of ``layer`` (inside expanded models)."""
    while _is_graph_model(layer):
        layer, _, tensor_index = layer.outputs[tensor_index]._keras_history
    return layer


def _inlet(layer, input_index):
    """The drawn box that receives input ``input_index`` of ``layer`` (inside expanded models)."""
    from kaffe.engine.sequential import Sequential
    while _is_graph_model(layer):
        if isinstance(layer, Sequential):
            layer = layer._input_layer if layer._input_layer is not None else layer.layers[0]
        else:
            layer = layer.inputs[input_index]._keras_history[0]
    return layer


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=96, subgraph=False, show_layer_activations=False,
                 show_trainable=False):
    """``model`` as a ``pydot.Dot`` graph (a ``pydot.Cluster`` when ``subgraph``), as Keras's
    ``model_to_dot``: one record box per layer, an edge per connection between layers.

    Sequential and functional models are drawn layer by layer (a shared layer is one box with
    an edge from each of its inputs); a subclassed model, whose graph is Python code, is one box.
    Models used as layers are one box each, or a dashed cluster of their own layers with
    ``expand_nested=True``. Arguments as in ``plot_model``.
    """
    pydot = _import_pydot()
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet, so it cannot be drawn: give "
                         "the first layer an input_shape, start with an Input, or call the model "
                         "on data first.")
    if subgraph:
        dot = pydot.Cluster(graph_name=str(id(model)), style="dashed")
        dot.set("label", _escape(model.name))
        dot.set("labeljust", "l")
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set_node_defaults(shape="record")
    options = dict(show_shapes=show_shapes, show_dtype=show_dtype,
                   show_layer_names=show_layer_names,
                   show_layer_activations=show_layer_activations, show_trainable=show_trainable)
    if not _is_graph_model(model):
        dot.add_node(pydot.Node(str(id(model)), label=_label(model, model, **options)))
        return dot
    layers = _drawn_layers(model)
    for layer in layers:
        if expand_nested and _is_graph_model(layer):
            dot.add_subgraph(model_to_dot(layer, rankdir=rankdir, expand_nested=True, dpi=dpi,
                                          subgraph=True, **options))
        else:
            dot.add_node(pydot.Node(str(id(layer)), label=_label(layer, model, **options)))
    members = set(layers)
    for layer in layers:
        for node in _model_nodes(layer, model):
            for input_index, tensor in enumerate(node.inputs):
                source, _, tensor_index = tensor._keras_history
                if source not in members:
                    continue
                if expand_nested:
                    source, destination = _outlet(source, tensor_index), _inlet(layer, input_index)
                else:
                    destination = layer
                src, dst = str(id(source)), str(id(destination))
                if not dot.get_edge(src, dst):
                    dot.add_edge(pydot.Edge(src, dst))
    return dot


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir="TB", expand_nested=False, dpi=96,
               show_layer_activations=False, show_trainable=False):
    """Draw ``model`` into the image ``to_file`` with Graphviz, as ``keras.utils.plot_model``.

    Args:
        model: a built kaffe model.
        to_file: the image path; its extension picks the format Graphviz writes (``.png``,
            ``.svg``, ``.pdf``, ``.dot`` ...; none: PNG).
        show_shapes: add each layer's input and output shapes (as in the model's graph).
        show_dtype: add each layer's output dtype.
        show_layer_names: label boxes ``name: Class`` (else ``Class``); Keras 2's default True.
        rankdir: ``"TB"`` (top to bottom) or ``"LR"`` (left to right).
        expand_nested: draw models used as layers as clusters of their own layers.
        dpi: resolution of raster images (Keras 2's default 96).
        show_layer_activations: add the activation of layers that have one.
        show_trainable: add whether each layer is trainable.

    Returns:
        An ``IPython.display.Image`` of the file when IPython is installed (so a notebook cell
        shows it) and the format is not PDF, else None.

    Raises:
        ImportError: pydot is not installed; ``GraphvizNotFoundError`` (an ImportError and a
            RuntimeError): Graphviz's ``dot`` program is not. Both say how to install them.
    """
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                       show_layer_names=show_layer_names, rankdir=rankdir,
                       expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable)
    if shutil.which("dot") is None:
        raise GraphvizNotFoundError(f"plot_model needs Graphviz's `dot` program, which is not on "
                                    f"PATH. {INSTALL_HELP}")
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:].lower() or "png"
    try:
        dot.write(to_file, format=extension)
    except FileNotFoundError as error:
        raise GraphvizNotFoundError(f"Graphviz's `dot` program could not be run ({error}). "
                                    f"{INSTALL_HELP}") from error
    if extension != "pdf":
        try:
            from IPython import display
        except ImportError:
            return None
        return display.Image(filename=to_file)
    return None


# -- training curves --------------------------------------------------------------------------

_LEARNING_RATE_KEYS = ("lr", "learning_rate")
_NAMES = {"acc": "accuracy", "accuracy": "accuracy", "loss": "loss"}


def _metric_key(logs, name):
    if name in logs:
        return name
    for a, b in (("acc", "accuracy"), ("accuracy", "acc")):
        if name == a and b in logs:
            return b
    raise ValueError(f"plot_history has no metric {name!r} in the history; it holds "
                     f"{sorted(logs)}.")


def plot_history(history, path=None, metrics=None):
    """Training curves drawn as the seeds draw them: one panel per metric, training values as
    dots (``'bo'``) and validation values (``val_<metric>``, when recorded) as a line
    (``'b'``), against epochs 1, 2, ...

    Args:
        history: the ``History`` returned by ``fit`` (or its ``.history`` dict).
        path: where to save the figure as an image; a path without extension gets ``.png``.
        metrics: names to draw (``'loss'``, ``'accuracy'`` / ``'acc'`` ...); default: every
            recorded training metric except the learning rate.

    Returns:
        The ``matplotlib.figure.Figure``, drawn with the Agg backend (no window opens and the
        pyplot state is untouched; in a notebook, displaying the returned figure shows it).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    logs = history.history if hasattr(history, "history") else dict(history)
    if metrics is None:
        metrics = [k for k in logs if not k.startswith("val_") and k not in _LEARNING_RATE_KEYS]
    elif isinstance(metrics, str):
        metrics = [metrics]
    keys = [_metric_key(logs, name) for name in metrics]
    if not keys or not any(len(logs[k]) for k in keys):
        raise ValueError(f"plot_history found nothing to draw: the history holds {sorted(logs)} "
                         f"with {max((len(v) for v in logs.values()), default=0)} epoch(s).")
    figure = Figure(figsize=(6 * len(keys), 4.5))
    FigureCanvasAgg(figure)
    for axes, key in zip(figure.subplots(1, len(keys), squeeze=False)[0], keys):
        name = _NAMES.get(key, key)
        values = [float(v) for v in logs[key]]
        axes.plot(range(1, len(values) + 1), values, "bo", label=f"Training {name}")
        validation = logs.get(f"val_{key}")
        if validation:
            validation = [float(v) for v in validation]
            axes.plot(range(1, len(validation) + 1), validation, "b", label=f"Validation {name}")
        axes.set_title(f"Training and validation {name}" if validation else f"Training {name}")
        axes.set_xlabel("Epochs")
        axes.set_ylabel(name)
        axes.legend()
    figure.tight_layout()
    if path is not None:
        figure.savefig(os.fspath(path))
    return figure
