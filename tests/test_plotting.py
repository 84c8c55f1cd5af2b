"""``kaffe.utils``: ``plot_model`` / ``model_to_dot`` (Graphviz through pydot), ``plot_history``
(matplotlib, Agg) and ``set_random_seed``."""
import random
import shutil

import numpy as np
import pytest
import torch

import kaffe
from kaffe.layers import (LSTM, Conv2D, Dense, Dropout, Embedding, Flatten, Input, Lambda,
                          MaxPooling2D, concatenate)
from kaffe.models import Model, Sequential
from kaffe.utils import model_to_dot, plot_history, plot_model, set_random_seed
from kaffe.utils.plotting import GraphvizNotFoundError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

needs_pydot = pytest.mark.skipif(
    not __import__("importlib").util.find_spec("pydot"),
    reason="pydot is not installed (pip install pydot, or the kaffe[test] extras)")
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's `dot` program is not installed (apt-get install graphviz)")


def headline_model():
    """Seed 003's two-input, two-output model, small."""
    main_input = Input(shape=(20,), dtype="int32", name="main_input")
    x = Embedding(output_dim=8, input_dim=100)(main_input)
    lstm_out = LSTM(4)(x)
    auxiliary_output = Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    auxiliary_input = Input(shape=(5,), name="aux_input")
    x = concatenate([lstm_out, auxiliary_input])
    x = Dense(16, activation="relu")(x)
    main_output = Dense(1, activation="sigmoid", name="main_output")(x)
    return Model(inputs=[main_input, auxiliary_input], outputs=[main_output, auxiliary_output])


def graph(dot):
    """(labels by node id, edges as (source label, destination label)) of a pydot graph."""
    def nodes(g):
        found = {n.get_name(): n.get_label().strip('"') for n in g.get_nodes()
                 if n.get_name() not in ("node", "edge", "graph")}
        for sub in g.get_subgraph_list():
            found.update(nodes(sub))
        return found
    def all_edges(g):
        return g.get_edges() + [e for sub in g.get_subgraph_list() for e in all_edges(sub)]
    labels = nodes(dot)
    edges = {(labels[e.get_source()], labels[e.get_destination()]) for e in all_edges(dot)}
    return labels, edges


def name_of(label):
    return label.strip("{}").split(":")[0]


@needs_pydot
def test_dot_source_has_layer_names_shapes_and_edges():
    model = headline_model()
    dot = model_to_dot(model, show_shapes=True, show_dtype=True)
    source = dot.to_string()
    for text in ("main_input: InputLayer", "embedding: Embedding", "lstm: LSTM",
                 "concatenate: Concatenate", "main_output: Dense", "aux_output: Dense",
                 "(None, 20, 8)", "[(None, 4), (None, 5)]", "(None, 9)", "int64", "float32",
                 "rankdir=TB", "dpi=96"):
        assert text in source, text
    labels, edges = graph(dot)
    assert len(labels) == len(model.layers) == 8
    assert {(name_of(a), name_of(b)) for a, b in edges} == {
        ("main_input", "embedding"), ("embedding", "lstm"), ("lstm", "aux_output"),
        ("lstm", "concatenate"), ("aux_input", "concatenate"), ("concatenate", "dense"),
        ("dense", "main_output")}
    plain = model_to_dot(model, show_layer_names=False, rankdir="LR").to_string()
    assert "main_input" not in plain and "InputLayer" in plain and "rankdir=LR" in plain


@needs_pydot
def test_sequential_is_drawn_from_its_input_layer_and_shared_layers_once():
    seq = Sequential([Dense(8, activation="relu", input_shape=(4,), name="hidden"),
                      Dropout(0.5, name="drop"), Dense(2, name="out")])
    labels, edges = graph(model_to_dot(seq))
    assert "{{(None, 4)}|{(None, 4)}}" in model_to_dot(seq, show_shapes=True).to_string()
    names = sorted(name_of(l) for l in labels.values())
    assert names == sorted(["drop", "hidden", "out", seq._input_layer.name])
    assert {(name_of(a), name_of(b)) for a, b in edges} == {
        (seq._input_layer.name, "hidden"), ("hidden", "drop"), ("drop", "out")}
    shared = Dense(3, name="shared")
    a, b = Input((4,), name="a"), Input((4,), name="b")
    two = Model([a, b], concatenate([shared(a), shared(b)], name="joined"))
    labels, edges = graph(model_to_dot(two))
    assert sorted(name_of(l) for l in labels.values()) == ["a", "b", "joined", "shared"]
    assert {(name_of(x), name_of(y)) for x, y in edges} == {
        ("a", "shared"), ("b", "shared"), ("shared", "joined")}


