"""Normalization, activation, regularization, attention and preprocessing layers against Keras 3
(torch backend) with the same weights; noise layers by their statistics."""
import contextlib
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kaffe.engine.functional import Functional  # noqa: E402
from kaffe.engine.input_layer import Input  # noqa: E402
from kaffe.layers import activations as act  # noqa: E402
from kaffe.layers import attention as att  # noqa: E402
from kaffe.layers import normalization as norm  # noqa: E402
from kaffe.layers import preprocessing as pre  # noqa: E402
from kaffe.layers import regularization as reg  # noqa: E402
from kaffe.layers.embedding import Embedding  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
LAYERS = {name: getattr(module, name) for module in (act, att, norm, pre, reg)
          for name in dir(module) if isinstance(getattr(module, name), type)}


def to_np(value):
    return keras.ops.convert_to_numpy(value)


def t(array):
    return torch.as_tensor(array)


def data(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def twin(name, shape, seed=1, **kwargs):
    """A built Keras layer with perturbed weights and the kaffe layer holding the same weights."""
    rng = np.random.default_rng(seed)
    keras_layer = getattr(keras.layers, name)(**kwargs)
    keras_layer.build(shape)
    keras_layer.set_weights([w + 0.3 * rng.standard_normal(w.shape).astype(w.dtype)
                             for w in keras_layer.get_weights()])
    layer = LAYERS[name](**kwargs)
    zeros = [torch.zeros([2 if d is None else d for d in s]) for s in
             (shape if isinstance(shape, list) else [shape])]
    layer(zeros if isinstance(shape, list) else zeros[0])
    layer.set_weights(keras_layer.get_weights())
    return keras_layer, layer


def check_same(keras_layer, layer, x, **call):
    expected = to_np(keras_layer(x, **call))
    got = layer(t(x), **call).detach().numpy()
    np.testing.assert_allclose(got, expected, **TOL)
    assert layer.count_params() == keras_layer.count_params()
    shape = (None,) + x.shape[1:]
    expected_shape = tuple(keras_layer.compute_output_shape(shape))
    assert tuple(layer.compute_output_shape(shape)) == expected_shape


# ---------------------------------------------------------------------------------- normalization
@pytest.mark.parametrize("kwargs", [
    {}, {"axis": [-2, -1]}, {"axis": [1, 2, 3]}, {"rms_scaling": True}, {"center": False},
    {"scale": False, "epsilon": 1e-5}], ids=str)
def test_layer_normalization_matches_keras(kwargs):
    with pytest.warns(UserWarning) if kwargs.get("rms_scaling") else contextlib.nullcontext():
        keras_layer, layer = twin("LayerNormalization", (None, 3, 4, 6), **kwargs)
    check_same(keras_layer, layer, data(2, 3, 4, 6) * 3 + 1)
    assert layer.get_config()["axis"] == keras_layer.get_config()["axis"]


@pytest.mark.parametrize("axis", [1, [1, 3], -3])
def test_layer_normalization_axes_without_the_last(axis):
    """Keras's torch backend normalises the wrong axes here; kaffe follows its TF/JAX result."""
    layer = norm.LayerNormalization(axis=axis)
    x = data(2, 3, 4, 5).astype("float64") * 2 + 1
    layer(torch.zeros(2, 3, 4, 5))
    rng = np.random.default_rng(3)
    weights = [w + rng.standard_normal(w.shape).astype("float32") for w in layer.get_weights()]
    layer.set_weights(weights)
    axes = tuple(sorted(a % 4 for a in (axis if isinstance(axis, list) else [axis])))
    bshape = [x.shape[d] if d in axes else 1 for d in range(4)]
    expected = ((x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-3)
                * weights[0].reshape(bshape) + weights[1].reshape(bshape))
    got = layer(t(x.astype("float32"))).detach().numpy()
    np.testing.assert_allclose(got, expected, **TOL)


@pytest.mark.parametrize("shape,kwargs", [
    ((None, 5, 6), {"groups": 2}), ((None, 5, 6), {"groups": -1}),
    ((None, 4, 3, 6), {"groups": 3}), ((None, 6, 3, 4), {"groups": 3, "axis": 1}),
    ((None, 6, 5), {"groups": 1, "axis": 1, "center": False}), ((None, 8), {"groups": 4})],
    ids=str)
def test_group_normalization_matches_keras(shape, kwargs):
    keras_layer, layer = twin("GroupNormalization", shape, **kwargs)
    check_same(keras_layer, layer, data(3, *shape[1:]) * 2 + 0.5)
    assert layer.get_config()["groups"] == keras_layer.get_config()["groups"]


def test_group_normalization_refuses_uneven_groups():
    with pytest.raises(ValueError, match="groups=4"):
        norm.GroupNormalization(groups=4)(torch.zeros(2, 6))


# ---------------------------------------------------------------------------------- activations
@pytest.mark.parametrize("name,kwargs", [
    ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.1}), ("ELU", {}), ("ELU", {"alpha": 0.5}),
    ("ReLU", {}), ("ReLU", {"max_value": 6.0}), ("ReLU", {"max_value": 1.5}),
    ("ReLU", {"negative_slope": 0.2}), ("ReLU", {"threshold": 0.5}),
    ("ReLU", {"max_value": 2.0, "negative_slope": 0.1, "threshold": 0.3}),
    ("ReLU", {"max_value": 6.0, "negative_slope": 0.1}), ("Softmax", {}), ("Softmax", {"axis": 1}),
    ("Softmax", {"axis": (1, 2)})], ids=str)
