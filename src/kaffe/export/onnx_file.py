"""Write one ``nn.Module`` as an ONNX file, checked, never half-written.

The graph comes from ``torch.export`` (non-strict) and PyTorch's ONNX exporter (the "dynamo"
path, opset :data:`OPSET`). Chosen over the TorchScript exporter after trying both on LeNet,
GoogLeNet and a two-input/two-output Keras model: the graphs are 2.5-4x smaller (LeNet 10
nodes against 24: no ``Shape -> Gather -> Concat`` chain per flatten; GoogLeNet 172 against
671), and the batch dimension is a real symbol, so a layer that fixes it raises here instead of
being baked into the file as a constant that is wrong at another batch size. The price is a
slower export (seconds, not a fraction of one).

While tracing, hooks follow which layer is running and the first layer whose output lost the
symbolic batch size, so every failure names a layer. The file is written to a temporary name
in the target folder, checked with ``onnx.checker.check_model(full_check=True)`` and only then
renamed over ``path``.
"""
import contextlib
import os
import tempfile
import warnings

import torch

OPSET = 18
"""ONNX opset of every exported file (ONNX Runtime >= 1.14 runs it)."""


class OnnxExportError(ValueError):
    """A model, layer or shape that cannot be written as ONNX; nothing was written."""


def require_onnx():
    """Import ``onnx`` (the ``onnx`` extra), or say how to install it."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as error:
        raise OnnxExportError(
            f"ONNX export needs the 'onnx' and 'onnxscript' packages ({error}). Install them "
            "with: pip install 'kaffe[onnx]'") from None


class LayerTracker:
    """Forward hooks on named layers: which one is running now, and the first whose output
    has a fixed batch size although its input's was symbolic (the one that pins the batch)."""

    def __init__(self, layers):
        self.stack, self.pinned, self._handles = [], None, []
        for label, module in layers:
            self._handles.append(module.register_forward_pre_hook(self._enter(label)))
            self._handles.append(module.register_forward_hook(self._leave(label)))

    def _enter(self, label):
        def hook(module, args):
            self.stack.append(label)
        return hook

    def _leave(self, label):
        def hook(module, args, output):
            if self.stack and self.stack[-1] == label:
                self.stack.pop()
            if self.pinned is None and _symbolic_batch(args) and not _symbolic_batch(output):
                self.pinned = label
        return hook

    @property
    def current(self):
        return self.stack[-1] if self.stack else None

    def close(self):
        for handle in self._handles:
            handle.remove()


