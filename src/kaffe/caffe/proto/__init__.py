"""Caffe's schema: ``caffe.proto`` (BVLC's messages and field numbers) and the checked-in
``caffe_pb2`` that protoc generates from it (``tools/gen_caffe_pb2.sh``). As in pycaffe:

    >>> from kaffe.caffe.proto import caffe_pb2
    >>> caffe_pb2.NetParameter(name="LeNet").name
    'LeNet'
"""
