"""Caffe layers against real Caffe's forward and backward (reference/layers/, see its README).

A tiny runner (not the Net class): the case's non-Input layers run in sequence, each top is
compared with Caffe's ``data__<top>``; then Caffe's top diffs (loss tops: their loss weight) are
back-propagated and the input and parameter gradients compared with ``diff__*`` / ``paramdiff__*``.
"""
import json
import os

import numpy as np
import pytest
import torch

import kaffe.caffe.builders  # noqa: F401  (registers the builders)
from kaffe.caffe.blobs import load_caffemodel
from kaffe.caffe.builders.registry import LAYER_BUILDERS
from kaffe.caffe.prototxt import read_net_param

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "layers")
REF = os.environ.get("KAFFE_CAFFE_LAYER_REF", REF)

MINE = {
    # elementwise.py
    "ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "AbsVal", "BNLL", "Power", "Exp", "Log",
    "Threshold", "Clip", "Swish", "Dropout", "Softmax",
    # structure.py
    "Eltwise", "Concat", "Slice", "Split", "Flatten", "Reshape", "Crop", "Tile", "ArgMax",
    "Embed", "Silence", "Reduction", "MVN",
    # losses.py
    "SoftmaxWithLoss", "SigmoidCrossEntropyLoss", "EuclideanLoss", "HingeLoss",
    "ContrastiveLoss", "InfogainLoss", "MultinomialLogisticLoss", "Accuracy",
    # extra.py
    "Im2col", "SPP", "BatchReindex", "Filter",
}
FORWARD_ONLY = {"ArgMax", "Accuracy", "Threshold"}
DATA_SHAPED = {"Filter"}   # top shape known only once the selector's values are
RTOL, ATOL = 1e-4, 1e-5


def _cases():
    path = os.path.join(REF, "index.json")
    if not os.path.exists(path):
        return []
    out = []
    for case in json.load(open(path)):
        net = read_net_param(os.path.join(REF, case["name"] + ".prototxt"))
        types = {layer.type for layer in net.layer if layer.type != "Input"}
        if types & MINE:
            out.append(pytest.param(case, id=case["name"]))
    return out


CASES = _cases()


def _loss_weight(layer, top_index):
    if len(layer.loss_weight) > top_index:
        return layer.loss_weight[top_index]
    return 1.0 if layer.type.endswith("Loss") and top_index == 0 else 0.0


