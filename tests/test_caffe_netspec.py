"""pycaffe's NetSpec (``caffe.NetSpec``, ``caffe.layers``, ``caffe.params``, ``caffe.to_proto``)
and ``caffe.coord_map``, against text written by BVLC's own ``python/caffe/net_spec.py``.

Each case below is net-writing code that takes the NetSpec names as arguments, so the very same
code ran through BVLC's net_spec.py (outside this repo, with its ``caffe_pb2`` import pointed at
the same schema) to produce the expected prototxt text; the small ones are pasted in full, the
CaffeNet of ``examples/pycaffe/caffenet.py`` as its layer list and the SHA-256 of its text.
"""
import hashlib
import os
import types

import numpy as np
import pytest

import kaffe.caffe as caffe
from kaffe.caffe import layers as L, params as P
from kaffe.caffe.coord_map import coord_map_from_to, crop

KAFFE = types.SimpleNamespace(L=L, P=P, NetSpec=caffe.NetSpec, to_proto=caffe.to_proto)


# ------------------------------------------------------------------ the net-writing code
# (BVLC's test_net_spec.py lenet / anon_lenet / silent_net, examples/pycaffe/caffenet.py, and
# kaffe's own cases for param dicts, repeated fields, ntop, in_place and auto names)

def lenet(ns, batch_size=2):
    L, P = ns.L, ns.P
    n = ns.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[batch_size, 1, 28, 28]),
                                         dict(dim=[batch_size, 1, 1, 1])],
                                  transform_param=dict(scale=1. / 255), ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type='xavier'))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.ip1 = L.InnerProduct(n.pool1, num_output=30, weight_filler=dict(type='xavier'))
    n.relu1 = L.ReLU(n.ip1, in_place=True)
    n.ip2 = L.InnerProduct(n.relu1, num_output=10, weight_filler=dict(type='xavier'))
    n.loss = L.SoftmaxWithLoss(n.ip2, n.label)
    return n.to_proto()


def anon_lenet(ns, batch_size=2):
    L, P = ns.L, ns.P
    data, label = L.DummyData(shape=[dict(dim=[batch_size, 1, 28, 28]),
                                     dict(dim=[batch_size, 1, 1, 1])],
                              transform_param=dict(scale=1. / 255), ntop=2)
    conv1 = L.Convolution(data, kernel_size=5, num_output=20, weight_filler=dict(type='xavier'))
    pool1 = L.Pooling(conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    ip1 = L.InnerProduct(pool1, num_output=30, weight_filler=dict(type='xavier'))
    relu1 = L.ReLU(ip1, in_place=True)
    ip2 = L.InnerProduct(relu1, num_output=10, weight_filler=dict(type='xavier'))
    loss = L.SoftmaxWithLoss(ip2, label)
    return loss.to_proto()


def silent_net(ns):
    L = ns.L
    n = ns.NetSpec()
    n.data, n.data2 = L.DummyData(shape=dict(dim=3), ntop=2)
    n.silence_data = L.Silence(n.data, ntop=0)
    n.silence_data2 = L.Silence(n.data2, ntop=0)
    return n.to_proto()


def fields(ns):
    """Layer-level fields beside the type's own (param dicts, include, loss_weight,
    propagate_down), repeated fields given a lone value, a nested repeated message, enums."""
    L, P = ns.L, ns.P
    n = ns.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3, 8, 8]))
    n.label = L.Input(shape=[dict(dim=[2])])
    n.conv = L.Convolution(n.data, kernel_size=[3, 1], pad=1, num_output=4, group=1,
                           bias_term=False, param=[dict(lr_mult=1, decay_mult=1, name='w')],
                           weight_filler=dict(type='gaussian', std=0.01))
    n.pool = L.Pooling(n.conv, pool=P.Pooling.AVE, global_pooling=True)
    n.ip = L.InnerProduct(n.pool, num_output=3, param=[dict(lr_mult=1), dict(lr_mult=2)],
                          bias_filler=dict(type='constant', value=0.1))
    n.loss = L.SoftmaxWithLoss(n.ip, n.label, loss_weight=0.5, propagate_down=[True, False],
                               loss_param=dict(ignore_label=-1, normalization=P.Loss.VALID))
    n.acc = L.Accuracy(n.ip, n.label, include=dict(phase=ns.TEST), top_k=2)
    return n.to_proto()


