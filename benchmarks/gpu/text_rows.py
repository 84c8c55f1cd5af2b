"""word2vec row: kaffe ``Word2Vec(device='cuda')`` vs gensim with 2 worker threads, same corpus
and hyper-parameters (benchmarks/word2vec.py's), at equal quality."""
import os
import sys
import time

from common import REPO, Row, ratio_text, verdict

sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import word2vec as w2v_bench  # noqa: E402

# "equal quality": kaffe's WordSim-353 rho x100 and analogy % at most this far below gensim's
QUALITY_SLACK = {"ws353": 3.0, "analogy": 1.0}


def _train(peer, sentences, sg, params, device):
    if peer == "kaffe":
        model = w2v_bench.Word2Vec(sg=sg, workers=2, seed=1, device=device, **params)
    else:
        import gensim
        model = gensim.models.Word2Vec(sg=sg, workers=2, seed=1, **params)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    return time.perf_counter() - start, model.wv


def rows(plan, left_s=None):
    sentences = w2v_bench.CORPORA["enwiki"]()
    params = dict(w2v_bench.PARAMS)
    if plan.dry:
        sentences, params["epochs"] = sentences[:1500], 1
    words = sum(map(len, sentences)) * params["epochs"]
    out = []
    for sg, algo in ((1, "skip-gram"), (0, "CBOW")):
        k_s, k_kv = _train("kaffe", sentences, sg, params, str(plan.device))
        g_s, g_kv = _train("gensim", sentences, sg, params, None)
        (k_an, k_ws), (g_an, g_ws) = w2v_bench.quality(k_kv), w2v_bench.quality(g_kv)
        equal = (k_ws >= g_ws - QUALITY_SLACK["ws353"] and
                 k_an >= g_an - QUALITY_SLACK["analogy"])
        ratio = g_s / k_s
        status = "INFO" if plan.dry else verdict(ratio >= 10 and equal)
        out.append(Row(f"word2vec {algo} enwiki excerpt, {params['epochs']} epochs: "
                       f"device='{plan.device.type}'", f"{words / k_s:,.0f} words/s",
                       f"gensim 2 threads {words / g_s:,.0f}", ratio_text(ratio),
                       ">= 10x, equal quality", status,
                       f"WS353 rho x100 {k_ws:.1f} vs {g_ws:.1f}, analogy {k_an:.1f}% vs "
                       f"{g_an:.1f}% ({'equal' if equal else 'LOWER'} quality)"))
    return out