def _close(name, got, want):
    got = got.detach().numpy()
    assert got.shape == tuple(want.shape), f"{name}: shape {got.shape} != Caffe's {want.shape}"
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.skipif(not CASES, reason="reference/layers/ not found")
@pytest.mark.parametrize("case", CASES)
def test_layer_against_caffe(case):
    name = case["name"]
    net = read_net_param(os.path.join(REF, name + ".prototxt"))
    npz = np.load(os.path.join(REF, name + ".npz"))
    weights = load_caffemodel(os.path.join(REF, name + ".caffemodel"))
    layers = [layer for layer in net.layer if layer.type != "Input"]
    missing = sorted({layer.type for layer in layers} - set(LAYER_BUILDERS))
    assert not missing, f"layer types with no builder: {', '.join(missing)}"

    blobs, shapes = {}, {}  # the latest tensor of each blob name
    first = {}  # in-place layers: Caffe's diff of a blob is that of its first producer
    for layer in net.layer:
        if layer.type == "Input":
            for top in layer.top:
                blobs[top] = first[top] = torch.tensor(npz["data__" + top], requires_grad=True)
                shapes[top] = tuple(blobs[top].shape)
    inputs = set(blobs)

    built, losses = [], []
    backward = case["backward"] and not ({layer.type for layer in layers} & FORWARD_ONLY)
    for layer in layers:
        bottom_shapes = [shapes[b] for b in layer.bottom]
        module = LAYER_BUILDERS[layer.type](layer, bottom_shapes, "TEST")
        for blob, array in zip(module.blobs, weights.get(layer.name, [])):
            assert tuple(blob.shape) == array.shape, f"{layer.name}: blob shape"
            with torch.no_grad():
                blob.copy_(torch.from_numpy(array))
        expected_shapes = module.top_shapes(bottom_shapes)
        tops = module(*[blobs[b] for b in layer.bottom])
        assert len(tops) == len(layer.top)
        for i, (top_name, top) in enumerate(zip(layer.top, tops)):
            if layer.type not in DATA_SHAPED:
                assert tuple(expected_shapes[i]) == tuple(top.shape), f"{top_name}: top_shapes"
            first.setdefault(top_name, top)
            blobs[top_name], shapes[top_name] = top, tuple(top.shape)
            weight = _loss_weight(layer, i)
            if weight:
                losses.append(weight * top.sum())
        built.append((layer, module))
    for blob_name, top in blobs.items():  # final values (after any in-place layers)
        if "data__" + blob_name in npz.files:
            _close(f"data__{blob_name}", top, npz["data__" + blob_name])

    if not backward:
        return
    if not net.force_backward and not losses:
        # Caffe back-propagates only into layers that lead to a loss: with neither a loss nor
        # force_backward its diffs stay 0 (the embed case); test_embed_backward covers Embed.
        for key in npz.files:
            if key.startswith("paramdiff__"):
                assert not npz[key].any(), key
        return
    terms = list(losses)
    for key in npz.files:
        if key.startswith("topdiff__"):
            top = blobs[key[len("topdiff__"):]]
            terms.append((top * torch.from_numpy(npz[key])).sum())
    params = [(layer.name, i, blob) for layer, module in built
              for i, blob in enumerate(module.blobs) if blob.requires_grad]
    # every blob Caffe recorded a diff for: inputs, intermediate tops (x = data + bias), outputs
    # without force_backward Caffe leaves the Input blobs' diffs at 0 (they need no backward)
    diff_blobs = [b for b in first if "diff__" + b in npz.files
                  and (net.force_backward or b not in inputs) and first[b].requires_grad]
    wrt = [first[b] for b in diff_blobs] + [blob for _, _, blob in params]
    grads = torch.autograd.grad(sum(terms), wrt, allow_unused=True)
    for blob_name, g in zip(diff_blobs, grads):
        x = first[blob_name]
        _close("diff__" + blob_name, torch.zeros_like(x) if g is None else g,
               npz["diff__" + blob_name])
    for (layer_name, i, blob), g in zip(params, grads[len(diff_blobs):]):
        key = f"paramdiff__{layer_name}__{i}"
        if key in npz.files:
            _close(key, torch.zeros_like(blob) if g is None else g, npz[key])


def test_embed_backward():
    from kaffe.caffe.prototxt import parse_net_param
    net = parse_net_param('layer { name: "e" type: "Embed" bottom: "i" top: "o" '
                          'embed_param { input_dim: 6 num_output: 3 } }')
    layer = LAYER_BUILDERS["Embed"](net.layer[0], [(2, 4)], "TEST")
    torch.manual_seed(0)
    for blob in layer.blobs:
        blob.data.normal_()
    idx = torch.tensor([[0, 5, 5, 2], [1, 0, 5, 3]], dtype=torch.float32)
    (out,) = layer(idx)
    torch.testing.assert_close(out, layer.blobs[0][idx.long()] + layer.blobs[1])
    top_diff = torch.randn(2, 4, 3)
    weight_grad, bias_grad = torch.autograd.grad((out * top_diff).sum(), list(layer.blobs))
    want = torch.zeros(6, 3).index_add_(0, idx.long().flatten(), top_diff.reshape(-1, 3))
    torch.testing.assert_close(weight_grad, want)
    torch.testing.assert_close(bias_grad, top_diff.reshape(-1, 3).sum(0))


def _one(text, bottom_shapes, phase="TEST"):
    from kaffe.caffe.prototxt import parse_net_param
    layer = parse_net_param(text).layer[0]
    return LAYER_BUILDERS[layer.type](layer, bottom_shapes, phase)


def test_dropout_scales_at_train_only():
    text = ('layer { name: "d" type: "Dropout" bottom: "x" top: "y" '
            'dropout_param { dropout_ratio: 0.25 } }')
    x = torch.ones(1000, 100)
    (y,) = _one(text, [x.shape], "TRAIN")(x)
    assert set(torch.unique(y).tolist()) <= {0.0, np.float32(1 / 0.75).item()}
    assert abs((y == 0).float().mean().item() - 0.25) < 0.01
    assert torch.equal(_one(text, [x.shape], "TEST")(x)[0], x)


