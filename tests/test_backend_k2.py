"""Keras 2's graph-level backend (``K.function``, ``K.gradients``, ``K.placeholder``, learning
phase), the TensorFlow-convention nn functions (conv, local conv, pooling, CTC) and ``K.*`` on
symbolic tensors, against Keras 3's ops (torch backend), torch autograd and Keras 2's
definitions."""
import keras
import numpy as np
import pytest
import torch

import kaffe
from kaffe import backend as K

RNG = np.random.default_rng(0)


def close(a, b, rtol=1e-5, atol=1e-5):
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# -- K.function, learning phase, placeholder -----------------------------------------------------

def dropout_model():
    inp = kaffe.Input(shape=(8,))
    hidden = kaffe.layers.Dense(16)(inp)
    out = kaffe.layers.Dropout(0.5)(hidden)
    return kaffe.Model(inp, out), hidden


def test_function_with_learning_phase_input():
    model, hidden = dropout_model()
    f = K.function([model.input, K.learning_phase()], [model.output, hidden])
    x = RNG.random((32, 8))
    test_out, test_hidden = f([x, 0])
    close(test_out, model.predict(x, verbose=0))
    close(test_hidden, test_out)  # dropout is identity at test time
    train_out, train_hidden = f([x, 1])
    dropped = train_out == 0
    assert 0.3 < dropped.mean() < 0.7
    close(train_out[~dropped], 2 * train_hidden[~dropped])  # kept units scaled by 1 / (1 - 0.5)


def test_set_learning_phase_fixes_the_phase():
    model, _ = dropout_model()
    f = K.function([model.input], [model.output])
    x = RNG.random((64, 8))
    try:
        K.set_learning_phase(1)
        assert K.learning_phase() == 1
        assert (f([x])[0] == 0).mean() > 0.3
    finally:
        K.set_learning_phase(0)
    close(f([x])[0], model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="0 or 1"):
        K.set_learning_phase(2)


def test_placeholder_is_a_symbolic_input():
    p = K.placeholder(shape=(None, 5))
    assert K.is_keras_tensor(p) and K.is_placeholder(p) and K.int_shape(p) == (None, 5)
    q = K.placeholder(ndim=3)
    assert K.int_shape(q) == (None, None, None)
    row_sums = K.function([p], [K.sum(p, axis=1)])
    close(row_sums([np.ones((2, 5))])[0], [5.0, 5.0])


# -- gradients ----------------------------------------------------------------------------------

def test_gradients_of_symbolic_loss_match_autograd():
    """conv_filter_visualization's pattern: loss on a layer output, gradient w.r.t. the input,
    normalised with further K ops, run through K.function."""
    inp = kaffe.Input(shape=(6, 6, 2))
    conv = kaffe.layers.Conv2D(3, 3, activation="relu")
    features = conv(inp)
    loss = K.mean(K.square(features))
    grads = K.gradients(loss, inp)[0]
    grads = grads / (K.sqrt(K.mean(K.square(grads))) + K.epsilon())
    iterate = K.function([inp], [loss, grads])
    x = RNG.random((1, 6, 6, 2))
    loss_value, grad_value = iterate([x])

    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    ref_loss = conv(xt).square().mean()
    (ref_grad,) = torch.autograd.grad(ref_loss, xt)
    ref_grad = ref_grad / (ref_grad.square().mean().sqrt() + 1e-7)
    close(loss_value, ref_loss)
    close(grad_value, ref_grad, rtol=1e-4)


def test_gradients_against_weights_and_eager():
    inp = kaffe.Input(shape=(4,))
    dense = kaffe.layers.Dense(2)
    loss = K.sum(dense(inp))
    kernel_grad = K.gradients(loss, [dense.kernel])[0]
    x = RNG.random((3, 4))
    got = K.function([inp], [kernel_grad])([x])[0]
    (ref,) = torch.autograd.grad(dense(torch.tensor(x, dtype=torch.float32)).sum(), dense.kernel)
    close(got, ref)  # the weight as stored
    w = torch.ones(3, requires_grad=True)
    (g,) = K.gradients(K.sum(w * torch.tensor([1.0, 2.0, 3.0])), [w])
    close(g, [1.0, 2.0, 3.0])


# -- K.* on symbolic tensors record graph nodes --------------------------------------------------

def test_k_functions_on_keras_tensors_build_a_working_graph():
    inp = kaffe.Input(shape=(3, 4))
    flat = K.batch_flatten(inp)
    both = K.concatenate([flat, K.square(flat)], axis=-1)
    out = K.l2_normalize(both, axis=-1) + K.expand_dims(K.mean(both, axis=1), -1)
    scaled = K.maximum(out, 0.1) * K.exp(K.log(K.sigmoid(out)))
    summed = K.sum(scaled, axis=1, keepdims=True)
    model = kaffe.Model(inp, [scaled, summed])
    assert K.int_shape(scaled) == (None, 24) and K.int_shape(summed) == (None, 1)
    x = torch.tensor(RNG.random((5, 3, 4)), dtype=torch.float32)
    e_flat = K.batch_flatten(x)
    e_both = K.concatenate([e_flat, K.square(e_flat)], axis=-1)
    e_out = K.l2_normalize(e_both, axis=-1) + K.expand_dims(K.mean(e_both, axis=1), -1)
    e_scaled = K.maximum(e_out, 0.1) * K.exp(K.log(K.sigmoid(e_out)))
    got_scaled, got_sum = model(x)
    close(got_scaled, e_scaled)
    close(got_sum, K.sum(e_scaled, axis=1, keepdims=True))


