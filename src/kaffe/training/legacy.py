"""Keras 2's generator methods (``fit_generator`` & co.) and Keras 1's sample counts, as thin
spellings of ``fit``/``evaluate``/``predict``."""
import itertools
import math

from kaffe.training import data_adapters as da


class LegacyGeneratorAPI:
    """Mixed into the trainer; every method forwards to the modern one."""

    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1, callbacks=None,
                      validation_data=None, validation_steps=None, class_weight=None,
                      max_queue_size=10, workers=1, use_multiprocessing=False, shuffle=True,
                      initial_epoch=0, samples_per_epoch=None, nb_epoch=None, nb_val_samples=None):
        """Keras 2's ``fit_generator`` (and Keras 1's ``samples_per_epoch``/``nb_epoch``)."""
        if steps_per_epoch is None and samples_per_epoch is not None:
            generator, first_size = _peek_batch_size(generator)
            steps_per_epoch = math.ceil(samples_per_epoch / first_size)
        if validation_steps is None and nb_val_samples is not None and da.is_iterable_source(validation_data):
            validation_data, val_size = _peek_batch_size(validation_data)
            validation_steps = math.ceil(nb_val_samples / val_size)
        return self.fit(generator, steps_per_epoch=steps_per_epoch,
                        epochs=nb_epoch if nb_epoch is not None else epochs, verbose=verbose,
                        callbacks=callbacks, validation_data=validation_data,
                        validation_steps=validation_steps, class_weight=class_weight,
                        shuffle=shuffle, initial_epoch=initial_epoch)

    def evaluate_generator(self, generator, steps=None, max_queue_size=10, workers=1,
                           use_multiprocessing=False, verbose=0, val_samples=None):
        if steps is None and val_samples is not None:
            generator, size = _peek_batch_size(generator)
            steps = math.ceil(val_samples / size)
        return self.evaluate(generator, steps=steps, verbose=verbose)

    def predict_generator(self, generator, steps=None, max_queue_size=10, workers=1,
                          use_multiprocessing=False, verbose=0, val_samples=None):
        if steps is None and val_samples is not None:
            generator, size = _peek_batch_size(generator)
            steps = math.ceil(val_samples / size)
        return self.predict(generator, steps=steps, verbose=verbose)


def _peek_batch_size(generator):
    """Look at the first batch of a generator (Keras 1 counted samples, not steps) and put
    it back in front."""
    iterator = iter(generator)
    first = next(iterator)
    x = first[0] if isinstance(first, tuple) else first
    return itertools.chain([first], iterator), da.num_samples(x)
