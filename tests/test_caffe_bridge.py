"""caffe.Classifier and caffe.load_model (a Caffe net as a kaffe Model) on LeNet with the real
Caffe-trained weights; oracles: shared/reference/zoo/lenet_forward.npz (real Caffe's forward of
the first 64 MNIST test digits) and kaffe's own pycaffe-style Net."""
import os

import numpy as np
import pytest

import kaffe.caffe as caffe
from kaffe import losses

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")
DEPLOY = os.path.join(REF, "zoo", "lenet_deploy.prototxt")
WEIGHTS = os.path.join(REF, "mnist", "lenet_iter_200.caffemodel")
TRAIN_TEST = os.path.join(REF, "mnist", "lenet_train_test.prototxt")
FORWARD = os.path.join(REF, "zoo", "lenet_forward.npz")

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(p) for p in (DEPLOY, WEIGHTS, FORWARD, TRAIN_TEST)),
    reason="shared/reference (LeNet deploy prototxt, lenet_iter_200.caffemodel, "
           "lenet_forward.npz from real Caffe) absent")


@pytest.fixture(scope="module")
def lenet():
    return np.load(FORWARD)


def test_exports():
    assert caffe.io.Transformer is not None
    assert callable(caffe.load_model) and issubclass(caffe.Classifier, caffe.Net)


def test_classifier_center_crop_matches_caffe(lenet):
    clf = caffe.Classifier(DEPLOY, WEIGHTS, image_dims=(28, 28))
    images = [x.transpose(1, 2, 0) for x in lenet["input__data"]]      # H x W x 1
    probs = clf.predict(images, oversample=False)
    assert probs.shape == (64, 10)
    np.testing.assert_allclose(probs, lenet["data__prob"], rtol=1e-4, atol=1e-5)
    # a batch other than the net's (padded last batch) gives the same rows
    np.testing.assert_allclose(clf.predict(images[:5], oversample=False),
                               lenet["data__prob"][:5], rtol=1e-4, atol=1e-5)


def test_classifier_oversample(lenet):
    clf = caffe.Classifier(DEPLOY, WEIGHTS, image_dims=(32, 32), raw_scale=1.0)
    images = [x.transpose(1, 2, 0) for x in lenet["input__data"][:3]]
    probs = clf.predict(images)             # 10 crops of each 32x32 resize, averaged
    crops = caffe.io.oversample(
        np.stack([caffe.io.resize_image(im, (32, 32)) for im in images]), (28, 28))
    net = caffe.Net(DEPLOY, WEIGHTS, caffe.TEST)
    batch = np.zeros((64, 1, 28, 28), np.float32)
    batch[:30] = crops.transpose(0, 3, 1, 2)
    expected = net.forward(data=batch)["prob"][:30].reshape(3, 10, 10).mean(1)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_load_model_predict_equals_net_forward(lenet):
    model = caffe.load_model(DEPLOY, WEIGHTS, phase="test")
    assert isinstance(model, caffe.bridge.Model)
    assert model.input_names == ["data"] and model.output_names == ["prob"]
    x = lenet["input__data"]
    pred = model.predict(x, verbose=0)
    net = caffe.Net(DEPLOY, WEIGHTS, caffe.TEST)
    np.testing.assert_allclose(pred, net.forward(data=x)["prob"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(pred, lenet["data__prob"], rtol=1e-4, atol=1e-5)
    # other batch sizes work too
    np.testing.assert_allclose(model.predict(x[:10], batch_size=7, verbose=0),
                               lenet["data__prob"][:10], rtol=1e-4, atol=1e-5)
    # the model's weights are the net's parameters, in Caffe's shapes and order
    assert [w.shape for w in model.get_weights()][:2] == [(20, 1, 5, 5), (20,)]
    assert model.count_params() == 431080


def test_load_model_summary(lenet):
    model = caffe.load_model(DEPLOY, WEIGHTS, phase="test")
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "conv1 (Convolution)" in text and "(64, 20, 24, 24)" in text
    assert "Total params: 431,080" in text and "400,500" in text


def test_load_model_weights_roundtrip(tmp_path, lenet):
    model = caffe.load_model(DEPLOY, WEIGHTS, phase="test")
    x = lenet["input__data"]
    pred = model.predict(x, verbose=0)
    model.save_weights(str(tmp_path / "lenet.weights.h5"))
    fresh = caffe.load_model(DEPLOY, phase="test")
    fresh.load_weights(str(tmp_path / "lenet.weights.h5"))
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), pred)
    model.save(str(tmp_path / "lenet.caffemodel"))
    again = caffe.load_model(DEPLOY, str(tmp_path / "lenet.caffemodel"), phase="test")
    np.testing.assert_array_equal(again.predict(x, verbose=0), pred)
    with pytest.raises(NotImplementedError, match="caffemodel"):
        model.save(str(tmp_path / "lenet.keras"))


def test_load_model_train_test_net_with_data_layers(lenet):
    model = caffe.load_model(TRAIN_TEST, WEIGHTS, phase="test", outputs=["ip2"],
                             input_shapes={"data": (64, 1, 28, 28), "label": (64,)})
    assert model.input_names == ["data"] and model.output_names == ["ip2"]
    np.testing.assert_allclose(model.predict(lenet["input__data"], verbose=0),
                               lenet["data__ip2"], rtol=1e-4, atol=1e-4)
    train = caffe.load_model(TRAIN_TEST, WEIGHTS, phase="train",
                             input_shapes={"data": (64, 1, 28, 28), "label": (64,)})
    assert train.input_names == ["data", "label"] and train.output_names == ["loss"]
    with pytest.raises(ValueError, match="no blob 'nope'"):
        caffe.load_model(DEPLOY, WEIGHTS, phase="test", outputs="nope")
    with pytest.raises(ValueError, match="phase"):
        caffe.load_model(DEPLOY, WEIGHTS, phase="deploy")


def test_load_model_fit_updates_the_net(lenet):
    model = caffe.load_model(DEPLOY, WEIGHTS, phase="test", outputs="ip2")
    model.compile("sgd", losses.SparseCategoricalCrossentropy(from_logits=True))
    x = lenet["input__data"]
    y = (np.argmax(lenet["data__prob"], 1) + 1) % 10     # labels it does not predict yet
    before = model.net.params["ip2"][0].data.copy()
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    assert not np.allclose(model.net.params["ip2"][0].data, before)
