"""pycaffe's ``caffe.io``: image loading, the input ``Transformer`` and Datum/BlobProto conversion.

Written for kaffe with pycaffe's names and behaviour, without scikit-image or SciPy:

* :func:`load_image` reads with Pillow and gives float32 in [0, 1], ``H x W x 3`` RGB, or
  ``H x W x 1`` for ``color=False`` (scikit-image's ``rgb2gray`` weights 0.2125/0.7154/0.0721,
  as pycaffe's ``imread(as_gray=not color)``).
* :func:`resize_image` reproduces pycaffe's path through ``skimage.transform.resize(order=1)``
  (scikit-image 0.19: min-max scaling, Gaussian anti-aliasing when shrinking with
  ``sigma = (factor - 1) / 2`` truncated at 4 sigma, half-pixel-centre linear interpolation,
  ``mode='constant'``: zeros beyond the edges, output clipped to the input's range); it equals
  real pycaffe's output on the recorded oracles. Other orders / channel counts use the
  same code with nearest (order 0) or linear interpolation; SciPy's higher spline orders are
  not provided (a clear error says so).
"""
import numpy as np

from kaffe.caffe.proto import caffe_pb2
from kaffe.data import datum as _datum

__all__ = ["load_image", "resize_image", "oversample", "Transformer", "blobproto_to_array",
           "array_to_blobproto", "arraylist_to_blobprotovector_str",
           "arraylist_to_blobprotovecor_str", "blobprotovector_str_to_arraylist",
           "array_to_datum", "datum_to_array"]


# ------------------------------------------------------------------ proto <-> ndarray

def blobproto_to_array(blob, return_diff=False):
    """A BlobProto's data (or diff) as an array: the legacy ``num, channels, height, width``
    axes when the blob has them, else ``shape.dim`` (as pycaffe). ``double_data`` is read
    when ``data`` is empty."""
    values = blob.diff if return_diff else blob.data
    if not len(values):
        values = blob.double_diff if return_diff else blob.double_data
    data = np.array(values)
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        return data.reshape(blob.num, blob.channels, blob.height, blob.width)
    return data.reshape(tuple(blob.shape.dim))


def array_to_blobproto(arr, diff=None):
    """An N-D array as a BlobProto (``shape`` and float ``data``), byte-identical to pycaffe's."""
    arr = np.asarray(arr)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(arr.shape)
    blob.data.extend(arr.astype(float).flat)
    if diff is not None:
        blob.diff.extend(np.asarray(diff).astype(float).flat)
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    """A list of arrays as a serialized BlobProtoVector."""
    vec = caffe_pb2.BlobProtoVector()
    vec.blobs.extend([array_to_blobproto(arr) for arr in arraylist])
    return vec.SerializeToString()


arraylist_to_blobprotovecor_str = arraylist_to_blobprotovector_str   # pycaffe's spelling


def blobprotovector_str_to_arraylist(data):
    """A serialized BlobProtoVector as a list of arrays."""
    vec = caffe_pb2.BlobProtoVector()
    vec.ParseFromString(data)
    return [blobproto_to_array(blob) for blob in vec.blobs]


def array_to_datum(arr, label=None):
    """A 3-D ``C x H x W`` array as a Datum: uint8 as the ``data`` bytes, anything else as
    ``float_data``; ``label`` set unless None (pycaffe's; see :mod:`kaffe.data.datum`)."""
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError('Incorrect array shape.')
    return _datum.array_to_datum(arr, label)


def datum_to_array(datum):
    """A Datum's values as ``C x H x W`` (uint8 for ``data``, float64 for ``float_data``);
    the label is ``datum.label``. Encoded (JPEG/PNG) datums are decoded as Caffe does (BGR)."""
    return _datum.datum_to_array(datum)


# ------------------------------------------------------------------ images

