"""kaffe.caffe schema and files against files written by real BVLC Caffe (shared/reference).

Oracles: every .caffemodel / .binaryproto / .solverstate real Caffe wrote parses with no unknown
field and gives pycaffe's arrays (layers/*.npz); Caffe's own upgrade outputs (upgrade/) equal
kaffe's, byte for byte; Caffe's error logs (errors/) name the same line.
"""
import glob
import os
import re
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import unknown_fields

import kaffe.caffe as caffe
from kaffe.caffe import blobs, prototxt, upgrade
from kaffe.caffe.proto import caffe_pb2
from kaffe.cli.main import main


def _find_reference():
    if os.environ.get("KAFFE_CAFFE_REFERENCE"):
        return Path(os.environ["KAFFE_CAFFE_REFERENCE"])
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "reference" / "README.md").is_file():
            return parent / "shared" / "reference"
    return None


REF = _find_reference()
needs_reference = pytest.mark.skipif(REF is None, reason="shared/reference (files made by real "
                                     "Caffe) not found next to the repo")


def ref(*parts):
    return str(REF.joinpath(*parts))


def ref_bytes(*parts):
    return REF.joinpath(*parts).read_bytes()


def ref_text(*parts):
    return REF.joinpath(*parts).read_text()


def ref_files(pattern):
    return sorted(glob.glob(os.path.join(str(REF), pattern), recursive=True)) if REF else []


def assert_no_unknown_fields(msg, where):
    """Every field in the file is one our schema knows (a wrong number would land here)."""
    assert len(unknown_fields.UnknownFieldSet(msg)) == 0, where
    for field, value in msg.ListFields():
        if field.message_type is not None:
            for item in (value if field.is_repeated else [value]):
                assert_no_unknown_fields(item, f"{where}.{field.name}")


# ------------------------------------------------------------------------------ binaries

BINARY = ref_files("**/*.caffemodel") + ref_files("**/*.solverstate") + \
    ref_files("**/*.binaryproto")


@needs_reference
@pytest.mark.parametrize("path", [p for p in BINARY if "errors" not in p],
                         ids=lambda p: os.path.relpath(p, str(REF)))
def test_every_binary_file_parses_with_no_unknown_field(path):
    kind = {".caffemodel": caffe_pb2.NetParameter, ".solverstate": caffe_pb2.SolverState,
            ".binaryproto": caffe_pb2.BlobProto}[os.path.splitext(path)[1]]
    data = Path(path).read_bytes()
    msg = kind.FromString(data)
    assert_no_unknown_fields(msg, os.path.basename(path))
    assert msg.SerializeToString() == data  # same bytes as Caffe wrote
    if kind is caffe_pb2.NetParameter:
        weights = caffe.load_caffemodel(path)
        raw = caffe.read_caffemodel(path, upgrade=False, raw_blobs=True)
        assert raw.SerializeToString() == data
        with_blobs = [layer for layer in caffe.read_caffemodel(path).layer if layer.blobs]
        assert list(weights) == [layer.name for layer in with_blobs]
        for layer in with_blobs:
            for array, blob in zip(weights[layer.name], layer.blobs):
                values = blob.double_data if len(blob.double_data) else blob.data
                np.testing.assert_array_equal(array.reshape(-1), np.array(values, array.dtype))
    elif kind is caffe_pb2.SolverState:
        state = caffe.load_solverstate(path)
        assert state.iter == msg.iter > 0 and state.learned_net.endswith(".caffemodel")
        assert len(state.history) == len(msg.history) > 0
    else:
        assert caffe.load_blobproto(path).ndim == 4


LENET_SHAPES = {"conv1": [(20, 1, 5, 5), (20,)], "conv2": [(50, 20, 5, 5), (50,)],
                "ip1": [(500, 800), (500,)], "ip2": [(10, 500), (10,)]}


