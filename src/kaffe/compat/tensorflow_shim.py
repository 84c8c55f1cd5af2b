"""What ``import tensorflow as tf`` gives a script under ``kaffe run``: the TensorFlow that
Keras scripts touch, on torch.

Provided (everything else raises ``MissingAPIError`` naming the attribute and the script line):

- ``tf.keras``: the kaffe-backed ``keras`` (``tensorflow.keras.*`` imports work the same way);
- ``tf.__version__`` and ``tf.version.VERSION``: ``"2.15.0+kaffe"`` (TensorFlow 2.15, whose
  ``tf.keras`` is the last Keras 2, plus a PEP 440 local label saying it is kaffe);
- math and shape ops (``tf.shape``, ``tf.reduce_*``, ``tf.square``, ``tf.exp``, ``tf.concat``,
  ``tf.reshape``, ``tf.cast``, ``tf.one_hot``, ``tf.where``, ``tf.matmul`` ...), ``tf.math.*``,
  ``tf.nn.*`` basics, ``tf.linalg`` basics: TensorFlow's names and arguments over ``kaffe.ops``
  (``kaffe.compat.tf_ops``), so they also work on symbolic ``KerasTensor``s;
- ``tf.random.normal`` / ``uniform`` / ``truncated_normal`` / ``shuffle`` / ``categorical``;
  ``tf.random.set_seed(seed)`` seeds torch (CPU and every CUDA device), which draws all of
  kaffe's random numbers, as ``tf.random.set_seed`` seeds TensorFlow's ops only (use
  ``keras.utils.set_random_seed`` to seed Python and NumPy too);
- ``tf.GradientTape``, ``tf.Variable`` and ``tf.function`` on torch's autograd
  (``kaffe.compat.tf_autodiff``): ``tape.gradient(loss, model.trainable_variables)`` then
  ``optimizer.apply_gradients(zip(grads, vars))`` works as in TensorFlow 2;
- ``tf.data.Dataset`` over in-memory arrays (``kaffe.compat.tf_data``);
- ``tf.config.list_physical_devices(device_type=None)``: ``CPU:0`` plus one ``GPU:i`` per CUDA
  device torch sees; ``tf.config.experimental.list_physical_devices`` likewise, and
  ``tf.config.experimental.set_memory_growth`` accepted as a no-op (torch's caching allocator
  already grows on demand) since TF 2 scripts call it right after listing the GPUs;
- ``tf.constant`` / ``tf.convert_to_tensor``: torch tensors (dtype inferred as torch does:
  Python ints give int64 where TensorFlow gives int32), and the dtype names ``tf.float32`` ...
  as torch dtypes.

TensorFlow 1's sessions and graphs (``tf.Session``, ``tf.placeholder``, ``tf.compat.v1``) are
not there: kaffe computes eagerly; the error says so and what to write instead.
"""
from typing import NamedTuple

import numpy as np
import torch

from kaffe.compat.import_hook import CompatModule

VERSION = "2.15.0+kaffe"

TF_HINT = ("kaffe does not provide it. kaffe's tensorflow stand-in has tf.keras, common math, "
           "shape, tf.nn, tf.random, tf.linalg and tf.image ops, tf.GradientTape, tf.Variable, "
           "tf.function, tf.data.Dataset over arrays, tf.config device listing and the dtype "
           "names: write this part with keras.ops (kaffe.ops) or torch.")

#: TensorFlow 1 names: there are no sessions or graphs in kaffe; what to write instead.
TF1_NAMES = {
    "Session": "values are computed eagerly: call the model (or K.function) and read "
               "tensor.numpy()",
    "InteractiveSession": "values are computed eagerly; delete the session",
    "ConfigProto": "delete the session config (torch manages device memory)",
    "GPUOptions": "delete the session config (torch manages device memory)",
    "placeholder": "use keras.Input(shape=...) for a symbolic input, or pass arrays directly",
    "global_variables_initializer": "delete it: variables hold their values when created",
    "get_default_graph": "delete the graph handling: kaffe builds models eagerly",
    "reset_default_graph": "use keras.backend.clear_session()",
}

DTYPES = {"float16": torch.float16, "half": torch.float16, "bfloat16": torch.bfloat16,
          "float32": torch.float32, "float64": torch.float64, "double": torch.float64,
          "int8": torch.int8, "int16": torch.int16, "int32": torch.int32, "int64": torch.int64,
          "uint8": torch.uint8, "bool": torch.bool, "complex64": torch.complex64,
          "complex128": torch.complex128}


class PhysicalDevice(NamedTuple):
    """``tf.config.PhysicalDevice``: ``name`` like ``'/physical_device:GPU:0'``, ``device_type``."""
    name: str
    device_type: str


def torch_dtype(dtype):
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name not in DTYPES:
        raise TypeError(f"tf dtype expected one of {sorted(DTYPES)}. Received: dtype={dtype!r}")
    return DTYPES[name]


def convert_to_tensor(value, dtype=None, dtype_hint=None, name=None):
    """``value`` (a number, nested list, NumPy array or tensor) as a torch tensor."""
    dtype = torch_dtype(dtype)
    if isinstance(value, torch.Tensor):
        return value if dtype is None else value.to(dtype)
    if dtype is None and dtype_hint is not None and not isinstance(value, np.ndarray):
        dtype = torch_dtype(dtype_hint)
    return torch.as_tensor(value, dtype=dtype)


