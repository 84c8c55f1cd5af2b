"""Whole-model files: the Keras 3 ``.keras`` zip and Keras 2's legacy ``.h5``.

A ``.keras`` file is a zip of ``metadata.json`` (versions, date), ``config.json`` (the model as
``serialization.serialize_layer`` writes it, with ``compile_config``) and ``model.weights.h5``
(``h5_weights`` layout), exactly the members Keras 3 writes, so either library loads the other's
files. A legacy ``.h5`` holds the Keras-2 config as the ``model_config`` attribute and the weights
under ``model_weights``.

The compile state travels as Keras 3's ``compile_config``: the optimizer by class name and config,
losses and metrics by name (or ``{'class_name', 'config'}`` for objects).

Files are written to a temporary file in the target's directory and renamed over the target, so
an interrupted save never leaves a half-written model behind. Nothing is ever unpickled.
"""
import datetime
import inspect
import io
import json
import logging
import os
import tempfile
import zipfile

import numpy as np

from kaffe.saving import h5_weights
from kaffe.saving.serialization import deserialize_layer, map_structure, serialize_layer

log = logging.getLogger("kaffe")

# The Keras release whose .keras layout these files follow (Keras 3 reads, never checks, it).
KERAS_FORMAT_VERSION = "3.15.1"
CONFIG_NAME, METADATA_NAME, WEIGHTS_NAME = "config.json", "metadata.json", "model.weights.h5"
_MAX_MEMBER_BYTES = 1 << 34  # 16 GiB: refuse a zip member that claims more (a zip bomb)


def atomic_write(filepath, write):
    """Call ``write(tmp_path)``, then rename the temporary file onto ``filepath``."""
    filepath = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(filepath)}.",
                               suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"a {type(value).__name__} ({value!r}) in the model config cannot be "
                    "written as JSON")


def model_json(model):
    """The model's config as JSON; a value JSON cannot hold is named with its layer and key."""
    config = serialize_layer(model)
    try:
        return json.dumps(config, default=_json_default)
    except TypeError as error:
        found = _unjsonable(config, model.name, ())
        if found is None:
            raise
        layer, keys, value = found
        raise TypeError(f"Cannot save model '{model.name}': the config of layer '{layer}' holds "
                        f"a {type(value).__name__} ({value!r:.80}) under key "
                        f"'{'.'.join(map(str, keys))}', which cannot be written as JSON. Make the "
                        "layer's get_config() return plain numbers, strings, lists and dicts "
                        "(serialize objects to their config). Nothing was written.") from error