@needs_reference
def test_lenet_weights_have_lenets_shapes_and_round_trip_bit_exact(tmp_path):
    weights = caffe.load_caffemodel(ref("mnist", "lenet_iter_200.caffemodel"))
    assert {k: [a.shape for a in v] for k, v in weights.items()} == LENET_SHAPES
    assert all(a.dtype == np.float32 for v in weights.values() for a in v)
    assert sum(a.size for v in weights.values() for a in v) == 431080  # zoo/lenet_net.json
    out = tmp_path / "copy.caffemodel"
    caffe.save_caffemodel(out, weights)
    again = caffe.load_caffemodel(out)
    assert list(again) == list(weights)
    for name in weights:
        for a, b in zip(weights[name], again[name]):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    # With the net, the file is Caffe's own: same bytes as the snapshot.
    net = caffe.read_caffemodel(ref("mnist", "lenet_iter_200.caffemodel"))
    caffe.save_caffemodel(out, weights, net=net)
    assert out.read_bytes() == ref_bytes("mnist", "lenet_iter_200.caffemodel")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@needs_reference
def test_layer_oracle_weights_equal_pycaffes_arrays():
    checked = 0
    for path in ref_files("layers/*.caffemodel"):
        oracle = np.load(path[:-len(".caffemodel")] + ".npz")
        expected = {k: oracle[k] for k in oracle.files if k.startswith("param__")}
        weights = caffe.load_caffemodel(path)
        got = {f"param__{name}__{i}": a for name, arrays in weights.items()
               for i, a in enumerate(arrays)}
        assert sorted(got) == sorted(expected), path
        for key, array in expected.items():
            assert got[key].shape == array.shape and np.array_equal(got[key], array), (path, key)
            checked += 1
    assert checked > 40


@needs_reference
def test_binaryproto_means_and_pycaffe_blobproto(tmp_path):
    mean = caffe.load_blobproto(ref("images", "mean.binaryproto"))
    assert mean.shape == (1, 3, 64, 64)
    np.testing.assert_array_equal(mean, np.load(ref("images", "mean.npy")))
    assert caffe.load_blobproto(ref("images", "mean_gray.binaryproto")).shape == (1, 1, 64, 64)
    # pycaffe's array_to_blobproto wrote this file: kaffe writes the same bytes.
    array = np.load(ref("pycaffe_io", "blobproto_array.npy"))
    np.testing.assert_array_equal(caffe.load_blobproto(ref("pycaffe_io",
                                                           "blobproto_4d.binaryproto")), array)
    caffe.save_blobproto(tmp_path / "b.binaryproto", array)
    assert (tmp_path / "b.binaryproto").read_bytes() == \
        ref_bytes("pycaffe_io", "blobproto_4d.binaryproto")
    caffe.save_blobproto(tmp_path / "legacy.binaryproto", mean[0, 0], legacy=True)
    blob = caffe_pb2.BlobProto.FromString((tmp_path / "legacy.binaryproto").read_bytes())
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 1, 64, 64)


@needs_reference
def test_datum_records_parse():
    datum = caffe_pb2.Datum.FromString(ref_bytes("pycaffe_io", "datum_uint8_label7.bin"))
    array = np.load(ref("pycaffe_io", "datum_uint8_array.npy"))
    assert (datum.channels, datum.height, datum.width, datum.label) == array.shape + (7,)
    np.testing.assert_array_equal(np.frombuffer(datum.data, np.uint8).reshape(array.shape), array)
    datum = caffe_pb2.Datum.FromString(ref_bytes("pycaffe_io", "datum_float_label3.bin"))
    array = np.load(ref("pycaffe_io", "datum_float_array.npy"))
    assert datum.label == 3 and not datum.data
    np.testing.assert_array_equal(np.array(datum.float_data, np.float32).reshape(array.shape),
                                  array.astype(np.float32))


@needs_reference
def test_solverstate_history_matches_the_nets_parameters(tmp_path):
    state = caffe.load_solverstate(ref("mnist", "lenet_iter_200.solverstate"))
    assert (state.iter, state.current_step, state.learned_net) == \
        (200, 0, "lenet_iter_200.caffemodel")
    assert [h.shape for h in state.history] == [s for v in LENET_SHAPES.values() for s in v]
    out = tmp_path / "s.solverstate"
    caffe.save_solverstate(out, state)
    assert out.read_bytes() == ref_bytes("mnist", "lenet_iter_200.solverstate")


