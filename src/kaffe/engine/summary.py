"""``Model.summary()``: the table Keras prints, with the same names, shapes and counts."""


def _shape_text(shape):
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _model_nodes(layer, model):
    nodes = getattr(model, "_nodes", None) or set()
    return [node for node in layer._inbound_nodes if node in nodes]


def _layer_output_shape(layer, model):
    for node in _model_nodes(layer, model):
        shapes = [t.shape for t in node.outputs]
        return shapes[0] if len(shapes) == 1 else shapes
    return "?"


def _connections(layer, model, members):
    parts = []
    for node in _model_nodes(layer, model):
        for t in node.inputs:
            src, node_index, tensor_index = t._keras_history
            if src in members:
                parts.append(f"{src.name}[{node_index}][{tensor_index}]")
    return ", ".join(parts) or "-"


def _bytes_text(count):
    size = count * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024


def print_table(headers, rows, print_fn=print, line_length=None):
    """A boxed text table; the third column (parameter counts) is right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    if line_length:
        widths[0] = max(widths[0], line_length - sum(widths[1:]) - 3 * len(widths))
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(cells):
        return "| " + " | ".join(c.rjust(w) if i == 2 else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    print_fn(sep)
    print_fn(fmt(headers))
    print_fn(sep.replace("-", "="))
    for row in rows:
        print_fn(fmt(row))
    print_fn(sep)


def print_summary(model, line_length=None, print_fn=None, show_trainable=False):
    """Print one row per layer (name, type, output shape, parameters; and the inputs it is
    connected to for branching graphs), then the parameter totals."""
    print_fn = print_fn or print
    from kaffe.engine.sequential import Sequential
    layers = getattr(model, "operations", None) or model.layers  # op nodes too, as Keras 3
    graph_like = not isinstance(model, Sequential) and any(
        len(node.inputs) > 1 for layer in layers for node in layer._inbound_nodes)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if graph_like else [])
    rows, members = [], set(layers)
    for layer in layers:
        name = f"{layer.name} ({type(layer).__name__})"
        shape = _layer_output_shape(layer, model)
        params = layer.count_params() if layer.built else 0
        row = [name, _shape_text(shape) if shape != "?" else "?", f"{params:,}"]
        if graph_like:
            row.append(_connections(layer, model, members))
        rows.append(row)
    print_fn(f'Model: "{model.name}"')
    print_table(headers, rows, print_fn, line_length)
    if model.built:
        weights = model.weights
        total = int(sum(t.numel() for t in weights))
        trainable = int(sum(t.numel() for t in model.trainable_weights))
    else:
        total = trainable = 0
    print_fn(f" Total params: {total:,} ({_bytes_text(total)})")
    print_fn(f" Trainable params: {trainable:,} ({_bytes_text(trainable)})")
    print_fn(f" Non-trainable params: {total - trainable:,} ({_bytes_text(total - trainable)})")
