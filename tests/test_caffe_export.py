"""``caffe.export``: Keras-style kaffe models written as prototxt + caffemodel.

Oracles: the exported files run in OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``, no
kaffe code involved) and give the Keras model's predictions; Keras 3 itself, given the same
weights, gives them too; kaffe's own ``caffe.Net`` reads the files back and agrees.
"""
import os

import numpy as np
import pytest

import kaffe
import kaffe.caffe as caffe
from kaffe import layers

RTOL, ATOL = 1e-4, 1e-5


def _randomize_bn(model, seed=0):
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.randn(*beta.shape) * 0.1,
                               rng.randn(*mean.shape) * 0.2, rng.uniform(0.5, 2, var.shape)])


def _cnn():
    model = kaffe.Sequential([
        layers.Input((12, 12, 3)),
        layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
        layers.BatchNormalization(name="bn1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(6, (3, 2), strides=(1, 1), name="conv2"),
        layers.Activation("tanh", name="act2"),
        layers.AveragePooling2D((2, 1), strides=(2, 1), name="pool2"),
        layers.Flatten(name="flat"),
        layers.Dense(10, activation="relu", name="fc1"),
        layers.Dropout(0.5, name="drop"),
        layers.Dense(5, activation="softmax", name="prob"),
    ], name="cnn")
    _randomize_bn(model)
    return model


def _caffe_forward(prototxt, caffemodel, inputs, output):
    net = caffe.Net(prototxt, caffemodel, caffe.TEST)
    return net.forward(**inputs)[output]


def _opencv_forward(prototxt, caffemodel, x):
    """OpenCV's output of the net's last layer (OpenCV names outputs by layer, and an in-place
    activation is a layer of its own)."""
    cv2 = pytest.importorskip("cv2")
    net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(np.ascontiguousarray(x, np.float32))
    return net.forward(caffe.read_net_param(prototxt).layer[-1].name)


def _nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def test_sequential_cnn_matches_keras_in_opencv_and_caffe_net(tmp_path):
    model = _cnn()
    x = np.random.RandomState(1).randn(4, 12, 12, 3).astype(np.float32)
    want = model.predict(x, verbose=0)
    proto, weights = str(tmp_path / "cnn.prototxt"), str(tmp_path / "cnn.caffemodel")
    caffe.export(model, proto, weights, batch_size=4)
    text = open(proto).read()
    for piece in ('type: "BatchNorm"', 'type: "Scale"', "pad_h: 1", 'type: "Flatten"',
                  "dropout_ratio: 0.5", 'type: "Softmax"'):
        assert piece in text
    np.testing.assert_allclose(_opencv_forward(proto, weights, _nchw(x)), want,
                               rtol=RTOL, atol=ATOL)
    got = _caffe_forward(proto, weights, {_input_name(proto): _nchw(x)}, "prob")
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _input_name(prototxt):
    net = caffe.read_net_param(prototxt)
    return [lp.top[0] for lp in net.layer if lp.type == "Input"][0]


def test_keras3_gives_the_same_predictions_as_the_exported_net(tmp_path):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("run with KERAS_BACKEND=torch")
    model = _cnn()
    theirs = keras.Sequential([
        keras.layers.Input((12, 12, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, (3, 2)),
        keras.layers.Activation("tanh"),
        keras.layers.AveragePooling2D((2, 1), strides=(2, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(5, activation="softmax"),
    ])
    for ours, keras_layer in zip(model.layers, theirs.layers):
        keras_layer.set_weights(ours.get_weights())
    x = np.random.RandomState(2).randn(3, 12, 12, 3).astype(np.float32)
    proto, weights = str(tmp_path / "cnn.prototxt"), str(tmp_path / "cnn.caffemodel")
    caffe.export(model, proto, weights, batch_size=3)
    got = _caffe_forward(proto, weights, {_input_name(proto): _nchw(x)}, "prob")
    np.testing.assert_allclose(got, np.asarray(theirs.predict(x, verbose=0)), rtol=RTOL,
                               atol=ATOL)


def test_functional_merges_and_flatten_permutation(tmp_path):
    inp = kaffe.Input((6, 6, 2), name="image")
    a = layers.Conv2D(3, 3, padding="same", name="a")(inp)
    b = layers.Conv2D(3, 1, name="b")(inp)
    s = layers.Add(name="sum")([a, b])
    r = layers.ReLU(name="relu")(s)               # s is read twice: no in-place ReLU
    c = layers.Concatenate(name="cat")([r, s])    # channel axis
    g = layers.GlobalAveragePooling2D(name="gap")(c)
    f = layers.Flatten(name="flat")(layers.MaxPooling2D(3, name="pool")(c))
    both = layers.Concatenate(name="feats")([g, f])  # plain + permuted flat features
    bn = layers.BatchNormalization(name="bn")(both)  # per-feature params on permuted features
    out = layers.Dense(4, name="logits")(bn)
    model = kaffe.Model(inp, out, name="merges")
    _randomize_bn(model, seed=3)
    x = np.random.RandomState(4).randn(2, 6, 6, 2).astype(np.float32)
    want = model.predict(x, verbose=0)
    proto, weights = str(tmp_path / "m.prototxt"), str(tmp_path / "m.caffemodel")
    net_param = caffe.export(model, proto, weights, batch_size=2)
    relu = [lp for lp in net_param.layer if lp.name == "relu"][0]
    assert list(relu.top) == ["relu"] and list(relu.bottom) == ["sum"]
    np.testing.assert_allclose(_opencv_forward(proto, weights, _nchw(x)), want,
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_caffe_forward(proto, weights, {"image": _nchw(x)}, "logits"),
                               want, rtol=RTOL, atol=ATOL)


def test_embedding_and_shared_layer(tmp_path):
    ids = kaffe.Input((5,), name="ids", dtype="int32")
    other = kaffe.Input((3,), name="other")
    emb = layers.Flatten(name="flat")(layers.Embedding(20, 4, name="emb")(ids))
    dense = layers.Dense(3, activation="sigmoid", name="shared")
    out = layers.Subtract(name="diff")([dense(layers.Dense(3, name="proj")(emb)), dense(other)])
    model = kaffe.Model([ids, other], out, name="emb")
    rng = np.random.RandomState(5)
    x_ids, x_other = rng.randint(0, 20, (3, 5)), rng.randn(3, 3).astype(np.float32)
    want = model.predict([x_ids, x_other], verbose=0)
    proto, weights = str(tmp_path / "e.prototxt"), str(tmp_path / "e.caffemodel")
    net_param = caffe.export(model, proto, weights, batch_size=3)
    shared = [lp for lp in net_param.layer if lp.name in ("shared", "shared_1")]
    assert [[p.name for p in lp.param] for lp in shared] == [["shared_0", "shared_1"]] * 2
    got = _caffe_forward(proto, weights, {"ids": x_ids.astype(np.float32), "other": x_other},
                         "diff")
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_refusals_name_the_layer_and_the_fix(tmp_path):
    paths = (str(tmp_path / "x.prototxt"), str(tmp_path / "x.caffemodel"))
    lstm = kaffe.Sequential([layers.Input((4, 3)), layers.LSTM(2, name="rnn")])
    with pytest.raises(caffe.ExportError, match=r"'rnn' \(LSTM\).*no equivalent"):
        caffe.export(lstm, *paths)
    pool = kaffe.Sequential([layers.Input((7, 7, 1)), layers.MaxPooling2D(2, name="p")])
    with pytest.raises(caffe.ExportError, match=r"'p' \(MaxPooling2D\).*Caffe's pooling gives "
                                               r"4 .*Keras gives 3"):
        caffe.export(pool, *paths)
    conv = kaffe.Sequential([layers.Input((8, 8, 1)),
                             layers.Conv2D(2, 3, strides=2, padding="same", name="c")])
    with pytest.raises(caffe.ExportError, match=r"'c' \(Conv2D\).*asymmetrically"):
        caffe.export(conv, *paths)
    dense = kaffe.Sequential([layers.Input((4, 4, 2)), layers.Dense(3, name="d")])
    with pytest.raises(caffe.ExportError, match=r"'d' \(Dense\).*Flatten"):
        caffe.export(dense, *paths)
    assert not os.path.exists(paths[0]) and not os.path.exists(paths[1])
