"""``kaffe.ops.rearrange`` and ``kaffe.ops.nn.ctc_decode`` against Keras 3 (torch backend):
the same inputs into both, eagerly and symbolically; errors that say what was wrong."""
import numpy as np
import pytest
import torch

import kaffe
from kaffe import ops

keras = pytest.importorskip("keras")

rng = np.random.default_rng(5)
IMAGES = rng.uniform(size=(4, 6, 8, 3)).astype("float32")
PATTERNS = [
    ("b h w c -> b c h w", {}), ("b h w c -> (b h) w c", {}), ("b h w c -> h (b w) c", {}),
    ("b h w c -> b (c h w)", {}), ("b (h1 h) (w1 w) c -> (b h1 w1) h w c", {"h1": 2, "w1": 2}),
    ("b (h h1) (w w1) c -> b h w (c h1 w1)", {"h1": 2, "w1": 4}),
    ("b (h1 h) w c -> b h (w h1 c)", {"h": 3}),
]


@pytest.mark.parametrize("pattern,lengths", PATTERNS)
def test_rearrange_equals_keras(pattern, lengths):
    ours = ops.rearrange(IMAGES, pattern, **lengths)
    np.testing.assert_array_equal(ours.numpy(),
                                  np.asarray(keras.ops.rearrange(IMAGES, pattern, **lengths)))
    fixed = ops.rearrange(kaffe.Input(batch_shape=IMAGES.shape), pattern, **lengths)
    theirs = keras.ops.rearrange(keras.Input(batch_shape=IMAGES.shape), pattern, **lengths)
    assert tuple(fixed.shape) == tuple(theirs.shape)


def test_rearrange_in_a_graph_with_unknown_batch():
    """Keras 3 cannot infer these shapes with an unknown batch axis; kaffe can."""
    x = kaffe.Input(shape=(6, 8, 3))
    y = ops.rearrange(x, "b (h1 h) w c -> (b h1) (h w) c", h1=2)
    assert tuple(y.shape) == (None, 24, 3)
    model = kaffe.Model(x, y)
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0),
                                  ops.rearrange(IMAGES, "b (h1 h) w c -> (b h1) (h w) c",
                                                h1=2).numpy())


@pytest.mark.parametrize("pattern,lengths,message", [
    ("b h w -> b h w", {}, r"expected 3 dims, received a 4-dim tensor.*\(4, 6, 8, 3\)"),
    ("b h w c -> b h w", {}, r"only on one side.*\['c'\]"),
    ("b h w c -> ... c", {}, r"ellipsis"),
    ("b (h h1) w c -> b h w c h1", {"h1": 5}, r"can't divide axis of length 6 in chunks of 5"),
    ("b (h h1) w c -> b h w c h1", {}, r"could not infer sizes for \['h', 'h1'\]"),
    ("b h h c -> b h c", {}, r"duplicate dimension\(s\) \['h'\]"),
    ("b h w c -> b h w 1 c", {}, r"'1' is not an axis name"),
    ("b h w c b c h w", {}, r"one '->'"),
    ("b h w c -> b h w c", {"q": 2}, r"axes_lengths names \['q'\]"),
    ("b (h h1) w c -> b h w c h1", {"h": 4, "h1": 2}, r"8 != 6"),
])
def test_rearrange_errors_name_the_problem(pattern, lengths, message):
    with pytest.raises(ValueError, match=r"ops\.rearrange: .*" + message):
        ops.rearrange(IMAGES, pattern, **lengths)


def _ctc_case(batch, steps, classes, seed):
    r = np.random.default_rng(seed)
    inputs = (2 * r.normal(size=(batch, steps, classes))).astype("float32")
    lengths = r.integers(1, steps + 1, size=batch)
    lengths[0] = steps
    return inputs, lengths