def test_softmax_loss_old_normalize_false_is_batch_size():
    x, label = torch.randn(4, 3, 2), torch.tensor([[0, 1], [2, 2], [1, 0], [0, 0]]).float()
    full = _one('layer { name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "t" top: "l" }',
                [x.shape, label.shape])(x, label)[0]
    batch = _one('layer { name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "t" top: "l" '
                 'loss_param { normalize: false } }', [x.shape, label.shape])(x, label)[0]
    assert full.shape == () and batch.shape == ()
    torch.testing.assert_close(batch, full * 8 / 4)


def test_infogain_h_from_binaryproto(tmp_path):
    from kaffe.caffe.blobs import save_blobproto
    H = np.random.rand(1, 1, 4, 4).astype(np.float32)
    save_blobproto(str(tmp_path / "H.binaryproto"), H)
    x, label = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2]).float()
    layer = _one('layer { name: "l" type: "InfogainLoss" bottom: "x" bottom: "t" top: "l" '
                 f'infogain_loss_param {{ source: "{tmp_path / "H.binaryproto"}" }} }}',
                 [x.shape, label.shape])
    want = -(torch.from_numpy(H[0, 0])[label.long()] * torch.log_softmax(x, 1)).sum() / 5
    torch.testing.assert_close(layer(x, label)[0], want)


def test_eltwise_max_tie_goes_to_first_bottom():
    layer = _one('layer { name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "y" '
                 'eltwise_param { operation: MAX } }', [(3,), (3,)])
    a = torch.tensor([1.0, 2.0, 0.0], requires_grad=True)
    b = torch.tensor([1.0, 3.0, -1.0], requires_grad=True)
    ga, gb = torch.autograd.grad(layer(a, b)[0].sum(), [a, b])
    assert ga.tolist() == [1, 0, 1] and gb.tolist() == [0, 1, 0]


def test_errors_name_layer_and_values():
    with pytest.raises(ValueError, match=r"Slice 's'.*not divisible"):
        _one('layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" }', [(2, 3)])
    with pytest.raises(ValueError, match=r"Reshape 'r'.*count"):
        _one('layer { name: "r" type: "Reshape" bottom: "x" top: "y" '
             'reshape_param { shape { dim: 5 } } }', [(2, 3)]).top_shapes([(2, 3)])


# ------------------------------------------------------------------ layers added for pycaffe parity
# (their forward/backward against real Caffe: tests/test_caffe_oracles_public.py; here what the
# oracles do not cover)

def _net_from(text, phase="TEST"):
    import kaffe.caffe as caffe
    from kaffe.caffe.prototxt import parse_net_param
    return caffe.Net(parse_net_param(text), caffe.TRAIN if phase == "TRAIN" else caffe.TEST)


def test_batch_reindex_and_filter_gradients_scatter_back():
    net = _net_from(
        'force_backward: true '
        'layer { name: "in" type: "Input" top: "d" top: "i" top: "s" input_param { '
        'shape { dim: 4 dim: 3 } shape { dim: 5 } shape { dim: 4 dim: 1 } } } '
        'layer { name: "br" type: "BatchReindex" bottom: "d" bottom: "i" top: "r" } '
        'layer { name: "f" type: "Filter" bottom: "d" bottom: "s" top: "kept" }')
    d = np.arange(12, dtype=np.float32).reshape(4, 3)
    net.blobs["d"].data[...] = d
    net.blobs["i"].data[...] = [3, 0, 3, 1, 3]
    net.blobs["s"].data[...] = np.array([[0], [2], [0], [-1]], np.float32)
    net.forward()
    np.testing.assert_array_equal(net.blobs["r"].data, d[[3, 0, 3, 1, 3]])
    np.testing.assert_array_equal(net.blobs["kept"].data, d[[1, 3]])
    r_diff = np.random.rand(5, 3).astype(np.float32)
    k_diff = np.random.rand(2, 3).astype(np.float32)
    net.blobs["r"].diff[...] = r_diff
    net.blobs["kept"].diff[...] = k_diff
    net.backward()
    want = np.zeros_like(d)
    np.add.at(want, [3, 0, 3, 1, 3], r_diff)
    want[[1, 3]] += k_diff
    np.testing.assert_allclose(net.blobs["d"].diff, want, rtol=1e-6)


