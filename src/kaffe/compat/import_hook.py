"""Serve ``import keras`` / ``tensorflow`` / ``gensim`` from kaffe during one ``kaffe run``.

``kaffe_as_keras()`` puts a ``sys.meta_path`` finder in front of the others and takes it away
again afterwards, together with every ``keras*`` / ``tensorflow*`` / ``gensim*`` entry it put in
``sys.modules`` (modules of those names imported before, e.g. the real Keras or gensim, are put
back). Being first on ``sys.meta_path``, it serves these names even where the real packages are
installed.

Under it, ``keras.<name>``, ``tensorflow.keras.<name>`` and ``gensim.<name>`` are *alias
modules* (``CompatModule``): empty modules whose attributes are looked up in the kaffe modules
the tables ``KERAS_MODULES`` (``keras.layers.core`` -> ``kaffe.layers``) and ``GENSIM_MODULES``
(``gensim.models.word2vec`` -> ``kaffe.text.word2vec``) name. A name kaffe lacks raises
``MissingAPIError`` naming it and the script line that used it::

    kaffe has no keras.layers.SomethingKaffeLacks (used at script.py:12): ...

(``MissingAPIImportError`` for ``from keras.layers import SomethingKaffeLacks`` and for modules,
so ``try: import x / except ImportError`` keeps working). ``import tensorflow`` gives the small
module built by ``kaffe.compat.tensorflow_shim``.

The hook is process-wide while it is active: run one script at a time.
"""
import contextlib
import dis
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from typing import NamedTuple

#: ``keras.<key>`` -> the kaffe modules that hold its names (looked up in order). A name not
#: in the table maps to the same-named sub-module of its parent's kaffe module when there is
#: one (``keras.datasets.mnist`` -> ``kaffe.datasets.mnist``); anything else is missing.
KERAS_MODULES = {
    "": ("kaffe",),
    "models": ("kaffe.models",),
    "layers": ("kaffe.layers",),
    # Keras 2 kept its layers in sub-modules; kaffe has them all in kaffe.layers.
    **{f"layers.{name}": ("kaffe.layers",) for name in (
        "core", "convolutional", "recurrent", "embeddings", "merge", "normalization", "pooling",
        "advanced_activations", "noise", "wrappers", "local", "convolutional_recurrent",
        "cudnn_recurrent")},
    "optimizers": ("kaffe.optimizers",),
    "optimizers.legacy": ("kaffe.optimizers",),  # TF 2.11+ spelling of the Keras 2 optimizers
    "optimizers.schedules": ("kaffe.schedules",),
    "losses": ("kaffe.losses",),
    "metrics": ("kaffe.metrics",),
    "callbacks": ("kaffe.callbacks",),
    "activations": ("kaffe.activations",),
    "initializers": ("kaffe.initializers",),
    "regularizers": ("kaffe.regularizers",),
    "constraints": ("kaffe.constraints",),
    "backend": ("kaffe.backend",),
    "ops": ("kaffe.ops",),
    # Keras 3 groups its ops; kaffe.ops holds them all (image ops only in its image group).
    **{f"ops.{group}": ("kaffe.ops",) for group in ("numpy", "nn", "math", "linalg", "core")},
    "ops.image": ("kaffe.ops.image",),
    "random": ("kaffe.random",),
    "config": ("kaffe.config",),
    "mixed_precision": ("kaffe.mixed_precision",),
    "distribution": ("kaffe.distribution",),
    "saving": ("kaffe.saving",),
    "utils": ("kaffe.utils",),
    "utils.np_utils": ("kaffe.utils.np_utils",),
    "utils.vis_utils": ("kaffe.utils",),
    "utils.data_utils": ("kaffe.utils",),
    "utils.image_utils": ("kaffe.utils",),  # TF 2.9+: load_img, img_to_array, ...
    "utils.layer_utils": ("kaffe.utils",),
    "datasets": ("kaffe.datasets",),
    "applications": ("kaffe.applications",),
    "datasets.data_utils": ("kaffe.utils",),  # Keras 0.x/1.x home of get_file
    "wrappers": ("kaffe.wrappers",),
    "wrappers.scikit_learn": ("kaffe.wrappers.scikit_learn",),
    "preprocessing": ("kaffe.preprocessing",),
    "engine": ("kaffe.layers", "kaffe.models"),
    "engine.topology": ("kaffe.layers", "kaffe.models"),
    "engine.base_layer": ("kaffe.layers",),
    "engine.input_layer": ("kaffe.layers",),
    "engine.training": ("kaffe.models",),
    "engine.sequential": ("kaffe.models",),
}