def _same_decoding(ours, theirs):
    assert ours[0].dtype == theirs[0].dtype == torch.int32
    np.testing.assert_array_equal(ours[0].numpy(), np.asarray(theirs[0]))
    np.testing.assert_allclose(ours[1].numpy(), np.asarray(theirs[1]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask_index", [0, 4, None])
@pytest.mark.parametrize("merge_repeated", [True, False])
def test_ctc_greedy_equals_keras(mask_index, merge_repeated):
    inputs, lengths = _ctc_case(3, 7, 5, 0)
    kwargs = dict(mask_index=mask_index, merge_repeated=merge_repeated)
    _same_decoding(ops.nn.ctc_decode(inputs, lengths, **kwargs),
                   keras.ops.nn.ctc_decode(inputs, lengths, **kwargs))


@pytest.mark.parametrize("shape,seed", [((3, 7, 5), 1), ((4, 9, 6), 2), ((2, 12, 4), 3)])
@pytest.mark.parametrize("beam_width,top_paths", [(1, 1), (3, 2), (5, 3), (10, 4)])
def test_ctc_beam_search_equals_keras(shape, seed, beam_width, top_paths):
    inputs, lengths = _ctc_case(*shape, seed)
    for mask_index in (0, shape[2] - 1, 2):
        kwargs = dict(strategy="beam_search", beam_width=beam_width, top_paths=top_paths,
                      mask_index=mask_index)
        _same_decoding(ops.nn.ctc_decode(inputs, lengths, **kwargs),
                       keras.ops.nn.ctc_decode(inputs, lengths, **kwargs))


@pytest.mark.parametrize("shape,beam_width", [((2, 20, 12), 40), ((3, 25, 40), 8)])
def test_ctc_beam_search_wide_beam_and_long_sequence_equal_keras(shape, beam_width):
    """Long enough that a path's packed key spans several int64 words."""
    inputs, lengths = _ctc_case(*shape, 4)
    kwargs = dict(strategy="beam_search", beam_width=beam_width, top_paths=3)
    _same_decoding(ops.nn.ctc_decode(inputs, lengths, **kwargs),
                   keras.ops.nn.ctc_decode(inputs, lengths, **kwargs))


def test_ctc_decode_symbolic_shapes_equal_keras_and_graph_runs():
    inputs, lengths = _ctc_case(3, 7, 5, 6)
    for kwargs in ({}, {"strategy": "beam_search", "beam_width": 4, "top_paths": 2}):
        ours = ops.nn.ctc_decode(kaffe.Input(batch_shape=(3, 7, 5)), lengths, **kwargs)
        theirs = keras.ops.nn.ctc_decode(keras.Input(batch_shape=(3, 7, 5)), lengths, **kwargs)
        assert [tuple(t.shape) for t in ours] == [tuple(t.shape) for t in theirs]
        x, n = kaffe.Input(shape=(7, 5)), kaffe.Input(shape=(), dtype="int64")
        model = kaffe.Model([x, n], list(ops.nn.ctc_decode(x, n, **kwargs)))
        decoded, scores = model.predict([inputs, lengths], verbose=0)
        _same_decoding((torch.as_tensor(decoded), torch.as_tensor(scores)),
                       keras.ops.nn.ctc_decode(inputs, lengths, **kwargs))


def test_ctc_decode_bad_arguments():
    inputs, lengths = _ctc_case(3, 7, 5, 0)
    with pytest.raises(ValueError, match=r"strategy must be one of.*'beam'"):
        ops.nn.ctc_decode(inputs, lengths, strategy="beam")
    with pytest.raises(ValueError, match=r"beam_width must be a positive int.*beam_width=0"):
        ops.nn.ctc_decode(inputs, lengths, strategy="beam_search", beam_width=0)
    with pytest.raises(ValueError, match=r"mask_index=7 is not a class.*5 classes"):
        ops.nn.ctc_decode(inputs, lengths, mask_index=7)
    with pytest.raises(ValueError, match=r"2 sequence_lengths for a batch of 3"):
        ops.nn.ctc_decode(inputs, lengths[:2])
    with pytest.raises(ValueError, match=r"\(batch, steps, classes\).*\(7, 5\)"):
        ops.nn.ctc_decode(inputs[0], lengths)
