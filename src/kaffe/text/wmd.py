"""Word Mover's Distance (Kusner et al. 2015) between two documents of words: the least total
distance the words of one must travel, in the embedding, to become the other's words.

Each document is a bag of words weighted by frequency (normalised to sum 1); the cost of
moving word ``i`` to word ``j`` is the Euclidean distance of their (unit, with ``norm=True``)
vectors; the earth mover's problem is solved exactly by the POT package (``ot.emd2``, an
optional dependency: ``pip install POT``), as gensim does. Words without a vector are dropped,
as gensim drops them.
"""
import collections
import logging

import numpy as np
import torch

logger = logging.getLogger(__name__)


def _bag(words, vocabulary):
    """Normalised word frequencies over ``vocabulary`` (a list)."""
    counts = collections.Counter(words)
    return np.array([counts[w] for w in vocabulary], dtype=np.float64) / len(words)


def wmdistance(kv, document1, document2, norm=True):
    """WMD between two lists of words; ``inf`` when either has no known word, 0 for the same
    bag of words."""
    try:
        from ot import emd2
    except ImportError:
        raise ImportError("wmdistance needs the POT package (Python Optimal Transport): "
                          "pip install POT") from None
    kept1 = [w for w in document1 if w in kv.key_to_index]
    kept2 = [w for w in document2 if w in kv.key_to_index]
    dropped = len(document1) - len(kept1) + len(document2) - len(kept2)
    if dropped:
        logger.info("wmdistance: dropped %d words without a vector", dropped)
    if not kept1 or not kept2:
        logger.warning("wmdistance: at least one document has no word with a vector; "
                       "returning inf")
        return float("inf")
    vocabulary = sorted(set(kept1) | set(kept2))
    bag1, bag2 = _bag(kept1, vocabulary), _bag(kept2, vocabulary)
    if len(vocabulary) == 1 or np.array_equal(bag1, bag2):
        return 0.0
    vectors = torch.from_numpy(np.vstack([kv.get_vector(w, norm=norm) for w in vocabulary]))
    cost = torch.cdist(vectors.double(), vectors.double()).numpy()
    return float(emd2(bag1, bag2, cost))