def test_activation_layers_match_keras(name, kwargs):
    x = data(2, 3, 5) * 3
    check_same(getattr(keras.layers, name)(**kwargs), LAYERS[name](**kwargs), x)


def test_leaky_relu_keras2_alpha():
    assert act.LeakyReLU(alpha=0.2).negative_slope == 0.2
    assert act.LeakyReLU(alpha=0.2).get_config()["negative_slope"] == 0.2


@pytest.mark.parametrize("shared_axes", [None, [1, 2], 2])
def test_prelu_matches_keras(shared_axes):
    keras_layer, layer = twin("PReLU", (None, 4, 5, 3), shared_axes=shared_axes)
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in keras_layer.get_weights()]
    check_same(keras_layer, layer, data(2, 4, 5, 3))


def test_softmax_mask_matches_keras():
    x = data(2, 4, 6) * 3
    mask = np.random.default_rng(2).random((2, 4, 6)) > 0.4
    mask[0, 1] = False  # a fully masked row: zeros
    for m in (mask, mask[:, :1, :], mask.astype("float32")):
        for axis in (-1, (1, 2)):
            expected = to_np(keras.layers.Softmax(axis=axis)(x, mask=m))
            got = act.Softmax(axis=axis)(t(x), mask=t(m)).numpy()
            np.testing.assert_allclose(got, expected, **TOL)


def test_thresholded_relu():
    x = data(3, 7) * 2
    np.testing.assert_array_equal(act.ThresholdedReLU(theta=0.5)(t(x)).numpy(),
                                  np.where(x > 0.5, x, 0))


# ---------------------------------------------------------------------------------- noise / dropout
NOISE = [("GaussianNoise", {"stddev": 0.5}), ("GaussianDropout", {"rate": 0.3}),
         ("AlphaDropout", {"rate": 0.2}), ("SpatialDropout1D", {"rate": 0.4}),
         ("SpatialDropout2D", {"rate": 0.4}), ("SpatialDropout3D", {"rate": 0.4}),
         ("SpatialDropout2D", {"rate": 0.4, "data_format": "channels_first"})]
SHAPES = {"SpatialDropout1D": (8, 5, 6), "SpatialDropout2D": (8, 5, 4, 6),
          "SpatialDropout3D": (8, 3, 4, 2, 6)}


