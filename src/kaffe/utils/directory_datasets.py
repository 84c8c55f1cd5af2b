"""``keras.utils.image_dataset_from_directory`` / ``text_dataset_from_directory``: Keras 3's
file order, labels, ``class_names``, shuffle by seed and ``validation_split`` / ``subset``, as
:class:`~kaffe.utils.batch_dataset.BatchDataset`s of NumPy batches (Keras 3 builds them with
``tf.data``, which kaffe does not need).

Images are decoded with Pillow and resized with torch's ``interpolate`` (``bilinear``,
``nearest``, ``bicubic``, ``area`` without antialiasing, as ``tf.image.resize`` does; bicubic's
kernel differs slightly from TensorFlow's).
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from kaffe.config import standardize_data_format
from kaffe.preprocessing.image.image_io import load_img
from kaffe.utils.batch_dataset import BatchDataset

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
TEXT_FORMATS = (".txt",)
LABEL_MODES = ("int", "categorical", "binary", None)
CHANNELS = {"rgb": 3, "rgba": 4, "grayscale": 1}
#: Keras's interpolation names -> torch ``interpolate`` modes.
RESIZE_MODES = {"bilinear": "bilinear", "nearest": "nearest-exact", "bicubic": "bicubic",
                "area": "area"}


def _valid_files(directory, follow_links, formats):
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links),
                                 key=lambda entry: entry[0]):
        for fname in sorted(files):
            if fname.lower().endswith(formats):
                yield os.path.join(root, fname)


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None,
                    follow_links=False, verbose=True):
    """``(file_paths, labels, class_names)`` in Keras 3's order: classes are the sorted
    sub-folders not starting with ``.`` (or ``class_names``, in its order), files sorted by
    folder then name, all shuffled together with ``np.random.RandomState(seed)``."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory!r} is not a folder (expected one sub-folder per "
                                "class, or the files themselves with labels=None or a list)")
    if labels == "inferred":
        subdirs = [d for d in sorted(os.listdir(directory))
                   if os.path.isdir(os.path.join(directory, d)) and not d.startswith(".")]
        if class_names is not None:
            if not set(class_names).issubset(subdirs):
                raise ValueError(f"The `class_names` passed did not match the names of the "
                                 f"subdirectories of the target directory. Expected: {subdirs} "
                                 f"(or a subset of it), but received: class_names={class_names}")
            subdirs = list(class_names)
    else:
        if class_names is not None:
            raise ValueError("`class_names` can only be passed with labels='inferred'. "
                             f"Received: labels={labels!r}, class_names={class_names!r}")
        subdirs = [""]
    paths, found_labels = [], []
    for index, subdir in enumerate(subdirs):
        files = list(_valid_files(os.path.join(directory, subdir), follow_links, formats))
        paths += files
        found_labels += [index] * len(files)
    if labels == "inferred":
        labels = np.array(found_labels, dtype="int32")
        names = subdirs
    elif labels is None:
        names = None
    else:
        if len(labels) != len(paths):
            raise ValueError(f"Expected the lengths of `labels` to match the number of files in "
                             f"the target directory. len(labels) is {len(labels)} while we "
                             f"found {len(paths)} files in directory {directory}.")
        names = [str(label) for label in sorted(set(labels))]
    if verbose:
        tail = "" if labels is None else f" belonging to {len(names)} classes"
        print(f"Found {len(paths)} files{tail}.")
    if shuffle:
        seed = np.random.randint(1e6) if seed is None else seed
        np.random.RandomState(seed).shuffle(paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return paths, labels, names


def check_validation_split(validation_split, subset, shuffle, seed):
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: "
                         f"{validation_split}")
    if bool(validation_split) != bool(subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", '
                         f"received: {subset}")
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide "
                         "a `seed` argument, to make sure that there is no overlap between the "
                         "training and validation subset.")


