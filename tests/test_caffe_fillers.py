"""Caffe fillers: statistics against the formulas in Caffe's filler.hpp."""
import math

import pytest
import torch

from kaffe.caffe import fillers
from kaffe.caffe.proto import caffe_pb2


def _param(**kw):
    p = caffe_pb2.FillerParameter()
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def _gen():
    return torch.Generator().manual_seed(0)


def test_constant_default_and_value():
    assert torch.equal(fillers.fill(caffe_pb2.FillerParameter(), (2, 3)), torch.zeros(2, 3))
    out = fillers.fill(_param(type="constant", value=2.5), (4,))
    assert out.dtype == torch.float32 and torch.all(out == 2.5)


def test_uniform_bounds_and_mean():
    out = fillers.fill(_param(type="uniform", min=-2, max=3), (200, 100), _gen())
    assert out.min() >= -2 and out.max() <= 3
    assert abs(out.mean().item() - 0.5) < 0.05
    assert abs(out.var().item() - 25 / 12) < 0.1


def test_gaussian_mean_std():
    out = fillers.fill(_param(type="gaussian", mean=1.0, std=0.5), (200, 100), _gen())
    assert abs(out.mean().item() - 1.0) < 0.02
    assert abs(out.std().item() - 0.5) < 0.02


def test_gaussian_sparse():
    # each value kept with probability sparse / num_outputs
    out = fillers.fill(_param(type="gaussian", std=1.0, sparse=10), (40, 5000), _gen())
    frac = (out != 0).float().mean().item()
    assert abs(frac - 10 / 40) < 0.01
    kept = out[out != 0]
    assert abs(kept.std().item() - 1.0) < 0.03


def test_positive_unitball_rows_sum_to_one():
    out = fillers.fill(_param(type="positive_unitball"), (7, 3, 4), _gen())
    assert torch.all(out >= 0) and torch.all(out <= 1)
    torch.testing.assert_close(out.reshape(7, -1).sum(1), torch.ones(7))


@pytest.mark.parametrize("norm", ["FAN_IN", "FAN_OUT", "AVERAGE"])
def test_xavier_scale(norm):
    shape = (64, 32, 3, 3)
    fan_in, fan_out = 32 * 9, 64 * 9
    n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2}[norm]
    p = _param(type="xavier", variance_norm=getattr(caffe_pb2.FillerParameter, norm))
    out = fillers.fill(p, shape, _gen())
    a = math.sqrt(3 / n)
    assert out.abs().max() <= a
    assert abs(out.var().item() - 1 / n) / (1 / n) < 0.05


@pytest.mark.parametrize("norm", ["FAN_IN", "FAN_OUT", "AVERAGE"])
def test_msra_std(norm):
    shape = (50, 20, 5, 5)
    fan_in, fan_out = 20 * 25, 50 * 25
    n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "AVERAGE": (fan_in + fan_out) / 2}[norm]
    p = _param(type="msra", variance_norm=getattr(caffe_pb2.FillerParameter, norm))
    out = fillers.fill(p, shape, _gen())
    assert abs(out.mean().item()) < 0.01 * math.sqrt(2 / n) * 10
    assert abs(out.std().item() - math.sqrt(2 / n)) / math.sqrt(2 / n) < 0.03


def test_xavier_1d_fan_out_is_count():
    out = fillers.fill(_param(type="xavier", variance_norm=caffe_pb2.FillerParameter.FAN_OUT),
                       (10000,), _gen())
    assert out.abs().max() <= math.sqrt(3 / 10000)


def test_bilinear_kernel():
    out = fillers.fill(_param(type="bilinear"), (3, 1, 4, 4))
    # K=4: f=2, c=0.75 -> weights 0.25, 0.75, 0.75, 0.25
    w = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(out[2, 0], w[:, None] * w[None, :])
    out3 = fillers.fill(_param(type="bilinear"), (1, 1, 3, 3))
    w3 = torch.tensor([0.5, 1.0, 0.5])
    torch.testing.assert_close(out3[0, 0], w3[:, None] * w3[None, :])
    with pytest.raises(ValueError, match="square"):
        fillers.fill(_param(type="bilinear"), (1, 1, 3, 4))


def test_errors():
    with pytest.raises(ValueError, match="Unknown Caffe filler type 'nope'"):
        fillers.fill(_param(type="nope"), (2,))
    with pytest.raises(ValueError, match="sparse"):
        fillers.fill(_param(type="xavier", sparse=3), (2, 2))
