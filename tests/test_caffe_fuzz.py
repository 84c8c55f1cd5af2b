"""Fuzzing kaffe's Caffe readers: truncated and bit-flipped copies of real Caffe files either
read or raise a kaffe error (CaffeFormatError, a ValueError), never anything else.

Runs derandomized (the same cases every run) and without hypothesis's example database.
"""
import os
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import kaffe.caffe as caffe  # noqa: E402



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

FUZZ = settings(max_examples=120, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _bytes(*parts):
    return Path(REF.joinpath(*parts)).read_bytes() if REF else b""


# LeNet's weights (current and V1 format, 1.7 MB) and small real nets whose bytes are mostly
# structure (names, types, shapes), where flips reach the parser's harder paths.
CAFFEMODELS = [_bytes("mnist", "lenet_iter_200.caffemodel"),
               _bytes("upgrade", "lenet_v1_iter_200.caffemodel"),
               _bytes("layers", "mini_convnet.caffemodel"), _bytes("layers", "lstm.caffemodel"),
               _bytes("solvers", "init.caffemodel")]
STATE = _bytes("mnist", "lenet_iter_200.solverstate")
MEAN = _bytes("pycaffe_io", "blobproto_4d.binaryproto")
TEXTS = {name: _bytes(*parts) for name, parts in {
    "lenet": ("mnist", "lenet_train_test.prototxt"),
    "v1": ("upgrade", "deploy_v1_input_dim.prototxt"),
    "v0": ("upgrade", "tiny_v0.prototxt"),
}.items()}


def _letters(data):
    """Offsets of the ASCII letters in ``data``'s first 64 KiB: mostly names and types."""
    return [i for i, b in enumerate(data[:65536]) if 65 <= b <= 90 or 97 <= b <= 122]


LETTERS = {}


def mutate(data, draw):
    """A truncation of ``data``, or ``data`` with a few bits flipped: anywhere, near the start
    (tags and lengths rather than float values), or in its text (names, types, paths)."""
    mode = draw(st.sampled_from(["truncate", "anywhere", "start", "text"]))
    if not data or mode == "truncate":
        return data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    out = bytearray(data)
    letters = LETTERS.setdefault(id(data), _letters(data)) or [0]
    for _ in range(draw(st.integers(1, 6))):
        if mode == "text":
            where = draw(st.sampled_from(letters))
        else:
            where = draw(st.integers(0, len(out) - 1 if mode == "anywhere"
                                     else min(len(out) - 1, 2048)))
        out[where] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def check(read, path):
    try:
        result = read(path)
    except caffe.CaffeFormatError as error:
        assert isinstance(error, ValueError)
        assert str(path) in str(error) or error.path == str(path)
        return
    if read is caffe.load_caffemodel:  # what parses is usable: names are text
        assert all(isinstance(name, str) for name in result)


@needs_reference
@settings(FUZZ, max_examples=400)
@given(st.data())
def test_caffemodel_truncations_and_bit_flips(tmp_path, data):
    source = CAFFEMODELS[data.draw(st.integers(0, len(CAFFEMODELS) - 1))]
    path = tmp_path / "fuzz.caffemodel"
    path.write_bytes(mutate(source, data.draw))
    check(caffe.load_caffemodel, path)
    check(caffe.read_caffemodel, path)


@needs_reference
@FUZZ
@given(st.data())
def test_solverstate_and_binaryproto_mutations(tmp_path, data):
    state, mean = tmp_path / "fuzz.solverstate", tmp_path / "fuzz.binaryproto"
    state.write_bytes(mutate(STATE, data.draw))
    mean.write_bytes(mutate(MEAN, data.draw))
    check(caffe.load_solverstate, state)
    check(caffe.load_blobproto, mean)


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes(tmp_path, blob):
    path = tmp_path / "junk.caffemodel"
    path.write_bytes(blob)
    for read in (caffe.load_caffemodel, caffe.read_caffemodel, caffe.load_blobproto,
                 caffe.load_solverstate):
        check(read, path)


@needs_reference
@settings(FUZZ, max_examples=300)
@given(st.data())
def test_prototxt_truncations_and_bit_flips(data):
    name = data.draw(st.sampled_from(sorted(TEXTS)))  # names print short on failure
    text = mutate(TEXTS[name], data.draw)
    try:
        caffe.parse_net_param(text, path=f"{name}.prototxt")
    except caffe.CaffeFormatError as error:
        assert isinstance(error, ValueError) and f"{name}.prototxt" in str(error)


@settings(FUZZ, max_examples=200)
@given(st.text(alphabet='layers{}: "#\n\tinput_dimtopbottom0123456789.-_CONVOLUTIONreluconv',
               max_size=120))
def test_prototxt_soup(text):
    try:
        caffe.parse_net_param(text)
    except caffe.CaffeFormatError:
        pass