@pytest.mark.parametrize("name,kwargs", NOISE, ids=str)
def test_noise_layers_are_identity_in_inference(name, kwargs):
    x = t(data(*SHAPES.get(name, (4, 6, 5))))
    layer = LAYERS[name](**kwargs)
    assert torch.equal(layer(x), x)
    assert layer(x, training=True).shape == x.shape
    assert not torch.equal(layer(x, training=True), x)
    keras_config = getattr(keras.layers, name)(**kwargs).get_config()
    assert set(layer.get_config()) == set(keras_config)
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


def test_gaussian_noise_and_dropout_statistics():
    x = torch.full((400, 500), 2.0)
    noise = reg.GaussianNoise(0.3)(x, training=True) - x
    assert abs(noise.mean().item()) < 0.005 and abs(noise.std().item() - 0.3) < 0.005
    factor = reg.GaussianDropout(0.2)(x, training=True) / x
    assert abs(factor.mean().item() - 1) < 0.005
    assert abs(factor.std().item() - (0.2 / 0.8) ** 0.5) < 0.005


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_keeps_one_minus_rate_scaled_and_backward_is_the_mask(dtype):
    from kaffe.layers.core import Dropout
    x = torch.full((500, 400), 3.0, dtype=dtype, requires_grad=True)
    y = Dropout(0.3)(x, training=True)
    assert y.dtype == dtype
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # keep probability 1 - rate
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 3.0 / 0.7))  # scaled 1/(1-rate)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.to(dtype) / 0.7)  # gradient = the scaled mask
    assert torch.equal(Dropout(1.0)(x, training=True), torch.zeros_like(x))
    assert Dropout(0.3)(x, training=False) is x


def test_alpha_dropout_keeps_mean_and_variance():
    x = torch.randn(400, 500)
    y = reg.AlphaDropout(0.3)(x, training=True)
    assert abs(y.mean().item()) < 0.02 and abs(y.var().item() - 1) < 0.03


@pytest.mark.parametrize("name,shape,channel_axis,data_format", [
    ("SpatialDropout1D", (64, 7, 50), -1, None),
    ("SpatialDropout2D", (64, 5, 4, 50), -1, "channels_last"),
    ("SpatialDropout2D", (64, 50, 5, 4), 1, "channels_first"),
    ("SpatialDropout3D", (64, 3, 4, 2, 50), -1, "channels_last")])
def test_spatial_dropout_drops_whole_channels(name, shape, channel_axis, data_format):
    kwargs = {} if data_format is None else {"data_format": data_format}
    x = torch.rand(shape) + 1.0
    y = LAYERS[name](0.3, **kwargs)(x, training=True)
    ratio = (y / x).movedim(channel_axis, 1).reshape(shape[0], shape[channel_axis], -1)
    per_channel = ratio[..., :1]
    assert torch.allclose(ratio, per_channel.expand_as(ratio))  # one decision per channel
    kept = per_channel[per_channel != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / 0.7))  # kept ones scaled by 1/(1-rate)
    assert abs((per_channel == 0).float().mean().item() - 0.3) < 0.05


def test_activity_regularization_loss_matches_keras():
    x = data(4, 6)
    keras_layer = keras.layers.ActivityRegularization(l1=0.01, l2=0.1)
    keras_layer(x)
    layer = reg.ActivityRegularization(l1=0.01, l2=0.1)
    out = layer(t(x))
    assert torch.equal(out, t(x))
    np.testing.assert_allclose(layer.losses[0].item(), to_np(keras_layer.losses[0]), rtol=1e-5)
    assert layer.get_config().keys() == keras_layer.get_config().keys()
    assert reg.ActivityRegularization.from_config(layer.get_config()).l2 == 0.1


# ---------------------------------------------------------------------------------- attention
def _mask_args(mask):
    return None if mask is None else [None if m is None else t(m) for m in mask]


