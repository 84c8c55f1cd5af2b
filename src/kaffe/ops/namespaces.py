"""The names of ``kaffe.ops`` and of its Keras groups ``numpy`` / ``nn`` / ``math`` /
``image`` / ``linalg`` / ``core``: every registered op (grouped by its ``OpSpec.module``) plus
the eager-only helpers (control flow, Python-valued queries) that belong to each group."""
import functools
import types

from kaffe.ops import (arrays, core, einops, elementwise, image, image_filters, image_geometry,
                       linalg, math, nn, reductions, vectorize)
from kaffe.ops.registry import REGISTRY

elementwise.declare_all({})
nn.declare_activations({})

#: group -> (name -> function) of the helpers that are not graph ops.
EAGER_ONLY = {
    "numpy": {n: getattr(arrays, n) for n in ("bartlett", "blackman", "hamming", "hanning",
                                              "kaiser", "ndim", "size")}
    | {"vectorize": vectorize.vectorize},  # Keras has vectorize in ops.numpy and ops.core
    "core": {n: getattr(core, n) for n in (
        "convert_to_numpy", "is_tensor", "shape", "dtype", "cond", "switch", "while_loop",
        "fori_loop", "scan", "map", "vectorized_map", "associative_scan", "custom_gradient")}
    | {"vectorize": vectorize.vectorize},
    "linalg": {"jvp": core.jvp},
    "nn": {"swish": REGISTRY["silu"].function, "hard_swish": REGISTRY["hard_silu"].function},
}
#: group -> (name -> function) of group-only functions that record another op's node.
COMPOSED = {"image": {"extract_patches_3d": image.extract_patches_3d}}


@functools.lru_cache(maxsize=None)
def all_functions():
    functions = {name: spec.function for name, spec in REGISTRY.items()
                 if spec.module != "image"}  # Keras has image ops only under ops.image
    for extra in EAGER_ONLY.values():
        functions.update(extra)
    return functions


@functools.lru_cache(maxsize=None)
def groups():
    found = {}
    for group in ("numpy", "nn", "math", "image", "linalg", "core"):
        namespace = types.ModuleType(f"kaffe.ops.{group}",
                                     f"Keras's ``keras.ops.{group}`` names, from kaffe.ops.")
        for name, spec in REGISTRY.items():
            if spec.module == group:
                setattr(namespace, name, spec.function)
        for name, function in {**EAGER_ONLY.get(group, {}), **COMPOSED.get(group, {})}.items():
            setattr(namespace, name, function)
        found[group] = namespace
    return found


_ = (einops, image, image_filters, image_geometry, linalg, math, reductions)