@needs_pydot
def test_nested_models_as_boxes_or_expanded_clusters():
    """Seed 004's ensemble: three Sequential CNNs averaged by a Lambda."""
    def cnn(i):
        model = Sequential(name=f"cnn{i}")
        model.add(Conv2D(input_shape=(28, 28, 1), filters=4, kernel_size=(3, 3), padding="same",
                         activation="relu", name=f"conv{i}"))
        model.add(MaxPooling2D(name=f"pool{i}"))
        model.add(Flatten(name=f"flat{i}"))
        model.add(Dense(10, activation="softmax", name=f"soft{i}"))
        return model
    nets = [cnn(i) for i in range(3)]
    inputs = Input((28, 28, 1), name="image")
    outputs = Lambda(lambda d: (d[0] + d[1] + d[2]) / 3, output_shape=(10,), name="mean")(
        [net(inputs) for net in nets])
    model = Model(inputs, outputs)
    labels, edges = graph(model_to_dot(model, show_shapes=True))
    assert sorted(name_of(l) for l in labels.values()) == ["cnn0", "cnn1", "cnn2", "image", "mean"]
    assert "cnn0: Sequential" in model_to_dot(model).to_string()
    dot = model_to_dot(model, expand_nested=True)
    assert len(dot.get_subgraph_list()) == 3
    labels, edges = graph(dot)
    named = {(name_of(a), name_of(b)) for a, b in edges}
    for i, net in enumerate(nets):
        assert ("image", net._input_layer.name) in named
        assert (f"soft{i}", "mean") in named and (f"conv{i}", f"pool{i}") in named


@needs_pydot
@needs_dot
def test_plot_model_writes_png_and_svg(tmp_path):
    model = headline_model()
    png = tmp_path / "model.png"
    plot_model(model, to_file=png, show_shapes=True)
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    svg = tmp_path / "model.svg"
    plot_model(model, to_file=str(svg), show_shapes=True, rankdir="LR")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "main_input: InputLayer" in text and "(None, 20, 8)" in text


@needs_pydot
def test_plot_model_explains_how_to_install_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz") as info:
        plot_model(headline_model(), to_file=tmp_path / "m.png")
    assert isinstance(info.value, ImportError) and isinstance(info.value, RuntimeError)


def test_plot_model_explains_how_to_install_pydot(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pydot", None)
    with pytest.raises(ImportError, match="pip install pydot"):
        plot_model(headline_model(), to_file=tmp_path / "m.png")


@needs_pydot
def test_unbuilt_and_subclassed_models():
    with pytest.raises(ValueError, match="not built"):
        model_to_dot(Sequential([Dense(2)]))

    class Tiny(Model):
        def __init__(self):
            super().__init__(name="tiny")
            self.dense = Dense(2)

        def call(self, x):
            return self.dense(x)
    tiny = Tiny()
    tiny(torch.zeros(1, 3))
    labels, edges = graph(model_to_dot(tiny))
    assert list(labels.values()) == ["tiny: Tiny"] and not edges


@pytest.fixture(scope="module")
def history():
    rng = np.random.default_rng(0)
    x = rng.random((96, 6)).astype("float32")
    y = (x[:, 0] > 0.5).astype("float32").reshape(-1, 1)
    model = Sequential([Dense(8, activation="relu", input_shape=(6,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acc"])
    return model.fit(x, y, epochs=4, batch_size=32, validation_split=0.25, verbose=0)


def test_plot_history_draws_the_recorded_values(history, tmp_path):
    figure = plot_history(history, path=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_SIGNATURE
    loss_axes, acc_axes = figure.axes
    assert loss_axes.get_title() == "Training and validation loss"
    assert acc_axes.get_title() == "Training and validation accuracy"
    for axes, key in ((loss_axes, "loss"), (acc_axes, "acc")):
        training, validation = axes.get_lines()
        np.testing.assert_allclose(training.get_ydata(), history.history[key])
        np.testing.assert_allclose(validation.get_ydata(), history.history[f"val_{key}"])
        assert list(training.get_xdata()) == [1, 2, 3, 4]
        assert training.get_label().startswith("Training") and training.get_marker() == "o"
        assert validation.get_label().startswith("Validation")


def test_plot_history_metrics_names_and_paths(history, tmp_path):
    figure = plot_history(history.history, tmp_path / "emb_dense", metrics=["accuracy"])
    assert (tmp_path / "emb_dense.png").read_bytes()[:8] == PNG_SIGNATURE  # as the seed names it
    (axes,) = figure.axes
    np.testing.assert_allclose(axes.get_lines()[0].get_ydata(), history.history["acc"])
    only_training = plot_history({"loss": [3.0, 2.0, 1.5]})
    assert only_training.axes[0].get_title() == "Training loss"
    assert list(only_training.axes[0].get_lines()[0].get_ydata()) == [3.0, 2.0, 1.5]
    with pytest.raises(ValueError, match="no metric 'auc'.*'acc'"):
        plot_history(history, metrics=["auc"])


def test_set_random_seed_repeats_python_numpy_torch_and_models():
    def draw():
        model = Sequential([Dense(4, input_shape=(3,))])
        return random.random(), np.random.rand(), torch.rand(1).item(), model.get_weights()[0]
    set_random_seed(42)
    first = draw()
    set_random_seed(42)
    second = draw()
    assert first[:3] == second[:3] and np.array_equal(first[3], second[3])
    set_random_seed(43)
    assert draw()[:3] != first[:3]
    for bad in (1.5, "1", -1, 2 ** 32, True):
        with pytest.raises(ValueError, match="seed"):
            set_random_seed(bad)
    assert kaffe.utils.set_random_seed is set_random_seed