def _unjsonable(value, layer, keys):
    """``(layer name, key path, value)`` of the first value JSON cannot hold, or None; key paths
    start again inside each layer's own config (a record with a named ``config``)."""
    if isinstance(value, dict):
        config = value.get("config")
        if "class_name" in value and isinstance(config, dict) and "name" in config:
            return _unjsonable(config, config["name"], ())
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        try:
            json.dumps(value, default=_json_default)
        except TypeError:
            return layer, keys, value
        return None
    for key, item in items:
        found = _unjsonable(item, layer, keys + (key,))
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------------------------- compile state
def serialize_compile_config(model):
    """``compile_config`` as Keras 3 writes it, or None for a model never compiled."""
    if not getattr(model, "compiled", False) or getattr(model, "_compile_args", None) is None:
        return None
    from kaffe import optimizers
    args = model._compile_args
    optimizer = model.optimizer
    if isinstance(optimizer, optimizers.Optimizer):
        opt_config = {k: v for k, v in optimizer.get_config().items()
                      if not (k == "decay" and not v)}  # Keras 3 warns on any `decay`
        opt = {"module": "keras.optimizers", "class_name": type(optimizer).__name__,
               "config": opt_config, "registered_name": None}
    else:
        log.warning("Optimizer %r of model '%s' is not a kaffe optimizer; it is not saved.",
                    optimizer, model.name)
        opt = None
    return {"optimizer": opt, "loss": map_structure(_serialize_loss, args["loss"]),
            "loss_weights": args.get("loss_weights"),
            "metrics": map_structure(_serialize_metric, args.get("metrics")),
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": bool(getattr(model, "_jit_compile", False))}


def _serialize_fn(fn, registry_module):
    if fn is None or isinstance(fn, (str, int, float)):
        return fn
    if hasattr(fn, "get_config") and not inspect.isfunction(fn):
        return {"module": registry_module, "class_name": type(fn).__name__,
                "config": fn.get_config(), "registered_name": None}
    name = getattr(fn, "__name__", None) or repr(fn)
    return {"module": getattr(fn, "__module__", None), "class_name": "function",
            "config": name, "registered_name": name}


def _serialize_loss(loss):
    from kaffe import losses
    if callable(loss) and getattr(loss, "__name__", None) in losses._FUNCTIONS:
        return loss.__name__
    return _serialize_fn(loss, "keras.losses")


def _serialize_metric(metric):
    return _serialize_fn(metric, "keras.metrics")


def compile_from_config(model, config, custom_objects=None, source="the file"):
    """Compile ``model`` from a Keras 3 ``compile_config`` (optimizer by class name + config,
    losses and metrics by name or ``{'class_name', 'config'}``)."""
    from kaffe import losses, metrics, optimizers
    custom_objects = custom_objects or {}
    opt = config.get("optimizer") or "rmsprop"
    if isinstance(opt, dict):  # Keras 2.11+ wrote 'Custom>Adam' and two flags Keras 3 dropped
        opt = {**opt, "class_name": opt["class_name"].removeprefix("Custom>"),
               "config": {k: v for k, v in (opt.get("config") or {}).items()
                          if k not in ("is_legacy_optimizer", "jit_compile")}}
    try:
        opt = _deserialize_fn(opt, custom_objects, optimizers.get)
        loss = map_structure(lambda x: _deserialize_fn(x, custom_objects, losses.deserialize),
                              config.get("loss"))
        metric_list = map_structure(lambda x: _deserialize_fn(x, custom_objects,
                                                              metrics.deserialize),
                                    config.get("metrics"))
        model.compile(optimizer=opt, loss=loss, metrics=metric_list,
                      loss_weights=config.get("loss_weights"),
                      jit_compile=bool(config.get("jit_compile", False)))
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{source}: cannot compile the model from its saved compile_config "
                         f"({error}). Load it with compile=False and call compile() yourself."
                         ) from error


def _deserialize_fn(value, custom_objects, from_class_config):
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return custom_objects.get(value, value)
    name = value.get("config") if value.get("class_name") == "function" else None
    if name is not None:
        if name in custom_objects:
            return custom_objects[name]
        return name  # a built-in looked up by name in compile()
    if value.get("class_name") in custom_objects:
        cls = custom_objects[value["class_name"]]
        return cls.from_config(value.get("config", {}))
    return from_class_config({"class_name": value["class_name"], "config": value.get("config", {})})


# ---------------------------------------------------------------------------------- .keras
def save_keras(model, filepath):
    import kaffe
    config = model_json(model)
    metadata = json.dumps({"keras_version": KERAS_FORMAT_VERSION,
                           "kaffe_version": kaffe.__version__,
                           "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")})
    weights = io.BytesIO()
    h5_weights.write_weights(model, weights, inference_only=True)

    def write(path):
        with zipfile.ZipFile(path, "w") as zf:  # stored, not deflated, like Keras
            zf.writestr(METADATA_NAME, metadata)
            zf.writestr(CONFIG_NAME, config)
            zf.writestr(WEIGHTS_NAME, weights.getvalue())
    atomic_write(filepath, write)


def read_member(zf, name, source):
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ValueError(f"{source}: not a complete .keras file, it has no {name} "
                         f"(members: {zf.namelist()}).") from None
    if info.file_size > _MAX_MEMBER_BYTES:
        raise ValueError(f"{source}: member {name} claims {info.file_size} bytes; refusing it.")
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{source}: member {name} cannot be read ({error}); the file looks "
                         "truncated or corrupt.") from error


def open_zip(filepath):
    source = f"'{os.fspath(filepath)}'"
    try:
        return zipfile.ZipFile(filepath, "r"), source
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{source}: not a readable .keras (zip) file ({error}).") from error