def split(samples, labels, validation_split, subset):
    """Keras's split: the last ``int(validation_split * n)`` samples are the validation set."""
    if not validation_split:
        return samples, labels
    count = int(validation_split * len(samples))
    if subset == "training":
        print(f"Using {len(samples) - count} files for training.")
        part = slice(None, len(samples) - count)
    else:
        print(f"Using {count} files for validation.")
        part = slice(len(samples) - count, None)
    return samples[part], None if labels is None else labels[part]


def encode_label(label, label_mode, num_classes):
    if label_mode == "binary":
        return np.array([label], dtype="float32")
    if label_mode == "categorical":
        return np.eye(num_classes, dtype="float32")[label]
    return np.asarray(label, dtype="int32" if label_mode == "int" else None)


def _file_datasets(directory, formats, what, load, labels, label_mode, class_names,
                   batch_size, shuffle, seed, validation_split, subset, follow_links, verbose):
    """The files of ``directory`` with one of ``formats``, each read by ``load(path)``, in
    batches with their labels (``what`` names the files in errors)."""
    seed = np.random.randint(1e6) if seed is None else seed
    paths, labels, class_names = index_directory(directory, labels, formats, class_names,
                                                 shuffle, seed, follow_links, verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 '
                         f"class_names. Received: class_names={class_names}")
    num_classes = len(class_names) if class_names else 0

    def make(part_paths, part_labels, part_shuffle):
        def sample(i):
            value = load(part_paths[i])
            if part_labels is None:
                return (value,)
            return value, encode_label(part_labels[i], label_mode, num_classes)
        return BatchDataset(len(part_paths), sample, batch_size, shuffle and part_shuffle, seed)
    return _datasets(paths, labels, class_names, validation_split, subset, make, what,
                     directory, formats)


def _datasets(paths, labels, class_names, validation_split, subset, make, what, directory,
              formats):
    """One dataset (``make(paths, labels, shuffle)``), or ``[train, validation]`` for
    ``subset='both'``, with ``class_names`` and ``file_paths`` set."""
    parts = ["training", "validation"] if subset == "both" else [subset]
    datasets = []
    for part in parts:
        part_paths, part_labels = split(paths, labels, validation_split, part)
        if not part_paths:
            raise ValueError(f"No {part + ' ' if part else ''}{what} found in directory "
                             f"{directory}. Allowed formats: {formats}")
        # Keras leaves the validation half of subset="both" unshuffled
        dataset = make(part_paths, part_labels, not (subset == "both" and part == "validation"))
        dataset.class_names = class_names
        dataset.file_paths = part_paths
        datasets.append(dataset)
    return datasets if subset == "both" else datasets[0]


def _check_labels(labels, label_mode, class_names):
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple)):
        raise ValueError("`labels` argument should be a list/tuple of integer labels, of the "
                         'same size as the number of files, "inferred" or None. '
                         f"Received: labels={labels!r}")
    if label_mode not in LABEL_MODES:
        raise ValueError(f'`label_mode` argument must be one of "int", "categorical", '
                         f'"binary", or None. Received: label_mode={label_mode!r}')


