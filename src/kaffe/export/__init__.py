"""Deployment: kaffe models and Caffe nets out to ONNX (opset :data:`OPSET`).

- ``model.export(path, format="onnx")`` (Keras 3's spelling) -> :func:`export_keras_onnx`.
- ``caffe.export_onnx(prototxt, weights, path)`` -> :func:`export_caffe_onnx`.
- ``kaffe export SRC [WEIGHTS] OUT.onnx`` on the command line (``kaffe.cli.export``).

Needs the ``onnx`` extra (``pip install 'kaffe[onnx]'``: onnx, onnxscript; onnxruntime to run
the files). Every file passes ``onnx.checker.check_model(full_check=True)`` before it replaces
anything at ``path``.
"""
from kaffe.export.caffe_onnx import export_caffe_model, export_caffe_onnx
from kaffe.export.keras_onnx import export_keras_onnx
from kaffe.export.onnx_file import OPSET, OnnxExportError

__all__ = ["OPSET", "OnnxExportError", "export_caffe_model", "export_caffe_onnx", "export_model",
           "export_keras_onnx"]


def export_model(model, path, format="onnx", dynamic_batch=True, verbose=None, **kwargs):
    """``Model.export``: a Caffe net from ``caffe.load_model`` or any Keras-side model, as ONNX.
    Other formats (Keras 3's ``tf_saved_model``, ``openvino``) need TensorFlow/OpenVINO."""
    if format != "onnx":
        raise ValueError(f"model.export supports format='onnx' only (kaffe has no TensorFlow or "
                         f"OpenVINO); received format={format!r}.")
    if kwargs:
        raise TypeError(f"model.export(format='onnx') got unexpected arguments {sorted(kwargs)}; "
                        "it takes filepath, format, dynamic_batch and verbose.")
    if hasattr(model, "caffe_net"):
        return export_caffe_model(model, path, dynamic_batch=dynamic_batch)
    return export_keras_onnx(model, path, dynamic_batch=dynamic_batch)
