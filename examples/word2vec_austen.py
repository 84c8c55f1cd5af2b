"""Train word2vec on six Jane Austen novels, ask it analogies and neighbours, score it on
Google's analogy questions and WordSim-353, and save it in word2vec's binary format (which
gensim, if installed, reads back to prove the format).

    .venv/bin/python examples/word2vec_austen.py            # about 10 s on 2 cores
    .venv/bin/python examples/word2vec_austen.py --cbow --epochs 10 --out austen.bin

The corpus is ``../shared/data/text/austen.txt`` (717k words); without the shared folder
the script says so and trains on a small generated corpus instead.
"""
import argparse
import logging
import os
import random
import tempfile
import time

import numpy as np

from kaffe.text import KeyedVectors, TextSentences, Word2Vec

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_TEXT = os.path.join(HERE, "..", "..", "shared", "data", "text")
ANALOGIES = [(["she", "brother"], ["he"]), (["mrs", "husband"], ["mr"]),
             (["daughter", "father"], ["son"]), (["sisters", "brother"], ["sister"])]
NEIGHBOURS = ["elizabeth", "happy", "house", "letter", "monday"]


def generated_corpus(n_sentences=20000, seed=0):
    """A stand-in corpus with a little structure (people, relations, places, moods)."""
    rng = random.Random(seed)
    pairs = [("he", "she"), ("brother", "sister"), ("father", "mother"), ("son", "daughter"),
             ("husband", "wife"), ("mr", "mrs"), ("uncle", "aunt")]
    places = ["house", "park", "garden", "town", "church", "village"]
    moods = ["happy", "glad", "cheerful", "sad", "unhappy", "miserable"]
    sentences = []
    for _ in range(n_sentences):
        male, female = rng.choice(pairs)
        who = male if rng.random() < 0.5 else female
        pronoun = "he" if who == male else "she"
        sentences.append([who, "walked", "to", "the", rng.choice(places), "and", pronoun, "was",
                          rng.choice(moods[:3] if rng.random() < 0.5 else moods[3:])])
    return sentences


def load_corpus():
    path = os.path.join(SHARED_TEXT, "austen.txt")
    if os.path.exists(path):
        print(f"corpus: {os.path.normpath(path)}")
        return list(TextSentences(path)), SHARED_TEXT
    print(f"NOTE: {os.path.normpath(SHARED_TEXT)} is absent: training on a small generated "
          f"corpus instead; analogies and scores below mean little.")
    return generated_corpus(), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cbow", action="store_true", help="CBOW instead of skip-gram")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="where to write the word2vec .bin (default: a temp dir)")
    parser.add_argument("--verbose", action="store_true", help="show the progress lines")
    args = parser.parse_args()
    logging.basicConfig(format="%(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)

    sentences, shared = load_corpus()
    print(f"{len(sentences):,} sentences, {sum(map(len, sentences)):,} words")
    start = time.perf_counter()
    model = Word2Vec(sentences, vector_size=100, window=5, min_count=5, sg=0 if args.cbow else 1,
                     negative=5, epochs=args.epochs, workers=args.workers, seed=1)
    print(f"trained {'CBOW' if args.cbow else 'skip-gram'} on {len(model.wv):,} words in "
          f"{time.perf_counter() - start:.1f} s\n")

    wv = model.wv
    for positive, negative in ANALOGIES:
        if all(w in wv for w in positive + negative):
            answer = wv.most_similar(positive=positive, negative=negative, topn=3)
            print(f"{negative[0]} : {positive[0]} :: {positive[1]} : ?   ->  "
                  + ", ".join(f"{w} ({s:.2f})" for w, s in answer))
    print()
    for word in NEIGHBOURS:
        if word in wv:
            print(f"{word:>10}: " + ", ".join(w for w, _ in wv.most_similar(word, topn=6)))
    print(f"\ndoesn't match (brother sister father letter): "
          f"{wv.doesnt_match(['brother', 'sister', 'father', 'letter'])}" if "letter" in wv else "")

    if shared:
        questions = os.path.join(shared, "questions-words.txt")
        pairs = os.path.join(shared, "wordsim353.tsv")
        score, sections = wv.evaluate_word_analogies(questions)
        asked = len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
        pearson, spearman, oov = wv.evaluate_word_pairs(pairs)
        print(f"\nanalogy accuracy: {100 * score:.1f}% of the {asked:,} questions whose words "
              f"Austen uses (of 19,544)")
        print(f"WordSim-353: Spearman {spearman.statistic:.3f}, Pearson {pearson.statistic:.3f}, "
              f"{oov:.0f}% of pairs out of vocabulary")
    else:
        print("\n(analogy and WordSim-353 scores skipped: the generated corpus shares almost no "
              "words with them)")

    if args.out:
        save_and_reload(wv, args.out)
    else:
        with tempfile.TemporaryDirectory() as folder:  # pass --out to keep the file
            save_and_reload(wv, os.path.join(folder, "austen.bin"))


def save_and_reload(wv, out):
    """Write word2vec's binary format; read it back with kaffe and, if installed, gensim."""
    wv.save_word2vec_format(out, binary=True)
    print(f"\nsaved {len(wv):,} x {wv.vector_size} vectors to {out} "
          f"({os.path.getsize(out) / 2**20:.1f} MB, word2vec binary)")
    again = KeyedVectors.load_word2vec_format(out, binary=True)
    assert np.array_equal(again.vectors, wv.vectors)
    try:
        from gensim.models import KeyedVectors as GensimKeyedVectors
    except ImportError:
        print("gensim is not installed: skipped reading the file with gensim")
        return
    theirs = GensimKeyedVectors.load_word2vec_format(out, binary=True)
    same = theirs.index_to_key == wv.index_to_key and np.array_equal(theirs.vectors, wv.vectors)
    print(f"gensim reads it back: {len(theirs):,} words, identical vectors: {same}")

if __name__ == "__main__":
    main()
