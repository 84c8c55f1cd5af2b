"""CUDA paths: Keras ``fit`` on CUDA equals the CPU, float16 with a GradScaler trains,
channels_last convnets, word2vec ``device='cuda'``; and the bad input around devices that is
checkable anywhere (``-gpu N`` past the device count, out of memory in a layer).

Tests marked ``cuda`` skip without a GPU ("no CUDA device"); ``benchmarks/gpu_check.sh
--dry-run-cpu`` runs them on the CPU (KAFFE_CUDA_TESTS_ON_CPU=1) to check their logic.
The Caffe-net tests (``set_mode_gpu`` net vs real Caffe and the CPU, ``solver_mode: GPU``
LeNet vs the CPU solver, ``kaffe train/time -gpu 0``) are at the end; their host/device blob
bookkeeping is proven without a GPU in test_caffe_device.py.
"""
import os
import re

import numpy as np
import pytest
import torch

import kaffe
from kaffe import mixed_precision
from conftest import run_kaffe

REF = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")


@pytest.fixture
def exact_cuda_math():
    """float32 convolutions and matmuls on CUDA (no TF32), so CUDA and CPU agree closely."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _convnet():
    L = kaffe.layers
    return kaffe.Sequential([
        L.Conv2D(8, (3, 3), activation="relu", input_shape=(12, 12, 1)),
        L.MaxPooling2D((2, 2)), L.Conv2D(8, (3, 3), activation="relu"), L.Flatten(),
        L.Dense(16, activation="relu"), L.Dense(3, activation="softmax")])


def _data(n=96, seed=0):
    """Noise with a bright band whose rows say the class (three classes)."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 3, n)
    x = (rng.rand(n, 12, 12, 1) * 0.3).astype("float32")
    for i, label in enumerate(labels):
        x[i, 4 * label:4 * label + 4] += 0.7
    return x, np.eye(3, dtype="float32")[labels]


def _fit_on(device, monkeypatch, weights=None, epochs=3, **compile_args):
    monkeypatch.setenv("KAFFE_DEVICE", str(device))
    model = _convnet()
    model.compile(optimizer=kaffe.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["accuracy"], **compile_args)
    x, y = _data()
    model.predict(x[:2], verbose=0)   # built and placed on the device
    if weights is not None:
        model.set_weights(weights)
    history = model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0)
    return model, history.history


def _initial_weights():
    model = _convnet()
    model.predict(_data()[0][:2], verbose=0)
    return model.get_weights()