@pytest.mark.parametrize("name,kwargs", [
    ("Attention", {}), ("Attention", {"use_scale": True}),
    ("Attention", {"score_mode": "concat", "use_scale": True}), ("AdditiveAttention", {}),
    ("AdditiveAttention", {"use_scale": False})], ids=str)
def test_attention_matches_keras(name, kwargs):
    rng = np.random.default_rng(4)
    q, v, k = data(2, 5, 4, seed=1), data(2, 6, 4, seed=2), data(2, 6, 4, seed=3)
    q_mask, v_mask = rng.random((2, 5)) > 0.3, rng.random((2, 6)) > 0.3
    v_mask[1] = False
    keras_layer, layer = twin(name, [(None, 5, 4), (None, 6, 4)], **kwargs)
    for inputs in ([q, v], [q, v, k]):
        for call in ({}, {"mask": [q_mask, v_mask]}, {"use_causal_mask": True},
                     {"use_causal_mask": True, "mask": [None, v_mask]}):
            expected = keras_layer(inputs, return_attention_scores=True, **call)
            mine = dict(call, mask=_mask_args(call.get("mask")))
            got = layer([t(a) for a in inputs], return_attention_scores=True, **mine)
            for e, g in zip(expected, got):
                np.testing.assert_allclose(g.detach().numpy(), to_np(e), **TOL)
    assert layer.count_params() == keras_layer.count_params()
    shapes = [(None, 5, 4), (None, 6, 4)]
    assert layer.compute_output_shape(shapes) == keras_layer.compute_output_shape(shapes)


def test_attention_in_a_model_takes_embedding_masks():
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 0]])
    kq, kv = keras.Input((5,), dtype="int32"), keras.Input((5,), dtype="int32")
    k_emb = keras.layers.Embedding(10, 4, mask_zero=True)
    k_att = keras.layers.Attention()
    k_model = keras.Model([kq, kv], k_att([k_emb(kq), k_emb(kv)], return_attention_scores=True))
    fq, fv = Input((5,), dtype="int64"), Input((5,), dtype="int64")
    f_emb = Embedding(10, 4, mask_zero=True)
    out, scores = att.Attention()([f_emb(fq), f_emb(fv)], return_attention_scores=True)
    assert out.shape == (None, 5, 4) and scores.shape == (None, 5, 5)
    model = Functional([fq, fv], [out, scores])
    f_emb.set_weights(k_emb.get_weights())
    expected = k_model([tokens, tokens[::-1]])
    got = model([t(tokens), t(tokens[::-1].copy())])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g.detach().numpy(), to_np(e), **TOL)


def twin_mha(query_shape, value_shape, key_shape=None, seed=5, **kwargs):
    rng = np.random.default_rng(seed)
    keras_layer = keras.layers.MultiHeadAttention(**kwargs)
    keras_layer.build(query_shape, value_shape, key_shape)
    keras_layer.set_weights([w + 0.1 * rng.standard_normal(w.shape).astype("float32")
                             for w in keras_layer.get_weights()])
    layer = att.MultiHeadAttention(**kwargs)
    zeros = [None if s is None else torch.zeros([2 if d is None else d for d in s])
             for s in (query_shape, value_shape, key_shape)]
    layer(zeros[0], zeros[1], key=zeros[2])
    layer.set_weights(keras_layer.get_weights())
    return keras_layer, layer


MHA_CASES = [
    ("self", dict(num_heads=2, key_dim=3), (None, 5, 8), (None, 5, 8), None),
    ("cross+key", dict(num_heads=3, key_dim=2, value_dim=4), (None, 5, 8), (None, 6, 4),
     (None, 6, 7)),
    ("output_shape", dict(num_heads=2, key_dim=3, output_shape=(2, 3), use_bias=False),
     (None, 5, 8), (None, 6, 4), None),
    ("dropout", dict(num_heads=2, key_dim=3, dropout=0.3), (None, 5, 8), (None, 6, 4), None),
    ("gate", dict(num_heads=2, key_dim=3, use_gate=True), (None, 5, 8), (None, 6, 4), None),
    ("window", dict(num_heads=2, key_dim=3, sliding_window=2), (None, 6, 8), (None, 6, 8), None),
    ("rank4", dict(num_heads=2, key_dim=3), (None, 4, 3, 8), (None, 4, 3, 8), None),
    ("axes2", dict(num_heads=2, key_dim=3, attention_axes=2), (None, 4, 3, 8), (None, 4, 5, 6),
     None),
]