#: ``keras.__version__`` under kaffe: Keras 2.15 is the last Keras 2 and the ``tf.keras`` of
#: TensorFlow 2.15; ``+kaffe`` (a PEP 440 local version) tells the two apart.
KERAS_VERSION = "2.15.0+kaffe"

KERAS_HINT = ("kaffe does not provide it. kaffe covers the Keras API listed in its README; "
              "write the missing piece with kaffe.layers.Lambda, a custom Layer or torch.")

#: ``gensim.<key>`` -> the kaffe modules that hold its names: the word2vec part of gensim
#: (``kaffe.text``). Only these modules exist; ``gensim`` itself holds only them.
GENSIM_MODULES = {
    "": (),
    "models": ("kaffe.text",),
    "models.word2vec": ("kaffe.text.word2vec",),
    "models.keyedvectors": ("kaffe.text.keyedvectors",),
    "models.callbacks": ("kaffe.text.callbacks",),
    "utils": ("kaffe.text.utils",),
    "downloader": ("kaffe.text.downloader",),
}

#: ``gensim.__version__`` under kaffe: kaffe.text follows gensim 4's API (the gensim 3 spellings
#: ``size``/``iter`` are accepted too); ``+kaffe`` tells it from the real one.
GENSIM_VERSION = "4.4.0+kaffe"

GENSIM_HINT = ("kaffe does not provide it. kaffe covers gensim's word2vec: Word2Vec, "
               "KeyedVectors, the corpus readers of gensim.models.word2vec, "
               "gensim.models.callbacks, the tokenizers of gensim.utils and gensim.downloader's "
               "local cache (kaffe.text); run scripts that need the rest of gensim with plain "
               "python and gensim installed.")


class Family(NamedTuple):
    """One family of served names: its module table, error hint and ``__version__``."""
    modules: dict
    hint: str
    version: str
    #: whether a sub-module missing from ``modules`` maps to the same-named sub-module of its
    #: parent's kaffe module (``keras.datasets.mnist`` -> ``kaffe.datasets.mnist``).
    same_named_submodules: bool


KERAS = Family(KERAS_MODULES, KERAS_HINT, KERAS_VERSION, True)
GENSIM = Family(GENSIM_MODULES, GENSIM_HINT, GENSIM_VERSION, False)

#: module-name prefix -> the family served under it.
FAMILIES = {"keras": KERAS, "tensorflow.keras": KERAS, "gensim": GENSIM}

_ROOTS = ("keras", "tensorflow", "gensim")

#: tensorboard's own switch for "no TensorFlow here, use my stub" (its
#: ``//tensorboard/compat:no_tensorflow``): served empty so that tensorboard (used by
#: ``torch.utils.tensorboard`` and kaffe's ``TensorBoard`` callback) does not take kaffe's
#: ``tensorflow`` shim for the real TensorFlow and ask it for ``tf.io.gfile``.
TENSORBOARD_NO_TF = "tensorboard.compat.notf"
_HERE = os.path.dirname(os.path.abspath(__file__))


class MissingAPIError(AttributeError):
    """A ``keras`` / ``tensorflow`` / ``gensim`` name kaffe does not provide, reached as an
    attribute."""


class MissingAPIImportError(ModuleNotFoundError):
    """A ``keras`` / ``tensorflow`` / ``gensim`` name kaffe does not provide, reached by an
    import."""


# -- errors that point at the script ----------------------------------------------------------

