"""Layer-level bad input: each raises a clear error naming the layer, before any long work."""
import numpy as np
import pytest

import kaffe.caffe as caffe
from kaffe.caffe import parse_net_param

INPUT = ('layer { name: "data" type: "Input" top: "data" top: "label" input_param { '
         'shape { dim: 4 dim: 3 dim: 24 dim: 24 } shape { dim: 4 } } } ')


def _net(text, phase=caffe.TEST):
    return caffe.Net(parse_net_param(INPUT + text), phase)


def test_two_layers_writing_one_top():
    with pytest.raises(ValueError, match=r"Top blob 'y' produced by multiple sources.*'b'"):
        _net('layer { name: "a" type: "ReLU" bottom: "data" top: "y" } '
             'layer { name: "b" type: "TanH" bottom: "data" top: "y" }')


def test_in_place_top_is_not_a_second_source():
    net = _net('layer { name: "a" type: "ReLU" bottom: "data" top: "y" } '
               'layer { name: "b" type: "TanH" bottom: "y" top: "y" }')
    assert net.blobs["y"].shape == (4, 3, 24, 24)


@pytest.mark.parametrize("layer", [
    'type: "InnerProduct" bottom: "data" top: "y" inner_product_param { num_output: 0 '
    'weight_filler { type: "xavier" } }',
    'type: "Convolution" bottom: "data" top: "y" convolution_param { num_output: 0 '
    'kernel_size: 3 weight_filler { type: "xavier" } }',
    'type: "Deconvolution" bottom: "data" top: "y" convolution_param { num_output: 0 '
    'kernel_size: 3 }',
    'type: "Embed" bottom: "label" top: "y" embed_param { num_output: 0 input_dim: 5 }',
])
def test_num_output_zero_names_the_layer(layer):
    with pytest.raises(ValueError, match=r"'bad'.*num_output.*(0|positive)"):
        _net(f'layer {{ name: "bad" {layer} }}')


def test_pooling_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"Pooling layer 'pool': kernel 30x30 is larger than "
                                         r"its padded input 24x24"):
        _net('layer { name: "pool" type: "Pooling" bottom: "data" top: "p" '
             'pooling_param { kernel_size: 30 pool: MAX } }')
    # pad counts: 24 + 2 * 3 = 30 fits a 30 kernel (one output, as Caffe computes)
    net = _net('layer { name: "pool" type: "Pooling" bottom: "data" top: "p" '
               'pooling_param { kernel_size: 30 pad: 3 pool: AVE } }')
    assert net.blobs["p"].shape == (4, 3, 1, 1)


LOSSES = ('layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
          'inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.01 } } } '
          'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" '
          '%s } '
          'layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" %s }')


@pytest.mark.parametrize("bad, layer", [(12, "loss"), (-3, "loss")])
def test_label_outside_the_classes(bad, layer):
    net = _net(LOSSES % ("", ""))
    net.blobs["label"].data[...] = [1, bad, 2, 3]
    with pytest.raises(ValueError, match=rf"SoftmaxWithLoss layer '{layer}': label {bad} \(at "
                                         rf"position 1\) is outside the 10 classes"):
        net.forward()


def test_accuracy_names_itself():
    net = _net(LOSSES % ("exclude { phase: TEST }", ""))
    net.blobs["label"].data[...] = [1, 0, 10, 3]
    with pytest.raises(ValueError, match=r"Accuracy layer 'acc': label 10 .* 10 classes"):
        net.forward()


def test_ignore_label_is_not_out_of_range():
    net = _net(LOSSES % ('loss_param { ignore_label: 255 }',
                         'accuracy_param { ignore_label: 255 }'))
    net.blobs["label"].data[...] = [1, 255, 2, 3]
    out = net.forward()
    assert np.isfinite(out["loss"]) and 0 <= out["acc"] <= 1
    net.blobs["label"].data[...] = [1, 255, 11, 3]
    with pytest.raises(ValueError, match=r"label 11 .*or ignore_label 255"):
        net.forward()


def test_index_layers_check_their_indices():
    net = caffe.Net(parse_net_param(
        'layer { name: "d" type: "Input" top: "d" top: "i" input_param { shape { dim: 3 '
        'dim: 2 } shape { dim: 2 } } } '
        'layer { name: "br" type: "BatchReindex" bottom: "d" bottom: "i" top: "y" }'), caffe.TEST)
    net.blobs["i"].data[...] = [0, 3]
    with pytest.raises(ValueError, match=r"BatchReindex layer 'br': index 3 is out of range; "
                                         r"the first bottom has 3 rows"):
        net.forward()
