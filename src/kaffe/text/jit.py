"""``njit`` for kaffe's compiled text kernels: numba's, with its on-disk cache when numba can
write one, and without it otherwise.

numba looks for a writable cache folder (beside the source, then the user's cache folder)
when a function is decorated, and raises ``RuntimeError("cannot cache function ...: no
locator available")`` when there is none: a read-only install used by another user, a
``$HOME`` that cannot be written. ``import kaffe`` must still work there, so such functions
are compiled without a cache (each new process compiles them again: slower start, same speed).
"""
import logging

import numba

logger = logging.getLogger(__name__)

_warned = []


def njit(cache=True, **options):
    """``numba.njit(cache=cache, **options)``, falling back to ``cache=False`` when numba has
    nowhere to write its cache."""
    def decorate(function):
        if cache:
            try:
                return numba.njit(cache=True, **options)(function)
            except RuntimeError as error:
                if "cannot cache" not in str(error):
                    raise
                if not _warned:
                    logger.info("numba cannot cache kaffe's kernels (%s); compiling them in "
                                "each process instead", error)
                    _warned.append(True)
        return numba.njit(cache=False, **options)(function)
    return decorate