@pytest.mark.parametrize("case,kwargs,q_shape,v_shape,k_shape", MHA_CASES,
                         ids=[c[0] for c in MHA_CASES])
def test_multi_head_attention_matches_keras(case, kwargs, q_shape, v_shape, k_shape):
    keras_layer, layer = twin_mha(q_shape, v_shape, k_shape, **kwargs)
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in keras_layer.get_weights()]
    q, v = data(2, *q_shape[1:], seed=1), data(2, *v_shape[1:], seed=2)
    key = None if k_shape is None else data(2, *k_shape[1:], seed=3)
    calls = [{}, {"return_attention_scores": True}]
    if len(q_shape) == 3:
        mask = np.random.default_rng(6).random((2, q_shape[1], v_shape[1])) > 0.3
        mask[0, 1] = False  # a query that sees nothing
        calls += [{"attention_mask": mask},
                  {"attention_mask": mask, "return_attention_scores": True},
                  {"use_causal_mask": True}, {"use_causal_mask": True, "attention_mask": mask},
                  {"use_causal_mask": True, "return_attention_scores": True}]
    for call in calls:
        expected = keras_layer(q, v, key, **call)
        mine = {k: (t(a) if isinstance(a, np.ndarray) else a) for k, a in call.items()}
        got = layer(t(q), t(v), None if key is None else t(key), **mine)
        expected, got = (expected, got) if isinstance(got, tuple) else ((expected,), (got,))
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g.detach().numpy(), to_np(e), **TOL)
    assert layer.count_params() == keras_layer.count_params()
    assert (layer.compute_output_shape(q_shape, v_shape, k_shape)
            == keras_layer.compute_output_shape(q_shape, v_shape, k_shape))
    assert layer.get_config()["attention_axes"] == keras_layer.get_config()["attention_axes"]


def test_multi_head_attention_value_mask_and_query_mask():
    keras_layer, layer = twin_mha((None, 5, 8), (None, 6, 4), num_heads=2, key_dim=3)
    q, v = data(2, 5, 8, seed=1), data(2, 6, 4, seed=2)
    v_mask = np.random.default_rng(7).random((2, 6)) > 0.4
    expected = keras_layer(q, v, value_mask=v_mask)
    np.testing.assert_allclose(layer(t(q), t(v), value_mask=t(v_mask)).detach().numpy(),
                               to_np(expected), **TOL)
    # Keras reads the query mask from the tensor (as an Embedding(mask_zero=True) leaves it).
    q_mask = np.random.default_rng(8).random((2, 5)) > 0.4
    kq = keras.ops.convert_to_tensor(q)
    keras.src.backend.set_keras_mask(kq, keras.ops.convert_to_tensor(q_mask))
    expected = keras_layer(kq, v)
    np.testing.assert_allclose(layer(t(q), t(v), query_mask=t(q_mask)).detach().numpy(),
                               to_np(expected), **TOL)


