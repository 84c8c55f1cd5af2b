"""Attention layers: ``Attention`` (Luong), ``AdditiveAttention`` (Bahdanau) and
``MultiHeadAttention`` (Vaswani et al.), with Keras 3's weights, masks and numerics.

``MultiHeadAttention`` takes its weights in Keras's shapes and order (query, key, value and
output projections, each kernel then bias: kernels ``(dim, heads, key_dim)``,
``(dim, heads, value_dim)`` and ``(heads, value_dim, *output_shape)``), so
``layer.set_weights(keras_layer.get_weights())`` reproduces Keras's outputs. Like Keras on
torch, rank-3 inputs without attention dropout or returned scores run on torch's
``scaled_dot_product_attention``; the general path (any ``attention_axes``) uses einsum.
"""
import math
import string

import torch
import torch.nn.functional as F

from kaffe import constraints, initializers, regularizers
from kaffe.engine.keras_tensor import KerasTensor, is_symbolic
from kaffe.engine.layer import Layer
from kaffe.layers.activations import masked_softmax

_PADDING = 1e9  # Attention/AdditiveAttention subtract this from masked scores (Keras 3)
_SDPA_MASKED = -0.7 * 3.38953e38  # Keras's torch backend: additive mask for fused attention


class _MaybeScores:
    """Symbolic calls with ``return_attention_scores=True`` give two outputs; the engine asks
    ``compute_output_shape``, which learns about the flag from here."""

    _want_scores = False

    def _call_symbolic(self, inputs, *args, **kwargs):
        self._want_scores = bool(kwargs.get("return_attention_scores"))
        try:
            return super()._call_symbolic(inputs, *args, **kwargs)
        finally:
            self._want_scores = False


def _check_inputs(layer, inputs, mask=None):
    name = type(layer).__name__
    if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
        received = (f"a list of {len(inputs)}" if isinstance(inputs, (list, tuple))
                    else type(inputs).__name__)
        raise ValueError(f"{name} '{layer.name}' takes a list [query, value] or [query, value, "
                         f"key]. Received: {received}.")
    if mask is not None and (not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3):
        raise ValueError(f"{name} '{layer.name}' takes a mask list [query_mask, value_mask]. "
                         f"Received: mask={mask!r}.")


def _causal_mask(q_len, v_len, device):
    """(1, q_len, v_len), True where the query position may see the value position (<=)."""
    return torch.ones(q_len, v_len, dtype=torch.bool, device=device).tril()[None]