def _tensors(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _symbolic_batch(value):
    """True when any tensor in ``value`` has a symbolic (``SymInt``) leading dimension."""
    return any(t.dim() and isinstance(t.shape[0], torch.SymInt) for t in _tensors(value))


def batch_dim():
    """The symbolic batch size shared by every input."""
    return torch.export.Dim("batch", min=1, max=2 ** 20)


def export_program(module, example_args, layers, dynamic_shapes, what):
    """``torch.export`` of ``module`` (whose ``forward`` takes ``*inputs``) on ``example_args``;
    ``dynamic_shapes`` gives each argument its symbolic axes (``{axis: Dim}``; None for a fixed
    shape, or None for all). Failures become :class:`OnnxExportError` naming the layer.
    ``layers``: ``(label, module)`` pairs to follow."""
    dynamic_batch = bool(dynamic_shapes) and any(dynamic_shapes)
    tracker = LayerTracker(layers)
    try:
        with warnings.catch_warnings(), _quiet_exporter():
            warnings.simplefilter("ignore")
            return torch.export.export(module, tuple(example_args),
                                       dynamic_shapes=(tuple(dynamic_shapes),)
                                       if dynamic_batch else None, strict=False)
    except Exception as error:  # noqa: BLE001 - every exporter failure is re-raised, named
        raise OnnxExportError(_explain(error, tracker, what, dynamic_batch)) from error
    finally:
        tracker.close()


def _explain(error, tracker, what, dynamic_batch):
    text = _first_lines(str(error))
    batch_words = ("batch", "Constraints violated", "specialized", "guard")
    if dynamic_batch and tracker.pinned and any(w in str(error) for w in batch_words):
        return (f"Cannot export {what} with a dynamic batch size: layer {tracker.pinned} fixes "
                f"the batch dimension (its output has a constant batch size). Export with a "
                f"fixed batch instead (dynamic_batch=False / --static-batch), or change that "
                f"layer. Exporter said: {text}")
    if tracker.current:
        return (f"Cannot export {what}: layer {tracker.current} does not trace to an ONNX "
                f"graph ({type(error).__name__}: {text}). Its forward must use torch operations "
                f"only (no numpy, .item() or Python branches on tensor values).")
    return f"Cannot export {what}: {type(error).__name__}: {text}"


def _root_cause(error):
    """The innermost exporter message ("No ONNX function found for aten.sort...")."""
    for line in str(error).splitlines():
        if "No ONNX function found" in line or "DispatchError" in line:
            return _first_lines(line.split(">:", 1)[-1])
    return f"{type(error).__name__}: {_first_lines(str(error))}"


def _first_lines(text, limit=400):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    out = " ".join(lines[:3])
    return out if len(out) <= limit else out[:limit] + "..."


def module_labels(root, layers):
    """``{qualified module name in root: label}`` for the ``(label, module)`` pairs."""
    ids = {id(module): label for label, module in layers}
    return {name: ids[id(m)] for name, m in root.named_modules() if id(m) in ids}


def _failing_layer(error, program, labels):
    """The layer whose graph node the ONNX translation failed on (torch names the node in the
    message as ``%name``), from the node's ``nn_module_stack``; None when unknown."""
    text = "\n".join(str(e) for e in _chain(error))
    nodes = {node.name: node for node in program.graph_module.graph.nodes}
    for word in text.replace("(", " ").replace(")", " ").split():
        node = nodes.get(word.lstrip("%").rstrip(":,")) if word.startswith("%") else None
        stack = node.meta.get("nn_module_stack") if node is not None else None
        if stack:
            for path, _ in reversed(list(stack.values())):
                path = path.replace("L['self'].", "").replace("L__self___", "")
                if path in labels:
                    return labels[path]
    return None


def _chain(error):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def write_onnx(program, path, input_names, output_names, what, labels=None):
    """Translate ``program`` (an ``ExportedProgram``) to ONNX at opset :data:`OPSET`, check it,
    and move it to ``path`` (a temporary file until it passed the checker). ``labels`` (from
    :func:`module_labels`) lets a translation failure name its layer."""
    import onnx
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OnnxExportError(f"Cannot write '{path}': folder '{folder}' does not exist.")
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        try:
            onnx_program = _translate(program)
        except Exception as error:  # noqa: BLE001
            layer = _failing_layer(error, program, labels or {})
            reason = _root_cause(error)
            raise OnnxExportError(
                f"Cannot translate {what} to ONNX opset {OPSET}: "
                + (f"layer {layer} uses an operation with no ONNX translation ({reason})."
                   if layer else reason)) from error
    proto = onnx_program.model_proto
    proto.producer_name = "kaffe"
    _rename_values(proto.graph, [v.name for v in proto.graph.input], list(input_names))
    _rename_values(proto.graph, [v.name for v in proto.graph.output], list(output_names))
    _name_batch_axis(proto)
    fd, tmp = tempfile.mkstemp(prefix=".kaffe-export-", suffix=".onnx", dir=folder)
    os.close(fd)
    try:
        try:
            onnx.save_model(proto, tmp)
        except ValueError as error:
            raise OnnxExportError(f"Cannot write {what} as one ONNX file: {error} (ONNX files "
                                  "hold at most 2 GB of weights).") from error
        try:
            onnx.checker.check_model(tmp, full_check=True)
        except onnx.checker.ValidationError as error:
            raise OnnxExportError(f"The ONNX graph of {what} fails onnx.checker: "
                                  f"{_first_lines(str(error))}") from error
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


_REGISTRY = []


def _rename_values(graph, old_names, new_names):
    """Give graph inputs/outputs the user's names. The exporter names inner values after the
    ops that make them (``conv2d_2``...), which can equal a layer name wanted for an output:
    such an inner value is renamed out of the way first."""
    mapping = {old: new for old, new in zip(old_names, new_names) if old != new}
    if not mapping:
        return
    taken = {n for node in graph.node for n in list(node.input) + list(node.output)}
    taken |= {v.name for v in list(graph.input) + list(graph.output) + list(graph.initializer)}
    for new in mapping.values():
        if new in taken and new not in mapping:
            spare, i = f"{new}__inner", 0
            while spare in taken:
                i += 1
                spare = f"{new}__inner{i}"
            _replace_name(graph, new, spare)
            taken.add(spare)
    for old, new in mapping.items():
        _replace_name(graph, old, new)


def _replace_name(graph, old, new):
    for node in graph.node:
        for field in (node.input, node.output):
            for i, name in enumerate(field):
                if name == old:
                    field[i] = new
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new
    for init in graph.initializer:
        if init.name == old:
            init.name = new


def _translate(program):
    """``torch.onnx.export(program, dynamo=True)``, reusing one table of ONNX translations:
    the public call rebuilds it on every export (2-4 s of parsing onnxscript sources). Falls back
    to the public call where torch's internal exporter module differs from the one this knows."""
    try:
        from torch.onnx._internal.exporter import _core, _registration
        if not _REGISTRY:
            _REGISTRY.append(_registration.ONNXRegistry().from_torchlib(opset_version=OPSET))
        return _core.export(program, registry=_REGISTRY[0], optimize=True,
                            opset_version=OPSET)
    except (ImportError, AttributeError, TypeError):
        return torch.onnx.export(program, (), opset_version=OPSET, dynamo=True,
                                 external_data=False, verbose=False)


def _name_batch_axis(proto):
    """Call the symbol of the first input's axis 0 (``s0``, ``s21``... from torch.export)
    ``batch`` everywhere in the graph's signature and value infos."""
    graph = proto.graph
    if not graph.input or not graph.input[0].type.tensor_type.shape.dim:
        return
    symbol = graph.input[0].type.tensor_type.shape.dim[0].dim_param
    if not symbol:
        return
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == symbol:
                dim.dim_param = "batch"


@contextlib.contextmanager
def _quiet_exporter():
    """torch.onnx prints its progress on stdout and notes about torchvision ops through
    logging; neither concerns the user unless it fails (then the error says what failed)."""
    import io
    import logging
    buffer = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export",
                                              "torch.fx", "torch._dynamo")]
    levels = [l.level for l in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def unique_names(names):
    """ONNX needs distinct value names: a repeated name gets ``_1``, ``_2``... appended."""
    seen, out = {}, []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out
