"""Keras 2's ``keras.preprocessing.image``: ``ImageDataGenerator`` (augmentation, normalisation,
``flow`` / ``flow_from_directory`` / ``flow_from_dataframe``), its iterators, the transform
functions and ``load_img`` / ``img_to_array`` / ``array_to_img`` / ``save_img`` on Pillow, with
keras-preprocessing 1.1.2's results for the same seeds."""
from kaffe.preprocessing.image.affine import (apply_affine_transform, apply_brightness_shift,
                                              apply_channel_shift, flip_axis, random_brightness,
                                              random_channel_shift, random_rotation, random_shear,
                                              random_shift, random_zoom,
                                              transform_matrix_offset_center)
from kaffe.preprocessing.image.generator import ImageDataGenerator
from kaffe.preprocessing.image.image_io import (ImageDecodeError, array_to_img, img_to_array,
                                                list_pictures, load_img, save_img)
from kaffe.preprocessing.image.iterators import (DataFrameIterator, DirectoryIterator, Iterator,
                                                 NumpyArrayIterator)

__all__ = ["ImageDataGenerator", "Iterator", "NumpyArrayIterator", "DirectoryIterator",
           "DataFrameIterator", "load_img", "img_to_array", "array_to_img", "save_img",
           "list_pictures", "ImageDecodeError", "apply_affine_transform",
           "apply_brightness_shift", "apply_channel_shift", "flip_axis", "random_rotation",
           "random_shift", "random_shear", "random_zoom", "random_channel_shift",
           "random_brightness", "transform_matrix_offset_center"]