class Attention(_MaybeScores, Layer):
    """Dot-product (Luong) attention over ``[query, value]`` or ``[query, value, key]`` (key
    defaults to value): ``softmax(query @ key^T) @ value``.

    ``use_scale``: a learned scalar ``scale`` (ones) multiplies the scores. ``score_mode='concat'``
    scores with ``concat_score_weight * sum(tanh(scale * (query + key)))`` instead.
    ``dropout`` drops attention weights while training. Masks ``[query_mask, value_mask]``
    (passed on from an ``Embedding(mask_zero=True)``, or given as ``mask=``): masked values get
    -1e9 added to their scores, masked queries output zeros. ``use_causal_mask=True`` lets query
    ``i`` see values ``0..i`` only. ``return_attention_scores=True`` also returns the weights
    ``(batch, Tq, Tv)``.
    """

    supports_masking = True

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError("Attention score_mode must be 'dot' or 'concat'. "
                             f"Received: score_mode={score_mode!r}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"Attention expected dropout in [0, 1]. Received: dropout={dropout!r}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = dropout
        self.seed = seed

    def build(self, input_shape):
        _check_inputs(self, input_shape)
        self.scale = self.add_weight("scale", (), "ones") if self.use_scale else None
        self.concat_score_weight = (self.add_weight("concat_score_weight", (), "ones")
                                    if self.score_mode == "concat" else None)

    def _scores(self, query, key):
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(-2, -1))
            return scores if self.scale is None else scores * self.scale
        summed = query.unsqueeze(-2) + key.unsqueeze(-3)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * torch.tanh(summed).sum(-1)

    def call(self, inputs, mask=None, return_attention_scores=False, use_causal_mask=False):
        _check_inputs(self, inputs, mask)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        q_mask, v_mask = (mask[0], mask[1]) if mask else (None, None)
        scores = self._scores(query, key)
        keep = None if v_mask is None else torch.as_tensor(v_mask, device=scores.device).bool()
        if use_causal_mask:
            causal = _causal_mask(scores.shape[-2], scores.shape[-1], scores.device)
            keep = causal if keep is None else keep.unsqueeze(-2) & causal
        if keep is not None:
            if keep.dim() == 2:  # (batch, Tv)
                keep = keep.unsqueeze(-2)
            scores = torch.where(keep, scores, scores - _PADDING)
        weights = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, self.dropout, True)
        output = torch.matmul(weights, value)
        if q_mask is not None:
            q_keep = torch.as_tensor(q_mask, device=output.device).bool().unsqueeze(-1)
            output = torch.where(q_keep, output, 0.0)
        return (output, weights) if return_attention_scores else output

    def compute_mask(self, inputs, mask=None):
        if mask is None or mask[0] is None:
            return None
        return mask[0]

    def compute_output_shape(self, input_shape):
        query, value = tuple(input_shape[0]), tuple(input_shape[1])
        output = query[:-1] + (value[-1],)
        if not self._want_scores:
            return output
        key = tuple(input_shape[2]) if len(input_shape) > 2 else value
        return [output, query[:-1] + (key[-2],)]

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention: scores ``sum(scale * tanh(query + key), axis=-1)`` with a
    learned ``scale`` of shape ``(dim,)`` (Glorot uniform; ``use_scale=False``: ones, no
    weight). Inputs, masks, dropout and outputs as ``Attention``."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        _check_inputs(self, input_shape)
        self.concat_score_weight = None
        self.scale = (self.add_weight("scale", (input_shape[0][-1],), "glorot_uniform")
                      if self.use_scale else None)

    def _scores(self, query, key):
        tanh = torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3))
        return (tanh if self.scale is None else self.scale * tanh).sum(-1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config


# ---------------------------------------------------------------------------------- multi-head
class _Projection(Layer):
    """A dense map of the last ``len(in_dims)`` axes to ``out_dims`` (Keras's ``EinsumDense`` as
    MultiHeadAttention uses it): kernel ``(*in_dims, *out_dims)``, bias ``out_dims``, stored as
    torch's ``(out, in)`` so a projection is one ``F.linear``."""

    def __init__(self, in_dims, out_dims, activation, name, *, use_bias, kernel_initializer,
                 bias_initializer, kernel_regularizer, bias_regularizer, activity_regularizer,
                 kernel_constraint, bias_constraint, dtype=None):
        super().__init__(name=name, dtype=dtype, activity_regularizer=activity_regularizer)
        self.in_dims, self.out_dims = tuple(in_dims), tuple(out_dims)
        n_in, n_out = len(self.in_dims), len(self.out_dims)
        self.activation = activation
        self.kernel = self.add_weight("kernel", self.in_dims + self.out_dims,
                                      _fan_aware(kernel_initializer, n_in),
                                      layout=tuple(range(n_in, n_in + n_out)) + tuple(range(n_in)),
                                      regularizer=kernel_regularizer, constraint=kernel_constraint)
        self.bias = (self.add_weight("bias", self.out_dims, bias_initializer,
                                     regularizer=bias_regularizer, constraint=bias_constraint)
                     if use_bias else None)
        self.built = True

    def call(self, inputs):
        n_in = len(self.in_dims)
        x = inputs.flatten(-n_in) if n_in > 1 else inputs
        out = F.linear(x, self.kernel.reshape(math.prod(self.out_dims), -1),
                       None if self.bias is None else self.bias.reshape(-1))
        out = out.unflatten(-1, self.out_dims)
        return out if self.activation is None else self.activation(out)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-len(self.in_dims)]) + self.out_dims


class _FanAware(initializers.Initializer):
    """Keras's EinsumDense counts a variance-scaling kernel's fans over its input and output
    axes (``(dim, heads, key_dim)``: fan_in ``dim``, fan_out ``heads * key_dim``); drawing the
    flat ``(fan_in, fan_out)`` matrix and reshaping gives the same distribution."""

    def __init__(self, inner, n_in):
        self.inner, self.n_in = inner, n_in

    def __call__(self, shape, dtype=torch.float32):
        flat = (math.prod(shape[:self.n_in]), math.prod(shape[self.n_in:]))
        return torch.as_tensor(self.inner(flat, dtype)).reshape(shape)


def _fan_aware(initializer, n_in):
    if isinstance(initializer, initializers.VarianceScaling):
        return _FanAware(initializer, n_in)
    return initializer