def test_filter_tops_start_at_bottom_shape():
    net = _net_from('layer { name: "in" type: "Input" top: "d" top: "s" input_param { '
                    'shape { dim: 6 dim: 2 } shape { dim: 6 } } } '
                    'layer { name: "f" type: "Filter" bottom: "d" bottom: "s" top: "kept" }')
    assert net.blobs["kept"].shape == (6, 2)   # Caffe's first reshape keeps the batch
    net.blobs["s"].data[...] = [1, 0, 0, 0, 0, 1]
    net.forward()
    assert net.blobs["kept"].shape == (2, 2)


def test_parameter_layer_is_a_learnable_top():
    net = _net_from('layer { name: "t" type: "Input" top: "t" input_param { shape { dim: 2 '
                    'dim: 3 } } } '
                    'layer { name: "p" type: "Parameter" top: "w" parameter_param { '
                    'shape { dim: 2 dim: 3 } } } '
                    'layer { name: "loss" type: "EuclideanLoss" bottom: "w" bottom: "t" '
                    'top: "loss" }')
    assert [b.data.shape for b in net.params["p"]] == [(2, 3)]
    w, t = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32)
    net.params["p"][0].data[...] = w
    net.blobs["t"].data[...] = t
    net.forward()
    np.testing.assert_array_equal(net.blobs["w"].data, w)
    net.backward()
    # EuclideanLoss = sum((w - t)^2) / (2 N): the blob's diff is (w - t) / N
    np.testing.assert_allclose(net.params["p"][0].diff, (w - t) / 2, rtol=1e-6)


def test_spp_pyramid_height_one_is_one_unflattened_pooling():
    net = _net_from('layer { name: "in" type: "Input" top: "d" input_param { shape { dim: 2 '
                    'dim: 3 dim: 7 dim: 9 } } } '
                    'layer { name: "spp" type: "SPP" bottom: "d" top: "y" '
                    'spp_param { pyramid_height: 1 pool: AVE } }')
    x = np.random.rand(2, 3, 7, 9).astype(np.float32)
    net.blobs["d"].data[...] = x
    net.forward()
    assert net.blobs["y"].shape == (2, 3, 1, 1)
    np.testing.assert_allclose(net.blobs["y"].data[..., 0, 0], x.mean((2, 3)), rtol=1e-5)


def test_hdf5_output_writes_data_and_label(tmp_path):
    import h5py
    out = tmp_path / "out.h5"
    net = _net_from('layer { name: "in" type: "Input" top: "d" top: "l" input_param { '
                    'shape { dim: 3 dim: 4 } shape { dim: 3 } } } '
                    f'layer {{ name: "h" type: "HDF5Output" bottom: "d" bottom: "l" '
                    f'hdf5_output_param {{ file_name: "{out}" }} }}')
    assert out.exists()   # created when the net is built, as Caffe does
    d, lab = np.random.rand(3, 4).astype(np.float32), np.array([0, 2, 1], np.float32)
    net.blobs["d"].data[...] = d
    net.blobs["l"].data[...] = lab
    net.forward()
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["data"][()], d.reshape(3, 4, 1, 1))
        np.testing.assert_array_equal(f["label"][()], lab.reshape(3, 1, 1, 1))


# ------------------------------------------------------------------ WindowData

def _window_setup(tmp_path, **param):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.RandomState(3)
    imgs = [rng.randint(0, 256, (40, 50, 3)).astype(np.uint8) for _ in range(2)]
    for i, img in enumerate(imgs):
        cv2.imwrite(str(tmp_path / f"im{i}.png"), img)
    (tmp_path / "windows.txt").write_text(
        "# 0\nim0.png\n3 40 50\n2\n"
        "2 0.9 10 5 29 24\n"      # foreground, class 2
        "1 0.3 0 0 9 9\n"         # background (label becomes 0)
        "# 1\nim1.png\n3 40 50\n1\n"
        "5 0.45 3 3 20 20\n")     # between the thresholds at bg 0.4: unused
    fields = dict(source=str(tmp_path / "windows.txt"), root_folder=str(tmp_path) + "/",
                  batch_size=4, fg_fraction=0.5, bg_threshold=0.4)
    fields.update(param)
    text = " ".join(f"{k}: {v!r}".replace("'", '"') for k, v in fields.items())
    return imgs, text