def load_keras(filepath, custom_objects=None, compile=True):
    zf, source = open_zip(filepath)
    with zf:
        try:
            config = json.loads(read_member(zf, CONFIG_NAME, source))
        except json.JSONDecodeError as error:
            raise ValueError(f"{source}: {CONFIG_NAME} is not valid JSON ({error}).") from error
        compile_config = config.pop("compile_config", None)
        model = deserialize_layer(config, custom_objects, source=source)
        read_keras_weights(model, zf, source)
    if compile and compile_config:
        compile_from_config(model, compile_config, custom_objects, source)
    return model


def read_keras_weights(model, zf, source, skip_mismatch=False):
    names = zf.namelist()
    if WEIGHTS_NAME not in names:
        if "model.weights.npz" in names:
            raise ValueError(f"{source}: its weights are in model.weights.npz, a format that "
                             "needs unpickling, which kaffe never does. Re-save it from Keras "
                             "with the default h5 weights format.")
        read_member(zf, WEIGHTS_NAME, source)  # raises the 'no such member' error
    data = read_member(zf, WEIGHTS_NAME, source)
    where = f"{source} ({WEIGHTS_NAME})"
    with h5_weights.open_h5(io.BytesIO(data), where) as f:
        h5_weights.read_weights(model, f, where, skip_mismatch=skip_mismatch)


# ---------------------------------------------------------------------------------- legacy .h5
def save_legacy_h5(model, filepath, include_optimizer=True):
    """Keras 2's HDF5 model file: ``model_config`` + ``model_weights/<layer>/<layer>/kernel:0``."""
    import h5py
    config = serialize_layer(model)
    compile_config = config.pop("compile_config", None)
    model_config = json.dumps(_legacy_config(config), default=_json_default)

    def write(path):
        with h5py.File(path, "w") as f:
            f.attrs["model_config"] = model_config.encode("utf8")
            f.attrs["keras_version"] = b"2.15.0"
            f.attrs["backend"] = b"tensorflow"
            if include_optimizer and compile_config and compile_config.get("optimizer"):
                training = {k: compile_config[k] for k in ("loss", "metrics", "loss_weights",
                                                           "weighted_metrics")}
                opt = compile_config["optimizer"]
                training["optimizer_config"] = {"class_name": opt["class_name"],
                                                "config": opt["config"]}
                f.attrs["training_config"] = json.dumps(training,
                                                        default=_json_default).encode("utf8")
            h5_weights.write_legacy_weights(model, f.create_group("model_weights"))
    atomic_write(filepath, write)


def _legacy_config(config):
    """Keras 3 config -> Keras 2 form: no module/registered_name/build_config keys."""
    if isinstance(config, dict):
        if "class_name" in config and "config" in config and "module" in config:
            out = {"class_name": config["class_name"], "config": _legacy_config(config["config"])}
            for key in ("name", "inbound_nodes"):
                if key in config:
                    out[key] = _legacy_config(config[key])
            return out
        return {k: _legacy_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_legacy_config(v) for v in config]
    return config


def load_legacy_h5(filepath, custom_objects=None, compile=True):
    source = f"'{os.fspath(filepath)}'"
    with h5_weights.open_h5(os.fspath(filepath), source) as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise ValueError(f"{source}: an HDF5 file with no model_config attribute; it holds "
                             "weights only: build the model and call model.load_weights().")
        config = json.loads(raw.decode("utf8") if isinstance(raw, bytes) else raw)
        model = deserialize_layer(config, custom_objects, source=source)
        group = f["model_weights"] if "model_weights" in f else f
        h5_weights.read_legacy_weights(model, group, source)
        training = f.attrs.get("training_config")
    if compile and training is not None:
        training = json.loads(training.decode("utf8") if isinstance(training, bytes) else training)
        compile_config = {k: training.get(k) for k in ("loss", "metrics", "loss_weights")}
        compile_config["optimizer"] = training.get("optimizer_config")
        compile_from_config(model, compile_config, custom_objects, source)
    return model