def _user_frame(frame):
    """The first frame, going outwards, that is neither importlib's nor this package's."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith("<frozen importlib") or filename.startswith(_HERE)
                or os.path.dirname(filename) == os.path.dirname(importlib.__file__)):
            return frame
        frame = frame.f_back
    return None


def _is_import_from(frame):
    """Whether ``frame`` is executing ``from module import name`` (the IMPORT_FROM opcode)."""
    try:
        return dis.opname[frame.f_code.co_code[frame.f_lasti]] == "IMPORT_FROM"
    except (AttributeError, IndexError, TypeError):
        return False


def missing(full_name, caller=None, hint=KERAS_HINT, as_import=None):
    """The error for ``full_name`` (``'keras.layers.Foo'``), used from frame ``caller``.

    The message names the first frame outside importlib and kaffe.compat (the script's line).
    It is a ``MissingAPIImportError`` when ``as_import`` says so or, when ``as_import`` is None,
    when ``caller`` is running ``from ... import``; otherwise a ``MissingAPIError``.
    """
    caller = caller or sys._getframe(1)
    user = _user_frame(caller)
    where = f" (used at {user.f_code.co_filename}:{user.f_lineno})" if user else ""
    message = f"kaffe has no {full_name}{where}: {hint}"
    if as_import is None:
        as_import = _is_import_from(caller)
    if as_import:
        return MissingAPIImportError(message, name=full_name)
    return MissingAPIError(message)


# -- the alias modules ------------------------------------------------------------------------

def family_key(full_name):
    """``'keras.layers.core'`` / ``'tensorflow.keras.layers.core'`` -> ``(KERAS, 'layers.core')``;
    ``'gensim'`` -> ``(GENSIM, '')``; ``(None, None)`` for names outside the families
    (``'tensorflow.random'``)."""
    for prefix, family in FAMILIES.items():
        if full_name == prefix:
            return family, ""
        if full_name.startswith(prefix + "."):
            return family, full_name[len(prefix) + 1:]
    return None, None


def resolve(key, family=KERAS):
    """The kaffe module names behind ``<family>.<key>``, or None when kaffe has no such module."""
    if key in family.modules:
        return family.modules[key]
    parent, _, leaf = key.rpartition(".")
    if not parent or not family.same_named_submodules:
        return None  # keras.<x> for an x outside the table: not kaffe's internals
    parent_targets = resolve(parent, family)
    if not parent_targets or len(parent_targets) != 1:
        return None
    candidate = f"{parent_targets[0]}.{leaf}"
    try:
        found = importlib.util.find_spec(candidate)
    except (ImportError, ValueError):
        return None
    return (candidate,) if found is not None else None


class CompatModule(types.ModuleType):
    """A module standing in for ``keras.<x>`` / ``tensorflow.<x>`` / ``gensim.<x>`` under
    ``kaffe run``.

    Attributes are, in order: what was set on it (``__dict__``), known sub-modules (imported on
    first use, as real Keras packages import theirs), the attributes of its kaffe ``targets``
    (cached once found), and otherwise a ``MissingAPIError`` naming the script line.
    """

    def __init__(self, name, targets=(), hint=KERAS_HINT, doc=None):
        super().__init__(name, doc)
        self.__path__ = []  # a package, so that ``import keras.layers`` can go on from it
        vars(self)["_kaffe_targets"] = tuple(targets)
        vars(self)["_kaffe_hint"] = hint

    def __getattr__(self, attr):
        if attr.startswith("__") and attr.endswith("__"):
            if attr == "__all__":
                return self._public_names()
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        caller = sys._getframe(1)
        full_name = f"{self.__name__}.{attr}"
        family, key = family_key(full_name)
        if key is not None and key in family.modules:
            return self._import_submodule(full_name, caller)
        for target in self._kaffe_targets:
            try:
                value = getattr(target, attr)
            except AttributeError:
                continue
            if isinstance(value, types.ModuleType) and key is not None:
                return self._import_submodule(full_name, caller)  # served as keras.<...> too
            vars(self)[attr] = value
            return value
        raise missing(full_name, caller, self._kaffe_hint)

    def _import_submodule(self, full_name, caller):
        try:
            return importlib.import_module(full_name)
        except MissingAPIImportError as error:
            hint = str(error).partition(": ")[2] or self._kaffe_hint
            raise missing(full_name, caller, hint) from None

    def _public_names(self):
        names = [n for n in vars(self) if not n.startswith("_")]
        for target in self._kaffe_targets:
            exported = getattr(target, "__all__", None)
            if exported is None:
                exported = [n for n, v in vars(target).items()
                            if not n.startswith("_") and not isinstance(v, types.ModuleType)]
            names.extend(n for n in exported if n not in names)
        return names

    def __dir__(self):
        names = {n for n in vars(self) if not n.startswith("_kaffe")} | set(self._public_names())
        family, prefix = family_key(self.__name__)
        if prefix is not None:
            for key in family.modules:
                parent, _, leaf = key.rpartition(".")
                if key and parent == prefix:
                    names.add(leaf)
        return sorted(names)

    def __repr__(self):
        targets = ", ".join(t.__name__ for t in self._kaffe_targets)
        return f"<module {self.__name__!r} (kaffe{': ' + targets if targets else ''})>"


class _FactoryLoader(importlib.abc.Loader):
    """Loads a module by calling ``factory(name)``; nothing is executed."""

    def __init__(self, factory):
        self._factory = factory

    def create_module(self, spec):
        return self._factory(spec.name)

    def exec_module(self, module):
        pass


class KerasFinder(importlib.abc.MetaPathFinder):
    """Finds ``keras``, ``tensorflow``, ``gensim`` and their sub-modules (see module doc)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == TENSORBOARD_NO_TF:
            return self._spec(fullname, types.ModuleType)
        root = fullname.partition(".")[0]
        if root not in _ROOTS:
            return None
        if fullname == "tensorflow":
            from kaffe.compat import tensorflow_shim
            return self._spec(fullname, tensorflow_shim.build_module)
        family, key = family_key(fullname)
        if key is None:
            return self._tensorflow_namespace(fullname)
        targets = resolve(key, family)
        if targets is None:
            raise missing(fullname, sys._getframe(1), family.hint, as_import=True)
        modules = [self._import_target(fullname, name, family.hint) for name in targets]

        def make(name):
            module = CompatModule(name, modules, family.hint,
                                  doc=f"kaffe's stand-in for {name} "
                                      f"(names from {', '.join(targets) or 'its sub-modules'}).")
            if key == "":
                module.__version__ = family.version
            return module
        return self._spec(fullname, make)

    @staticmethod
    def _spec(fullname, factory):
        return importlib.machinery.ModuleSpec(fullname, _FactoryLoader(factory), is_package=True)

    @staticmethod
    def _import_target(fullname, name, hint=KERAS_HINT):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name and (name == error.name or name.startswith(error.name + ".")):
                raise missing(fullname, sys._getframe(1), as_import=True,
                              hint=f"it would come from {name}, which this kaffe does not "
                                   f"have yet. {hint}") from None
            raise

    def _tensorflow_namespace(self, fullname):
        """``import tensorflow.random`` & co.: the shim's own namespaces, nothing else."""
        from kaffe.compat.tensorflow_shim import TF_HINT
        tf = sys.modules.get("tensorflow")
        value = tf
        for part in fullname.split(".")[1:]:
            value = vars(value).get(part) if isinstance(value, types.ModuleType) else None
        if isinstance(value, types.ModuleType):
            return self._spec(fullname, lambda name: value)
        raise missing(fullname, sys._getframe(1), hint=TF_HINT, as_import=True)


def _is_served(name):
    return name.partition(".")[0] in _ROOTS or name == TENSORBOARD_NO_TF


@contextlib.contextmanager
def kaffe_as_keras():
    """Within the block, ``keras`` / ``tensorflow.keras`` / ``gensim`` imports give kaffe,
    ``tensorflow`` gives kaffe's shim. On exit the finder and every module it served are gone
    and any ``keras*`` / ``tensorflow*`` / ``gensim*`` modules imported before are back in
    ``sys.modules``."""
    saved = {name: module for name, module in sys.modules.items() if _is_served(name)}
    for name in saved:
        del sys.modules[name]
    finder = KerasFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        for name in [name for name in sys.modules if _is_served(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