def test_multi_head_attention_in_models():
    """Functional model: embedding masks, an attention_mask input and scores as outputs."""
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 5]])
    allowed = np.random.default_rng(9).random((2, 5, 5)) > 0.2

    k_tok, k_allowed = keras.Input((5,), dtype="int32"), keras.Input((5, 5), dtype="bool")
    k_emb = keras.layers.Embedding(10, 8, mask_zero=True)
    k_mha = keras.layers.MultiHeadAttention(2, 4)
    k_x = k_emb(k_tok)
    k_model = keras.Model([k_tok, k_allowed],
                          k_mha(k_x, k_x, attention_mask=k_allowed, return_attention_scores=True))

    f_tok, f_allowed = Input((5,), dtype="int64"), Input((5, 5))
    f_emb, f_mha = Embedding(10, 8, mask_zero=True), att.MultiHeadAttention(2, 4)
    f_x = f_emb(f_tok)
    out, scores = f_mha(f_x, f_x, attention_mask=f_allowed, return_attention_scores=True)
    assert out.shape == (None, 5, 8) and scores.shape == (None, 2, 5, 5)
    model = Functional([f_tok, f_allowed], [out, scores])
    f_emb.set_weights(k_emb.get_weights())
    f_mha.set_weights(k_mha.get_weights())
    expected = k_model([tokens, allowed])
    got = model([t(tokens), t(allowed.astype("float32"))])
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g.detach().numpy(), to_np(e), **TOL)


def test_multi_head_attention_trains_with_dropout():
    x = Input((6, 8))
    y = att.MultiHeadAttention(2, 4, dropout=0.1)(x, x, use_causal_mask=True)
    model = Functional(x, y)
    model.compile("adam", "mse")
    xs, ys = np.random.rand(32, 6, 8).astype("float32"), np.random.rand(32, 6, 8).astype("float32")
    history = model.fit(xs, ys, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    layer = model.layers[-1]
    assert torch.equal(layer(t(xs[:2]), t(xs[:2])), layer(t(xs[:2]), t(xs[:2])))  # inference


# ---------------------------------------------------------------------------------- preprocessing
def test_rescaling_matches_keras():
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 3)).astype("uint8")
    for kwargs in ({"scale": 1 / 255}, {"scale": 1 / 127.5, "offset": -1},
                   {"scale": [1.0, 2.0, 3.0], "offset": [0.0, 1.0, 2.0]}):
        expected = to_np(keras.layers.Rescaling(**kwargs)(images.astype("float32")))
        np.testing.assert_allclose(pre.Rescaling(**kwargs)(t(images)).numpy(), expected, **TOL)


@pytest.mark.parametrize("axis", [-1, (1, 2), None, 1])
def test_normalization_adapt_matches_keras(axis):
    x = data(50, 3, 4) * 4 + 2
    keras_layer, layer = keras.layers.Normalization(axis=axis), pre.Normalization(axis=axis)
    keras_layer.adapt(x)
    layer.adapt(x)
    for e, g in zip(keras_layer.get_weights(), layer.get_weights()):
        np.testing.assert_allclose(g, e, **TOL)
    check_same(keras_layer, layer, x[:5])
    # Batch by batch (Keras's merge formula; Keras itself needs TensorFlow for this) and from a
    # tensor: the same statistics as the whole array at once.
    layer_b, layer_t = pre.Normalization(axis=axis), pre.Normalization(axis=axis)
    layer_b.adapt(x[i:i + 16] for i in range(0, 50, 16))
    layer_t.adapt(t(x))
    for e, g, g2 in zip(keras_layer.get_weights(), layer_b.get_weights(), layer_t.get_weights()):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(g2, e, **TOL)


def test_normalization_given_statistics_and_invert():
    x = data(4, 3)
    for kwargs in ({"mean": 2.0, "variance": 4.0}, {"mean": [1.0, 2.0, 3.0],
                                                     "variance": [1.0, 4.0, 0.0]},
                   {"mean": [1.0, 2.0, 3.0], "variance": [1.0, 4.0, 9.0], "invert": True}):
        keras_layer, layer = keras.layers.Normalization(**kwargs), pre.Normalization(**kwargs)
        check_same(keras_layer, layer, x)
        assert layer.get_weights() == []