@needs_reference
def test_hdf5_snapshots_equal_the_binary_ones(tmp_path):
    h5_dir = ("solvers", "sgd_step_hdf5")
    h5 = caffe.load_caffemodel(ref(*h5_dir, "sgd_step_hdf5_iter_10.caffemodel.h5"))
    binary = caffe.load_caffemodel(ref("solvers", "sgd_step", "sgd_step_iter_10.caffemodel"))
    assert sorted(h5) == sorted(binary)
    for name in binary:
        for a, b in zip(h5[name], binary[name]):
            np.testing.assert_array_equal(a, b)
    state = caffe.load_solverstate(ref(*h5_dir, "sgd_step_hdf5_iter_10.solverstate.h5"))
    other = caffe.load_solverstate(ref("solvers", "sgd_step", "sgd_step_iter_10.solverstate"))
    assert (state.iter, state.current_step) == (other.iter, other.current_step) == (10, 3)
    for a, b in zip(state.history, other.history):
        np.testing.assert_array_equal(a, b)
    caffe.save_caffemodel(tmp_path / "w.caffemodel.h5", binary)
    caffe.save_solverstate(tmp_path / "s.solverstate.h5", state)
    again = caffe.load_caffemodel(tmp_path / "w.caffemodel.h5")
    assert all(np.array_equal(a, b) for n in binary for a, b in zip(again[n], binary[n]))
    assert caffe.load_solverstate(tmp_path / "s.solverstate.h5").learned_net == state.learned_net


def test_blob_dtypes_shapes_and_legacy_fit():
    for array in (np.arange(6, dtype=np.float32).reshape(2, 3), np.linspace(0, 1, 5),
                  np.float32(3.5) * np.ones(())):
        blob = caffe.array_to_blob(array)
        back = caffe.blob_to_array(caffe_pb2.BlobProto.FromString(blob.SerializeToString()))
        assert back.dtype == (np.float64 if array.dtype == np.float64 else np.float32)
        assert back.shape == array.shape and np.array_equal(back, array)
    legacy = caffe_pb2.BlobProto(num=1, channels=1, height=1, width=3, data=[1, 2, 3])
    assert caffe.blob_to_array(legacy).shape == (1, 1, 1, 3)
    assert caffe.fit_blob_shape(caffe.blob_to_array(legacy), (3,)).shape == (3,)
    with pytest.raises(ValueError, match=r"\(1, 1, 1, 3\).*\(4,\)"):
        caffe.fit_blob_shape(caffe.blob_to_array(legacy), (4,))
    with pytest.raises(caffe.CaffeFormatError, match="needs 6 values, the file holds 5"):
        caffe.blob_to_array(caffe_pb2.BlobProto(shape={"dim": [2, 3]}, data=[0] * 5))
    with pytest.raises(ValueError, match="dtype <U1"):
        caffe.array_to_blob(np.array(["a"]))


def test_save_caffemodel_with_a_net_names_missing_layers(tmp_path):
    net = caffe.parse_net_param('layer { name: "ip" type: "InnerProduct" }')
    with pytest.raises(ValueError, match="'nope'"):
        caffe.save_caffemodel(tmp_path / "w.caffemodel", {"nope": [np.zeros(2)]}, net=net)
    caffe.save_caffemodel(tmp_path / "w.caffemodel", {"ip": [np.ones((2, 3), np.float32)]}, net=net)
    written = caffe.read_caffemodel(tmp_path / "w.caffemodel")
    layer = written.layer[0]
    assert layer.type == "InnerProduct" and list(layer.blobs[0].shape.dim) == [2, 3]


# ------------------------------------------------------------------------------ prototxt

PROTOTXTS = ref_files("**/*.prototxt")


@needs_reference
@pytest.mark.parametrize("path", [p for p in PROTOTXTS if os.path.basename(p) not in
                                  ("syntax_error.prototxt", "unknown_field.prototxt")],
                         ids=lambda p: os.path.relpath(p, str(REF)))
def test_every_reference_prototxt_parses_or_upgrades(path):
    try:
        raw = prototxt.read_net_param(path, upgrade=False)
    except caffe.PrototxtError:
        solver = caffe.read_solver_param(path)
        assert not caffe.solver_needs_upgrade(solver)
        assert caffe.parse_solver_param(prototxt.format_prototxt(solver), upgrade=False) == solver
        return
    net = caffe.read_net_param(path)
    assert not net.layers and not net.input
    # Upgrading is idempotent (BatchNorm with three param {} still "needs" it, as in Caffe).
    assert caffe.upgrade_net(net) == net
    assert len(net.layer) >= len(raw.layer) + len(raw.layers) - \
        sum(1 for v1 in raw.layers if v1.layer.type == "padding")
    # Caffe's text layout reads back to the same message.
    assert caffe.parse_net_param(prototxt.format_prototxt(net), upgrade=False) == net


