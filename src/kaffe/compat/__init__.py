"""Running unedited Keras and gensim scripts on kaffe: ``keras`` / ``tensorflow`` / ``gensim``
imports served by kaffe (``gensim.models`` from ``kaffe.text``).

``kaffe run script.py`` (``kaffe.cli.run``) runs a script inside ``kaffe_as_keras()``; the hook
exists only for that run. See ``kaffe.compat.import_hook`` for the name table and
``kaffe.compat.tensorflow_shim`` for what ``import tensorflow as tf`` provides.
"""
from kaffe.compat.import_hook import (GENSIM_MODULES, KERAS_MODULES, KERAS_VERSION, CompatModule,
                                      KerasFinder, MissingAPIError, MissingAPIImportError,
                                      kaffe_as_keras)

__all__ = ["kaffe_as_keras", "KerasFinder", "CompatModule", "MissingAPIError",
           "MissingAPIImportError", "KERAS_MODULES", "KERAS_VERSION", "GENSIM_MODULES"]