def load_image(filename, color=True):
    """An image as float32 in [0, 1]: ``H x W x 3`` RGB, or ``H x W x 1`` when ``color=False``."""
    from PIL import Image
    with Image.open(filename) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            raw = np.asarray(im).astype(np.float64)
            img = raw / (65535.0 if im.mode.startswith("I;16") else 2.0 ** 31 - 1)
            mode = "L"
        elif im.mode == "F":
            img, mode = np.asarray(im).astype(np.float64), "L"
        else:
            if im.mode not in ("L", "RGB", "RGBA", "LA"):
                im = im.convert("RGBA" if "A" in im.getbands() or im.mode == "P" else "RGB")
            mode = im.mode
            img = np.asarray(im).astype(np.float64) / 255.0
    if mode == "LA":
        img = img[:, :, 0]
    if not color and img.ndim == 3:
        if img.shape[2] == 4:   # skimage's rgba2rgb on a white background
            alpha = img[:, :, 3:4]
            img = img[:, :, :3] * alpha + (1 - alpha)
        img = img[:, :, :3] @ np.array([0.2125, 0.7154, 0.0721])
    img = img.astype(np.float32)
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
        if color:
            img = np.tile(img, (1, 1, 3))
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return img


def _mirror_index(idx, n):
    """SciPy's 'mirror' boundary (d c b | a b c d | c b a) for integer indices."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * n - 2
    idx = np.abs(idx) % period
    return np.where(idx >= n, period - idx, idx)


def _take(src, idx, n, mode):
    """Rows ``idx`` of ``src`` with SciPy's boundary ``mode``: 'mirror' or 'constant' (zeros)."""
    if mode == "mirror":
        return src[_mirror_index(idx, n)]
    inside = (idx >= 0) & (idx < n)
    out = src[np.clip(idx, 0, n - 1)]
    return out * inside.reshape((-1,) + (1,) * (src.ndim - 1))


def _gaussian_axis(a, sigma, axis, mode="constant"):
    """``scipy.ndimage.gaussian_filter1d`` (truncate 4), result in a's dtype."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 / sigma ** 2 * x.astype(np.float64) ** 2)
    w /= w.sum()
    n = a.shape[axis]
    src = np.moveaxis(a, axis, 0).astype(np.float64)
    out = np.zeros_like(src)
    base = np.arange(n)
    for k, wk in zip(x, w):
        out += wk * _take(src, base + k, n, mode)
    return np.moveaxis(out, 0, axis).astype(a.dtype)


def _zoom_axis(a, out_n, axis, order, mode="constant"):
    """``scipy.ndimage.zoom(grid_mode=True)`` along one axis, order 0 or 1; 'constant' is
    SciPy's 'grid-constant' (zeros beyond the edge take part in the interpolation)."""
    n = a.shape[axis]
    if out_n == n:
        return a
    coord = (np.arange(out_n) + 0.5) * (n / out_n) - 0.5
    src = np.moveaxis(a, axis, 0).astype(np.float64)
    if order == 0:
        res = _take(src, np.floor(coord + 0.5).astype(int), n, mode)
    else:
        lo = np.floor(coord).astype(int)
        t = (coord - lo).reshape((-1,) + (1,) * (src.ndim - 1))
        res = (1 - t) * _take(src, lo, n, mode) + t * _take(src, lo + 1, n, mode)
    return np.moveaxis(res, 0, axis).astype(a.dtype)


