"""Global settings Keras keeps in ``keras.json``: float type, fuzz factor, image layout.

Read once from ``$KAFFE_HOME/kaffe.json`` (default ``~/.kaffe/kaffe.json``) when present, so a
user who set ``image_data_format`` for Keras can do the same here.
"""
import json
import os

_VALID_FORMATS = ("channels_last", "channels_first")

_settings = {"floatx": "float32", "epsilon": 1e-7, "image_data_format": "channels_last",
             "layer_naming": "keras3", "traceback_filtering": True}


def _load_user_file():
    home = os.environ.get("KAFFE_HOME", os.path.join(os.path.expanduser("~"), ".kaffe"))
    path = os.path.join(home, "kaffe.json")
    if not os.path.isfile(path):
        return
    try:
        with open(path) as f:
            user = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"kaffe config file {path} is not valid JSON: {e}") from e
    for key in _settings:
        if key in user:
            _settings[key] = user[key]


_load_user_file()


def floatx():
    return _settings["floatx"]


def set_floatx(value):
    _settings["floatx"] = str(value)


def epsilon():
    return _settings["epsilon"]


def set_epsilon(value):
    _settings["epsilon"] = float(value)


def image_data_format():
    return _settings["image_data_format"]


def set_image_data_format(data_format):
    _settings["image_data_format"] = standardize_data_format(data_format)


def layer_naming():
    """'keras3' (``dense``, ``dense_1``...) or 'keras2' (``dense_1``, ``dense_2``...)."""
    return _settings["layer_naming"]


def set_layer_naming(style):
    if style not in ("keras3", "keras2"):
        raise ValueError(f"layer_naming must be 'keras3' or 'keras2'. Received: {style!r}")
    _settings["layer_naming"] = style


def enable_traceback_filtering():
    """Keras 3 hides its own frames from tracebacks while this is on (its default). kaffe never
    trims tracebacks, but its errors name the layer, shape and script line themselves; the
    setting is kept so programs that toggle it (``keras.config.disable_traceback_filtering()``
    at the top of Keras's demos) and read it back run unchanged."""
    _settings["traceback_filtering"] = True


def disable_traceback_filtering():
    """See :func:`enable_traceback_filtering`."""
    _settings["traceback_filtering"] = False


def is_traceback_filtering_enabled():
    return _settings["traceback_filtering"]


def standardize_data_format(data_format):
    """Return a valid data format, filling ``None`` from the global setting."""
    if data_format is None:
        return image_data_format()
    data_format = str(data_format).lower()
    if data_format not in _VALID_FORMATS:
        raise ValueError(
            f"data_format must be one of {_VALID_FORMATS}. Received: data_format={data_format!r}")
    return data_format
