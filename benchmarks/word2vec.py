"""word2vec: kaffe vs gensim 4 in one process, on the same sentences and hyper-parameters.

Training: words/s (raw corpus words per wall second of ``train``, vocabulary build excluded;
also per CPU second of the whole process) for skip-gram and CBOW, negative 5, window 5,
vector_size 100, 5 epochs, min_count 5, on austen.txt (prose cut into sentences by
``kaffe.text.TextSentences``) and enwiki_excerpt.txt (``LineSentence``), with 1 and 2 worker
threads; every peer and worker count runs once per repeat, in turn, ``--repeats`` times (best
time kept). Quality beside: analogy accuracy (questions-words.txt) and WordSim-353 Spearman, each
averaged over the seeds of the runs.

Loading: a synthetic word2vec binary file of ``--load-words`` x 300 (default 300k, about
360 MB) read by ``KeyedVectors.load_word2vec_format`` in kaffe and in gensim (best of 2).

    .venv/bin/python benchmarks/word2vec.py                  # everything (about 15 min)
    .venv/bin/python benchmarks/word2vec.py --quick          # enwiki, 1 repeat, 100k load
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

from kaffe.text import KeyedVectors, LineSentence, TextSentences, Word2Vec, kernels

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "text")
QUESTIONS = os.path.join(DATA, "questions-words.txt")
WORDSIM = os.path.join(DATA, "wordsim353.tsv")
CORPORA = {"austen": lambda: list(TextSentences(os.path.join(DATA, "austen.txt"))),
           "enwiki": lambda: list(LineSentence(os.path.join(DATA, "enwiki_excerpt.txt")))}
PARAMS = dict(vector_size=100, window=5, negative=5, hs=0, epochs=5, min_count=5, sample=1e-3)


def quality(kv):
    """(analogy accuracy %, WordSim-353 Spearman x 100), both peers scored by kaffe's evaluator
    (tests/test_keyedvectors.py checks it gives gensim's answers; it is much faster)."""
    import logging
    logging.disable(logging.INFO)
    kv = KeyedVectors.from_arrays(list(kv.index_to_key), kv.vectors)
    acc = kv.evaluate_word_analogies(QUESTIONS)[0]
    rho = kv.evaluate_word_pairs(WORDSIM)[1][0]
    logging.disable(logging.NOTSET)
    return 100 * acc, 100 * float(rho)


def run(peer, sentences, sg, workers, seed):
    """Build the vocabulary, then time ``train`` alone: (wall s, cpu s, kv)."""
    if peer == "kaffe":
        model = Word2Vec(sg=sg, workers=workers, seed=seed, **PARAMS)
    else:
        import gensim
        model = gensim.models.Word2Vec(sg=sg, workers=workers, seed=seed, **PARAMS)
    model.build_vocab(sentences)
    wall, cpu = time.perf_counter(), time.process_time()
    model.train(sentences, total_examples=model.corpus_count, epochs=model.epochs)
    return time.perf_counter() - wall, time.process_time() - cpu, model.wv


def bench_training(corpora, repeats, workers_list):
    """Every (peer, worker count) pair runs once per repeat, all of them in turn, so a machine
    whose speed drifts between minutes slows the pairs alike: the ratios between worker
    counts, not only between peers, come from interleaved runs. The vectors are scored after
    all runs (scoring runs multi-threaded BLAS), so only training runs between timed runs."""
    rows = []
    for name in corpora:
        sentences = CORPORA[name]()
        n_words = sum(map(len, sentences)) * PARAMS["epochs"]
        for sg in (1, 0):
            best = {(peer, w): [np.inf, np.inf, []] for w in workers_list
                    for peer in ("kaffe", "gensim")}
            for rep in range(repeats):
                for (peer, workers), b in best.items():
                    wall, cpu, kv = run(peer, sentences, sg, workers, seed=rep + 1)
                    b[0], b[1] = min(b[0], wall), min(b[1], cpu)
                    b[2].append(KeyedVectors.from_arrays(list(kv.index_to_key),
                                                         np.array(kv.vectors)))
            for workers in workers_list:
                row = {"corpus": name, "algo": "sg" if sg else "cbow", "workers": workers}
                for peer in ("kaffe", "gensim"):
                    wall, cpu, trained = best[(peer, workers)]
                    scores = [quality(kv) for kv in trained]
                    row[peer] = (n_words / wall, n_words / cpu, *np.mean(scores, axis=0))
                rows.append(row)
                print_row(row)
    return rows


def print_scaling(rows):
    """Words/s with the most workers over words/s with the fewest, per peer: how much the
    worker threads add (on a machine with at least that many idle cores)."""
    print()
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        for algo in ("sg", "cbow"):
            group = sorted((r for r in rows if r["corpus"] == corpus and r["algo"] == algo),
                           key=lambda r: r["workers"])
            if len(group) < 2:
                continue
            lo, hi = group[0], group[-1]
            print(f"{corpus} {algo}: {hi['workers']} workers / {lo['workers']}: kaffe "
                  f"{hi['kaffe'][0] / lo['kaffe'][0]:.2f}x, gensim "
                  f"{hi['gensim'][0] / lo['gensim'][0]:.2f}x")


def print_row(row):
    k, g = row["kaffe"], row["gensim"]
    print(f"| {row['corpus']} | {row['algo']} | {row['workers']} | {k[0]:,.0f} | {g[0]:,.0f} | "
          f"**{k[0] / g[0]:.2f}x** | {k[1] / g[1]:.2f}x | {k[2]:.1f} / {g[2]:.1f} | "
          f"{k[3]:.1f} / {g[3]:.1f} |", flush=True)


def bench_loading(n_words, dims=300):
    import gensim
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "synthetic.bin")
        vectors = rng.standard_normal((n_words, dims), dtype=np.float32)
        with open(path, "wb") as f:
            f.write(f"{n_words} {dims}\n".encode())
            for i in range(n_words):
                f.write(f"w{i:07d}_x ".encode() + vectors[i].tobytes() + b"\n")
        size_mb = os.path.getsize(path) / 2**20
        times = {}
        for peer, load in (("kaffe", KeyedVectors.load_word2vec_format),
                           ("gensim", gensim.models.KeyedVectors.load_word2vec_format)) * 2:
            t = time.perf_counter()
            kv = load(path, binary=True)
            times[peer] = min(times.get(peer, np.inf), time.perf_counter() - t)
            assert np.array_equal(kv.vectors[-1], vectors[-1])
            del kv
    print(f"\nloading {n_words:,} x {dims} binary ({size_mb:.0f} MB): "
          f"kaffe {times['kaffe']:.2f} s, "
          f"gensim {times['gensim']:.2f} s, kaffe {times['gensim'] / times['kaffe']:.1f}x faster")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpora", default="austen,enwiki")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--load-words", type=int, default=300000)
    parser.add_argument("--skip-loading", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.corpora, args.load_words = 1, "enwiki", 100000
    if not os.path.isdir(DATA):
        sys.exit(f"benchmark data not found: {DATA} (the shared data folder)")
    kernels.warm_up()
    print(f"params: {PARAMS}; words/s = raw corpus words x epochs / train() seconds, best of "
          f"{args.repeats}; quality = mean over seeds 1..{args.repeats}\n")
    print("| corpus | algo | workers | kaffe words/s | gensim words/s | wall ratio | "
          "CPU-time ratio | analogy % kaffe / gensim | WS353 rho x100 kaffe / gensim |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    load_before = os.getloadavg()[0]
    rows = bench_training(args.corpora.split(","), args.repeats,
                          [int(w) for w in args.workers.split(",")])
    print_scaling(rows)
    print(f"load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs: above about cpus - workers, the runs shared cores")
    if not args.skip_loading:
        bench_loading(args.load_words)


if __name__ == "__main__":
    main()
