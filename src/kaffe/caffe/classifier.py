"""pycaffe's ``caffe.Classifier``: a TEST-phase ``Net`` that preprocesses images and predicts.

``Classifier(model_file, pretrained_file, image_dims=None, mean=None, input_scale=None,
raw_scale=None, channel_swap=None)``; ``predict(inputs, oversample=True)`` takes a list of
``H x W x K`` images (as ``caffe.io.load_image`` gives them), resizes them to ``image_dims``,
takes the ten oversampled crops (or the centre crop) of the net's input size, preprocesses them
with ``self.transformer`` and returns the first output blob (averaged over the ten crops).
"""
import numpy as np

from kaffe.caffe import io as caffe_io
from kaffe.caffe.net import TEST, Net

__all__ = ["Classifier"]


class Classifier(Net):
    """A ``Net`` in TEST phase with pycaffe's image classification pipeline."""

    def __init__(self, model_file, pretrained_file, image_dims=None, mean=None,
                 input_scale=None, raw_scale=None, channel_swap=None):
        Net.__init__(self, model_file, pretrained_file, TEST)
        in_ = self.inputs[0]
        self.transformer = caffe_io.Transformer({in_: self.blobs[in_].data.shape})
        self.transformer.set_transpose(in_, (2, 0, 1))
        if mean is not None:
            self.transformer.set_mean(in_, mean)
        if input_scale is not None:
            self.transformer.set_input_scale(in_, input_scale)
        if raw_scale is not None:
            self.transformer.set_raw_scale(in_, raw_scale)
        if channel_swap is not None:
            self.transformer.set_channel_swap(in_, channel_swap)
        self.crop_dims = np.array(self.blobs[in_].data.shape[2:])
        if image_dims is None or len(image_dims) == 0:
            image_dims = self.crop_dims
        self.image_dims = image_dims

    def forward_all(self, blobs=None, **kwargs):
        """Forward whole arrays through the net batch by batch (the last batch padded), as
        pycaffe's ``forward_all``; returns ``{output: array}``."""
        names = list(self.outputs) + [b for b in (blobs or []) if b not in self.outputs]
        all_outs = {name: [] for name in names}
        if not kwargs:
            out = self.forward(blobs=blobs)
            return {name: np.array(out[name], copy=True) for name in names}
        total = len(next(iter(kwargs.values())))
        for name, value in kwargs.items():
            if len(value) != total:
                raise ValueError("forward_all: the input arrays have different lengths.")
        batch = self.blobs[next(iter(kwargs))].shape[0]
        for start in range(0, total, batch):
            feed = {}
            for name, value in kwargs.items():
                chunk = np.asarray(value[start:start + batch], np.float32)
                if len(chunk) < batch:
                    pad = np.zeros((batch - len(chunk),) + chunk.shape[1:], np.float32)
                    chunk = np.concatenate([chunk, pad])
                feed[name] = chunk
            out = self.forward(blobs=blobs, **feed)
            for name in names:
                all_outs[name].extend(np.array(out[name], copy=True))
        return {name: np.asarray(values[:total]) for name, values in all_outs.items()}

    def predict(self, inputs, oversample=True):
        """Class scores for a list of ``H x W x K`` images: ``N x classes``."""
        input_ = np.zeros((len(inputs), self.image_dims[0], self.image_dims[1],
                           inputs[0].shape[2]), dtype=np.float32)
        for ix, in_ in enumerate(inputs):
            input_[ix] = caffe_io.resize_image(in_, self.image_dims)
        if oversample:
            input_ = caffe_io.oversample(input_, self.crop_dims)
        else:
            center = np.array(self.image_dims) / 2.0
            crop = np.tile(center, (1, 2))[0] + np.concatenate([-self.crop_dims / 2.0,
                                                                self.crop_dims / 2.0])
            crop = crop.astype(int)
            input_ = input_[:, crop[0]:crop[2], crop[1]:crop[3], :]
        caffe_in = np.zeros(np.array(input_.shape)[[0, 3, 1, 2]], dtype=np.float32)
        for ix, in_ in enumerate(input_):
            caffe_in[ix] = self.transformer.preprocess(self.inputs[0], in_)
        out = self.forward_all(**{self.inputs[0]: caffe_in})
        predictions = out[self.outputs[0]]
        if oversample:
            predictions = predictions.reshape((len(predictions) // 10, 10, -1))
            predictions = predictions.mean(1)
        return predictions
