"""``BatchNormalization`` with Keras 3's semantics on torch's fused batch-norm kernel.

Keras and torch differ in two ways that matter when weights move between them, and kaffe
follows Keras in both: the moving variance is updated with the *biased* batch variance
(torch's ``running_var`` takes the unbiased one), and ``momentum`` weighs the old value
(``moving = moving * momentum + batch * (1 - momentum)``; torch's momentum weighs the new one).
A layer with ``trainable=False`` runs in inference mode even while its model trains.

``LayerNormalization`` and ``GroupNormalization`` (per-example statistics, no moving state) run on
torch's fused ``layer_norm``/``group_norm`` kernels, moving the normalised axes where those
kernels want them.
"""
import math
import warnings

import torch
import torch.nn.functional as F

from kaffe import constraints, initializers, regularizers
from kaffe.engine.layer import Layer


class BatchNormalization(Layer):
    """Normalise ``axis`` (the channels) over every other axis.

    Training (``layer.train()`` or ``training=True``, and the layer trainable): the batch's mean and
    biased variance normalise the inputs and move ``moving_mean``/``moving_variance``. Inference,
    or a frozen layer (``trainable=False``, Keras 3's rule): the moving statistics normalise.
    Within a compiled model's training steps ``trainable`` is the value it had at that model's
    ``compile()``, like the weights it trains. ``output = gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    Weights, in Keras's order: gamma (ones; ``scale``), beta (zeros; ``center``), then the
    non-trainable moving_mean (zeros) and moving_variance (ones), each ``(channels,)``.
    ``axis=1`` suits channels_first convolutions, the default ``-1`` channels_last ones.
    """

    #: the training steps of a compiled model see ``trainable`` as it was at ``compile()``
    mode_follows_trainable = True
    _compiled_trainable = None  # set by those steps when it differs from ``trainable`` now

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None, renorm_momentum=0.99,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):  # Keras 2 allowed a one-element list
            if len(axis) != 1:
                raise ValueError("BatchNormalization normalises one axis. Received: "
                                 f"axis={list(axis)}; pass a single integer.")
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError("BatchNormalization expected an integer axis. "
                             f"Received: axis={axis!r}")
        if renorm:
            raise NotImplementedError("BatchNormalization(renorm=True) is not supported by kaffe; "
                                      "use renorm=False.")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNormalization expected momentum in [0, 1]. "
                             f"Received: momentum={momentum!r}")
        if epsilon <= 0:
            raise ValueError(f"BatchNormalization expected a positive epsilon. "
                             f"Received: epsilon={epsilon!r}")
        self.axis = axis
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        # Stored and returned by get_config; kaffe's trainer does not apply them yet.
        self.beta_regularizer, self.gamma_regularizer = beta_regularizer, gamma_regularizer
        self.beta_constraint, self.gamma_constraint = beta_constraint, gamma_constraint
        self.synchronized = bool(synchronized)  # DDP-wide statistics are not computed
        self.renorm = False
        self.renorm_clipping, self.renorm_momentum = renorm_clipping, renorm_momentum

    def build(self, input_shape):
        rank = len(input_shape)
        if not -rank <= self.axis < rank:
            raise ValueError(f"BatchNormalization '{self.name}': axis {self.axis} is out of range "
                             f"for input shape {tuple(input_shape)}.")
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(f"BatchNormalization '{self.name}' needs axis {self.axis} of its "
                             f"input to be known. Received input shape {tuple(input_shape)}.")
        shape = (channels,)
        self._rank = rank
        self.gamma = (self.add_weight("gamma", shape, self.gamma_initializer,
                                      regularizer=self.gamma_regularizer,
                                      constraint=self.gamma_constraint) if self.scale else None)
        self.beta = (self.add_weight("beta", shape, self.beta_initializer,
                                     regularizer=self.beta_regularizer,
                                     constraint=self.beta_constraint) if self.center else None)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape,
                                               self.moving_variance_initializer, trainable=False)

    def call(self, inputs, training=False):
        shape = inputs.shape
        axis = self.axis % inputs.dim()
        channels = shape[axis]
        expected = self.moving_mean.shape[0]
        if channels != expected:
            raise ValueError(f"BatchNormalization '{self.name}' expects {expected} channels on "
                             f"axis {self.axis}. Received input shape {tuple(shape)}.")
        # (before, channels, after): torch's (N, C, L) layout, a view for contiguous inputs.
        x = inputs.reshape(math.prod(shape[:axis]), channels, math.prod(shape[axis + 1:]))
        trainable = self.trainable if self._compiled_trainable is None else \
            self._compiled_trainable
        if training and trainable:
            out = self._train_forward(x)
        else:
            out = torch.batch_norm(x, self.gamma, self.beta, self.moving_mean,
                                   self.moving_variance, False, 0.0, self.epsilon,
                                   torch.backends.cudnn.enabled)
        return out.reshape(shape)

    def _train_forward(self, x):
        count = x.shape[0] * x.shape[2]
        if count > 1:
            # Fresh zero buffers with momentum 1 receive the batch mean and the unbiased
            # variance from the same fused pass that normalises.
            mean = torch.zeros_like(self.moving_mean)
            var = torch.zeros_like(self.moving_variance)
            out = torch.batch_norm(x, self.gamma, self.beta, mean, var, True, 1.0,
                                   self.epsilon, torch.backends.cudnn.enabled)
            var = var * ((count - 1) / count)  # Keras moves with the biased variance
        else:  # torch refuses one value per channel; the biased variance is 0
            batch_var, batch_mean = torch.var_mean(x, dim=(0, 2), correction=0)
            scale = torch.rsqrt(batch_var + self.epsilon)
            if self.gamma is not None:
                scale = scale * self.gamma
            shift = -batch_mean * scale
            if self.beta is not None:
                shift = shift + self.beta
            out = torch.addcmul(shift[:, None], x, scale[:, None])
            mean, var = batch_mean.detach(), batch_var.detach()
        with torch.no_grad():
            m = self.momentum
            self.moving_mean.copy_(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.copy_(self.moving_variance * m + var * (1.0 - m))
        return out

    def compute_output_shape(self, input_shape):
        if not -len(input_shape) <= self.axis < len(input_shape):
            raise ValueError(f"BatchNormalization '{self.name}': axis {self.axis} is out of range "
                             f"for input shape {tuple(input_shape)}.")
        return tuple(input_shape)

    def check_input_shape(self, input_shape):
        expected = self.moving_mean.shape[0]
        if len(input_shape) != self._rank or input_shape[self.axis] not in (None, expected):
            raise ValueError(f"BatchNormalization '{self.name}' was built for rank-{self._rank} "
                             f"inputs with {expected} channels on axis {self.axis}. Received input "
                             f"shape {tuple(input_shape)}.")

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers.serialize(self.moving_variance_initializer),
                "beta_regularizer": self.beta_regularizer,
                "gamma_regularizer": self.gamma_regularizer,
                "beta_constraint": self.beta_constraint,
                "gamma_constraint": self.gamma_constraint,
                "synchronized": self.synchronized, "renorm": self.renorm,
                "renorm_clipping": self.renorm_clipping, "renorm_momentum": self.renorm_momentum}

    def extra_repr(self):
        return f"name={self.name!r}, axis={self.axis}, momentum={self.momentum}"