@needs_reference
def test_solvers_read_like_caffe_train(tmp_path, monkeypatch):
    solver = caffe.read_solver_param(ref("mnist", "lenet_solver.prototxt"))
    assert (solver.type, solver.lr_policy, solver.max_iter) == ("SGD", "inv", 200)
    assert solver.base_lr == pytest.approx(0.01)
    assert solver.solver_mode == caffe_pb2.SolverParameter.CPU and solver.random_seed == 1701
    assert solver.snapshot_prefix == "lenet"
    # Caffe's snapshot_prefix rule: unset -> the solver path without extension; a directory ->
    # that directory / the solver's stem.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snaps").mkdir()
    (tmp_path / "a.prototxt").write_text('base_lr: 0.1 solver_type: ADAM')
    (tmp_path / "b.prototxt").write_text('base_lr: 0.1 snapshot_prefix: "snaps"')
    a = caffe.read_solver_param("a.prototxt")
    assert (a.type, a.snapshot_prefix, a.HasField("solver_type")) == ("Adam", "a", False)
    assert caffe.read_solver_param("b.prototxt").snapshot_prefix == os.path.join("snaps", "b")


# ------------------------------------------------------------------------------- upgrades

@needs_reference
@pytest.mark.parametrize("name", ["lenet_v1_train_test", "deploy_v1_input_dim", "tiny_v0"])
def test_net_upgrade_equals_caffes(name):
    old = prototxt.read_net_param(ref("upgrade", f"{name}.prototxt"), upgrade=False)
    assert caffe.net_needs_upgrade(old)
    problems = []
    new = caffe.upgrade_net(old, name, problems)
    expected = prototxt.read_net_param(ref("upgrade", f"{name}.upgraded.prototxt"), upgrade=False)
    assert new == expected and problems == []
    assert prototxt.format_prototxt(new) == ref_text("upgrade", f"{name}.upgraded.prototxt")
    assert caffe.read_net_param(ref("upgrade", f"{name}.prototxt")) == expected
    assert old.layers  # the input is left alone


@needs_reference
@pytest.mark.parametrize("name", ["solver_v1_nesterov", "solver_v1_adagrad", "solver_v1_adam"])
def test_solver_upgrade_equals_caffes(name):
    old = prototxt.read_prototxt(ref("upgrade", f"{name}.prototxt"), caffe_pb2.SolverParameter())
    assert caffe.solver_needs_upgrade(old)
    new = caffe.upgrade_solver(old)
    assert prototxt.format_prototxt(new) == ref_text("upgrade", f"{name}.upgraded.prototxt")


@needs_reference
def test_v1_caffemodel_upgrade_equals_caffes_and_loads_like_the_v2_snapshot():
    expected = ref_bytes("upgrade", "lenet_v1_iter_200.upgraded.caffemodel")
    upgraded = caffe.read_caffemodel(ref("upgrade", "lenet_v1_iter_200.caffemodel"))
    assert upgraded == caffe_pb2.NetParameter.FromString(expected)
    assert upgraded.SerializeToString() == expected
    assert caffe.read_caffemodel(ref("upgrade", "lenet_v1_iter_200.caffemodel"),
                                 raw_blobs=True).SerializeToString() == expected
    v1 = caffe.load_caffemodel(ref("upgrade", "lenet_v1_iter_200.caffemodel"))
    v2 = caffe.load_caffemodel(ref("mnist", "lenet_iter_200.caffemodel"))
    assert v1["conv1"][1].shape == (1, 1, 1, 20)  # legacy dims, as Caffe keeps them
    for name, arrays in v2.items():
        for old, new in zip(v1[name], arrays):
            np.testing.assert_array_equal(caffe.fit_blob_shape(old, new.shape), new)