@pytest.mark.cuda
def test_fit_on_cuda_equals_cpu(cuda_device, monkeypatch, exact_cuda_math):
    initial = _initial_weights()
    cpu_model, cpu_hist = _fit_on("cpu", monkeypatch, weights=initial)
    dev_model, dev_hist = _fit_on(cuda_device, monkeypatch, weights=initial)
    assert next(dev_model.parameters()).device.type == cuda_device.type
    np.testing.assert_allclose(dev_hist["loss"], cpu_hist["loss"], rtol=1e-4)
    assert dev_hist["accuracy"] == pytest.approx(cpu_hist["accuracy"], abs=1.5 / 96)
    for got, want in zip(dev_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    x = _data(32, seed=1)[0]
    np.testing.assert_allclose(dev_model.predict(x, verbose=0), cpu_model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
def test_mixed_float16_with_grad_scaler_trains(cuda_device, monkeypatch):
    initial = _initial_weights()
    _, full = _fit_on(cuda_device, monkeypatch, weights=initial, epochs=4)
    mixed_precision.set_global_policy("mixed_float16")
    try:
        model, mixed = _fit_on(cuda_device, monkeypatch, weights=initial, epochs=4)
        assert isinstance(model._grad_scaler, torch.amp.GradScaler)
        assert model._grad_scaler.get_scale() > 0
        out = model.predict(_data(8)[0], verbose=0)
    finally:
        mixed_precision.set_global_policy("float32")
    assert out.dtype == np.float32 and np.allclose(out.sum(axis=1), 1, atol=1e-3)
    assert all(p.dtype == torch.float32 for p in model.parameters())   # float32 master weights
    assert mixed["loss"][-1] < 0.7 * mixed["loss"][0], mixed["loss"]
    # float16 compute follows the float32 run's loss curve (the oracle: the same net in float32)
    np.testing.assert_allclose(mixed["loss"], full["loss"], rtol=2e-2)


@pytest.mark.cuda
def test_channels_last_convnet_on_cuda(cuda_device, monkeypatch, exact_cuda_math):
    initial = _initial_weights()
    model, _ = _fit_on(cuda_device, monkeypatch, weights=initial, epochs=1)
    kernels = [p for p in model.parameters() if p.dim() == 4]
    if cuda_device.type == "cuda":   # kaffe stores conv weights channels_last on CUDA only
        assert all(k.is_contiguous(memory_format=torch.channels_last) for k in kernels)
    # the oracle: the same weights in plain torch.nn, NCHW, on the CPU
    x = _data(16, seed=2)[0]
    w = model.get_weights()
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    conv = lambda h, k, b: torch.relu(torch.nn.functional.conv2d(  # noqa: E731
        h, torch.from_numpy(k).permute(3, 2, 0, 1), torch.from_numpy(b)))
    h = conv(t, w[0], w[1])
    h = conv(torch.nn.functional.max_pool2d(h, 2), w[2], w[3])
    h = h.permute(0, 2, 3, 1).reshape(len(x), -1)   # Flatten in channels_last order
    h = torch.relu(h @ torch.from_numpy(w[4]) + torch.from_numpy(w[5]))
    want = torch.softmax(h @ torch.from_numpy(w[6]) + torch.from_numpy(w[7]), 1).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-4, atol=1e-6)


def _topic_corpus(seed=0, sentences=1500):
    """Sentences drawn from one of four 10-word topics: neighbours should share the topic."""
    rng = np.random.RandomState(seed)
    topics = [[f"t{t}w{i}" for i in range(10)] for t in range(4)]
    return topics, [list(rng.choice(topics[rng.randint(4)], 8)) for _ in range(sentences)]


def _topic_purity(wv, topics):
    hits = total = 0
    for topic in topics:
        for word in topic:
            near = [w for w, _ in wv.most_similar(word, topn=5)]
            hits += sum(w in topic for w in near)
            total += len(near)
    return hits / total


@pytest.mark.cuda
def test_word2vec_on_cuda_matches_cpu_quality(cuda_device):
    import gensim

    from kaffe.text import Word2Vec
    topics, sentences = _topic_corpus()
    params = dict(vector_size=24, window=3, min_count=1, negative=5, epochs=5, seed=1,
                  workers=1, sg=1)
    on_device = Word2Vec(sentences, device=str(cuda_device), **params)
    on_cpu = Word2Vec(sentences, **params)
    oracle = gensim.models.Word2Vec(sentences, **params)
    purity = {name: _topic_purity(m.wv, topics)
              for name, m in (("device", on_device), ("cpu", on_cpu), ("gensim", oracle))}
    assert purity["gensim"] > 0.8, purity   # the corpus does have its structure
    assert purity["device"] >= min(purity["cpu"], purity["gensim"]) - 0.1, purity
    assert on_device.wv.vectors.dtype == np.float32
    assert set(on_device.wv.index_to_key) == set(oracle.wv.index_to_key)


# ---------------------------------------------------------------- bad input (any machine)

@pytest.fixture
def lenet_solver(tmp_path):
    text = open(os.path.join(REF, "mnist", "lenet_solver.prototxt")).read()
    (tmp_path / "lenet_solver.prototxt").write_text(text)
    return str(tmp_path / "lenet_solver.prototxt")


def test_train_gpu_id_past_the_device_count_is_refused(lenet_solver, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    code, log = run_kaffe("train", "-solver", lenet_solver, "-gpu", "3")
    assert code == 1
    assert "-gpu 3: torch sees 1 CUDA device on this machine, so there is no GPU 3" in log
    assert "Use -gpu 0." in log


def test_train_gpu_list_past_the_device_count_is_refused(lenet_solver, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    code, log = run_kaffe("train", "-solver", lenet_solver, "-gpu", "0,3")
    assert code == 1
    assert "-gpu 0,3: torch sees 2 CUDA devices on this machine, so there is no GPU 3" in log
    assert "-gpu all" in log


def test_select_device_without_cuda_falls_back_and_says_so(monkeypatch, caplog):
    from kaffe.cli.caffe_train import select_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("INFO", logger="kaffe"):
        assert select_device([3]) == torch.device("cpu")
    assert "-gpu 3: torch has no CUDA device here; Use CPU." in caplog.text


def _out_of_memory_in(layer):
    def call(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    layer.call = call


def test_out_of_memory_in_fit_names_layer_and_batch():
    model = _convnet()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = _data()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    dense = model.layers[-2]
    _out_of_memory_in(dense)
    with pytest.raises(torch.OutOfMemoryError) as caught:
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    message = str(caught.value)
    assert f"layer '{dense.name}' (Dense)" in message
    assert "a batch of 32 samples" in message and "batch_size=16" in message
    assert "Tried to allocate 2.00 GiB" in message   # torch's own words kept
    assert isinstance(caught.value.__cause__, Exception)


def test_out_of_memory_in_predict_and_evaluate_from_a_generator():
    model = _convnet()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = _data()
    model.predict(x[:4], verbose=0)
    conv = model.layers[0]
    _out_of_memory_in(conv)
    with pytest.raises(torch.OutOfMemoryError, match=re.escape(
            f"predict() of model '{model.name}' ran out of device memory in layer "
            f"'{conv.name}' (Conv2D) with a batch of 64 samples. Pass a smaller batch: "
            "batch_size=32")):
        model.predict(x, batch_size=64, verbose=0)

    def batches():   # no batch_size argument: the size comes from the layer's input
        while True:
            yield x[:24], y[:24]
    with pytest.raises(torch.OutOfMemoryError, match="evaluate.*with a batch of 24 samples"):
        model.evaluate(batches(), steps=2, verbose=0)


def test_other_errors_pass_through_unchanged():
    model = _convnet()
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = _data()
    with pytest.raises(Exception) as caught:
        model.fit(x[:, :10], y, epochs=1, verbose=0)
    assert not isinstance(caught.value, torch.OutOfMemoryError)


# ---------------------------------------------------------------- Caffe nets on the device

MNIST = os.path.join(REF, "mnist")
LAYERS = os.path.join(REF, "layers")


def _caffe_on(cuda_device):
    """Nets built inside compute on ``cuda_device``; on the CPU (KAFFE_CUDA_TESTS_ON_CPU=1)
    the CPU stands in for the device, so the same bookkeeping runs."""
    from kaffe.caffe import device
    if cuda_device.type == "cuda":
        return device.computing_on(cuda_device)
    return device.cpu_stand_in()


@pytest.mark.cuda
def test_caffe_set_mode_gpu_net_matches_caffe_and_the_cpu(cuda_device, exact_cuda_math):
    """``caffe.set_mode_gpu()`` then ``caffe.Net``: the layers and blobs live on the device and
    forward/backward equal real Caffe's mini_convnet oracle and the CPU net."""
    import kaffe.caffe as caffe
    from kaffe.caffe import device
    base = os.path.join(LAYERS, "mini_convnet")
    ref = np.load(base + ".npz")
    if cuda_device.type == "cuda":
        caffe.set_device(cuda_device.index or 0)
        caffe.set_mode_gpu()
        try:
            net = caffe.Net(base + ".prototxt", base + ".caffemodel", caffe.TEST)
        finally:
            caffe.set_mode_cpu()
    else:
        with device.cpu_stand_in():
            net = caffe.Net(base + ".prototxt", base + ".caffemodel", caffe.TEST)
    cpu = caffe.Net(base + ".prototxt", base + ".caffemodel", caffe.TEST)
    assert net._device.type == cuda_device.type
    assert all(p.device.type == cuda_device.type for p in net.module.parameters())
    for n in (net, cpu):
        n.forward(data=ref["data__data"], label=ref["data__label"])
        n.backward()
    for blob in net.blobs:
        if "data__" + blob in ref.files:
            np.testing.assert_allclose(net.blobs[blob].data, ref["data__" + blob], rtol=1e-4,
                                       atol=1e-5, err_msg=blob)
            np.testing.assert_allclose(net.blobs[blob].data, cpu.blobs[blob].data, rtol=1e-5,
                                       atol=1e-6, err_msg=blob)
    np.testing.assert_allclose(net.blobs["data"].diff, ref["diff__data"], rtol=1e-4, atol=1e-5)
    for key in ref.files:
        if key.startswith("paramdiff__"):
            _, layer, i = key.split("__")
            np.testing.assert_allclose(net.params[layer][int(i)].diff, ref[key], rtol=1e-4,
                                       atol=1e-5, err_msg=key)


def _lenet_folder(tmp_path, mode):
    import shutil
    for f in ("lenet_solver.prototxt", "lenet_train_test.prototxt"):
        shutil.copy(os.path.join(MNIST, f), tmp_path)
    for d in ("mnist_train_lmdb", "mnist_test_lmdb"):
        os.symlink(os.path.join(MNIST, d), tmp_path / d)
    path = tmp_path / "lenet_solver.prototxt"
    path.write_text(path.read_text().replace("solver_mode: CPU", f"solver_mode: {mode}")
                    .replace("snapshot: 200", "snapshot: 0"))
    return str(path)


def _losses(log):
    return {int(i): float(v) for i, v in
            re.findall(r"Iteration (\d+) \([^)]*\), loss = (\S+)", log)}


@pytest.mark.cuda
def test_lenet_solver_mode_gpu_follows_the_cpu(cuda_device, tmp_path, monkeypatch,
                                               exact_cuda_math):
    """``solver_mode: GPU``: LeNet on the device from Caffe's initial weights, 30 iterations;
    the loss curve equals the CPU solver's within float tolerance, the data layer's tops
    arrive on the device from pinned prefetched batches."""
    import kaffe.caffe as caffe
    monkeypatch.chdir(tmp_path)
    path = _lenet_folder(tmp_path, "GPU")
    init = os.path.join(MNIST, "lenet_init.caffemodel")
    curves = {}
    for where in ("device", "cpu"):
        if where == "device" and cuda_device.type == "cuda":
            solver = caffe.get_solver(path)      # solver_mode: GPU, device_id 0 picks it
            assert solver.device == torch.device("cuda", 0)
        elif where == "device":
            with _caffe_on(cuda_device):
                solver = caffe.get_solver(path)
        else:
            solver = caffe.Solver(path, device="cpu")
        solver.net.copy_from(init)
        curve = []
        for _ in range(30):
            solver.step(1)
            curve.append(solver._smoothed_loss)
        curves[where] = (solver, curve)
    solver, curve = curves["device"]
    assert all(p.device.type == cuda_device.type for p in solver.net.module.parameters())
    assert solver.net._tensors["data"].device.type == cuda_device.type
    np.testing.assert_allclose(curve, curves["cpu"][1], rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(solver.net.params["ip2"][0].data,
                               curves["cpu"][0].net.params["ip2"][0].data, rtol=1e-2, atol=1e-4)


@pytest.mark.cuda
def test_kaffe_train_and_time_with_gpu_flag(tmp_path, monkeypatch):
    """``kaffe train -gpu 0`` and ``kaffe time -gpu 0`` compute on CUDA device 0 (real GPU
    only: the CPU path of these commands is covered by test_caffe_device.py)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a real CUDA device (the command picks it itself)")
    monkeypatch.chdir(tmp_path)
    path = _lenet_folder(tmp_path, "CPU")
    init = os.path.join(MNIST, "lenet_init.caffemodel")
    code, gpu_log = run_kaffe("train", "-solver", path, "-weights", init, "-gpu", "0",
                              "-iterations", "20")
    assert code == 0, gpu_log[-2000:]
    assert "Use GPU with device ID 0" in gpu_log
    code, cpu_log = run_kaffe("train", "-solver", path, "-weights", init, "-iterations", "20")
    assert code == 0
    gpu, cpu = _losses(gpu_log), _losses(cpu_log)
    assert sorted(gpu) == sorted(cpu) and gpu
    for i in gpu:
        assert gpu[i] == pytest.approx(cpu[i], rel=5e-3, abs=1e-4), i
    torch.cuda.reset_peak_memory_stats()
    code, out = run_kaffe("time", "-model", os.path.join(REF, "zoo", "lenet_deploy.prototxt"),
                          "-iterations", "5", "-gpu", "0")
    assert code == 0 and "Use GPU with device ID 0" in out and "Average Forward pass" in out
    assert torch.cuda.max_memory_allocated() > 0   # the net computed on the GPU