def _attention_equations(rank, attn_axes):
    """einsum equations over projected tensors ``(batch..., heads, size)`` of rank ``rank``:
    (key, query) -> scores and (scores, value) -> output. Scores are laid out as the batch-like
    axes (heads included), then the query's attention axes, then the key's."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch = [i for i in range(rank - 1) if i not in attn_axes]
    fresh = iter(letters[rank:])
    source = "".join(next(fresh) if i in attn_axes else target[i] for i in range(rank))
    scores = ("".join(target[i] for i in batch) + "".join(target[i] for i in attn_axes)
              + "".join(source[i] for i in attn_axes))
    return f"{source},{target}->{scores}", f"{scores},{source}->{target}", batch


class MultiHeadAttention(_MaybeScores, Layer):
    """Multi-head attention: ``num_heads`` scaled dot-product attentions of ``query`` over
    ``value`` (``key`` defaults to ``value``), each on its own projections, concatenated and
    projected back to the query's width (or to ``output_shape``).

    Call as Keras: ``layer(query, value, key=None, attention_mask=None,
    return_attention_scores=False, use_causal_mask=False)``; inputs ``(batch, T, dim)`` (or more
    axes: ``attention_axes`` picks those attended over, by default all but batch and features).
    ``attention_mask`` ``(batch, T, S)``: True where a query may attend. Masks of the inputs
    (``Embedding(mask_zero=True)``, or ``query_mask``/``value_mask``/``key_mask``) are combined
    with it as Keras does; ``use_causal_mask=True`` hides later positions. Scores returned are
    ``(batch, heads, T, S)`` (before dropout).

    Weights (Keras's order): query kernel ``(dim_q, heads, key_dim)`` and bias
    ``(heads, key_dim)``, key ``(dim_k, heads, key_dim)``/``(heads, key_dim)``, value
    ``(dim_v, heads, value_dim)``/``(heads, value_dim)`` (gate, with ``use_gate``, comes after
    key), output ``(heads, value_dim, *output_shape)``/``output_shape``. Kernels: Glorot uniform
    with Keras's fan counting; biases zeros.
    """

    supports_masking = True

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, sliding_window=None,
                 flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 use_gate=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        for arg, value in (("num_heads", num_heads), ("key_dim", key_dim),
                           ("value_dim", value_dim), ("sliding_window", sliding_window)):
            if value is None and arg in ("value_dim", "sliding_window"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"MultiHeadAttention expected a positive integer for {arg}. "
                                 f"Received: {arg}={value!r}")
        if not 0 <= dropout <= 1:
            raise ValueError(f"MultiHeadAttention expected dropout in [0, 1]. "
                             f"Received: dropout={dropout!r}")
        if isinstance(output_shape, int):
            output_shape = (output_shape,)
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError("MultiHeadAttention attention_axes must be an int, a list or a "
                             f"tuple. Received: attention_axes={attention_axes!r}")
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout, self.use_bias, self.use_gate = dropout, bool(use_bias), bool(use_gate)
        self._output_shape = tuple(output_shape) if output_shape else None
        self.attention_axes = tuple(attention_axes) if attention_axes is not None else None
        self.sliding_window, self.seed = sliding_window, seed
        self.flash_attention = flash_attention  # torch picks its fused kernel itself
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        # Keras gives the activity regularizer to the four projections, not to this layer.
        self.projection_activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    # ------------------------------------------------------------------ calling convention
    def __call__(self, query, value=None, key=None, attention_mask=None, **kwargs):
        """``layer(query, value, key=None, ...)`` as Keras; the tensors travel through kaffe's
        engine as one list ``[query, value, key(, attention_mask)]``, which is also accepted."""
        if isinstance(query, (list, tuple)):
            if value is not None or key is not None or not 2 <= len(query) <= 4:
                raise TypeError(f"MultiHeadAttention '{self.name}' takes query and value (and "
                                "key) as arguments, or one list [query, value, key(, "
                                "attention_mask)].")
            packed = list(query) if len(query) > 2 else [query[0], query[1], query[1]]
        else:
            if value is None:
                raise TypeError(f"MultiHeadAttention '{self.name}' needs a query and a value: "
                                "call it as layer(query, value) (value=query for self-attention).")
            packed = [query, value, value if key is None else key]
        symbolic = is_symbolic(packed)
        if attention_mask is not None:
            if len(packed) == 4:
                raise TypeError(f"MultiHeadAttention '{self.name}' got attention_mask twice.")
            if symbolic and not isinstance(attention_mask, KerasTensor):
                kwargs["attention_mask"] = attention_mask  # a constant of the graph
            else:
                packed.append(attention_mask)
        if symbolic:
            for arg in ("query_mask", "value_mask", "key_mask"):
                if isinstance(kwargs.get(arg), KerasTensor):
                    raise TypeError(
                        f"MultiHeadAttention '{self.name}': a symbolic {arg} cannot be recorded "
                        "in a model; pass attention_mask, or let an Embedding(mask_zero=True) "
                        "mask the inputs.")
        return super().__call__(packed, **kwargs)

    @staticmethod
    def _keras_node_args(inputs):
        """Keras 3's form of a recorded call on the packed ``inputs``, for model configs:
        ``([query, value], {'key': ..., 'attention_mask': ...})`` (absent ones left out)."""
        query, value, key = inputs[:3]
        kwargs = {} if key is value else {"key": key}
        if len(inputs) > 3:
            kwargs["attention_mask"] = inputs[3]
        return [query, value], kwargs

    def get_build_config(self):
        """Keras 3's build record of this layer (its ``build`` takes three shapes)."""
        shapes = getattr(self, "_build_input_shape", None)
        if not self.built or shapes is None:
            return None
        names = ("query_shape", "value_shape", "key_shape")
        return {"shapes_dict": {n: list(s) for n, s in zip(names, shapes)}}

    def build_from_config(self, config):
        shapes = (config or {}).get("shapes_dict")
        if shapes:
            value = tuple(shapes["value_shape"])
            key = shapes.get("key_shape")
            self._build_once([tuple(shapes["query_shape"]), value,
                              value if key is None else tuple(key)])

    def reset_parameters(self):
        """Draw every projection kernel (Glorot uniform by default, with Keras's fans) and bias
        (zeros) again."""
        for layer in self._sublayers():
            layer.reset_parameters()

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        query_shape, value_shape, key_shape = (tuple(s) for s in input_shape[:3])
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(f"MultiHeadAttention '{self.name}': value and key must agree on all "
                             f"axes but the last. Received value shape {value_shape}, key shape "
                             f"{key_shape}.")
        for what, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if shape[-1] is None:
                raise ValueError(f"MultiHeadAttention '{self.name}' needs the last axis of its "
                                 f"{what} to be known. Received {what} shape {shape}.")
        common = dict(kernel_initializer=self.kernel_initializer,
                      bias_initializer=self.bias_initializer,
                      kernel_regularizer=self.kernel_regularizer,
                      bias_regularizer=self.bias_regularizer,
                      activity_regularizer=self.projection_activity_regularizer,
                      kernel_constraint=self.kernel_constraint,
                      bias_constraint=self.bias_constraint, use_bias=self.use_bias,
                      dtype=self.dtype)
        heads = self.num_heads
        self.query_dense = _Projection((query_shape[-1],), (heads, self.key_dim), None,
                                       "query", **common)
        self.key_dense = _Projection((key_shape[-1],), (heads, self.key_dim), None, "key",
                                     **common)
        self._gate_dense = (_Projection((query_shape[-1],), (heads, self.value_dim),
                                        torch.sigmoid, "gate", **common)
                            if self.use_gate else None)
        self.value_dense = _Projection((value_shape[-1],), (heads, self.value_dim), None,
                                       "value", **common)
        self.output_dense = _Projection((heads, self.value_dim),
                                        self._output_shape or (query_shape[-1],), None,
                                        "attention_output", **common)
        rank = len(query_shape) + 1  # of the projected (batch..., heads, size) tensors
        axes = (tuple(range(1, rank - 2)) if self.attention_axes is None
                else tuple(a if a >= 0 else rank - 1 + a for a in self.attention_axes))
        if any(not 0 < a < rank - 2 for a in axes):
            raise ValueError(f"MultiHeadAttention '{self.name}': attention_axes "
                             f"{self.attention_axes} are out of range for query shape "
                             f"{query_shape}.")
        self.attention_axes = axes  # resolved, as Keras reports them once built
        self._rank = rank
        self._dot_equation, self._combine_equation, self._batch_axes = \
            _attention_equations(rank, axes)

    # ------------------------------------------------------------------ call
    def call(self, inputs, mask=None, training=False, return_attention_scores=False,
             use_causal_mask=False, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None):
        query, value, key = inputs[:3]
        if len(inputs) > 3:
            attention_mask = inputs[3]
        if mask is not None:  # masks of the inputs, from the engine
            mask = list(mask) + [None] * 3
            query_mask = mask[0] if query_mask is None else query_mask
            value_mask = mask[1] if value_mask is None else value_mask
            key_mask = mask[2] if key_mask is None else key_mask
        causal_only = (use_causal_mask and query_mask is None and value_mask is None
                       and key_mask is None and attention_mask is None
                       and self.sliding_window is None)
        keep = None if causal_only else self._attention_mask(
            query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask)
        gate = self._gate_dense(query) if self._gate_dense is not None else None
        q, k, v = self.query_dense(query), self.key_dense(key), self.value_dense(value)
        output, scores = self._attend(q, k, v, keep, causal_only, training,
                                      return_attention_scores)
        if gate is not None:
            output = output * gate
        output = self.output_dense(output)
        return (output, scores) if return_attention_scores else output

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask):
        """Keras's combination, True where attending is allowed: attention_mask
        & query_mask[..., :, None] & value_mask[..., None, :] & key_mask[..., None, :] & causal
        & sliding window (None when nothing masks)."""
        device = query.device
        q_len, v_len = query.shape[1], value.shape[1]
        parts = []
        if query_mask is not None:
            parts.append(torch.as_tensor(query_mask, device=device).bool().unsqueeze(-1))
        parts += [torch.as_tensor(m, device=device).bool().unsqueeze(-2)
                  for m in (value_mask, key_mask) if m is not None]
        if use_causal_mask:
            parts.append(_causal_mask(q_len, v_len, device))
        if self.sliding_window is not None:
            distance = (torch.arange(q_len, device=device)[:, None]
                        - torch.arange(v_len, device=device)[None, :])
            parts.append((distance.abs() < self.sliding_window)[None])
        if attention_mask is not None:
            parts.insert(0, torch.as_tensor(attention_mask, device=device).bool())
        keep = None
        for part in parts:
            keep = part if keep is None else keep & part
        return keep

    def _expand_mask(self, keep, scores_rank):
        """Insert unit axes in front of the attention axes (for the heads)."""
        axis = -2 * len(self.attention_axes) - 1
        while keep.dim() < scores_rank:
            keep = keep.unsqueeze(max(axis, -keep.dim() - 1))
        return keep

    def _attend(self, q, k, v, keep, causal_only, training, return_scores):
        scale = 1.0 / math.sqrt(float(self.key_dim))
        if not (self.dropout > 0 or return_scores or q.dim() != 4):
            # Keras's fused path: (batch, heads, T, size) into torch's scaled_dot_product_attention
            qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
            if causal_only:
                out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, scale=scale)
            else:
                bias = None
                if keep is not None:
                    keep = self._expand_mask(keep, 4)
                    bias = torch.where(keep, 0.0, _SDPA_MASKED).to(q.dtype)
                out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=bias, scale=scale)
            return out.transpose(1, 2), None
        if causal_only:
            keep = _causal_mask(q.shape[1], v.shape[1], q.device)
        scores = torch.einsum(self._dot_equation, k, q * scale)
        if keep is not None:
            keep = self._expand_mask(keep, scores.dim())
        n = len(self.attention_axes)
        scores = masked_softmax(scores, keep, tuple(range(scores.dim() - n, scores.dim())))
        weights = F.dropout(scores, self.dropout, True) if training and self.dropout > 0 else scores
        return torch.einsum(self._combine_equation, weights, v), scores

    # ------------------------------------------------------------------ shapes, masks, config
    def compute_mask(self, inputs, mask=None):
        return mask[0] if isinstance(mask, (list, tuple)) else mask

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        """Keras's signature; kaffe's engine passes the list ``[query, value, key, ...]``."""
        if value_shape is None:
            shapes = [tuple(s) for s in query_shape]
            query_shape, value_shape, key_shape = shapes[0], shapes[1], shapes[2]
        query_shape, value_shape = tuple(query_shape), tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(f"MultiHeadAttention '{self.name}': value and key must agree on all "
                             f"axes but the last. Received value shape {value_shape}, key shape "
                             f"{key_shape}.")
        output = query_shape[:-1] + (self._output_shape or query_shape[-1:])
        if not self._want_scores:
            return output
        projected = query_shape[:-1] + (self.num_heads,)
        scores = (tuple(projected[i] for i in self._batch_axes)
                  + tuple(query_shape[i] for i in self.attention_axes)
                  + tuple(value_shape[i] for i in self.attention_axes))
        return [output, scores]

    def get_config(self):
        config = {k: v for k, v in super().get_config().items() if k != "activity_regularizer"}
        return {**config, "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "use_gate": self.use_gate, "output_shape": self._output_shape,
                "attention_axes": self.attention_axes, "sliding_window": self.sliding_window,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer":
                    regularizers.serialize(self.projection_activity_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "seed": self.seed}

    def extra_repr(self):
        return (f"name={self.name!r}, num_heads={self.num_heads}, key_dim={self.key_dim}, "
                f"value_dim={self.value_dim}")