def _check_axes(axes, rank, layer):
    for axis in axes:
        if not -rank <= axis < rank:
            raise ValueError(f"{type(layer).__name__} '{layer.name}': axis {axis} is out of range "
                             f"for rank-{rank} inputs. Received: axis={layer.axis}")


class _AffineWeights:
    """gamma/beta initializers, regularizers and constraints shared by the per-example norms."""

    def _init_affine(self, beta_initializer, gamma_initializer, beta_regularizer,
                     gamma_regularizer, beta_constraint, gamma_constraint):
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)

    def _add_gamma(self, shape):
        return self.add_weight("gamma", shape, self.gamma_initializer,
                               regularizer=self.gamma_regularizer,
                               constraint=self.gamma_constraint)

    def _add_beta(self, shape):
        return self.add_weight("beta", shape, self.beta_initializer,
                               regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def _affine_config(self):
        return {"beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}


class LayerNormalization(_AffineWeights, Layer):
    """Normalise each example over ``axis`` (an int or a list of axes):
    ``gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the mean and (biased) variance taken
    over those axes only, the same in training and inference.

    Weights, in Keras's order: gamma (ones; ``scale``) and beta (zeros; ``center``), each shaped
    like the normalised axes (``(features,)`` for the default ``axis=-1``).

    ``rms_scaling=True`` is Keras 3's deprecated option, kept for loading its models: the output is
    ``gamma * x / sqrt(var + epsilon)`` (scaled by the *variance*, not the root mean square) and
    there is no beta.

    Unlike Keras 3 on its torch backend, an ``axis`` that leaves out the last axis normalises the
    axes it names (Keras's torch backend normalises the trailing axes there, or fails).
    """

    supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, rms_scaling=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axis = list(axis)
            valid = bool(axis) and all(isinstance(a, int) and not isinstance(a, bool)
                                       for a in axis)
        else:
            valid = isinstance(axis, int) and not isinstance(axis, bool)
        if not valid:
            raise TypeError("LayerNormalization expected an int or a non-empty list of ints for "
                            f"axis. Received: axis={axis!r}")
        if epsilon <= 0:
            raise ValueError(f"LayerNormalization expected a positive epsilon. "
                             f"Received: epsilon={epsilon!r}")
        if rms_scaling:
            warnings.warn("LayerNormalization(rms_scaling=True) is deprecated in Keras 3: it "
                          "scales by the variance, not the root mean square.", stacklevel=2)
        self.axis = axis
        self.epsilon = epsilon
        self.center = bool(center)
        self.scale = bool(scale)
        self.rms_scaling = bool(rms_scaling)
        self._init_affine(beta_initializer, gamma_initializer, beta_regularizer,
                          gamma_regularizer, beta_constraint, gamma_constraint)

    def build(self, input_shape):
        rank = len(input_shape)
        # Keras keeps the axes sorted as given, and shapes the weights in that order.
        self.axis = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        _check_axes(self.axis, rank, self)
        shape = tuple(input_shape[a] for a in self.axis)
        if None in shape:
            raise ValueError(f"LayerNormalization '{self.name}' needs the normalised axes "
                             f"{self.axis} of its input to be known. Received input shape "
                             f"{tuple(input_shape)}.")
        self._rank = rank
        self._axes = sorted(a % rank for a in self.axis)  # the weights' data runs over these
        self.gamma = self._add_gamma(shape) if self.scale or self.rms_scaling else None
        self.beta = self._add_beta(shape) if self.center and not self.rms_scaling else None

    def call(self, inputs):
        rank, axes = inputs.dim(), self._axes
        if rank != self._rank:
            raise ValueError(f"LayerNormalization '{self.name}' was built for rank-{self._rank} "
                             f"inputs. Received input shape {tuple(inputs.shape)}.")
        shape = tuple(inputs.shape[a] for a in axes)
        if self.rms_scaling:
            variance = torch.var(inputs, dim=axes, keepdim=True, correction=0)
            out = inputs * torch.rsqrt(variance + self.epsilon)
            if self.gamma is not None:
                out = out * self.gamma.reshape([inputs.shape[d] if d in axes else 1
                                                for d in range(rank)])
            return out
        gamma = None if self.gamma is None else self.gamma.reshape(shape)
        beta = None if self.beta is None else self.beta.reshape(shape)
        tail = list(range(rank - len(axes), rank))
        if axes == tail:  # the fused kernel normalises trailing axes
            return F.layer_norm(inputs, shape, gamma, beta, self.epsilon)
        moved = inputs.movedim(axes, tail)
        return F.layer_norm(moved, shape, gamma, beta, self.epsilon).movedim(tail, axes)

    def compute_output_shape(self, input_shape):
        _check_axes(self.axis if isinstance(self.axis, list) else [self.axis],
                    len(input_shape), self)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": self.rms_scaling,
                **self._affine_config()}

    def extra_repr(self):
        return f"name={self.name!r}, axis={self.axis}, epsilon={self.epsilon}"


class GroupNormalization(_AffineWeights, Layer):
    """Split the channels (``axis``) into ``groups`` and normalise each example over every
    channel of a group and every non-batch axis: ``groups=1`` normalises the whole example,
    ``groups=-1`` (one channel per group) is instance normalisation.

    Weights, in Keras's order: gamma (ones; ``scale``) and beta (zeros; ``center``), each
    ``(channels,)``. Runs on torch's fused ``group_norm`` (channels moved to axis 1).
    """

    supports_masking = True

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups == 0 or groups < -1:
            raise ValueError("GroupNormalization expected a positive integer (or -1, one group "
                             f"per channel) for groups. Received: groups={groups!r}")
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"GroupNormalization expected an integer axis. "
                             f"Received: axis={axis!r}")
        if epsilon <= 0:
            raise ValueError(f"GroupNormalization expected a positive epsilon. "
                             f"Received: epsilon={epsilon!r}")
        self.groups = groups
        self.axis = axis
        self.epsilon = epsilon
        self.center = bool(center)
        self.scale = bool(scale)
        self._init_affine(beta_initializer, gamma_initializer, beta_regularizer,
                          gamma_regularizer, beta_constraint, gamma_constraint)

    def build(self, input_shape):
        rank = len(input_shape)
        _check_axes([self.axis], rank, self)
        if self.axis % rank == 0:
            raise ValueError(f"GroupNormalization '{self.name}' cannot group the batch axis. "
                             f"Received: axis={self.axis}; use the channels axis (-1 or 1).")
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(f"GroupNormalization '{self.name}' needs axis {self.axis} of its "
                             f"input to be known. Received input shape {tuple(input_shape)}.")
        if self.groups == -1:
            self.groups = channels
        if channels < self.groups or channels % self.groups:
            raise ValueError(f"GroupNormalization '{self.name}': {channels} channels cannot be "
                             f"split into groups={self.groups}; use a divisor of {channels}.")
        self._rank = rank
        self.gamma = self._add_gamma((channels,)) if self.scale else None
        self.beta = self._add_beta((channels,)) if self.center else None

    def call(self, inputs):
        if inputs.dim() != self._rank:
            raise ValueError(f"GroupNormalization '{self.name}' was built for rank-{self._rank} "
                             f"inputs. Received input shape {tuple(inputs.shape)}.")
        axis = self.axis % inputs.dim()
        x = inputs if axis == 1 else inputs.movedim(axis, 1)
        out = F.group_norm(x, self.groups, self.gamma, self.beta, self.epsilon)
        return out if axis == 1 else out.movedim(1, axis)

    def compute_output_shape(self, input_shape):
        _check_axes([self.axis], len(input_shape), self)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                **self._affine_config()}

    def extra_repr(self):
        return f"name={self.name!r}, groups={self.groups}, axis={self.axis}"
