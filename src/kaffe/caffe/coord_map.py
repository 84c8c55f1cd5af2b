"""pycaffe's ``caffe.coord_map``: how coordinates of one NetSpec top map onto another's.

A map is ``(axis, a, b)``: output coordinate ``a * x + b`` for input coordinate ``x`` along the
spatial axes from ``axis`` on (``axis`` None: any axis, as for pointwise layers). Convolution,
Pooling and Im2col scale by ``1/stride`` and shift by ``(pad - (extent - 1) / 2) / stride``;
Deconvolution inverts that; Crop shifts by ``-offset``; pointwise layers map identically.
:func:`coord_map_from_to` walks back from both tops to a common ancestor, composing maps, and
:func:`crop` makes the Crop layer that aligns one top with another (FCN's skip layers).
"""
import numpy as np

from kaffe.caffe.net_spec import layers as L

__all__ = ["PASS_THROUGH_LAYERS", "UndefinedMapException", "AxisMismatchException",
           "CoordMapError", "coord_map", "compose", "inverse", "coord_map_from_to", "crop",
           "conv_params",
           "crop_params"]

PASS_THROUGH_LAYERS = ["AbsVal", "BatchNorm", "Bias", "BNLL", "Dropout", "Eltwise", "ELU",
                       "Log", "LRN", "Exp", "MVN", "Power", "ReLU", "PReLU", "Scale", "Sigmoid",
                       "Split", "TanH", "Threshold"]
_IDENTITY = (None, 1, 0)


class UndefinedMapException(Exception):
    """The layer has no coordinate map (e.g. InnerProduct)."""


class AxisMismatchException(Exception):
    """Two maps along different axes cannot be composed."""


class CoordMapError(ValueError, AssertionError):
    """A crop that cannot be made, or parameters cropping does not support. (pycaffe asserts
    here, so this is an ``AssertionError`` too: code catching that keeps working.)"""


def conv_params(fn):
    """``(axis, stride, kernel extent, pad)`` of a Convolution / Deconvolution / Im2col /
    Pooling function, as numpy arrays of one value per spatial axis (or one for all)."""
    params = fn.params.get("convolution_param", fn.params)
    legacy = {"pad_h", "pad_w", "kernel_h", "kernel_w", "stride_h", "stride_w"} & set(fn.params)
    if legacy:
        raise CoordMapError(f"coord_map: {fn.type_name} uses {sorted(legacy)}; cropping "
                            f"supports only kernel_size / stride / pad, not the legacy _h/_w "
                            f"fields.")
    kernel = np.array(params["kernel_size"], ndmin=1)
    dilation = np.array(params.get("dilation", 1), ndmin=1)
    return (params.get("axis", 1), np.array(params.get("stride", 1), ndmin=1),
            (kernel - 1) * dilation + 1, np.array(params.get("pad", 0), ndmin=1))


def crop_params(fn):
    """``(axis, offset)`` of a Crop function (Caffe's defaults: axis 2, offset 0)."""
    params = fn.params.get("crop_param", fn.params)
    return params.get("axis", 2), np.array(params.get("offset", 0), ndmin=1)


def _strided(fn):
    axis, stride, extent, pad = conv_params(fn)
    return axis, 1 / stride, (pad - (extent - 1) / 2) / stride


def _deconv(fn):
    axis, stride, extent, pad = conv_params(fn)
    return axis, stride, (extent - 1) / 2 - pad


def _crop(fn):
    axis, offset = crop_params(fn)
    return axis - 1, 1, -offset   # the map's axis is the last non-spatial one


_MAPS = {"Convolution": _strided, "Pooling": _strided, "Im2col": _strided,
         "Deconvolution": _deconv, "Crop": _crop}
_MAPS.update({name: (lambda fn: _IDENTITY) for name in PASS_THROUGH_LAYERS})


def coord_map(fn):
    """The ``(axis, scale, shift)`` map of one layer function; raises
    :class:`UndefinedMapException` for a layer without one."""
    try:
        return _MAPS[fn.type_name](fn)
    except KeyError:
        raise UndefinedMapException(fn.type_name) from None


def compose(base_map, next_map):
    """``next_map`` after ``base_map``: scales multiply, ``next``'s shift scaled by ``base``'s."""
    ax1, a1, b1 = base_map
    ax2, a2, b2 = next_map
    if ax1 is None:
        axis = ax2
    elif ax2 is None or ax1 == ax2:
        axis = ax1
    else:
        raise AxisMismatchException(f"cannot compose maps along axes {ax1} and {ax2}")
    return axis, a1 * a2, a1 * b2 + b1


def inverse(coord_map):
    """The map back: scale ``1/a``, shift ``-b/a``."""
    axis, a, b = coord_map
    return axis, 1 / a, -b / a


def _mappable_bottoms(top):
    """Bottoms whose coordinates map onto ``top``: all of them, except a Crop's second
    (reference-shape) bottom."""
    bottoms = top.fn.inputs
    return bottoms[:1] if top.fn.type_name == "Crop" else bottoms


def _maps_back(start):
    """Yield ``(top, map from top to start)`` walking back through mappable layers."""
    maps, frontier = {start: _IDENTITY}, [start]
    while frontier:
        top = frontier.pop()
        yield top, maps[top]
        try:
            step = coord_map(top.fn)
        except UndefinedMapException:
            continue
        for bottom in _mappable_bottoms(top):
            maps[bottom] = compose(maps[top], step)
            frontier.append(bottom)


def coord_map_from_to(top_from, top_to):
    """The map from ``top_from``'s coordinates to ``top_to``'s, through their nearest common
    ancestor top. Raises ``RuntimeError`` if they share none through spatial layers."""
    from_maps = dict(_maps_back(top_from))
    for top, to_map in _maps_back(top_to):
        if top in from_maps:
            return compose(to_map, inverse(from_maps[top]))
    raise RuntimeError("Could not compute map between tops; are they connected by spatial "
                       "layers?")


def crop(top_from, top_to):
    """A Crop layer (a NetSpec Top) cutting ``top_from`` to ``top_to``'s extent and alignment.
    The map between them must be a whole, non-negative shift with scale 1."""
    axis, a, b = coord_map_from_to(top_from, top_to)
    if not np.all(a == 1):
        raise CoordMapError(f"crop: scale mismatch between the tops (a = {a}); they must "
                            f"have the same resolution.")
    if not np.all(b <= 0):
        raise CoordMapError(f"crop: cannot crop a negative offset (b = {b}); top_from "
                            f"must cover top_to.")
    if not np.all(np.round(b) == b):
        raise CoordMapError(f"crop: cannot crop a non-integer offset (b = {b}).")
    return L.Crop(top_from, top_to,
                  crop_param=dict(axis=axis + 1, offset=list(-np.round(b).astype(int))))
