"""Find the layers between a functional model's inputs and outputs, in Keras's order.

Only what is connected from the inputs to the outputs is kept (a branch that reaches no output
is left out of the model, as Keras does). The layer order follows Keras's rule (depth from the
outputs, deepest first; ties broken by first visit in a depth-first walk from the outputs), so
``model.layers`` and ``summary()`` list layers as Keras lists them.
"""
import collections


class GraphError(ValueError):
    pass


def map_graph(inputs, outputs):
    """Return ``(nodes_in_execution_order, layers_in_keras_order)``."""
    input_ids = {id(t) for t in inputs}
    finished, in_progress = set(), set()
    ordered_nodes, layer_index = [], {}

    def visit(tensor):
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if node in finished:
            return
        if id(tensor) in input_ids and not node.is_input:
            finished.add(node)  # an intermediate tensor used as a model input
            return
        if node in in_progress:
            raise GraphError(f"Layer '{layer.name}' is part of a cycle.")
        layer_index.setdefault(layer, len(layer_index))
        in_progress.add(node)
        if not node.is_input:
            for parent in node.inputs:
                visit(parent)
        finished.add(node)
        in_progress.discard(node)
        ordered_nodes.append(node)

    for tensor in outputs:
        visit(tensor)

    _check_computable(inputs, ordered_nodes)

    node_depth, layer_depth = {}, {}
    node_set = set(ordered_nodes)
    for node in reversed(ordered_nodes):
        depth = max(node_depth.setdefault(node, 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = node_depth[node] = depth
        if not node.is_input:
            for parent in node.parent_nodes:
                if parent in node_set:
                    node_depth[parent] = max(depth + 1, node_depth.get(parent, 0))
    for tensor in inputs:  # inputs no output depends on still belong to the model
        layer = tensor._keras_history[0]
        if layer not in layer_depth and tensor.node.is_input:
            layer_depth[layer], layer_index[layer] = 0, -1

    by_depth = collections.defaultdict(list)
    for layer, depth in layer_depth.items():
        by_depth[depth].append(layer)
    layers = []
    for depth in sorted(by_depth, reverse=True):
        layers.extend(sorted(by_depth[depth], key=lambda l: layer_index[l]))
    return ordered_nodes, layers


def _check_computable(inputs, nodes):
    available = {id(t) for t in inputs}
    for node in nodes:
        if node.is_input:
            for t in node.outputs:
                if id(t) not in available:
                    raise GraphError(
                        f"Graph disconnected: the model needs input '{node.layer.name}' "
                        f"(shape {t.shape}) but it is not among the model's inputs "
                        f"{[getattr(i, 'name', None) for i in inputs]}. Pass it in Model(inputs=[...]).")
            continue
        if all(id(t) in available for t in node.outputs):
            continue  # produced outside and passed in as an input
        for t in node.inputs:
            if id(t) not in available:
                raise GraphError(f"Graph disconnected: cannot compute the input of layer "
                                 f"'{node.layer.name}'.")
        available.update(id(t) for t in node.outputs)