def auto_names(ns):
    """Unnamed tops count per type in serialisation order; a split tuple keeps one layer;
    an in-place layer on an unnamed top; two tops of one layer named by NetSpec."""
    L = ns.L
    n = ns.NetSpec()
    x = L.Input(shape=dict(dim=[2, 6]))
    a, b = L.Slice(x, ntop=2, slice_point=[3])
    n.top_a = L.TanH(L.ReLU(a), in_place=True)
    n.first, n.second = L.Slice(L.ReLU(b), ntop=2, axis=1)
    n.out = L.Eltwise(n.first, n.second, L.InnerProduct(x, num_output=1), operation=1,
                      coeff=[1, -1, 2])
    return n.to_proto()


def caffenet(ns, include_acc=True):
    """examples/pycaffe/caffenet.py, verbatim but for the names it imports."""
    L, P, to_proto = ns.L, ns.P, ns.to_proto

    def conv_relu(bottom, ks, nout, stride=1, pad=0, group=1):
        conv = L.Convolution(bottom, kernel_size=ks, stride=stride,
                             num_output=nout, pad=pad, group=group)
        return conv, L.ReLU(conv, in_place=True)

    def fc_relu(bottom, nout):
        fc = L.InnerProduct(bottom, num_output=nout)
        return fc, L.ReLU(fc, in_place=True)

    def max_pool(bottom, ks, stride=1):
        return L.Pooling(bottom, pool=P.Pooling.MAX, kernel_size=ks, stride=stride)

    data, label = L.Data(source='/path/to/caffe-val-lmdb', backend=P.Data.LMDB, batch_size=50,
                         ntop=2,
                         transform_param=dict(crop_size=227, mean_value=[104, 117, 123],
                                              mirror=True))
    conv1, relu1 = conv_relu(data, 11, 96, stride=4)
    pool1 = max_pool(relu1, 3, stride=2)
    norm1 = L.LRN(pool1, local_size=5, alpha=1e-4, beta=0.75)
    conv2, relu2 = conv_relu(norm1, 5, 256, pad=2, group=2)
    pool2 = max_pool(relu2, 3, stride=2)
    norm2 = L.LRN(pool2, local_size=5, alpha=1e-4, beta=0.75)
    conv3, relu3 = conv_relu(norm2, 3, 384, pad=1)
    conv4, relu4 = conv_relu(relu3, 3, 384, pad=1, group=2)
    conv5, relu5 = conv_relu(relu4, 3, 256, pad=1, group=2)
    pool5 = max_pool(relu5, 3, stride=2)
    fc6, relu6 = fc_relu(pool5, 4096)
    drop6 = L.Dropout(relu6, in_place=True)
    fc7, relu7 = fc_relu(drop6, 4096)
    drop7 = L.Dropout(relu7, in_place=True)
    fc8 = L.InnerProduct(drop7, num_output=1000)
    loss = L.SoftmaxWithLoss(fc8, label)
    if include_acc:
        acc = L.Accuracy(fc8, label)
        return to_proto(loss, acc)
    return to_proto(loss)


