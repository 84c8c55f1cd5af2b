"""``tf.GradientTape``, ``tf.Variable`` and ``tf.function`` on torch's autograd, for the
``tensorflow`` stand-in of ``kaffe run``.

torch records every operation on tensors that require gradients, so the tape records nothing
itself: entering it only makes sure gradients are on; ``tape.watch(x)`` makes ``x`` require
gradients (TensorFlow watches trainable variables by itself, as torch does parameters);
``tape.gradient(target, sources)`` is ``torch.autograd.grad`` of the summed target(s), with
``None`` for sources the target does not depend on, in the structure of ``sources``. The graph
is kept after a ``gradient`` call (two tapes over one forward pass, e.g. a GAN's generator and
discriminator losses, each take their gradients); it is freed when the tensors go.
"""
import torch


class GradientTape:
    """``with tf.GradientTape() as tape: loss = ...`` then ``tape.gradient(loss, variables)``."""

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self._grad_mode = None
        self._used = False

    def __enter__(self):
        self._grad_mode = torch.is_grad_enabled()
        torch.set_grad_enabled(True)
        return self

    def __exit__(self, *exc):
        torch.set_grad_enabled(self._grad_mode)
        return False

    def watch(self, tensor):
        """Make ``tensor`` (or each of a list of them) require gradients."""
        for t in _flat(tensor):
            if isinstance(t, torch.Tensor) and not t.requires_grad:
                if not t.is_floating_point():
                    raise TypeError(f"GradientTape.watch: cannot differentiate with respect to "
                                    f"a {t.dtype} tensor; cast it to float32 first.")
                t.requires_grad_(True)

    def gradient(self, target, sources, output_gradients=None,
                 unconnected_gradients="none"):
        """d(sum of ``target``)/d``sources``, shaped like ``sources`` (a tensor, a list/tuple or
        a dict of them); ``unconnected_gradients='zero'`` gives zeros instead of None."""
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only be used to compute one "
                               "set of gradients; create it with persistent=True for more.")
        self._used = True
        targets = [t for t in _flat(target) if t is not None]
        if output_gradients is not None:
            grads_out = [torch.as_tensor(g, dtype=t.dtype, device=t.device)
                         for g, t in zip(_flat(output_gradients), targets)]
            total = sum((t * g).sum() for t, g in zip(targets, grads_out))
        else:
            total = sum(t.sum() for t in targets)
        flat_sources = _flat(sources)
        wanted = [s for s in flat_sources if isinstance(s, torch.Tensor) and s.requires_grad]
        grads = dict(zip(map(id, wanted), torch.autograd.grad(
            total, wanted, retain_graph=True, allow_unused=True) if wanted and
            isinstance(total, torch.Tensor) and total.requires_grad else [None] * len(wanted)))
        results = []
        for s in flat_sources:
            grad = grads.get(id(s))
            if grad is None and str(unconnected_gradients).lower().endswith("zero"):
                grad = torch.zeros_like(s)
            results.append(grad)
        return _unflatten(sources, iter(results))

    def jacobian(self, target, sources, **kwargs):
        raise NotImplementedError("kaffe's GradientTape has no jacobian; use "
                                  "torch.autograd.functional.jacobian.")


def _flat(structure):
    if isinstance(structure, dict):
        return [t for v in structure.values() for t in _flat(v)]
    if isinstance(structure, (list, tuple)):
        return [t for v in structure for t in _flat(v)]
    return [structure]


def _unflatten(structure, values):
    if isinstance(structure, dict):
        return {k: _unflatten(v, values) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_unflatten(v, values) for v in structure]
    return next(values)


class Variable(torch.nn.Parameter):
    """``tf.Variable``: a tensor that keeps its value across steps; trainable float variables
    require gradients. ``assign`` / ``assign_add`` / ``assign_sub`` write in place, ``numpy()``
    reads a copy, ``value()`` / ``read_value()`` return the tensor."""

    def __new__(cls, initial_value=None, trainable=True, name=None, dtype=None, **kwargs):
        from kaffe.compat.tensorflow_shim import torch_dtype
        if callable(initial_value):
            initial_value = initial_value()
        data = torch.as_tensor(initial_value, dtype=torch_dtype(dtype))
        if data.dtype == torch.float64 and dtype is None and not isinstance(initial_value,
                                                                            torch.Tensor):
            data = data.float()
        variable = super().__new__(cls, data.detach().clone(),
                                   requires_grad=bool(trainable) and data.is_floating_point())
        variable.var_name = name
        return variable

    def numpy(self):
        return self.detach().cpu().numpy()

    def read_value(self):
        return self

    @property
    def trainable(self):
        return self.requires_grad


def function(func=None, **kwargs):
    """``@tf.function`` and ``@tf.function(jit_compile=...)``: the function itself, run
    eagerly (wrap it in ``torch.compile`` for compilation)."""
    if func is None:
        return lambda f: f
    return func
