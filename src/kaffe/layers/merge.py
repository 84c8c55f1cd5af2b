"""Merge layers (several tensors in, one out) and their functional forms."""
import torch
import torch.nn.functional as F

from kaffe.engine.layer import Layer


def _broadcast_shape(shapes, layer):
    """Keras's merge shape rule: the batch axes must agree; the other axes broadcast from the
    right (an input of lower rank counts as having 1s just after its batch axis, which is how
    ``call`` expands it), ``None`` matching anything."""
    rank = max(len(s) for s in shapes)
    padded = [(s[0],) + (1,) * (rank - len(s)) + tuple(s[1:]) for s in shapes]
    out = list(padded[0])
    for shape in padded[1:]:
        for i, (a, b) in enumerate(zip(out, shape)):
            if a is None or b is None:  # an unknown axis broadcast against 1 stays unknown
                out[i] = None if i == 0 or 1 in (a, b) else (a if b is None else b)
            elif a != b and not (a == 1 or b == 1):
                raise ValueError(f"{type(layer).__name__} '{layer.name}' needs inputs whose shapes "
                                 f"broadcast. Received shapes {[tuple(s) for s in shapes]}.")
            else:
                out[i] = max(a, b)
    return tuple(out)


def _align_ranks(inputs):
    """Keras 2/3 merges: expand lower-rank inputs at axis 1 until all ranks match."""
    rank = max(x.dim() for x in inputs)
    return [x.reshape(x.shape[:1] + (1,) * (rank - x.dim()) + x.shape[1:]) if x.dim() < rank else x
            for x in inputs]


class _Merge(Layer):
    min_inputs = 2
    supports_masking = True

    def compute_mask(self, inputs, mask=None):
        """Keras: a position is kept when every input that has a mask keeps it."""
        if mask is None or all(m is None for m in mask):
            return None
        kept = [m for m in mask if m is not None]
        out = kept[0]
        for m in kept[1:]:
            out = out & m
        return out

    def build(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) < self.min_inputs:
            raise ValueError(f"{type(self).__name__} '{self.name}' must be called on a list of at "
                             f"least {self.min_inputs} inputs. Received: {input_shape}")

    def compute_output_shape(self, input_shape):
        return _broadcast_shape(input_shape, self)

    def call(self, inputs):
        return self._merge_function(_align_ranks(list(inputs)))

    def _merge_function(self, inputs):
        raise NotImplementedError


class Add(_Merge):
    def _merge_function(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    def build(self, input_shape):
        if not isinstance(input_shape, list) or len(input_shape) != 2:
            raise ValueError(f"Subtract '{self.name}' must be called on exactly 2 inputs. "
                             f"Received: {input_shape}")

    def _merge_function(self, inputs):
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    def _merge_function(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out


class Average(_Merge):
    def _merge_function(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out / len(inputs)


class Maximum(_Merge):
    def _merge_function(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = torch.maximum(out, x)
        return out


class Minimum(_Merge):
    def _merge_function(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = torch.minimum(out, x)
        return out


class Concatenate(_Merge):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        return torch.cat(inputs, dim=self.axis)

    def compute_output_shape(self, input_shape):
        rank = len(input_shape[0])
        axis = self.axis % rank
        out = list(input_shape[0])
        for shape in input_shape[1:]:
            if len(shape) != rank or any(a is not None and b is not None and a != b
                                         for i, (a, b) in enumerate(zip(out, shape))
                                         if i not in (0, axis)):
                raise ValueError(
                    f"Concatenate '{self.name}' needs matching shapes except on the concat axis "
                    f"{self.axis}. Received shapes {[tuple(s) for s in input_shape]}.")
        sizes = [s[axis] for s in input_shape]
        out[axis] = None if any(s is None for s in sizes) else sum(sizes)
        return tuple(out)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Dot product along ``axes`` of two inputs (per sample), optionally of L2-normalised inputs
    (cosine proximity)."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = axes
        self.normalize = normalize

    def _axes(self, rank_a, rank_b):
        axes = self.axes if isinstance(self.axes, (list, tuple)) else (self.axes, self.axes)
        return axes[0] % rank_a, axes[1] % rank_b

    def call(self, inputs):
        a, b = inputs
        ax_a, ax_b = self._axes(a.dim(), b.dim())
        if self.normalize:
            a, b = F.normalize(a, dim=ax_a), F.normalize(b, dim=ax_b)
        # Move the contracted axes last/first and batch-multiply, like Keras's batch_dot.
        a = a.movedim(ax_a, -1)
        b = b.movedim(ax_b, 1)
        out = torch.bmm(a.reshape(a.shape[0], -1, a.shape[-1]),
                        b.reshape(b.shape[0], b.shape[1], -1))
        a_rest, b_rest = a.shape[1:-1], b.shape[2:]
        out = out.reshape((a.shape[0],) + tuple(a_rest) + tuple(b_rest))
        return out.unsqueeze(-1) if out.dim() == 1 else out

    def compute_output_shape(self, input_shape):
        a, b = (list(s) for s in input_shape)
        ax_a, ax_b = self._axes(len(a), len(b))
        if a[ax_a] is not None and b[ax_b] is not None and a[ax_a] != b[ax_b]:
            raise ValueError(f"Dot '{self.name}': axis sizes differ: {a[ax_a]} vs {b[ax_b]} "
                             f"(shapes {tuple(a)} and {tuple(b)}).")
        a.pop(ax_a)
        b.pop(ax_b)
        shape = tuple(a) + tuple(b[1:])
        return shape if len(shape) > 1 else shape + (1,)

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