def _resize(im, new_dims, order):
    """scikit-image 0.19's ``resize(im, new_dims, order, mode='constant', anti_aliasing=None)``
    for a float image, over the first two axes."""
    if order not in (0, 1):
        raise NotImplementedError(
            f"resize_image: interp_order={order} is not supported by kaffe (orders 0 and 1 are)")
    im = np.asarray(im)
    if im.dtype not in (np.float32, np.float64):
        im = im.astype(np.float64)
    out_shape = tuple(int(d) for d in new_dims)
    factors = np.array(im.shape[:2], dtype=np.float64) / np.array(out_shape, dtype=np.float64)
    filtered = im
    if order > 0 and any(o < i for o, i in zip(out_shape, im.shape[:2])):
        for axis, f in enumerate(factors):
            sigma = max(0.0, (f - 1) / 2)
            if sigma > 1e-15:
                filtered = _gaussian_axis(filtered, sigma, axis)
    out = filtered
    for axis in range(2):
        out = _zoom_axis(out, out_shape[axis], axis, order)
    if order > 0:
        out = np.clip(out, im.min(), im.max())
    return out


def resize_image(im, new_dims, interp_order=1):
    """Resize an ``H x W x K`` image to ``new_dims = (height, width)``; float32 result."""
    im = np.asarray(im)
    if im.shape[-1] == 1 or im.shape[-1] == 3:
        im_min, im_max = im.min(), im.max()
        if im_max > im_min:
            im_std = (im - im_min) / (im_max - im_min)
            resized_std = _resize(im_std, new_dims, interp_order)
            resized_im = resized_std * (im_max - im_min) + im_min
        else:
            ret = np.empty((new_dims[0], new_dims[1], im.shape[-1]), dtype=np.float32)
            ret.fill(im_min)
            return ret
    else:
        # pycaffe uses scipy.ndimage.zoom here (no anti-aliasing, corner-aligned grid)
        if interp_order not in (0, 1):
            raise NotImplementedError(
                f"resize_image: interp_order={interp_order} is not supported by kaffe")
        resized_im = im.astype(np.float64)
        for axis in range(2):
            n, m = im.shape[axis], int(round(im.shape[axis] * new_dims[axis] / im.shape[axis]))
            coord = (np.arange(m) * ((n - 1) / (m - 1)) if m > 1 else np.zeros(1))
            src = np.moveaxis(resized_im, axis, 0)
            if interp_order == 0:
                res = src[np.clip(np.floor(coord + 0.5).astype(int), 0, n - 1)]
            else:
                lo = np.clip(np.floor(coord).astype(int), 0, n - 1)
                hi = np.clip(lo + 1, 0, n - 1)
                t = (coord - lo).reshape((-1,) + (1,) * (src.ndim - 1))
                res = (1 - t) * src[lo] + t * src[hi]
            resized_im = np.moveaxis(res, 0, axis)
    return resized_im.astype(np.float32)


def oversample(images, crop_dims):
    """The four corner crops and the centre crop of each image, then their mirrors:
    ``(10*N) x h x w x K`` float32."""
    im_shape = np.array(images[0].shape)
    crop_dims = np.array(crop_dims)
    im_center = im_shape[:2] / 2.0
    h_indices = (0, im_shape[0] - crop_dims[0])
    w_indices = (0, im_shape[1] - crop_dims[1])
    crops_ix = np.empty((5, 4), dtype=int)
    curr = 0
    for i in h_indices:
        for j in w_indices:
            crops_ix[curr] = (i, j, i + crop_dims[0], j + crop_dims[1])
            curr += 1
    crops_ix[4] = np.tile(im_center, (1, 2)) + np.concatenate([-crop_dims / 2.0,
                                                               crop_dims / 2.0])
    crops_ix = np.tile(crops_ix, (2, 1))
    crops = np.empty((10 * len(images), crop_dims[0], crop_dims[1], im_shape[-1]),
                     dtype=np.float32)
    ix = 0
    for im in images:
        for crop in crops_ix:
            crops[ix] = im[crop[0]:crop[2], crop[1]:crop[3], :]
            ix += 1
        crops[ix - 5:ix] = crops[ix - 5:ix, :, ::-1, :]
    return crops


# ------------------------------------------------------------------ Transformer