def test_window_file_format(tmp_path):
    from kaffe.caffe.builders.window_data import read_window_file
    _, _ = _window_setup(tmp_path)
    images, fg, bg = read_window_file(str(tmp_path / "windows.txt"), "root/", 0.5, 0.4)
    assert images == {0: ("root/im0.png", (3, 40, 50)), 1: ("root/im1.png", (3, 40, 50))}
    assert fg == [(0, 2, 0.9, 10, 5, 29, 24)]
    assert bg == [(0, 0, 0.0, 0, 0, 9, 9)]
    (tmp_path / "bad.txt").write_text("# 0\nim0.png\n3 40 50\n1\n2 0.9 10 5 x 24\n")
    from kaffe.data.errors import DataSourceError
    with pytest.raises(DataSourceError, match=r"bad.txt:5: expected integer corners"):
        read_window_file(str(tmp_path / "bad.txt"))
    (tmp_path / "fg0.txt").write_text("# 0\nim0.png\n3 40 50\n1\n0 0.9 10 5 20 24\n")
    with pytest.raises(DataSourceError, match=r"fg0.txt:5: a foreground window .* class > 0"):
        read_window_file(str(tmp_path / "fg0.txt"))


def test_window_geometry_as_caffe_computes_it():
    from kaffe.caffe.builders.window_data import window_geometry
    # worked by hand from window_data_layer.cpp: context 2 at crop 10 scales by 10/6
    assert window_geometry((10, 20, 29, 39), 100, 100, 10, 2, False, False) == \
        ((3, 13, 37, 47), (10, 10), (0, 0))
    # clipped at the top-left corner: the clipped part is left as zero padding
    assert window_geometry((0, 0, 19, 19), 30, 30, 10, 2, False, False) == \
        ((0, 0, 27, 27), (8, 8), (2, 2))
    assert window_geometry((0, 0, 19, 19), 30, 30, 10, 2, False, True) == \
        ((0, 0, 27, 27), (8, 8), (2, 0))
    # warp without context: the window itself, resized to the crop
    assert window_geometry((4, 5, 6, 7), 30, 30, 10, 0, False, False) == \
        ((4, 5, 6, 7), (10, 10), (0, 0))


def test_window_data_batches(tmp_path):
    import cv2
    imgs, text = _window_setup(tmp_path, scale=0.5)
    net = _net_from('layer { name: "w" type: "WindowData" top: "data" top: "label" '
                    'transform_param { crop_size: 8 mean_value: 10 mean_value: 20 '
                    f'mean_value: 30 }} window_data_param {{ {text} }} }}', "TRAIN")
    assert net.blobs["data"].shape == (4, 3, 8, 8) and net.blobs["label"].shape == (4,)
    net.forward()
    np.testing.assert_array_equal(net.blobs["label"].data, [0, 0, 2, 2])  # bg first, then fg
    mean = np.array([10, 20, 30], np.float32)[:, None, None]
    for item, (x1, y1, x2, y2) in ((0, (0, 0, 9, 9)), (2, (10, 5, 29, 24))):
        patch = cv2.resize(imgs[0][y1:y2 + 1, x1:x2 + 1], (8, 8), interpolation=cv2.INTER_LINEAR)
        want = (patch.transpose(2, 0, 1).astype(np.float32) - mean) * 0.5
        np.testing.assert_allclose(net.blobs["data"].data[item], want, rtol=0, atol=1e-5)


def test_window_data_refuses_missing_foreground(tmp_path):
    from kaffe.data.errors import DataSourceError
    _, text = _window_setup(tmp_path, fg_threshold=0.95)
    with pytest.raises(DataSourceError, match=r"WindowData layer 'w'.* 0 foreground windows"):
        _net_from('layer { name: "w" type: "WindowData" top: "data" top: "label" '
                  f'transform_param {{ crop_size: 8 }} window_data_param {{ {text} }} }}')