def constant(value, dtype=None, shape=None, name=None):
    """``tf.constant``: a tensor of ``value``; a scalar is broadcast to ``shape``, a value with
    as many elements as ``shape`` is reshaped to it."""
    tensor = convert_to_tensor(value, dtype)
    if shape is None:
        return tensor.clone() if isinstance(value, torch.Tensor) else tensor
    shape = tuple(int(d) for d in shape)
    if tensor.numel() == 1:
        return tensor.reshape(()).expand(shape).clone()
    if tensor.numel() != int(np.prod(shape)):
        raise TypeError(f"tf.constant expected {int(np.prod(shape))} elements for shape={shape}. "
                        f"Received: a value with {tensor.numel()} elements.")
    return tensor.reshape(shape)


def list_physical_devices(device_type=None):
    """``CPU:0`` and one ``GPU:i`` per CUDA device, optionally only of ``device_type``."""
    devices = [PhysicalDevice("/physical_device:CPU:0", "CPU")]
    if torch.cuda.is_available():
        devices += [PhysicalDevice(f"/physical_device:GPU:{i}", "GPU")
                    for i in range(torch.cuda.device_count())]
    if device_type is None:
        return devices
    return [d for d in devices if d.device_type == str(device_type).upper()]


def set_seed(seed):
    """Seed torch's generators (CPU and all CUDA devices), which kaffe's layers draw from."""
    torch.manual_seed(int(seed))


def set_memory_growth(device, enable):
    """Accepted and ignored: torch's CUDA caching allocator takes memory as it is needed."""


def get_memory_growth(device):
    return True


def _name_scope():
    """``tf.name_scope('block')``: accepted (kaffe names layers, not graph scopes)."""
    from kaffe.backend import name_scope
    return name_scope


def _namespace(name, doc, **attrs):
    module = CompatModule(name, hint=TF_HINT, doc=doc)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def _tf1_only(attr):
    def refuse(*args, **kwargs):
        from kaffe.backend import NoSessionError
        raise NoSessionError(f"tf.{attr} is TensorFlow 1: kaffe has no sessions or graphs (it "
                             f"computes eagerly with torch). Instead: {TF1_NAMES[attr]}.")
    refuse.__name__ = attr
    return refuse


def build_module(name="tensorflow"):
    """A fresh ``tensorflow`` stand-in module (``tf.keras`` is imported on first use)."""
    from kaffe.compat import tf_autodiff, tf_data, tf_image, tf_ops, tf_strings
    tf = _namespace(name, __doc__, __version__=VERSION, constant=constant,
                    convert_to_tensor=convert_to_tensor, **DTYPES, **tf_ops.TOP_LEVEL,
                    GradientTape=tf_autodiff.GradientTape, Variable=tf_autodiff.Variable,
                    function=tf_autodiff.function, Tensor=torch.Tensor,
                    name_scope=_name_scope(),
                    **{attr: _tf1_only(attr) for attr in TF1_NAMES})
    tf.compat = CompatModule(f"{name}.compat", hint=(
        "kaffe's tensorflow stand-in has no tf.compat (TensorFlow 1's v1 API: sessions, "
        "placeholders); write the TensorFlow 2 form (eager tensors, tf.GradientTape, keras.Input)."),
        doc="TensorFlow 1 compatibility: not provided.")
    tf.version = _namespace(f"{name}.version", "TensorFlow's version.", VERSION=VERSION)
    tf.random = _namespace(f"{name}.random", "Random numbers and seeds.", set_seed=set_seed,
                           **tf_ops.RANDOM)
    tf.math = _namespace(f"{name}.math", "Element-wise math and reductions.", **tf_ops.MATH)
    tf.nn = _namespace(f"{name}.nn", "Activations and losses.", **tf_ops.NN)
    tf.linalg = _namespace(f"{name}.linalg", "Linear algebra.", **tf_ops.LINALG)
    tf.image = _namespace(f"{name}.image", "Image resizing, cropping, flips, colour and patch "
                          "ops (kaffe.compat.tf_image).", **tf_image.IMAGE)
    tf.strings = _namespace(f"{name}.strings", "Element-wise string cleaning on NumPy string "
                            "arrays (kaffe.compat.tf_strings).", **tf_strings.STRINGS)
    tf.data = _namespace(f"{name}.data", "In-memory input pipelines.", Dataset=tf_data.Dataset,
                         TextLineDataset=tf_data.TextLineDataset,
                         AUTOTUNE=tf_data.Dataset.AUTOTUNE,
                         experimental=_namespace(f"{name}.data.experimental", "AUTOTUNE.",
                                                 AUTOTUNE=tf_data.Dataset.AUTOTUNE))
    experimental = _namespace(f"{name}.config.experimental", "Device listing (TF 2.0 names).",
                              list_physical_devices=list_physical_devices,
                              set_memory_growth=set_memory_growth,
                              get_memory_growth=get_memory_growth)
    tf.config = _namespace(f"{name}.config", "Devices.", PhysicalDevice=PhysicalDevice,
                           list_physical_devices=list_physical_devices, experimental=experimental)
    return tf