def image_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                 class_names=None, color_mode="rgb", batch_size=32,
                                 image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear",
                                 follow_links=False, crop_to_aspect_ratio=False,
                                 pad_to_aspect_ratio=False, data_format=None, verbose=True,
                                 **kwargs):
    """Batches ``(images, labels)`` of the image files under ``directory`` (one sub-folder per
    class with ``labels="inferred"``): images float32 ``(batch, h, w, channels)`` in 0..255,
    labels by ``label_mode`` (``int`` int32, ``categorical`` one-hot, ``binary`` ``(batch, 1)``
    float32). The result has ``class_names`` and ``file_paths``; ``subset="both"`` returns
    ``[training, validation]``. Keras 2's ``smart_resize`` argument is accepted as
    ``crop_to_aspect_ratio``."""
    crop_to_aspect_ratio = kwargs.pop("smart_resize", crop_to_aspect_ratio)
    kwargs.pop("format", None)
    if kwargs:
        raise TypeError(f"image_dataset_from_directory got unexpected arguments {sorted(kwargs)}")
    _check_labels(labels, label_mode, class_names)
    if labels is None or label_mode is None:
        labels = label_mode = None
    if color_mode not in CHANNELS:
        raise ValueError('`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
                         f"Received: color_mode={color_mode!r}")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2:
        raise ValueError("Invalid `image_size` value. Expected a tuple of 2 integers. "
                         f"Received: image_size={image_size!r}")
    interpolation = interpolation.lower()
    if interpolation not in RESIZE_MODES:
        raise ValueError(f"Argument `interpolation` should be one of {tuple(RESIZE_MODES)} in "
                         f"kaffe. Received: interpolation={interpolation!r}")
    check_validation_split(validation_split, subset, shuffle, seed)
    resize = ImageReader(tuple(image_size), color_mode, interpolation, crop_to_aspect_ratio,
                         pad_to_aspect_ratio, standardize_data_format(data_format))
    return _file_datasets(directory, IMAGE_FORMATS, "images", resize, labels, label_mode,
                          class_names, batch_size, shuffle, seed, validation_split, subset,
                          follow_links, verbose)


class ImageReader:
    """Path -> float32 image array of ``size`` (h, w): Pillow decode, torch resize."""

    def __init__(self, size, color_mode, interpolation, crop, pad, data_format):
        self.size, self.color_mode, self.mode = size, color_mode, RESIZE_MODES[interpolation]
        self.crop, self.pad, self.data_format = crop, pad, data_format

    def __call__(self, path):
        img = load_img(path, color_mode=self.color_mode)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32).copy())
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(2, 0, 1)  # (c, h, w)
        h, w = x.shape[1:]
        target_h, target_w = self.size
        if self.crop or self.pad:
            crop_h = min(h, int(w * target_h / target_w)) if self.crop else max(
                h, int(w * target_h / target_w))
            crop_w = min(w, int(h * target_w / target_h)) if self.crop else max(
                w, int(h * target_w / target_h))
            if self.crop:
                top, left = (h - crop_h) // 2, (w - crop_w) // 2
                x = x[:, top:top + crop_h, left:left + crop_w]
            else:
                top, left = (crop_h - h) // 2, (crop_w - w) // 2
                x = F.pad(x, (left, crop_w - w - left, top, crop_h - h - top))
        if tuple(x.shape[1:]) != self.size:
            options = {} if self.mode in ("nearest-exact", "area") else {"align_corners": False}
            x = F.interpolate(x[None], size=self.size, mode=self.mode, **options)[0]
        order = (1, 2, 0) if self.data_format == "channels_last" else (0, 1, 2)
        return x.permute(order).numpy()


def text_dataset_from_directory(directory, labels="inferred", label_mode="int",
                                class_names=None, batch_size=32, max_length=None, shuffle=True,
                                seed=None, validation_split=None, subset=None,
                                follow_links=False, verbose=True, **kwargs):
    """Batches ``(texts, labels)`` of the ``.txt`` files under ``directory``: texts as a NumPy
    array of ``str`` (``tf.data`` gives bytes), cut to ``max_length`` characters."""
    kwargs.pop("format", None)
    if kwargs:
        raise TypeError(f"text_dataset_from_directory got unexpected arguments {sorted(kwargs)}")
    _check_labels(labels, label_mode, class_names)
    if labels is None or label_mode is None:
        labels = label_mode = None
    check_validation_split(validation_split, subset, shuffle, seed)

    def read(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return np.array(text[:max_length] if max_length is not None else text, dtype=object)
    return _file_datasets(directory, TEXT_FORMATS, "text files", read, labels, label_mode,
                          class_names, batch_size, shuffle, seed, validation_split, subset,
                          follow_links, verbose)