class Transformer:
    """Prepare ``H x W x K`` images for a net's input blobs (pycaffe's ``caffe.io.Transformer``).

    ``inputs``: ``{blob name: shape}``, e.g. ``{'data': net.blobs['data'].data.shape}``.
    """

    def __init__(self, inputs):
        self.inputs = {k: tuple(v) for k, v in dict(inputs).items()}
        self.transpose = {}
        self.channel_swap = {}
        self.raw_scale = {}
        self.mean = {}
        self.input_scale = {}

    def _check_input(self, in_):
        if in_ not in self.inputs:
            raise Exception('{} is not one of the net inputs: {}'.format(in_, self.inputs))

    def preprocess(self, in_, data):
        """Resize to the input's H x W, transpose, swap channels, raw-scale, subtract the
        mean, input-scale: a ``K x H x W`` float32 array for the net."""
        self._check_input(in_)
        caffe_in = np.asarray(data).astype(np.float32, copy=False)
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        in_dims = self.inputs[in_][2:]
        if caffe_in.shape[:2] != in_dims:
            caffe_in = resize_image(caffe_in, in_dims)
        if transpose is not None:
            caffe_in = caffe_in.transpose(transpose)
        if channel_swap is not None:
            caffe_in = caffe_in[list(channel_swap), :, :]
        caffe_in = np.array(caffe_in, dtype=np.float32)   # never scale the caller's array
        if raw_scale is not None:
            caffe_in *= raw_scale
        if mean is not None:
            caffe_in -= mean
        if input_scale is not None:
            caffe_in *= input_scale
        return caffe_in

    def deprocess(self, in_, data):
        """Invert :meth:`preprocess` (except the resize)."""
        self._check_input(in_)
        decaf_in = np.array(data, copy=True).squeeze()
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        if input_scale is not None:
            decaf_in /= input_scale
        if mean is not None:
            decaf_in += mean
        if raw_scale is not None:
            decaf_in /= raw_scale
        if channel_swap is not None:
            decaf_in = decaf_in[list(channel_swap), :, :]
        if transpose is not None:
            decaf_in = decaf_in.transpose([transpose[t] for t in transpose])
        return decaf_in

    def set_transpose(self, in_, order):
        """The axis order taking an ``H x W x K`` image to ``K x H x W``, e.g. (2, 0, 1)."""
        self._check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise Exception('Transpose order needs to have the same number of '
                            'dimensions as the input.')
        self.transpose[in_] = order

    def set_channel_swap(self, in_, order):
        """The channel order after transposing, e.g. (2,1,0) for RGB -> BGR."""
        self._check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise Exception('Channel swap needs to have the same number of '
                            'dimensions as the input channels.')
        self.channel_swap[in_] = order

    def set_raw_scale(self, in_, scale):
        """Scale applied before mean subtraction (255 for [0, 1] images into ImageNet nets)."""
        self._check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """The mean to subtract: a per-channel vector, or a ``K x H x W`` (or ``H x W``) image.
        A mean image of another size is resized to the input's H x W, as pycaffe does (kaffe
        keeps H and W apart, so non-square inputs work where pycaffe's transposes break)."""
        self._check_input(in_)
        mean = np.asarray(mean)
        ms = mean.shape
        if mean.ndim == 1:
            if ms[0] != self.inputs[in_][1]:
                raise ValueError('Mean channels incompatible with input.')
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            if len(ms) == 2:
                ms = (1,) + ms
                mean = mean.reshape(ms)
            if len(ms) != 3:
                raise ValueError('Mean shape invalid')
            if ms != self.inputs[in_][1:]:
                if ms[0] != self.inputs[in_][1]:
                    raise ValueError('Mean shape incompatible with input shape.')
                mean = resize_image(mean.transpose(2, 1, 0),
                                    self.inputs[in_][2:][::-1]).transpose(2, 1, 0)
                mean = mean.astype(np.float32)
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        """Scale applied after mean subtraction."""
        self._check_input(in_)
        self.input_scale[in_] = scale