def test_k_function_without_ops_equivalent_records_a_lambda():
    inp = kaffe.Input(shape=(5, 2))
    padded = K.temporal_padding(inp, (1, 2))
    assert K.int_shape(padded) == (None, 8, 2)
    x = RNG.random((2, 5, 2)).astype("float32")
    close(kaffe.Model(inp, padded)(torch.tensor(x)), np.pad(x, ((0, 0), (1, 2), (0, 0))))


def test_shape_answers_for_symbolic_tensors():
    inp = kaffe.Input(shape=(7, 3))
    assert K.shape(inp) == (None, 7, 3) and K.ndim(inp) == 3 and K.dtype(inp) == "float32"


# -- convolutions and pooling against keras.ops ---------------------------------------------------

@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides,dilation", [(1, 1), (2, 1), (1, 2)])
def test_conv1d_conv2d_match_keras_ops(padding, strides, dilation):
    if strides > 1 and dilation > 1:
        pytest.skip("TensorFlow refuses strides and dilation together")
    x1 = RNG.normal(size=(2, 11, 3)).astype("float32")
    k1 = RNG.normal(size=(4, 3, 5)).astype("float32")
    close(K.conv1d(torch.tensor(x1), torch.tensor(k1), strides=strides, padding=padding,
                   dilation_rate=dilation),
          keras.ops.conv(x1, k1, strides=strides, padding=padding, dilation_rate=dilation),
          rtol=1e-4, atol=1e-4)
    x2 = RNG.normal(size=(2, 9, 8, 3)).astype("float32")
    k2 = RNG.normal(size=(3, 2, 3, 4)).astype("float32")
    close(K.conv2d(torch.tensor(x2), torch.tensor(k2), strides=(strides, strides),
                   padding=padding, dilation_rate=(dilation, dilation)),
          keras.ops.conv(x2, k2, strides=strides, padding=padding, dilation_rate=dilation),
          rtol=1e-4, atol=1e-4)


def test_conv1d_causal_is_left_padding():
    x = RNG.normal(size=(2, 7, 3)).astype("float32")
    k = RNG.normal(size=(3, 3, 2)).astype("float32")
    ref = keras.ops.conv(np.pad(x, ((0, 0), (4, 0), (0, 0))), k, dilation_rate=2)
    close(K.conv1d(torch.tensor(x), torch.tensor(k), padding="causal", dilation_rate=2), ref,
          rtol=1e-4, atol=1e-4)


