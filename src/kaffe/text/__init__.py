"""Word embeddings: word2vec training (:mod:`kaffe.text.word2vec`), word vectors and their files
(:class:`KeyedVectors`), corpus readers, and the bridge into Keras-style ``Embedding`` layers."""
from kaffe.text.corpora import LineSentence, PathLineSentences, Text8Corpus, TextSentences
from kaffe.text.keyedvectors import KeyedVectors
from kaffe.text.word2vec import Word2Vec

__all__ = ["KeyedVectors", "Word2Vec", "LineSentence", "PathLineSentences", "Text8Corpus",
           "TextSentences"]