def fcn_crop(ns):
    """coord_map.crop: FCN's score upsampling cropped back onto the input."""
    L, P = ns.L, ns.P
    n = ns.NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 3, 20, 20]))
    n.conv = L.Convolution(n.data, num_output=2, kernel_size=3, pad=5)
    n.pool = L.Pooling(n.conv, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.up = L.Deconvolution(n.pool, convolution_param=dict(num_output=2, kernel_size=4, stride=2))
    n.score = ns.crop(n.up, n.data)
    return n.to_proto()


KAFFE.TEST = caffe.TEST
KAFFE.crop = crop
CASES = [lenet, anon_lenet, silent_net, fields, auto_names, fcn_crop]

# What BVLC's net_spec.py wrote for the same code: SHA-256 of ``str(net)`` (the prototxt text)
# and, for the small nets, the text on one line (a readable diff when they differ).
BVLC_SHA256 = {
    "lenet": "ddf55f057e183b281c2aea9b0b9f339e9b54682bc96736662e415d654115563e",
    "anon_lenet": "60cefba912f8ff963fe3c3bb68e8362aeac55114826d52d407f84a6ee8a12ddb",
    "silent_net": "6e3c90761db956d9476d357bfd25de14e79ffdd6a5959acfaf37d305e8502a21",
    "fields": "76b6353f52f5bc34b61c2f34dfa9f2b5d53d4b8dcb3e2e355949b696f97b57c4",
    "auto_names": "ae928428ba8f598d01ff006f7ba253b44e0b9867e41804a1ee341eb522b9e301",
    "fcn_crop": "02d15e4c1088f80e112c6dddf08a92e179f38f93a0f8ff6faaccaaa5f24d2d0b",
    "caffenet": "933ff9bc5033769d6859e95aad8db272e133c100636b131f2acd202d87fd2849",
}
BVLC_ONE_LINE = {
    "silent_net":
        'layer { name: "data" type: "DummyData" top: "data" top: "data2" dummy_data_param { '
        'shape { dim: 3 } } } layer { name: "silence_data" type: "Silence" bottom: "data" } '
        'layer { name: "silence_data2" type: "Silence" bottom: "data2" }',
    "fields":
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 '
        'dim: 8 dim: 8 } } } layer { name: "label" type: "Input" top: "label" input_param { '
        'shape { dim: 2 } } } layer { name: "conv" type: "Convolution" bottom: "data" top: '
        '"conv" param { name: "w" lr_mult: 1.0 decay_mult: 1.0 } convolution_param { '
        'num_output: 4 bias_term: false pad: 1 kernel_size: 3 kernel_size: 1 group: 1 '
        'weight_filler { type: "gaussian" std: 0.01 } } } layer { name: "pool" type: "Pooling" '
        'bottom: "conv" top: "pool" pooling_param { pool: AVE global_pooling: true } } layer { '
        'name: "ip" type: "InnerProduct" bottom: "pool" top: "ip" param { lr_mult: 1.0 } param '
        '{ lr_mult: 2.0 } inner_product_param { num_output: 3 bias_filler { type: "constant" '
        'value: 0.1 } } } layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: '
        '"label" top: "loss" loss_weight: 0.5 propagate_down: true propagate_down: false '
        'loss_param { ignore_label: -1 normalization: VALID } } layer { name: "acc" type: '
        '"Accuracy" bottom: "ip" bottom: "label" top: "acc" include { phase: TEST } '
        'accuracy_param { top_k: 2 } }',
    "auto_names":
        'layer { name: "Input1" type: "Input" top: "Input1" input_param { shape { dim: 2 dim: 6 '
        '} } } layer { name: "Slice1" type: "Slice" bottom: "Input1" top: "Slice1" top: '
        '"Slice2" slice_param { slice_point: 3 } } layer { name: "ReLU1" type: "ReLU" bottom: '
        '"Slice1" top: "ReLU1" } layer { name: "top_a" type: "TanH" bottom: "ReLU1" top: '
        '"ReLU1" } layer { name: "ReLU2" type: "ReLU" bottom: "Slice2" top: "ReLU2" } layer { '
        'name: "first" type: "Slice" bottom: "ReLU2" top: "first" top: "second" slice_param { '
        'axis: 1 } } layer { name: "InnerProduct1" type: "InnerProduct" bottom: "Input1" top: '
        '"InnerProduct1" inner_product_param { num_output: 1 } } layer { name: "out" type: '
        '"Eltwise" bottom: "first" bottom: "second" bottom: "InnerProduct1" top: "out" '
        'eltwise_param { operation: SUM coeff: 1.0 coeff: -1.0 coeff: 2.0 } }',
    "fcn_crop":
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 '
        'dim: 20 dim: 20 } } } layer { name: "conv" type: "Convolution" bottom: "data" top: '
        '"conv" convolution_param { num_output: 2 pad: 5 kernel_size: 3 } } layer { name: '
        '"pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX '
        'kernel_size: 2 stride: 2 } } layer { name: "up" type: "Deconvolution" bottom: "pool" '
        'top: "up" convolution_param { num_output: 2 kernel_size: 4 stride: 2 } } layer { name: '
        '"score" type: "Crop" bottom: "up" bottom: "data" top: "score" crop_param { axis: 2 '
        'offset: 5 } }',
}


@pytest.mark.parametrize("case", CASES + [caffenet], ids=lambda c: c.__name__)
def test_prototxt_equals_bvlc_net_spec(case):
    from google.protobuf import text_format
    net = case(KAFFE)
    assert isinstance(net, caffe.caffe_pb2.NetParameter)
    if case.__name__ in BVLC_ONE_LINE:
        assert text_format.MessageToString(net, as_one_line=True) == \
            BVLC_ONE_LINE[case.__name__]
    assert hashlib.sha256(str(net).encode()).hexdigest() == BVLC_SHA256[case.__name__]


def test_caffenet_names_as_pycaffe():
    net = caffenet(KAFFE)
    names = [layer.name for layer in net.layer]
    assert names[:4] == ["Data1", "Convolution1", "ReLU1", "Pooling1"]
    assert names[-3:] == ["InnerProduct3", "SoftmaxWithLoss1", "Accuracy1"]
    assert list(net.layer[0].top) == ["Data1", "Data2"]
    assert list(net.layer[-1].bottom) == ["InnerProduct3", "Data2"]
    drop = net.layer[names.index("Dropout1")]
    assert list(drop.bottom) == list(drop.top) == ["InnerProduct1"]


def _write(tmp_path, net):
    path = tmp_path / "net.prototxt"
    path.write_text(str(net))
    return str(path)


def test_lenet_builds_and_runs_as_caffe_net(tmp_path):
    for case in (lenet, anon_lenet):
        proto = case(KAFFE)
        assert proto.layer[4].bottom == proto.layer[4].top  # the ReLU works in place
        net = caffe.Net(_write(tmp_path, proto), caffe.TEST)
        assert len(net.layers) == 7
        out = net.forward()
        loss = "loss" if case is lenet else "SoftmaxWithLoss1"
        assert out[loss].shape == () and np.isfinite(out[loss])
        # the in-place ReLU's output is non-negative
        assert (net.blobs["ip1" if case is lenet else "InnerProduct1"].data >= 0).all()


def test_topless_layers_build_and_forward_nothing(tmp_path):
    net = caffe.Net(_write(tmp_path, silent_net(KAFFE)), caffe.TEST)
    assert len(net.forward()) == 0


def test_netspec_output_is_accepted_as_a_netparameter():
    net = caffe.Net(fields(KAFFE), caffe.TEST)
    assert {"ip_ip_0_split_0", "ip_ip_0_split_1", "loss", "acc"} <= set(net.blobs)
    assert net.blobs["conv"].shape == (2, 4, 8, 10)
    train = caffe.Net(fields(KAFFE), caffe.TRAIN)
    assert "acc" not in train.blobs  # include { phase: TEST }


def test_type_error_names_the_input():
    data = L.DummyData(ntop=2)  # a tuple of two Tops
    with pytest.raises(TypeError, match=r"^Silence input 0 is not a Top \(type is <class "
                                        r"'tuple'>\)$"):
        L.Silence(data, ntop=0)
    L.Silence(*data, ntop=0)


def test_params_and_errors():
    assert P.Pooling.MAX == caffe.caffe_pb2.PoolingParameter.MAX
    assert P.Data.LMDB == caffe.caffe_pb2.DataParameter.LMDB
    with pytest.raises(AttributeError, match="PoolingParameter has no value 'MEDIAN'"):
        P.Pooling.MEDIAN
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[1]))
    n.bad = L.ReLU(n.data, kernel_size=3)
    with pytest.raises(AttributeError, match="unknown field 'kernel_size'"):
        n.to_proto()
    with pytest.raises(AttributeError, match="no top named 'missing'"):
        n.missing
    assert n["data"] is n.data
    with pytest.raises(KeyError, match="no top named 'missing'"):
        n["missing"]
    import copy
    assert str(copy.deepcopy(n).tops["data"].to_proto()) == str(n.data.to_proto())


