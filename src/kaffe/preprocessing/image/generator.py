"""Keras 2's ``ImageDataGenerator``: random augmentation and normalisation of image batches.

Random draws come from NumPy's global generator in Keras 2's order (``np.random.seed`` with a
``seed`` given), so a seeded generator yields keras-preprocessing 1.1.2's batches.
"""
import warnings

import numpy as np

from kaffe.config import standardize_data_format
from kaffe.preprocessing.image import affine

#: data_format -> (channel, row, col) axes of a batch (Keras's numbering, batch axis 0).
AXES = {"channels_first": (1, 2, 3), "channels_last": (3, 1, 2)}


def _number_pair(value, name):
    """``zoom_range``: a number z gives ``[1 - z, 1 + z]``; a pair is kept."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [1 - value, 1 + value]
    if (isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2
            and all(isinstance(v, (int, float, np.number)) for v in value)):
        return [value[0], value[1]]
    raise ValueError(f"`{name}` should be a float or a tuple or list of two floats. "
                     f"Received: {value!r}")


def _draw_shift(shift_range, size):
    """Keras's shift draw: a float range is uniform in ``[-r, r]``; an int or a list is a
    choice times a random sign; fractions (< 1) are of ``size``."""
    try:
        shift = np.random.choice(shift_range)
        shift *= np.random.choice([-1, 1])
    except ValueError:
        shift = np.random.uniform(-shift_range, shift_range)
    if np.max(shift_range) < 1:
        shift *= size
    return shift


class ImageDataGenerator:
    """Batches of augmented, normalised images from arrays, folders or a data frame.

    Args are Keras 2's: ``featurewise_center``, ``samplewise_center``,
    ``featurewise_std_normalization``, ``samplewise_std_normalization``, ``zca_whitening``,
    ``zca_epsilon``, ``rotation_range`` (degrees), ``width_shift_range`` /
    ``height_shift_range`` (fraction < 1, pixels >= 1, or a list of choices), ``brightness_range``
    (two factors), ``shear_range`` (degrees), ``zoom_range`` (z or ``[low, high]``),
    ``channel_shift_range``, ``fill_mode`` (``constant``, ``nearest``, ``reflect``, ``wrap``),
    ``cval``, ``horizontal_flip``, ``vertical_flip``, ``rescale``, ``preprocessing_function``
    (applied first, on each image), ``data_format`` (default: the configured image data
    format), ``validation_split`` (for ``subset=``), ``interpolation_order``, ``dtype``.
    ``fit(x)`` computes the featurewise statistics.
    """

    def __init__(self, featurewise_center=False, samplewise_center=False,
                 featurewise_std_normalization=False, samplewise_std_normalization=False,
                 zca_whitening=False, zca_epsilon=1e-6, rotation_range=0, width_shift_range=0.0,
                 height_shift_range=0.0, brightness_range=None, shear_range=0.0, zoom_range=0.0,
                 channel_shift_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None,
                 data_format=None, validation_split=0.0, interpolation_order=1,
                 dtype="float32"):
        data_format = standardize_data_format(data_format)
        if data_format not in AXES:
            raise ValueError('`data_format` should be "channels_last" or "channels_first". '
                             f"Received: {data_format!r}")
        if fill_mode not in affine.FILL_MODES:
            raise ValueError(f"`fill_mode` expected one of {affine.FILL_MODES}. Received: "
                             f"{fill_mode!r}")
        if validation_split and not 0 < validation_split < 1:
            raise ValueError("`validation_split` must be strictly between 0 and 1. "
                             f"Received: {validation_split!r}")
        if brightness_range is not None and (not isinstance(brightness_range, (tuple, list))
                                             or len(brightness_range) != 2):
            raise ValueError("`brightness_range` should be a tuple or list of two floats. "
                             f"Received: {brightness_range!r}")
        self.featurewise_center = featurewise_center
        self.samplewise_center = samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.zca_whitening = zca_whitening
        self.zca_epsilon = zca_epsilon
        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.brightness_range = brightness_range
        self.shear_range = shear_range
        self.zoom_range = _number_pair(zoom_range, "zoom_range")
        self.channel_shift_range = channel_shift_range
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.data_format = data_format
        self.channel_axis, self.row_axis, self.col_axis = AXES[data_format]
        self._validation_split = validation_split
        self.interpolation_order = interpolation_order
        self.dtype = dtype
        self.mean = self.std = self.principal_components = None
        self._implied_settings(featurewise_center, featurewise_std_normalization,
                               samplewise_center, samplewise_std_normalization, zca_whitening)

    def _implied_settings(self, f_center, f_std, s_center, s_std, zca):
        """Keras's overrides: ZCA implies featurewise centring and drops featurewise std;
        either std normalisation implies its centring."""
        if zca:
            if not f_center:
                self.featurewise_center = True
                warnings.warn("This ImageDataGenerator specifies `zca_whitening`, which "
                              "overrides setting of `featurewise_center`.")
            if f_std:
                self.featurewise_std_normalization = False
                warnings.warn("This ImageDataGenerator specifies `zca_whitening` which "
                              "overrides setting of `featurewise_std_normalization`.")
        if f_std and not f_center:
            self.featurewise_center = True
            warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, "
                          "which overrides setting of `featurewise_center`.")
        if s_std and not s_center:
            self.samplewise_center = True
            warnings.warn("This ImageDataGenerator specifies `samplewise_std_normalization`, "
                          "which overrides setting of `samplewise_center`.")

    # -- iterators --------------------------------------------------------------------------

    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None,
             save_to_dir=None, save_prefix="", save_format="png", ignore_class_split=False,
             subset=None):
        """Batches ``(x, y[, sample_weight])`` from arrays (see ``NumpyArrayIterator``)."""
        from kaffe.preprocessing.image.iterators import NumpyArrayIterator
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle,
                                  sample_weight=sample_weight, seed=seed,
                                  data_format=self.data_format, save_to_dir=save_to_dir,
                                  save_prefix=save_prefix, save_format=save_format,
                                  ignore_class_split=ignore_class_split, subset=subset,
                                  dtype=self.dtype)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb",
                            classes=None, class_mode="categorical", batch_size=32, shuffle=True,
                            seed=None, save_to_dir=None, save_prefix="", save_format="png",
                            follow_links=False, subset=None, interpolation="nearest",
                            keep_aspect_ratio=False):
        """Batches from one sub-folder per class (see ``DirectoryIterator``)."""
        from kaffe.preprocessing.image.iterators import DirectoryIterator
        return DirectoryIterator(directory, self, target_size=target_size, color_mode=color_mode,
                                 classes=classes, class_mode=class_mode,
                                 data_format=self.data_format, batch_size=batch_size,
                                 shuffle=shuffle, seed=seed, save_to_dir=save_to_dir,
                                 save_prefix=save_prefix, save_format=save_format,
                                 follow_links=follow_links, subset=subset,
                                 interpolation=interpolation, keep_aspect_ratio=keep_aspect_ratio,
                                 dtype=self.dtype)

    def flow_from_dataframe(self, dataframe, directory=None, x_col="filename", y_col="class",
                            weight_col=None, target_size=(256, 256), color_mode="rgb",
                            classes=None, class_mode="categorical", batch_size=32, shuffle=True,
                            seed=None, save_to_dir=None, save_prefix="", save_format="png",
                            subset=None, interpolation="nearest", validate_filenames=True,
                            keep_aspect_ratio=False, **kwargs):
        """Batches from a data frame of file names and labels (see ``DataFrameIterator``)."""
        from kaffe.preprocessing.image.iterators import DataFrameIterator
        for old in ("has_ext", "sort", "drop_duplicates"):
            if old in kwargs:
                warnings.warn(f"{old} is deprecated and ignored.", DeprecationWarning)
                kwargs.pop(old)
        if kwargs:
            raise TypeError(f"flow_from_dataframe got unexpected arguments {sorted(kwargs)}")
        if class_mode == "other":
            warnings.warn('`class_mode` "other" is deprecated, please use `class_mode` "raw".',
                          DeprecationWarning)
            class_mode = "raw"
        return DataFrameIterator(dataframe, directory, self, x_col=x_col, y_col=y_col,
                                 weight_col=weight_col, target_size=target_size,
                                 color_mode=color_mode, classes=classes, class_mode=class_mode,
                                 data_format=self.data_format, batch_size=batch_size,
                                 shuffle=shuffle, seed=seed, save_to_dir=save_to_dir,
                                 save_prefix=save_prefix, save_format=save_format, subset=subset,
                                 interpolation=interpolation,
                                 validate_filenames=validate_filenames,
                                 keep_aspect_ratio=keep_aspect_ratio, dtype=self.dtype)

    # -- one image --------------------------------------------------------------------------

    def standardize(self, x):
        """Normalise ``x`` (one image or a batch) in place where it can: preprocessing function,
        rescale, samplewise then featurewise centring and scaling, ZCA."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, keepdims=True) + 1e-6
        if self.featurewise_center:
            if self.mean is not None:
                x -= self.mean
            else:
                self._warn_not_fit("featurewise_center")
        if self.featurewise_std_normalization:
            if self.std is not None:
                x /= self.std + 1e-6
            else:
                self._warn_not_fit("featurewise_std_normalization")
        if self.zca_whitening:
            if self.principal_components is not None:
                flat = np.reshape(x, (-1, np.prod(x.shape[-3:])))
                x = np.reshape(flat @ self.principal_components, x.shape)
            else:
                self._warn_not_fit("zca_whitening")
        return x

    @staticmethod
    def _warn_not_fit(option):
        warnings.warn(f"This ImageDataGenerator specifies `{option}`, but it hasn't been fit on "
                      "any training data. Fit it first by calling `.fit(numpy_data)`.")

    def get_random_transform(self, img_shape, seed=None):
        """Random parameters for one image of ``img_shape`` (a dict for ``apply_transform``),
        drawn in Keras 2's order from NumPy's global generator (seeded with ``seed``)."""
        row_axis, col_axis = self.row_axis - 1, self.col_axis - 1
        if seed is not None:
            np.random.seed(seed)
        theta = (np.random.uniform(-self.rotation_range, self.rotation_range)
                 if self.rotation_range else 0)
        tx = (_draw_shift(self.height_shift_range, img_shape[row_axis])
              if self.height_shift_range else 0)
        ty = (_draw_shift(self.width_shift_range, img_shape[col_axis])
              if self.width_shift_range else 0)
        shear = np.random.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1, 1
        else:
            zx, zy = np.random.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_horizontal = (np.random.random() < 0.5) * self.horizontal_flip
        flip_vertical = (np.random.random() < 0.5) * self.vertical_flip
        channel_shift_intensity = None
        if self.channel_shift_range != 0:
            channel_shift_intensity = np.random.uniform(-self.channel_shift_range,
                                                        self.channel_shift_range)
        brightness = None
        if self.brightness_range is not None:
            brightness = np.random.uniform(self.brightness_range[0], self.brightness_range[1])
        return {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy,
                "flip_horizontal": flip_horizontal, "flip_vertical": flip_vertical,
                "channel_shift_intensity": channel_shift_intensity, "brightness": brightness}

    def apply_transform(self, x, transform_parameters):
        """``x`` (one image) transformed by the given parameters: affine warp, channel shift,
        flips, brightness, in that order."""
        params = transform_parameters
        row_axis, col_axis, channel_axis = (self.row_axis - 1, self.col_axis - 1,
                                            self.channel_axis - 1)
        x = affine.apply_affine_transform(
            x, params.get("theta", 0), params.get("tx", 0), params.get("ty", 0),
            params.get("shear", 0), params.get("zx", 1), params.get("zy", 1),
            row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
            fill_mode=self.fill_mode, cval=self.cval, order=self.interpolation_order)
        if params.get("channel_shift_intensity") is not None:
            x = affine.apply_channel_shift(x, params["channel_shift_intensity"], channel_axis)
        if params.get("flip_horizontal", False):
            x = affine.flip_axis(x, col_axis)
        if params.get("flip_vertical", False):
            x = affine.flip_axis(x, row_axis)
        if params.get("brightness") is not None:
            x = affine.apply_brightness_shift(x, params["brightness"],
                                              data_format=self.data_format)
        return x

    def random_transform(self, x, seed=None):
        """``x`` with a random transform applied."""
        return self.apply_transform(x, self.get_random_transform(x.shape, seed))

    # -- statistics -------------------------------------------------------------------------

    def fit(self, x, augment=False, rounds=1, seed=None):
        """Featurewise mean, std and ZCA matrix of the rank-4 ``x`` (after ``rescale``; with
        ``augment``, over ``rounds`` randomly transformed copies)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(f"Input to `.fit()` should have rank 4. Got array with shape: "
                             f"{x.shape}")
        if x.shape[self.channel_axis] not in (1, 3, 4):
            warnings.warn(f"Expected input to be images following the data format convention "
                          f'"{self.data_format}" (channels on axis {self.channel_axis}), i.e. '
                          f"1, 3 or 4 channels; got an array of shape {x.shape}.")
        if seed is not None:
            np.random.seed(seed)
        x = np.copy(x)
        if self.rescale:
            x *= self.rescale
        if augment:
            augmented = np.zeros((rounds * x.shape[0],) + x.shape[1:], dtype=self.dtype)
            for r in range(rounds):
                for i in range(x.shape[0]):
                    augmented[i + r * x.shape[0]] = self.random_transform(x[i])
            x = augmented
        broadcast = [1, 1, 1]
        broadcast[self.channel_axis - 1] = x.shape[self.channel_axis]
        if self.featurewise_center:
            self.mean = np.mean(x, axis=(0, self.row_axis, self.col_axis)).reshape(broadcast)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=(0, self.row_axis, self.col_axis)).reshape(broadcast)
            x /= self.std + 1e-6
        if self.zca_whitening:
            from scipy import linalg
            flat = np.reshape(x, (x.shape[0], -1))
            sigma = flat.T @ flat / flat.shape[0]
            u, s, _ = linalg.svd(sigma)
            s_inv = 1.0 / np.sqrt(s[np.newaxis] + self.zca_epsilon)
            self.principal_components = (u * s_inv) @ u.T
