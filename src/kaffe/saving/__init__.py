"""Saving and loading models and weights, in Keras's file formats (never pickle).

=====================  =====================================================================
``model.save(p)``      ``p.keras``: Keras 3 zip (config JSON + weights HDF5), loadable by
                       ``keras.saving.load_model``; ``p.h5``/``p.hdf5``: Keras 2 legacy HDF5.
``load_model(p)``      either of those, written by kaffe, Keras 3 or (``.h5``) Keras 2.
``save_weights(p)``    ``*.weights.h5`` (or any other name): Keras 3's weights layout;
                       ``*.h5``/``*.hdf5``: Keras 2's layout.
``load_weights(p)``    any of the three (the layout is read from the file, not its name).
=====================  =====================================================================
"""
import os
import zipfile

from kaffe.saving import h5_weights, keras_file
from kaffe.saving.serialization import deserialize_layer, model_from_json, serialize_layer

_LEGACY_SUFFIXES = (".h5", ".hdf5")

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "model_from_json",
           "serialize_layer", "deserialize_layer"]


def _path(filepath):
    return os.fspath(filepath)


def _is_legacy_name(path):
    path = path.lower()
    return path.endswith(_LEGACY_SUFFIXES) and not path.endswith(".weights.h5")


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"'{path}' exists and overwrite=False; choose another name or "
                              "pass overwrite=True.")


def save_model(model, filepath, overwrite=True, include_optimizer=True, save_format=None,
               **kwargs):
    """Save architecture, weights and compile state to ``filepath`` (``.keras`` or ``.h5``)."""
    path = _path(filepath)
    _check_overwrite(path, overwrite)
    fmt = (save_format or "").lower()
    if fmt in ("h5", "hdf5") or (not fmt and _is_legacy_name(path)):
        return keras_file.save_legacy_h5(model, path, include_optimizer=include_optimizer)
    if fmt in ("keras", "") and path.endswith(".keras"):
        return keras_file.save_keras(model, path)
    raise ValueError(f"Cannot save a model to '{path}': use a '.keras' name (Keras 3's format, "
                     "recommended) or '.h5' (Keras 2's legacy HDF5). TensorFlow SavedModel "
                     "directories are not written by kaffe.")


def load_model(filepath, custom_objects=None, compile=True):
    """A model from a ``.keras`` zip or a legacy ``.h5`` file (kaffe's, Keras 3's or Keras 2's).

    Layers are looked up in ``custom_objects`` first, then in ``kaffe.layers``; a ``Lambda``'s
    function must be given in ``custom_objects`` under its name. With ``compile=True`` the model is
    compiled again from the saved optimizer, loss and metrics.
    """
    path = _path(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at '{path}'.")
    if os.path.isdir(path):
        raise ValueError(f"'{path}' is a directory (a TensorFlow SavedModel?); kaffe loads "
                         "'.keras' and '.h5' model files.")
    if zipfile.is_zipfile(path):
        return keras_file.load_keras(path, custom_objects, compile)
    with open(path, "rb") as f:
        head = f.read(8)
    if head == h5_weights.HDF5_SIGNATURE:
        return keras_file.load_legacy_h5(path, custom_objects, compile)
    if head.startswith(ZIP_SIGNATURE):
        raise ValueError(f"'{path}' starts as a .keras (zip) file but is truncated or corrupt: "
                         f"its {os.path.getsize(path)} bytes end before the zip directory. "
                         "Copy or save the model again.")
    raise ValueError(f"'{path}' is neither a .keras (zip) nor an HDF5 model file"
                     + (" (it is empty)." if not head else f" (it starts with {head!r})."))


#: the first bytes of a zip file's first member (a .keras file starts with them)
ZIP_SIGNATURE = b"PK\x03\x04"


def save_weights(model, filepath, overwrite=True):
    """Write the weights only: ``.h5``/``.hdf5`` in Keras 2's layout, anything else (normally
    ``.weights.h5``) in Keras 3's."""
    path = _path(filepath)
    _check_overwrite(path, overwrite)
    if _is_legacy_name(path):
        import h5py

        def write(tmp):
            with h5py.File(tmp, "w") as f:
                h5_weights.write_legacy_weights(model, f)
        keras_file.atomic_write(path, write)
    else:
        keras_file.atomic_write(path, lambda tmp: h5_weights.write_weights(model, tmp))


def load_weights(model, filepath, skip_mismatch=False, by_name=False):
    """Load weights saved by ``save_weights`` or ``save`` (kaffe or Keras, either layout)."""
    path = _path(filepath)
    source = f"'{path}'"
    if not os.path.exists(path):
        raise FileNotFoundError(f"No weights file at {source}.")
    if zipfile.is_zipfile(path):
        zf, source = keras_file.open_zip(path)
        with zf:
            return keras_file.read_keras_weights(model, zf, source, skip_mismatch=skip_mismatch)
    with h5_weights.open_h5(path, source) as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" in group.attrs or "layer_names0" in group.attrs:
            return h5_weights.read_legacy_weights(model, group, source, by_name=by_name,
                                                  skip_mismatch=skip_mismatch)
        if by_name:
            raise ValueError(f"{source} is in Keras 3's weights layout, which is matched by "
                             "position, not by name; by_name=True applies to legacy .h5 files.")
        h5_weights.read_weights(model, f, source, skip_mismatch=skip_mismatch)
