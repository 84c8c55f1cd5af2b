"""Loss functions applied to KerasTensors, recorded as Keras 3 records them: as op nodes.

Keras 3's loss functions are written in ``keras.ops``, so ``binary_crossentropy(x, out)`` on
KerasTensors leaves ``Cast``, ``ConvertToTensor``, ``BinaryCrossentropy`` and ``Mean`` nodes in
the functional graph, and a ``.keras`` file holds only those (classes Keras 3 loads). kaffe's
losses compute eagerly with their own torch code; on KerasTensors they run the forms below,
written in ``kaffe.ops`` op for op as Keras writes them, so the graph, ``summary()`` and the saved
file are Keras's. One deliberate difference: Keras's hinge losses pick ``2y - 1`` or ``y`` with
``ops.cond``, a node Keras 3 saves but cannot load again; here the same choice is an
``ops.where`` on the same all-labels-binary test, which Keras loads and computes identically.
"""
from kaffe import ops

EPSILON = 1e-7  # Keras's backend.epsilon()


def _dtype(x):
    return x.dtype


def _same_rank(y_true, y_pred):
    """Keras's ``squeeze_or_expand_to_same_rank``: ranks differing by a trailing 1 are aligned."""
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        if pred_rank == 1:
            return y_true, ops.expand_dims(y_pred, axis=-1)
        return ops.squeeze(y_true, axis=-1), y_pred
    if pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        if true_rank == 1:
            return ops.expand_dims(y_true, axis=-1), y_pred
        return y_true, ops.squeeze(y_pred, axis=-1)
    return y_true, y_pred


def _converted(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true, dtype=_dtype(y_pred))
    return y_true, y_pred


def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _same_rank(*_converted(y_true, y_pred))
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _same_rank(*_converted(y_true, y_pred))
    return ops.mean(ops.absolute(y_true - y_pred), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    y_true, y_pred = _converted(y_true, y_pred)
    epsilon = ops.convert_to_tensor(EPSILON, dtype=_dtype(y_pred))
    y_true, y_pred = _same_rank(y_true, y_pred)
    diff = ops.absolute((y_true - y_pred) / ops.maximum(ops.absolute(y_true), epsilon))
    return 100.0 * ops.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    epsilon = ops.convert_to_tensor(EPSILON)
    y_true, y_pred = _same_rank(*_converted(y_true, y_pred))
    first_log = ops.log(ops.maximum(y_pred, epsilon) + 1.0)
    second_log = ops.log(ops.maximum(y_true, epsilon) + 1.0)
    return ops.mean(ops.square(first_log - second_log), axis=-1)


def _hinge_labels(y_true):
    """0/1 labels as -1/1 when every label is 0 or 1 (Keras's test, chosen with ``where``)."""
    binary = ops.all(ops.logical_or(ops.equal(y_true, 0), ops.equal(y_true, 1)))
    return ops.where(binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = _hinge_labels(ops.cast(y_true, _dtype(y_pred)))
    return ops.mean(ops.maximum(1.0 - y_true * y_pred, 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = _hinge_labels(ops.cast(y_true, _dtype(y_pred)))
    return ops.mean(ops.square(ops.maximum(1.0 - y_true * y_pred, 0.0)), axis=-1)


def categorical_hinge(y_true, y_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, _dtype(y_pred))
    pos = ops.sum(y_true * y_pred, axis=-1)
    neg = ops.max((1.0 - y_true) * y_pred, axis=-1)
    return ops.maximum(neg - pos + 1.0, 0.0)


def kl_divergence(y_true, y_pred):
    y_true, y_pred = _converted(y_true, y_pred)
    y_true = ops.clip(y_true, EPSILON, 1)
    y_pred = ops.clip(y_pred, EPSILON, 1)
    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)


def poisson(y_true, y_pred):
    y_true, y_pred = _converted(y_true, y_pred)
    return ops.mean(y_pred - y_true * ops.log(y_pred + EPSILON), axis=-1)


def log_cosh(y_true, y_pred):
    y_true, y_pred = _same_rank(*_converted(y_true, y_pred))
    error = y_pred - y_true
    return ops.mean(error + ops.softplus(error * -2.0) - 0.6931471805599453, axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    y_true, y_pred = _same_rank(*_converted(y_true, y_pred))
    y_pred = ops.nn.normalize(y_pred, axis=axis, order=2)
    y_true = ops.nn.normalize(y_true, axis=axis, order=2)
    return -ops.sum(y_true * y_pred, axis=axis)


def huber(y_true, y_pred, delta=1.0):
    y_true, y_pred = _same_rank(*_converted(y_true, y_pred))
    error = ops.subtract(y_pred, y_true)
    abs_error = ops.absolute(error)
    return ops.mean(ops.where(abs_error <= delta, 0.5 * ops.square(error),
                              delta * abs_error - 0.5 * delta * delta), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, _dtype(y_pred))
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return ops.mean(ops.nn.binary_crossentropy(y_true, y_pred, from_logits=from_logits),
                    axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, _dtype(y_pred))
    if label_smoothing:
        classes = y_true.shape[-1]
        if classes is None:
            raise ValueError("categorical_crossentropy with label_smoothing on a symbolic "
                             "tensor needs a known class count; the last axis of y_true is "
                             f"unknown (shape {y_true.shape}).")
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    return ops.nn.categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    if ignore_class is not None:
        raise ValueError("sparse_categorical_crossentropy(ignore_class=...) on symbolic tensors "
                         "is not supported: it attaches a mask Keras keeps outside the graph. "
                         "Pass the loss to compile(loss=SparseCategoricalCrossentropy("
                         f"ignore_class={ignore_class!r})) instead.")
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[axis] == 1:
        y_true = ops.squeeze(y_true, axis=axis)
    return ops.nn.sparse_categorical_crossentropy(y_true, y_pred, from_logits=from_logits,
                                                  axis=axis)


#: kaffe.losses function name -> its form in ops (what a KerasTensor call records).
GRAPH_FORMS = {fn.__name__: fn for fn in (
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_logarithmic_error, hinge, squared_hinge, categorical_hinge, kl_divergence,
    poisson, log_cosh, cosine_similarity, huber, binary_crossentropy, categorical_crossentropy,
    sparse_categorical_crossentropy)}


def accepting_symbolic(fn):
    """``fn`` (an eager kaffe loss) that records its ops form when given KerasTensors."""
    import functools

    from kaffe.engine.operation import contains_symbolic
    from kaffe.ops.registry import symbolic_function
    form = GRAPH_FORMS[fn.__name__]
    symbolic_function(fn, "kaffe.losses")  # still reads files that hold one kaffe.losses node

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if contains_symbolic(args) or (kwargs and contains_symbolic(kwargs.values())):
            return form(*args, **kwargs)
        return fn(*args, **kwargs)
    return run