# The seed's chapter-1 V1 nets (its `//` notes written as prototxt `#` comments).
SEED_LOGREG = """
name: "LogisticRegressionNet"
layers {
    top: "data"         # data
    top: "label"
    name: "data"
    type: HDF5_DATA
    hdf5_data_param {
        source: "examples/hdf5_classification/data/train.txt"
        batch_size: 10
    }
    include {
        phase: TRAIN
    }
}
layers {
    bottom: "data"
    top: "fc1"
    name: "fc1"
    type: INNER_PRODUCT  # fully connected
    blobs_lr: 1     # w learning rate
    blobs_lr: 2     # b learning rate
    weight_decay: 1 # regularisation of w
    weight_decay: 0 # ... of b
    inner_product_param {
        num_output: 2
        weight_filler {
            type: "gaussian"
            std: 0.01
        }
        bias_filler {
            type: "constant"
            value: 0
        }
    }
}
layers {
    bottom: "fc1"
    bottom: "label"
    top: "loss"
    name: "loss"
    type: SOFTMAX_LOSS
}
"""

SEED_FINETUNE = """
layers {
    name: "fc8_oxford102"
    type: INNER_PRODUCT
    bottom: "fc7"
    top: "fc8_oxford102"
    blobs_lr:10
    blobs_lr:20
    weight_decay:1
    weight_decay:0
    inner_product_param {
        num_output:102
        weight_filler {
            type: "gaussian"
            std: 0.01
        }
        bias_filler {
            type: "constant"
            value: 0
        }
    }
}
layers {
    name: "loss"
    type: SOFTMAX_LOSS
    bottom: "fc8_oxford102"
    bottom: "label"
}
"""


def test_seed_v1_logistic_regression_net_upgrades():
    net = caffe.parse_net_param(SEED_LOGREG)
    assert [(l.name, l.type) for l in net.layer] == \
        [("data", "HDF5Data"), ("fc1", "InnerProduct"), ("loss", "SoftmaxWithLoss")]
    fc1 = net.layer[1]
    assert [(p.lr_mult, p.decay_mult) for p in fc1.param] == [(1, 1), (2, 0)]
    assert fc1.inner_product_param.num_output == 2
    assert fc1.inner_product_param.weight_filler.std == pytest.approx(0.01)
    assert net.layer[0].include[0].phase == caffe_pb2.TRAIN
    assert net.layer[0].hdf5_data_param.batch_size == 10
    text = prototxt.format_prototxt(net)
    assert "layers {" not in text and "blobs_lr" not in text
    assert "param {\n    lr_mult: 2\n    decay_mult: 0\n  }" in text


def test_seed_v1_finetuning_layer_upgrades():
    net = caffe.parse_net_param(SEED_FINETUNE)
    fc8 = net.layer[0]
    assert (fc8.name, fc8.type, list(fc8.bottom), list(fc8.top)) == \
        ("fc8_oxford102", "InnerProduct", ["fc7"], ["fc8_oxford102"])
    assert [(p.lr_mult, p.decay_mult) for p in fc8.param] == [(10, 1), (20, 0)]
    assert fc8.inner_product_param.num_output == 102
    assert net.layer[1].type == "SoftmaxWithLoss"


def test_seed_notes_with_slash_comments_get_a_hint():
    with pytest.raises(caffe.PrototxtError, match="'#', not '//'") as info:
        caffe.parse_net_param('layers {\n  type: INNER_PRODUCT  //全连接层\n}\n',
                              path="seed.prototxt")
    assert (info.value.line, info.value.column) == (2, 24)


