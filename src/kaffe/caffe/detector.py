"""pycaffe's ``caffe.Detector``: windowed detection (R-CNN style) with a TEST-phase ``Net``.

``Detector(model_file, pretrained_file, mean=None, input_scale=None, raw_scale=None,
channel_swap=None, context_pad=None)``; ``detect_windows([(image_file, windows), ...])``
crops each window (``ymin, xmin, ymax, xmax``; with ``context_pad`` a border of that many
net-input pixels is surrounding context, padded with the mean beyond the image), warps it to
the net's input size, runs all crops batch by batch and returns one
``{'window', 'prediction', 'filename'}`` dict per window, the prediction being the first output
blob. ``detect_selective_search`` needs the external ``selective_search_ijcv_with_python``.
"""
import os

import numpy as np

from kaffe.caffe import io as caffe_io
from kaffe.caffe.net import TEST, Net

__all__ = ["Detector"]


class Detector(Net):
    """A ``Net`` in TEST phase that classifies image windows."""

    def __init__(self, model_file, pretrained_file, mean=None, input_scale=None,
                 raw_scale=None, channel_swap=None, context_pad=None):
        Net.__init__(self, model_file, TEST, weights=pretrained_file)
        in_ = self.inputs[0]
        self.transformer = caffe_io.Transformer({in_: self.blobs[in_].data.shape})
        self.transformer.set_transpose(in_, (2, 0, 1))
        for setter, value in ((self.transformer.set_mean, mean),
                              (self.transformer.set_input_scale, input_scale),
                              (self.transformer.set_raw_scale, raw_scale),
                              (self.transformer.set_channel_swap, channel_swap)):
            if value is not None:
                setter(in_, value)
        self.configure_crop(context_pad)

    def detect_windows(self, images_windows):
        """Classify every window of every image; see the module docstring."""
        images_windows = [(name, list(windows)) for name, windows in images_windows]
        crops = []
        for name, windows in images_windows:
            image = caffe_io.load_image(name).astype(np.float32)
            crops.extend(self.crop(image, np.asarray(w)) for w in windows)
        if not crops:
            return []
        in_ = self.inputs[0]
        batch = np.zeros((len(crops), crops[0].shape[2]) + self.blobs[in_].data.shape[2:],
                         np.float32)
        for i, crop in enumerate(crops):
            batch[i] = self.transformer.preprocess(in_, crop)
        predictions = self.forward_all(**{in_: batch})[self.outputs[0]]
        detections, i = [], 0
        for name, windows in images_windows:
            for window in windows:
                detections.append({"window": window, "prediction": predictions[i],
                                   "filename": name})
                i += 1
        return detections

    def detect_selective_search(self, image_fnames):
        """Detect over Selective Search proposals (needs ``selective_search_ijcv_with_python``
        and its MATLAB code, as pycaffe does)."""
        try:
            import selective_search_ijcv_with_python as selective_search
        except ImportError as err:
            raise ImportError("detect_selective_search needs the selective_search_ijcv_with_"
                              "python package (github.com/sergeyk/selective_search_ijcv_with_"
                              "python) on sys.path; or pass windows to detect_windows.") from err
        image_fnames = [os.path.abspath(f) for f in image_fnames]
        windows = selective_search.get_windows(image_fnames, cmd="selective_search_rcnn")
        return self.detect_windows(zip(image_fnames, windows))

    def crop(self, im, window):
        """The ``H x W x K`` crop of ``window`` (``ymin, xmin, ymax, xmax``), with context."""
        window = np.asarray(window)
        if not self.context_pad:
            return im[window[0]:window[2], window[1]:window[3]]
        size = self.blobs[self.inputs[0]].width   # square input, as pycaffe assumes
        scale = size / (1.0 * size - self.context_pad * 2)
        half_h, half_w = (window[2] - window[0] + 1) / 2.0, (window[3] - window[1] + 1) / 2.0
        center = (window[0] + half_h, window[1] + half_w)
        box = np.round(np.tile(center, 2) + scale * np.array((-half_h, -half_w, half_h,
                                                                half_w)))
        scale_h, scale_w = size / (box[2] - box[0] + 1), size / (box[3] - box[1] + 1)
        pad_y, pad_x = round(max(0, -box[0]) * scale_h), round(max(0, -box[1]) * scale_w)
        im_h, im_w = im.shape[:2]
        box = np.clip(box, 0.0, [im_h, im_w, im_h, im_w])
        clip_h, clip_w = box[2] - box[0] + 1, box[3] - box[1] + 1
        if clip_h <= 0 or clip_w <= 0:
            raise ValueError(f"Detector.crop: window {window.tolist()} lies outside the "
                             f"{im_h}x{im_w} image.")
        crop_h = min(round(clip_h * scale_h), size - pad_y)
        crop_w = min(round(clip_w * scale_w), size - pad_x)
        box = box.astype(int)
        context = caffe_io.resize_image(im[box[0]:box[2], box[1]:box[3]], (crop_h, crop_w))
        out = np.ones(self.crop_dims, np.float32) * self.crop_mean
        out[pad_y:pad_y + crop_h, pad_x:pad_x + crop_w] = context
        return out

    def configure_crop(self, context_pad):
        """Set the crop size (the net input's) and the context padding; with padding, the
        mean in unprocessed input space fills what lies beyond the image."""
        in_ = self.inputs[0]
        transpose = self.transformer.transpose[in_]
        inverse = [transpose[t] for t in transpose]
        self.crop_dims = np.array(self.blobs[in_].data.shape[1:])[inverse]
        self.context_pad = context_pad
        if not context_pad:
            return
        mean = self.transformer.mean.get(in_)
        if mean is None:
            self.crop_mean = np.zeros(self.crop_dims, np.float32)
            return
        crop_mean = mean.copy().transpose(inverse)
        order = self.transformer.channel_swap.get(in_)
        if order is not None:
            crop_mean = crop_mean[:, :, [list(order).index(i) for i in range(crop_mean.shape[2])]]
        raw_scale = self.transformer.raw_scale.get(in_)
        if raw_scale is not None:
            crop_mean = crop_mean / raw_scale
        self.crop_mean = crop_mean