def test_net_spec_module_names():
    from kaffe.caffe import net_spec
    assert caffe.layers is net_spec.layers and caffe.params is net_spec.params
    assert caffe.NetSpec is net_spec.NetSpec and caffe.to_proto is net_spec.to_proto
    assert net_spec.param_name_dict()["Convolution"] == "convolution"
    assert net_spec.param_name_dict()["InnerProduct"] == "inner_product"


# ------------------------------------------------------------------ coord_map
# expected values: BVLC's python/caffe/test/test_coord_map.py

def _coord_net(ks=3, stride=1, pad=0, pool=2, dstride=2, dpad=0):
    n = caffe.NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 1, 100, 100]))
    n.aux = L.Input(shape=dict(dim=[2, 1, 20, 20]))
    n.conv = L.Convolution(n.data, num_output=10, kernel_size=ks, stride=stride, pad=pad)
    n.pool = L.Pooling(n.conv, pool=P.Pooling.MAX, kernel_size=pool, stride=pool, pad=0)
    deconv_ks = [s * 2 for s in dstride] if isinstance(dstride, list) else dstride * 2
    n.deconv = L.Deconvolution(n.pool, num_output=10, kernel_size=deconv_ks, stride=dstride,
                               pad=dpad)
    return n


def test_coord_map_conv_pool_deconv():
    n = _coord_net()
    assert coord_map_from_to(n.deconv, n.data) == (1, 1, 0)
    n = _coord_net(pool=4, dstride=4)
    assert coord_map_from_to(n.deconv, n.data) == (1, 1, -1)
    n = _coord_net(pad=3)
    assert coord_map_from_to(n.deconv, n.data)[2] == -3
    n = _coord_net(dpad=3)
    assert coord_map_from_to(n.deconv, n.data)[2] == 3
    maps = {}
    for ks, stride, pad in ((3, 1, 0), (5, 2, 10), ([3, 5], [1, 2], [0, 10])):
        n = _coord_net(ks=ks, stride=stride, pad=pad)
        maps[str(ks)] = coord_map_from_to(n.deconv, n.data)
    (ax3, a3, b3), (ax5, a5, b5), (ax35, a35, b35) = maps["3"], maps["5"], maps["[3, 5]"]
    assert ax3 == ax5 == ax35 == 1
    assert (a3, b3, a5, b5) == (a35[0], b35[0], a35[1], b35[1])


def test_coord_map_crop_and_errors():
    n = _coord_net()
    n.crop = L.Crop(n.deconv, n.data, axis=2, offset=4)
    assert coord_map_from_to(n.crop, n.data) == (1, 1, 4)
    assert crop(n.deconv, n.data).fn.params == {"crop_param": {"axis": 2, "offset": [0]}}
    n.ip = L.InnerProduct(n.deconv, num_output=10)
    with pytest.raises(RuntimeError, match="connected by spatial layers"):
        coord_map_from_to(n.ip, n.data)
    with pytest.raises(AssertionError, match="scale mismatch"):
        n = _coord_net(pool=3, dstride=2)
        crop(n.deconv, n.data)
    n = _coord_net(dpad=10)
    with pytest.raises(AssertionError, match="negative offset"):
        crop(n.deconv, n.data)


def test_fcn_crop_builds_and_aligns():
    net = caffe.Net(fcn_crop(KAFFE), caffe.TEST)
    assert net.blobs["score"].shape == (1, 2, 20, 20)
    assert net.blobs["up"].shape[2] >= 25