def test_local_conv1d_and_2d_follow_keras2_definition():
    x = RNG.normal(size=(2, 9, 3)).astype("float32")
    size, stride, filters = 3, 2, 4
    out_len = (9 - size) // stride + 1
    kernel = RNG.normal(size=(out_len, size * 3, filters)).astype("float32")
    # Keras 2: each output step i takes x[:, i*s : i*s+k, :] flattened (steps major).
    ref = np.stack([x[:, i * stride:i * stride + size, :].reshape(2, -1) @ kernel[i]
                    for i in range(out_len)], axis=1)
    close(K.local_conv1d(torch.tensor(x), torch.tensor(kernel), (size,), (stride,)), ref,
          rtol=1e-4, atol=1e-4)
    x2 = RNG.normal(size=(2, 5, 4, 3)).astype("float32")
    rows, cols = 4, 3
    kernel2 = RNG.normal(size=(rows * cols, 2 * 2 * 3, filters)).astype("float32")
    ref2 = np.stack([x2[:, r:r + 2, c:c + 2, :].reshape(2, -1) @ kernel2[r * cols + c]
                     for r in range(rows) for c in range(cols)], axis=1).reshape(2, rows, cols, -1)
    close(K.local_conv2d(torch.tensor(x2), torch.tensor(kernel2), (2, 2), (1, 1), (rows, cols)),
          ref2, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode,keras_fn", [("max", "max_pool"), ("avg", "average_pool")])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_pool2d_matches_keras_ops(mode, keras_fn, padding):
    x = RNG.normal(size=(2, 7, 6, 3)).astype("float32")
    ref = getattr(keras.ops, keras_fn)(x, pool_size=(3, 2), strides=(2, 2), padding=padding)
    close(K.pool2d(torch.tensor(x), (3, 2), (2, 2), padding=padding, pool_mode=mode), ref)


# -- CTC against keras.ops (which takes logits; Keras 2 used log(y_pred + epsilon)) ---------------

def ctc_case():
    samples, steps, classes = 3, 12, 6
    logits = RNG.normal(size=(samples, steps, classes)).astype("float32")
    y_pred = torch.softmax(torch.tensor(logits), -1)
    labels = np.array([[1, 2, 2, 0], [3, 4, 0, 0], [0, 1, 2, 3]])
    label_length = np.array([[3], [2], [4]])
    input_length = np.array([[12], [9], [10]])
    return y_pred, labels, label_length, input_length, classes


def test_ctc_batch_cost_matches_keras_ops_ctc_loss():
    y_pred, labels, label_length, input_length, classes = ctc_case()
    got = K.ctc_batch_cost(torch.tensor(labels), y_pred, torch.tensor(input_length),
                           torch.tensor(label_length))
    assert tuple(got.shape) == (3, 1)
    ref = keras.ops.ctc_loss(labels, np.log(y_pred.numpy() + K.epsilon()), label_length[:, 0],
                             input_length[:, 0], mask_index=classes - 1)
    close(got[:, 0], ref, rtol=1e-4)


def test_ctc_batch_cost_trains_through_a_graph():
    inp = kaffe.Input(shape=(12, 6))
    probs = kaffe.layers.Dense(6, activation="softmax")(inp)
    labels, in_len, lab_len = (kaffe.Input(shape=(4,), dtype="int64"),
                               kaffe.Input(shape=(1,), dtype="int64"),
                               kaffe.Input(shape=(1,), dtype="int64"))
    loss = kaffe.layers.Lambda(lambda a: K.ctc_batch_cost(*a))([labels, probs, in_len, lab_len])
    model = kaffe.Model([inp, labels, in_len, lab_len], loss)
    model.compile(optimizer="adam", loss=lambda y_true, y_pred: y_pred)
    x = RNG.normal(size=(8, 12, 6)).astype("float32")
    y = RNG.integers(0, 5, size=(8, 4))
    first = model.evaluate([x, y, np.full((8, 1), 12), np.full((8, 1), 4)], np.zeros(8), verbose=0)
    model.fit([x, y, np.full((8, 1), 12), np.full((8, 1), 4)], np.zeros(8), epochs=20, verbose=0)
    last = model.evaluate([x, y, np.full((8, 1), 12), np.full((8, 1), 4)], np.zeros(8), verbose=0)
    assert np.isfinite(first) and last < first


def test_ctc_decode_greedy_matches_keras_ops():
    y_pred, _, _, input_length, classes = ctc_case()
    (decoded,), log_prob = K.ctc_decode(y_pred, torch.tensor(input_length[:, 0]))
    ref_decoded, ref_scores = keras.ops.ctc_decode(
        np.log(y_pred.numpy() + K.epsilon()), input_length[:, 0], strategy="greedy",
        mask_index=classes - 1)
    ref = np.asarray(ref_decoded)[0]
    assert decoded.shape == (3, 12)
    np.testing.assert_array_equal(decoded.numpy()[:, :ref.shape[1]], ref)
    assert (decoded.numpy()[:, ref.shape[1]:] == -1).all()
    close(log_prob[:, 0], np.asarray(ref_scores)[:, 0], rtol=1e-4)


def test_ctc_decode_beam_search_matches_keras_ops():
    """``greedy=False`` is TF's beam search over ``log(y_pred + eps)``, the blank last;
    Keras 3's ``ops.ctc_decode(strategy='beam_search')`` is the oracle."""
    y_pred, _, _, input_length, classes = ctc_case()
    decoded, log_prob = K.ctc_decode(y_pred, torch.tensor(input_length[:, 0]), greedy=False,
                                     beam_width=8, top_paths=2)
    ref_decoded, ref_scores = keras.ops.ctc_decode(
        np.log(y_pred.numpy() + K.epsilon()), input_length[:, 0], strategy="beam_search",
        beam_width=8, top_paths=2, mask_index=classes - 1)
    assert len(decoded) == 2 and decoded[0].dtype == torch.int64
    for ours, ref in zip(decoded, np.asarray(ref_decoded)):
        np.testing.assert_array_equal(ours.numpy()[:, :ref.shape[1]], ref)
    close(log_prob, np.asarray(ref_scores), rtol=1e-4)


# -- what TensorFlow 1 had and kaffe does not -----------------------------------------------------

@pytest.mark.parametrize("name", ["get_session", "set_session", "get_graph",
                                  "manual_variable_initialization"])
def test_tf1_names_say_there_are_no_sessions(name):
    with pytest.raises(K.NoSessionError, match="no TensorFlow sessions.*Instead"):
        getattr(K, name)()


def test_function_refuses_updates_and_backend_name():
    inp = kaffe.Input(shape=(2,))
    with pytest.raises(ValueError, match="no sessions"):
        K.function([inp], [inp], updates=[(inp, inp)])
    assert K.backend() == "tensorflow"
    assert "tensorflow" in K.backend.__doc__ and "torch" in K.backend.__doc__