def test_upgrade_rules_without_a_reference_file():
    # blob_share_mode and param names become ParamSpec.
    net = caffe.parse_net_param('layers { name: "c" type: CONVOLUTION param: "w" '
                                'blob_share_mode: PERMISSIVE blobs_lr: 3 loss_weight: 2 }')
    spec = net.layer[0].param[0]
    assert (spec.name, spec.share_mode, spec.lr_mult, spec.decay_mult) == \
        ("w", caffe_pb2.ParamSpec.PERMISSIVE, 3, 1)
    assert list(net.layer[0].loss_weight) == [2]
    # One nested V0 `layer {}` makes the whole net V0: V1 fields beside it are dropped, as Caffe.
    net = caffe.parse_net_param('layers { name: "c" type: CONVOLUTION blobs_lr: 3 } '
                                'layers { layer { name: "old" type: "relu" } }')
    assert [(l.name, l.type, len(l.param)) for l in net.layer] == [("", "", 0), ("old", "ReLU", 0)]
    # Data transformation fields move; data layers without them still get transform_param.
    net = caffe.parse_net_param(
        'layers { name: "a" type: DATA data_param { source: "x" mean_file: "m" mirror: true } }'
        'layers { name: "b" type: IMAGE_DATA }')
    a, b = net.layer
    assert (a.transform_param.mean_file, a.transform_param.mirror) == ("m", True)
    assert not a.data_param.HasField("mean_file") and b.HasField("transform_param")
    # input_shape (not input_dim) inputs; several inputs; the Input layer comes first.
    net = caffe.parse_net_param('input: "a" input: "b" input_shape { dim: 1 dim: 2 } '
                                'input_shape { dim: 3 } layer { name: "r" type: "ReLU" }')
    assert [l.name for l in net.layer] == ["input", "r"] and list(net.layer[0].top) == ["a", "b"]
    assert [list(s.dim) for s in net.layer[0].input_param.shape] == [[1, 2], [3]]
    # A weights file's bare `input` names are just dropped.
    net = caffe.parse_net_param('input: "data" layer { name: "r" }')
    assert [l.name for l in net.layer] == ["r"] and not net.input
    # Old BatchNorm nets declared three param {}: Caffe fixes them to lr 0.
    net = caffe.parse_net_param('layer { type: "BatchNorm" param { lr_mult: 1 } param {} '
                                'param {} }')
    assert [(p.lr_mult, p.decay_mult) for p in net.layer[0].param] == [(0, 0)] * 3
    # V0 conv/pool fields land in their params; meaningless ones are reported, not fatal.
    problems = []
    net = caffe.upgrade_net(caffe.parse_net_param(
        'input: "d" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4 '
        'layers { layer { name: "p" type: "pool" pool: AVE kernelsize: 2 stride: 2 group: 2 } '
        'bottom: "d" top: "p" }', upgrade=False), problems=problems)
    pool = net.layer[1].pooling_param
    assert (pool.pool, pool.kernel_size, pool.stride) == (caffe_pb2.PoolingParameter.AVE, 2, 2)
    assert len(problems) == 1 and "group" in problems[0]


@pytest.mark.parametrize("text, match", [
    ('layers { layer { name: "x" type: "nosuch" } }', "unknown V0 layer type 'nosuch'"),
    ('input: "d" layers { layer { name: "p" type: "padding" pad: 1 } bottom: "d" top: "p" } '
     'layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }', "conv or pool"),
    ('layers { layer { name: "c" type: "conv" } bottom: "nowhere" top: "c" }', "'nowhere'"),
    ('layer { name: "a" } layers { name: "b" type: RELU }', "both `layer {}`"),
    ('input: "a" input_dim: 1 input_dim: 2', "need 4 input_dim values"),
])
def test_upgrades_caffe_refuses_raise(text, match):
    net = caffe.parse_net_param(text, upgrade=False)
    with pytest.raises(caffe.UpgradeError, match=match):
        caffe.upgrade_net(net, "bad.prototxt")


def test_solver_with_both_type_fields_is_refused():
    solver = caffe.parse_solver_param('type: "SGD" solver_type: ADAM', upgrade=False)
    with pytest.raises(caffe.UpgradeError, match="keep only type"):
        caffe.upgrade_solver(solver)


# ------------------------------------------------------------------------------- errors

@needs_reference
def test_syntax_error_names_file_line_and_column_like_caffe():
    path = ref("errors", "syntax_error.prototxt")
    with pytest.raises(caffe.PrototxtError) as info:
        caffe.read_net_param(path)
    err = info.value
    caffe_says = re.search(r"NetParameter: (\d+):(\d+):", ref_text("errors", "syntax_error.log"))
    caffe_line, caffe_col = map(int, caffe_says.groups())
    assert err.line == caffe_line == 4
    # Caffe points just past the bad value, kaffe at it.
    source = Path(path).read_text().splitlines()[err.line - 1]
    assert source[err.column - 1:].startswith("maybe") and err.column < caffe_col
    assert str(err).startswith(f"{path}:4:{err.column}:") and "bias_term" in str(err)
    assert isinstance(err, ValueError) and err.path == path


@needs_reference
def test_unknown_field_is_named_with_a_suggestion():
    with pytest.raises(caffe.PrototxtError) as info:
        caffe.read_net_param(ref("errors", "unknown_field.prototxt"))
    log_text = ref_text("errors", "unknown_field.log")
    assert 'has no field named "num_outputs"' in log_text and info.value.line == 3
    assert '"num_outputs"' in str(info.value) and "did you mean num_output" in str(info.value)


