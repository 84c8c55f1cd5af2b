"""``caffe.draw`` and ``kaffe draw_net``: the graph Caffe's draw.py makes, rendered by graphviz.

The dot source is parsed back with pydot (not kaffe) and checked against the prototxt: one node
per included layer, one per blob, an edge per bottom and per top; the PNG is decoded by Pillow.
"""
import io
import os
import shutil

import pytest

from kaffe.caffe import draw
from kaffe.caffe.prototxt import parse_net_param, read_net_param
from kaffe.cli.main import main

pydot = pytest.importorskip("pydot")
LENET = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "mnist",
                     "lenet_train_test.prototxt")
needs_lenet = pytest.mark.skipif(not os.path.exists(LENET), reason="reference/mnist not found")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz 'dot' not installed")


def _graph(source):
    (graph,) = pydot.graph_from_dot_data(source.decode() if isinstance(source, bytes) else source)
    return graph


def _phase_layers(net, phase):
    """The layers a phase keeps, read straight from the include/exclude rules."""
    if phase is None:
        return list(net.layer)
    return [layer for layer in net.layer
            if (not layer.include or phase in {r.phase for r in layer.include})
            and phase not in {r.phase for r in layer.exclude}]


@needs_lenet
@pytest.mark.parametrize("phase", ["TRAIN", "TEST", None])
def test_dot_source_has_a_node_per_layer_and_blob(phase):
    net = read_net_param(LENET)
    number = None if phase is None else {"TRAIN": 0, "TEST": 1}[phase]
    layers = _phase_layers(net, number)
    graph = _graph(draw.draw_net(net, "LR", "dot", phase=phase))
    names = [n.get_name().strip('"') for n in graph.get_nodes()]
    blobs = {b for layer in layers for b in list(layer.bottom) + list(layer.top)}
    layer_nodes = {f"{layer.name}_{layer.type}" for layer in layers}
    assert len(names) == len(set(names)) == len(blobs) + len(layer_nodes)
    assert blobs <= set(names)
    for layer in layers:
        assert any(n.startswith(f"{layer.name}\\n({layer.type}") for n in names), layer.name
    assert len(graph.get_edges()) == sum(len(layer.bottom) + len(layer.top) for layer in layers)
    assert ("accuracy" in names) == (phase != "TRAIN")
    conv1 = [n for n in names if n.startswith("conv1\\n")][0]
    assert conv1 == "conv1\\n(Convolution)\\nkernel size: 5\\nstride: 1\\npad: 0"
    pool = [n for n in names if n.startswith("pool1\\n")][0]
    assert pool.startswith("pool1\\n(Pooling MAX)\\nkernel size: 2\\nstride: 2")
    labels = {(e.get_source().strip('"'), e.get_destination().strip('"')): e.get_label()
              for e in graph.get_edges()}
    assert labels[(conv1, "conv1")] == "20"
    relu = [n for n in names if n.startswith("relu1\\n")][0]
    assert (relu, "ip1") in labels and ("ip1", relu) in labels  # in-place: both directions


def test_names_with_slashes_and_vertical_labels():
    net = parse_net_param('name: "g" layer { name: "inception_3a/1x1" type: "Input" '
                              'top: "inception_3a/1x1" input_param { shape { dim: 1 } } }')
    graph = _graph(draw.draw_net(net, "TB", "dot", display_lrm=True))
    names = {n.get_name().strip('"') for n in graph.get_nodes()}
    assert names == {"inception_3a/1x1 (Input)", "inception_3a/1x1"}
    assert graph.get_rankdir() == "TB"


@needs_lenet
@needs_dot
def test_png_file_and_command_line(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    out = tmp_path / "lenet.png"
    draw.draw_net_to_file(read_net_param(LENET), str(out), rankdir="LR", phase=1)
    with Image.open(io.BytesIO(out.read_bytes())) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 20  # LR: wide
    cli_out = tmp_path / "cli.png"
    assert main(["draw_net", LENET, str(cli_out), "--rankdir", "TB", "--phase", "TRAIN"]) == 0
    with Image.open(io.BytesIO(cli_out.read_bytes())) as image:
        assert image.format == "PNG" and image.size[1] > image.size[0]  # TB: tall
    dot_out = tmp_path / "lenet.dot"
    assert main(["draw_net", LENET, str(dot_out), "--phase", "test"]) == 0
    assert "accuracy" in dot_out.read_text()


def test_command_reports_a_bad_prototxt(tmp_path, capsys):
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer { name: "x" type: "Input" top: "x" input_param { shape { dim: } } }')
    assert main(["draw_net", str(bad), str(tmp_path / "o.png")]) == 1
    assert "bad.prototxt" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()
