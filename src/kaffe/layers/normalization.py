"""``BatchNormalization`` with Keras 3's semantics on torch's fused batch-norm kernel.

Keras and torch differ in two ways that matter when weights move between them, and kaffe
follows Keras in both: the moving variance is updated with the *biased* batch variance
(torch's ``running_var`` takes the unbiased one), and ``momentum`` weighs the old value
(``moving = moving * momentum + batch * (1 - momentum)``; torch's momentum weighs the new one).
A layer with ``trainable=False`` runs in inference mode even while its model trains.
"""
import math

import torch

from kaffe import initializers
from kaffe.engine.layer import Layer


class BatchNormalization(Layer):
    """Normalise ``axis`` (the channels) over every other axis.

    Training (``layer.train()`` or ``training=True``, and the layer trainable): the batch's mean and
    biased variance normalise the inputs and move ``moving_mean``/``moving_variance``. Inference:
    the moving statistics normalise. ``output = gamma * (x - mean) / sqrt(var + epsilon) + beta``.

    Weights, in Keras's order: gamma (ones; ``scale``), beta (zeros; ``center``), then the
    non-trainable moving_mean (zeros) and moving_variance (ones), each ``(channels,)``.
    ``axis=1`` suits channels_first convolutions, the default ``-1`` channels_last ones.
    """

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
        if training and self.trainable:
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
