"""``gensim.models.callbacks.CallbackAny2Vec``: the base class of word2vec training callbacks.

Subclass it and override any of the four methods; ``Word2Vec(callbacks=[...])`` and
``train(callbacks=[...])`` call them with the model. (gensim 4 no longer calls
``on_batch_begin``/``on_batch_end``; neither does kaffe.)
"""

__all__ = ["CallbackAny2Vec"]


class CallbackAny2Vec:
    """Does nothing at each point of training; subclasses override what they need."""

    def on_epoch_begin(self, model):
        """Called before each pass over the corpus."""

    def on_epoch_end(self, model):
        """Called after each pass over the corpus."""

    def on_train_begin(self, model):
        """Called when ``train`` starts."""

    def on_train_end(self, model):
        """Called when ``train`` ends."""
