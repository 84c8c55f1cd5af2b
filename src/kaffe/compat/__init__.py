"""Running unedited Keras scripts on kaffe: ``keras`` / ``tensorflow`` imports served by kaffe.

``kaffe run script.py`` (``kaffe.cli.run``) runs a script inside ``kaffe_as_keras()``; the hook
exists only for that run. See ``kaffe.compat.import_hook`` for the name table and
``kaffe.compat.tensorflow_shim`` for what ``import tensorflow as tf`` provides.
"""
from kaffe.compat.import_hook import (KERAS_MODULES, KERAS_VERSION, CompatModule, KerasFinder,
                                      MissingAPIError, MissingAPIImportError, kaffe_as_keras)

__all__ = ["kaffe_as_keras", "KerasFinder", "CompatModule", "MissingAPIError",
           "MissingAPIImportError", "KERAS_MODULES", "KERAS_VERSION"]
