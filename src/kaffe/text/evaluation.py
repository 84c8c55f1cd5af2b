"""Word-vector benchmarks: Google's analogy questions (``questions-words.txt``) and word-pair
similarity sets (WordSim-353, SimLex-999), scored as word2vec's ``compute-accuracy`` and gensim 4
score them; plus the Pearson/Spearman statistics (with two-sided p-values) they report."""
import collections
import itertools
import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

Correlation = collections.namedtuple("Correlation", "statistic pvalue")


def _betacf(a, b, x):
    """Continued fraction of the regularized incomplete beta function (Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a, b, x):
    """Regularized incomplete beta ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _with_pvalue(r, n):
    """Two-sided p-value of correlation ``r`` over ``n`` pairs (Student's t, ``n - 2`` dof)."""
    r = float(np.clip(r, -1.0, 1.0))
    dof = n - 2
    if dof <= 0 or not math.isfinite(r):
        return Correlation(r, float("nan"))
    if abs(r) == 1.0:
        return Correlation(r, 0.0)
    return Correlation(r, _betainc(dof / 2.0, 0.5, dof / (dof + r * r * dof / (1 - r * r))))


def pearson(x, y):
    """Pearson's r and its two-sided p-value."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((x * x).sum() * (y * y).sum()))
    r = float((x * y).sum() / denom) if denom else float("nan")
    return _with_pvalue(r, len(x))


def _ranks(v):
    """Ranks from 1, ties sharing their average rank."""
    v = np.asarray(v, np.float64)
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    starts = np.r_[True, sorted_v[1:] != sorted_v[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, len(v)])
    ranks = np.empty(len(v))
    ranks[order] = first[group] + (counts[group] + 1) / 2.0
    return ranks


def spearman(x, y):
    """Spearman's rho (Pearson's r of the ranks) and its two-sided p-value."""
    return pearson(_ranks(x), _ranks(y))


def _vocab_view(kv, restrict_vocab, case_insensitive):
    """``{word (upper-cased if case_insensitive): index}`` over the first ``restrict_vocab``
    words; of several case variants the first (most frequent) wins."""
    keys = kv.index_to_key[:restrict_vocab]
    if case_insensitive:
        return {k.upper(): i for i, k in reversed(list(enumerate(keys)))}
    return {k: i for i, k in reversed(list(enumerate(keys)))}


def _section_score(section):
    correct, incorrect = len(section["correct"]), len(section["incorrect"])
    score = correct / (correct + incorrect) if correct + incorrect else 0.0
    if correct + incorrect:
        logger.info("%s: %.1f%% (%i/%i)", section["section"], 100 * score, correct,
                    correct + incorrect)
    return score


def _read_analogies(path, case_insensitive):
    """``[(section name, [(line number, (a, b, c, expected)), ...]), ...]``; a question line
    that does not hold exactly four words is an error naming the line."""
    sections = []
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            line = raw.decode("utf8")
            if line.startswith(": "):
                sections.append((line.lstrip(": ").strip(), []))
                continue
            words = line.split()
            if not words:
                continue
            if not sections:
                raise ValueError(f"{path}, line {line_no}: a question before any section header; "
                                 f"the file must start with a line ': section name'.")
            if len(words) != 4:
                raise ValueError(
                    f"{path}, line {line_no}: an analogy question needs 4 words 'a b c d' (a is "
                    f"to b as c is to d), received {len(words)}: {line.strip()!r}.")
            if case_insensitive:
                words = [w.upper() for w in words]
            sections[-1][1].append((line_no, tuple(words)))
    return sections


def _cos_add(unit, idx):
    """3CosAdd (``most_similar``): cosine to ``b + c - a`` of unit vectors."""
    query = unit[idx[:, 1]] + unit[idx[:, 2]] - unit[idx[:, 0]]
    query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-30)
    return query @ unit.T


def _cos_mul(unit, idx):
    """3CosMul (``most_similar_cosmul``): ``cos'(x, b) cos'(x, c) / (cos'(x, a) + 1e-6)``
    with cosines shifted to ``[0, 1]``."""
    shifted = [(1 + unit[idx[:, i]] @ unit.T) / 2 for i in range(3)]
    return shifted[1] * shifted[2] / (shifted[0] + 0.000001)


#: ``similarity_function`` name -> batch scorer ``(unit vectors, question rows) -> scores``.
ANALOGY_SCORES = {"most_similar": _cos_add, "most_similar_cosmul": _cos_mul}


def evaluate_word_analogies(kv, analogies, restrict_vocab=300000, case_insensitive=True,
                            dummy4unknown=False, similarity_function="most_similar"):
    """``(total accuracy, sections)`` as gensim: 3CosAdd (or, with
    ``similarity_function='most_similar_cosmul'``, 3CosMul) over the first ``restrict_vocab``
    words; questions with a word outside them are skipped (``dummy4unknown``: counted wrong).
    Each section is ``{'section', 'correct', 'incorrect'}``; the last one is the total."""
    if similarity_function not in ANALOGY_SCORES:
        raise ValueError(f"similarity_function {similarity_function!r} is not supported; "
                         f"expected one of {sorted(ANALOGY_SCORES)}")
    ok_vocab = _vocab_view(kv, restrict_vocab, case_insensitive)
    limit = min(restrict_vocab or len(kv), len(kv))
    kv.fill_norms()
    unit = kv.vectors[:limit] / np.maximum(kv.norms[:limit], 1e-30)[:, None]
    results, oov, n_questions = [], 0, 0
    for name, questions in _read_analogies(analogies, case_insensitive):
        section = {"section": name, "correct": [], "incorrect": []}
        verdicts, known = [], []  # file order kept: (quad, True/False/None=to compute)
        for line_no, quad in questions:
            n_questions += 1
            if all(w in ok_vocab for w in quad):
                known.append(len(verdicts))
                verdicts.append([quad, None])
            else:
                oov += 1
                if dummy4unknown:
                    verdicts.append([quad, False])
        for start in range(0, len(known), 512):
            batch = [verdicts[i][0] for i in known[start:start + 512]]
            idx = np.array([[ok_vocab[w] for w in quad] for quad in batch], dtype=np.int64)
            sims = ANALOGY_SCORES[similarity_function](unit, idx)
            k = min(8, sims.shape[1])
            best = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            best = np.take_along_axis(best, np.argsort(-np.take_along_axis(sims, best, 1),
                                                       axis=1, kind="stable"), 1)
            for row, quad in enumerate(batch):
                a, b, c, expected = quad
                inputs = set(idx[row, :3].tolist())
                top = [int(i) for i in best[row] if int(i) not in inputs][:5]
                predicted = None
                for cand in top:  # gensim's most_similar(topn=5), first word that is no input
                    word = kv.index_to_key[cand]
                    predicted = word.upper() if case_insensitive else word
                    if predicted in ok_vocab and predicted not in (a, b, c):
                        break
                verdicts[known[start + row]][1] = predicted == expected
        for quad, right in verdicts:
            section["correct" if right else "incorrect"].append(quad)
        _section_score(section)
        results.append(section)
    total = {"section": "Total accuracy",
             "correct": list(itertools.chain.from_iterable(s["correct"] for s in results)),
             "incorrect": list(itertools.chain.from_iterable(s["incorrect"] for s in results))}
    if n_questions:
        logger.info("Quadruplets with out-of-vocabulary words: %.1f%%", 100.0 * oov / n_questions)
    score = _section_score(total)
    results.append(total)
    return score, results


def evaluate_word_pairs(kv, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                        case_insensitive=True, dummy4unknown=False):
    """``(pearson, spearman, oov_ratio)`` of model cosine similarities against human scores in
    ``pairs`` (``word1<delimiter>word2<delimiter>score`` lines, ``#`` comments)."""
    ok_vocab = _vocab_view(kv, restrict_vocab, case_insensitive)
    gold, model, oov = [], [], 0
    with open(pairs, encoding=encoding) as f:
        for line_no, line in enumerate(f, 1):
            if not line or line.startswith("#"):
                continue
            parts = line.split(delimiter)
            try:
                a, b, sim = (p.upper() if case_insensitive else p for p in parts)
                sim = float(sim)
            except ValueError:
                logger.info("Skipping invalid line #%d in %s", line_no, pairs)
                continue
            if a not in ok_vocab or b not in ok_vocab:
                oov += 1
                if dummy4unknown:
                    gold.append(sim)
                    model.append(0.0)
                continue
            gold.append(sim)
            va, vb = kv.vectors[ok_vocab[a]], kv.vectors[ok_vocab[b]]
            model.append(float(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb))))
    if not gold:
        raise ValueError(f"No valid similarity judgements found in {pairs}: either the format is "
                         f"not 'word1{delimiter}word2{delimiter}score' or every pair has a word "
                         f"outside the first {restrict_vocab} words of the model.")
    oov_ratio = 100.0 * oov / (len(gold) if dummy4unknown else len(gold) + oov)
    p, s = pearson(gold, model), spearman(gold, model)
    logger.info("Pearson %.4f, Spearman %.4f against %s, %.1f%% pairs with unknown words",
                p.statistic, s.statistic, pairs, oov_ratio)
    return p, s, oov_ratio