# ---------------------------------------------------------------------------------- configs
CONFIG_CASES = [
    ("LayerNormalization", {"axis": [1, 2], "epsilon": 1e-5, "center": False}),
    ("GroupNormalization", {"groups": 4, "axis": 1, "gamma_regularizer": "l2"}),
    ("LeakyReLU", {"negative_slope": 0.1}), ("ELU", {"alpha": 0.7}),
    ("ReLU", {"max_value": 6.0, "threshold": 0.1}), ("Softmax", {"axis": 1}),
    ("PReLU", {"shared_axes": [1], "alpha_constraint": "non_neg"}),
    ("GaussianNoise", {"stddev": 0.1, "seed": 3}), ("GaussianDropout", {"rate": 0.2}),
    ("AlphaDropout", {"rate": 0.1, "noise_shape": [None, 1, 4]}),
    ("SpatialDropout1D", {"rate": 0.2}), ("SpatialDropout3D", {"rate": 0.2}),
    ("ActivityRegularization", {"l1": 0.1}),
    ("Attention", {"use_scale": True, "score_mode": "concat", "dropout": 0.1}),
    ("AdditiveAttention", {"dropout": 0.2}),
    ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3, "output_shape": (4,),
                            "attention_axes": (1,), "kernel_regularizer": "l2"}),
    ("Rescaling", {"scale": 0.5, "offset": 1.0}),
    ("Normalization", {"axis": (1, 2), "mean": 1.0, "variance": 2.0, "invert": True}),
]


@pytest.mark.parametrize("class_name,config", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_equals_keras_and_round_trips(class_name, config):
    k_config = getattr(keras.layers, class_name)(**config).get_config()
    f_layer = LAYERS[class_name](**config)
    f_config = f_layer.get_config()
    skip = {"name", "dtype", "trainable"}
    assert set(f_config) - skip == set(k_config) - skip
    for key in set(k_config) - skip:
        if key.endswith(("_initializer", "_regularizer", "_constraint")) and k_config[key]:
            assert f_config[key]["class_name"] == k_config[key]["class_name"], key
        else:
            assert f_config[key] == k_config[key], key
    again = type(f_layer).from_config({**f_config, "name": "copy"}).get_config()
    assert {**again, "name": f_config["name"]} == f_config


def test_keras_multi_head_attention_config_loads():
    """Keras writes input_axes/output_axes into the EinsumDense kernel initializer's config."""
    from kaffe.saving.serialization import deserialize_layer
    keras_layer = keras.layers.MultiHeadAttention(2, 3, value_dim=4)
    layer = deserialize_layer(keras.saving.serialize_keras_object(keras_layer),
                              custom_objects={"MultiHeadAttention": att.MultiHeadAttention})
    assert (layer.num_heads, layer.key_dim, layer.value_dim) == (2, 3, 4)


def test_multi_head_attention_initial_weights_have_keras_scale():
    layer = att.MultiHeadAttention(4, 16)
    layer(torch.zeros(1, 3, 64), torch.zeros(1, 3, 64))
    query_kernel, output_kernel = layer.get_weights()[0], layer.get_weights()[6]
    # Glorot uniform with fans (64, 4 * 16) and (4 * 16, 64): limit sqrt(6 / 128)
    for kernel in (query_kernel, output_kernel):
        assert np.abs(kernel).max() <= np.sqrt(6 / 128) + 1e-6
        assert np.abs(kernel).max() > 0.9 * np.sqrt(6 / 128)


def test_direct_build_leaves_the_layer_built_like_keras():
    """Keras 3: ``layer.build(shape)`` then ``set_weights`` works and a call does not rebuild."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import numpy as np
    import torch
    from kaffe.layers import Dense
    ours, theirs = Dense(4), keras.layers.Dense(4)
    ours.build((None, 3))
    theirs.build((None, 3))
    weights = [np.arange(12, dtype="float32").reshape(3, 4), np.ones(4, "float32")]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(ours(torch.tensor(x)).detach().numpy(),
                               keras.ops.convert_to_numpy(theirs(x)))
    assert ours.built and theirs.built