def test_v1_habits_in_a_current_layer_get_the_fix():
    with pytest.raises(caffe.PrototxtError, match=r'write type: "InnerProduct"'):
        caffe.parse_net_param('layer { name: "fc" type: INNER_PRODUCT }')
    with pytest.raises(caffe.PrototxtError, match="lr_mult"):
        caffe.parse_net_param('layer { name: "fc" blobs_lr: 1 }')
    with pytest.raises(caffe.PrototxtError, match="multiple"):
        caffe.parse_net_param('name: "a" name: "b"')
    with pytest.raises(caffe.PrototxtError, match="not UTF-8"):
        caffe.parse_net_param(b'name: "\xff"')


@needs_reference
def test_truncated_caffemodel_is_a_kaffe_error_naming_the_file():
    path = ref("errors", "truncated_lenet.caffemodel")
    assert "Failed to parse NetParameter file" in ref_text("errors", "truncated_caffemodel.log")
    expected = re.escape(path) + ".*truncated or corrupt"
    for reader in (caffe.load_caffemodel, caffe.read_caffemodel):
        with pytest.raises(caffe.CaffeFormatError, match=expected):
            reader(path)


def test_missing_and_text_files_name_the_problem(tmp_path):
    with pytest.raises(caffe.CaffeFormatError, match="cannot open"):
        caffe.load_caffemodel(tmp_path / "none.caffemodel")
    text = tmp_path / "net.caffemodel"
    text.write_text('name: "x"\nlayer { name: "a" type: "ReLU" }\n')
    with pytest.raises(caffe.CaffeFormatError, match="looks like text"):
        caffe.load_caffemodel(text)


# ---------------------------------------------------------------------------------- CLI

@needs_reference
def test_cli_upgrade_commands_write_files_that_parse(tmp_path, capsys):
    def run(tool, *source, out):
        return main([tool, ref(*source), str(out)])

    out = tmp_path / "net.prototxt"
    assert run("upgrade_net_proto_text", "upgrade", "lenet_v1_train_test.prototxt", out=out) == 0
    assert out.read_bytes() == ref_bytes("upgrade", "lenet_v1_train_test.upgraded.prototxt")
    assert not caffe.net_needs_upgrade(caffe.read_net_param(out, upgrade=False))
    out = tmp_path / "solver.prototxt"
    assert run("upgrade_solver_proto_text", "upgrade", "solver_v1_nesterov.prototxt", out=out) == 0
    assert caffe.read_solver_param(out, upgrade=False).type == "Nesterov"
    out = tmp_path / "w.caffemodel"
    assert run("upgrade_net_proto_binary", "upgrade", "lenet_v1_iter_200.caffemodel", out=out) == 0
    assert out.read_bytes() == ref_bytes("upgrade", "lenet_v1_iter_200.upgraded.caffemodel")
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    # Already current: written unchanged, status 0, with a note.
    out = tmp_path / "same.prototxt"
    assert run("upgrade_net_proto_text", "mnist", "lenet_train_test.prototxt", out=out) == 0
    assert "already in the latest format" in capsys.readouterr().err
    assert caffe.read_net_param(out) == \
        caffe.read_net_param(ref("mnist", "lenet_train_test.prototxt"))
    # Unreadable input: status 2, the error names file:line:column, nothing written.
    bad = tmp_path / "bad.prototxt"
    assert run("upgrade_net_proto_text", "errors", "syntax_error.prototxt", out=bad) == 2
    assert "syntax_error.prototxt:4:50" in capsys.readouterr().err and not bad.exists()
    assert run("upgrade_net_proto_binary", "errors", "truncated_lenet.caffemodel", out=bad) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["net.prototxt", "same.prototxt", "solver.prototxt", "w.caffemodel"]


def test_cli_reports_upgrade_problems_with_status_1(tmp_path):
    src = tmp_path / "v0.prototxt"
    src.write_text('layers { layer { name: "r" type: "relu" num_output: 3 } }')
    assert main(["upgrade_net_proto_text", str(src), str(tmp_path / "out.prototxt")]) == 1
    assert caffe.read_net_param(tmp_path / "out.prototxt").layer[0].type == "ReLU"
