"""Greedy layer-wise pretraining of stacked (denoising) autoencoders (Hinton & Salakhutdinov 2006,
Bengio et al. 2007, Vincent et al. 2010), on kaffe's own Keras-style engine.

``layerwise_pretrain(layers, x)`` takes the layers of a stack in order. Each ``Dense`` or
``Conv2D`` layer in turn becomes the encoder of a small autoencoder (input -> optional noise ->
the layer -> a mirrored decoder) that is compiled and ``fit`` to reconstruct that layer's input:
``x`` for the first layer, the codes of the layers before it for the others. The trained weights
stay in the layer; the decoders are thrown away. Layers without weights (``Dropout``,
``MaxPooling2D``, ``Flatten``, ``Activation``...) are not trained: they are applied, in inference
mode, when the codes for the next layer are computed; so are layers with ``trainable=False``.

Afterwards stack the layers with a classifier on top (or keep using the ``Sequential`` they came
from) and fine-tune the whole model with ``fit``::

    model = Sequential([Dense(500, activation="relu", input_shape=(784,)),
                        Dense(250, activation="relu"), Dense(10, activation="softmax")])
    layerwise_pretrain(model.layers[:-1], x_unlabelled, epochs=5, noise=0.3)
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_labelled, y_labelled, epochs=20)

Sparse autoencoders: give the layer an ``activity_regularizer`` (e.g. ``regularizers.l1(1e-5)``);
its penalty on the code is part of the autoencoder's training loss, as in Keras.
"""
import math

import torch

from kaffe import activations, losses, optimizers
from kaffe.engine.functional import Functional
from kaffe.engine.input_layer import Input, InputLayer
from kaffe.engine.layer import Layer
from kaffe.engine.sequential import Sequential
from kaffe.layers.conv_transpose import Conv2DTranspose, transpose_length
from kaffe.layers.convolutional import Conv2D, spatial_shape
from kaffe.layers.core import Dense, _FoldableActivation
from kaffe.layers.regularization import GaussianNoise

__all__ = ["layerwise_pretrain", "mirror_decoder", "MaskingNoise", "TiedDense", "PretrainingError"]


class PretrainingError(ValueError):
    """Layers or data that layer-wise pretraining cannot use; raised before any training."""


# ---------------------------------------------------------------------------------------- noise
class MaskingNoise(Layer):
    """Set each input value to 0 with probability ``rate`` while training, without rescaling the
    others (the "masking noise" of Vincent et al. 2010; ``Dropout`` would rescale by
    ``1 / (1 - rate)``). In inference the input passes unchanged."""

    supports_masking = True

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"MaskingNoise expected rate in [0, 1). Received: rate={rate!r}")
        self.rate, self.seed = float(rate), seed

    def call(self, inputs):
        if not self.training or self.rate == 0:
            return inputs
        return inputs * torch.empty_like(inputs).bernoulli_(1.0 - self.rate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def _gaussian(level, name):
    if level > 1:
        raise PretrainingError(f"noise={level} is too large for noise_type='gaussian' (the noise "
                               "is a GaussianNoise layer, whose stddev must be in [0, 1], as in "
                               "Keras). Scale the data, or use noise_type='masking'.")
    return GaussianNoise(level, name=name)


def _masking(level, name):
    if level >= 1:
        raise PretrainingError(f"noise={level} would mask every input: for noise_type='masking' "
                               "noise is the fraction of inputs set to 0, in [0, 1).")
    return MaskingNoise(level, name=name)


#: noise_type -> factory(level, layer name) of the corrupting layer put before the encoder.
NOISE_TYPES = {"gaussian": _gaussian, "masking": _masking}


# ---------------------------------------------------------------------------------------- decoders
class TiedDense(_FoldableActivation, Layer):
    """The decoder of a Dense encoder with tied weights: ``activation(code @ kernel.T + bias)``,
    where ``kernel`` *is* the encoder's kernel (updates reach both) and only the bias of width
    ``input_dim`` is this layer's own weight."""

    def __init__(self, encoder, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, Dense) or not encoder.built:
            raise TypeError("TiedDense needs a built Dense encoder. Received: "
                            f"{type(encoder).__name__} {getattr(encoder, 'name', '')!r}")
        # Not a sub-module: the encoder is trained (and counted) where it already lives.
        object.__setattr__(self, "encoder", encoder)
        # the encoder's input width (its kernel is (units, in), or Keras's (in, units))
        self.units = int(encoder.kernel.shape[0 if encoder._keras_kernel else 1])
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        self.bias = self.add_weight("bias", (self.units,), "zeros") if self.use_bias else None

    def check_input_shape(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.encoder.units:
            raise ValueError(f"TiedDense '{self.name}' decodes codes of width {self.encoder.units} "
                             f"(encoder '{self.encoder.name}'), received input shape "
                             f"{tuple(input_shape)}.")

    def call(self, inputs):
        # The encoder stores its kernel as torch's (units, in) (or Keras's (in, units) when it
        # is part of a user layer); F.linear wants (out=in, units).
        kernel = self.encoder.kernel if self.encoder._keras_kernel else self.encoder.kernel.t()
        return self._activate(torch.nn.functional.linear(inputs, kernel, self.bias))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "encoder": self.encoder.name,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias}


def _dense_decoder(layer, input_shape, activation, tied, name):
    if tied:
        return TiedDense(layer, activation=activation, use_bias=layer.use_bias, name=name)
    return Dense(input_shape[-1], activation=activation, use_bias=layer.use_bias, name=name)


def _conv2d_decoder(layer, input_shape, activation, tied, name):
    if tied:
        raise PretrainingError(f"tied_weights=True is supported for Dense layers only; layer "
                               f"'{layer.name}' is a Conv2D. Pass tied_weights=False.")
    if layer.groups != 1:
        raise PretrainingError(f"Conv2D '{layer.name}' has groups={layer.groups}; only groups=1 "
                               "convolutions can be mirrored by a Conv2DTranspose.")
    code_shape = layer.compute_output_shape(input_shape)
    wanted = spatial_shape(input_shape, layer.data_format)
    got = spatial_shape(code_shape, layer.data_format)
    output_padding = []
    for n_in, n_code, k, s, d in zip(wanted, got, layer.kernel_size, layer.strides,
                                     layer.dilation_rate):
        choices = [p for p in [None] + list(range(s))
                   if transpose_length(n_code, k, s, d, layer.padding, p) == n_in]
        if not choices:
            raise PretrainingError(
                f"Conv2D '{layer.name}' maps spatial size {n_in} to {n_code} (kernel {k}, stride "
                f"{s}, padding '{layer.padding}'), which no Conv2DTranspose can map back; use "
                "padding='same' or an input size divisible by the stride.")
        output_padding.append(choices[0])
    channels = input_shape[-1] if layer.data_format == "channels_last" else input_shape[1]
    return Conv2DTranspose(
        channels, layer.kernel_size, strides=layer.strides, padding=layer.padding,
        output_padding=None if all(p is None for p in output_padding) else
        tuple(0 if p is None else p for p in output_padding),
        data_format=layer.data_format, dilation_rate=layer.dilation_rate, activation=activation,
        use_bias=layer.use_bias, name=name)


#: Layer types layer-wise pretraining can mirror -> decoder factory
#: ``(layer, input_shape, activation, tied, name) -> decoder layer``.
DECODERS = {Dense: _dense_decoder, Conv2D: _conv2d_decoder}


def mirror_decoder(layer, input_shape, activation=None, tied_weights=False, name=None):
    """The decoder that maps ``layer``'s output back to ``input_shape`` (batch axis included):
    ``Dense(input_dim)`` (or ``TiedDense``) for a Dense, ``Conv2DTranspose`` with the same
    kernel, strides and padding for a Conv2D."""
    factory = DECODERS.get(type(layer))
    if factory is None:
        raise PretrainingError(_unsupported(layer))
    return factory(layer, tuple(input_shape), activation, tied_weights,
                   name or f"{layer.name}_decoder")


def _unsupported(layer, position=None):
    where = f"layer {position} " if position is not None else "layer "
    return (f"layerwise_pretrain cannot mirror {where}'{layer.name}' ({type(layer).__name__}): "
            f"it can train {', '.join(t.__name__ for t in DECODERS)} layers as autoencoders, and "
            "passes layers without weights (Dropout, Flatten, pooling, Activation...) and layers "
            "with trainable=False through unchanged. Leave this layer out of the list (e.g. "
            "model.layers[:k]) or set its trainable=False.")


# ---------------------------------------------------------------------------------------- planning
def _as_layer_list(layers):
    if isinstance(layers, Sequential):
        return list(layers.layers)
    if isinstance(layers, Functional):
        raise PretrainingError(
            f"layerwise_pretrain got the functional model '{layers.name}'; pass its layers in "
            "the order they are stacked, e.g. model.layers[1:-1] (a Sequential is taken whole).")
    if isinstance(layers, Layer):
        return [layers]
    try:
        layers = list(layers)
    except TypeError:
        raise PretrainingError("layerwise_pretrain expects a list of layers or a Sequential. "
                               f"Received: {type(layers).__name__}") from None
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise PretrainingError(f"layerwise_pretrain: item {i} of layers is a "
                                   f"{type(layer).__name__}, not a kaffe layer.")
    if not layers:
        raise PretrainingError("layerwise_pretrain got no layers to pretrain.")
    return layers


def _plan(layers, data_shape):
    """Walk the stack symbolically (building unbuilt layers) and return
    ``[(layer, input_shape, trains)]``; every shape and type problem is raised here, before any
    training starts."""
    shape = (None,) + tuple(data_shape[1:])
    symbolic = Input(batch_shape=shape, name="layerwise_pretrain_input")
    plan = []
    for i, layer in enumerate(layers):
        if isinstance(layer, InputLayer):
            continue
        try:
            out = layer(symbolic)
        except (ValueError, TypeError, RuntimeError, IndexError) as error:
            message = _shape_error(i, layer, shape, data_shape, plan, error)
            raise PretrainingError(message) from error
        trains = layer.trainable and bool(layer.trainable_weights)
        if trains and type(layer) not in DECODERS:
            raise PretrainingError(_unsupported(layer, i))
        plan.append((layer, shape, trains))
        symbolic, shape = out, tuple(out.shape)
    if not any(trains for _, _, trains in plan):
        raise PretrainingError(
            "layerwise_pretrain found no layer to train among "
            f"{[l.name for l in layers]}: none is a trainable "
            f"{' or '.join(t.__name__ for t in DECODERS)}.")
    return plan


def _shape_error(i, layer, shape, data_shape, plan, error):
    expected = getattr(layer, "_build_input_shape", None) or layer._batch_input_shape
    wants = f" expects inputs of shape {tuple(expected)}" if expected is not None else ""
    if not plan:
        return (f"layerwise_pretrain: the data x has shape {tuple(data_shape)}, but the first "
                f"layer '{layer.name}' ({type(layer).__name__}){wants} and cannot take it "
                f"({error}). Reshape x (a Dense stack wants (samples, features), e.g. "
                "x.reshape(len(x), -1); a Conv2D wants (samples, rows, cols, channels)) or "
                "build the layer for x's shape.")
    previous = plan[-1][0]
    return (f"layerwise_pretrain: layer {i} '{layer.name}' ({type(layer).__name__}){wants} "
            f"cannot take the output of layer '{previous.name}', of shape {shape} ({error}).")


def _per_layer(value, count, what):
    """One value for every trained layer, or a list/tuple with one per trained layer."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise PretrainingError(f"layerwise_pretrain: {what} is a list of {len(value)} but "
                                   f"{count} layer(s) will be trained; give one value or "
                                   f"{count}.")
        return list(value)
    return [value] * count


def _fresh_optimizer(spec):
    """A new optimizer for each autoencoder (an optimizer binds to one set of weights)."""
    if isinstance(spec, optimizers.Optimizer):
        return optimizers.deserialize(optimizers.serialize(spec))
    if isinstance(spec, (str, dict)) or (isinstance(spec, type)
                                         and issubclass(spec, optimizers.Optimizer)):
        return optimizers.get(spec)
    if callable(spec) and not isinstance(spec, torch.optim.Optimizer):
        return spec()
    raise PretrainingError(
        "layerwise_pretrain needs an optimizer it can create once per layer: a name ('adam'), "
        "a kaffe optimizer instance (copied from its config for each layer) or a function "
        f"returning a new optimizer. Received: {spec!r}")


def _auto_decoding(data):
    """Decoder activation and loss for reconstructing ``data``: sigmoid + binary cross-entropy
    for values in [0, 1] (pixels, sigmoid codes), linear + mean squared error otherwise."""
    low, high = torch.aminmax(data)
    if float(low) >= 0.0 and float(high) <= 1.0:
        return "sigmoid", "binary_crossentropy"
    return "linear", "mse"


def _as_data(x):
    if not isinstance(x, torch.Tensor):
        import numpy as np
        array = np.asarray(x)
        if array.dtype.kind not in "fiub":
            raise PretrainingError(f"layerwise_pretrain needs numeric data; x has dtype "
                                   f"{array.dtype}.")
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    x = x.detach().float()
    if x.dim() < 2 or len(x) == 0:
        raise PretrainingError(f"layerwise_pretrain needs x of shape (samples, ...) with at least "
                               f"one sample; received shape {tuple(x.shape)}.")
    return x


@torch.no_grad()
def _apply(layer, data, batch_size):
    """``layer`` on ``data`` in inference mode, in batches, on the layer's device; CPU result."""
    device = next((w.device for w in layer.weights), data.device)
    chunks = [layer(data[i:i + batch_size].to(device), training=False).cpu()
              for i in range(0, len(data), batch_size)]
    return torch.cat(chunks)


# ---------------------------------------------------------------------------------------- main
def layerwise_pretrain(layers, x, epochs=10, batch_size=256, noise=0.0, noise_type="gaussian",
                       optimizer="adam", loss=None, decoder_activation=None, tied_weights=False,
                       shuffle=True, callbacks=None, verbose="auto"):
    """Train each Dense / Conv2D layer of ``layers`` in turn as the encoder of an autoencoder on
    the codes of the layers before it; the learned weights are left in the layers.

    Args:
        layers: the layers in stack order, or a ``Sequential`` (all its layers). Layers without
            weights and layers with ``trainable=False`` are only applied to compute codes.
            Unbuilt layers are built from ``x``'s shape.
        x: unlabelled inputs (numpy array or tensor), ``(samples, ...)``.
        epochs, batch_size, shuffle: as in ``fit``; ``epochs`` may be a list, one per trained layer.
        noise: 0 for plain autoencoders; > 0 trains denoising autoencoders, the input of each
            being corrupted afresh every batch (the clean input is the target).
        noise_type: ``'gaussian'`` (add N(0, noise^2); noise <= 1) or ``'masking'`` (set a
            fraction ``noise`` of the inputs to 0).
        optimizer: a name, a kaffe optimizer (each layer gets a fresh copy of its config) or a
            function returning a new optimizer.
        loss, decoder_activation: for every layer, or a list with one per trained layer. ``None``
            picks from the values to reconstruct: in [0, 1] -> ``'sigmoid'`` decoder with
            ``'binary_crossentropy'``, else ``'linear'`` with ``'mse'``.
        tied_weights: Dense decoders reuse the encoder's kernel transposed (``TiedDense``).
        callbacks: passed to every layer's ``fit`` (a ``TensorBoard`` log_dir then holds one run
            after another, epochs restarting at 0 for each layer).
        verbose: passed to ``fit``; when not 0, a line per layer says what is trained.

    Returns:
        One ``History`` per trained layer, in order; ``history.model`` is that layer's
        autoencoder (the layer, its decoder, and the noise layer if any).

    Raises:
        PretrainingError: a layer type that cannot be mirrored, data whose shape does not fit
            the first layer (or codes that do not fit the next one), bad options; all before
            any training.
    """
    layers = _as_layer_list(layers)
    data = _as_data(x)
    if noise_type not in NOISE_TYPES:
        raise PretrainingError(f"Unknown noise_type {noise_type!r}; valid: "
                               f"{', '.join(repr(k) for k in NOISE_TYPES)}.")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise PretrainingError(f"noise must be a number >= 0. Received: noise={noise!r}")
    plan = _plan(layers, tuple(data.shape))
    trained = [layer for layer, _, trains in plan if trains]
    count = len(trained)
    epochs_each = _per_layer(epochs, count, "epochs")
    losses_each = _per_layer(loss, count, "loss")
    activations_each = _per_layer(decoder_activation, count, "decoder_activation")
    for value in losses_each:
        if value is not None:
            losses.get_loss_object(value)  # a misspelt loss fails now, not after layer 1
    if noise:
        NOISE_TYPES[noise_type](noise, "check")  # a bad level fails now too
    for layer, shape, trains in plan:
        if trains:  # a layer that cannot be mirrored (tied Conv2D, odd strides) fails now
            mirror_decoder(layer, shape, tied_weights=tied_weights)
    last = max(i for i, (_, _, trains) in enumerate(plan) if trains)

    histories = []
    for position, (layer, shape, trains) in enumerate(plan[:last + 1]):
        if trains:
            k = len(histories)
            auto_activation, auto_loss = _auto_decoding(data)
            activation = activations_each[k] or auto_activation
            layer_loss = losses_each[k] if losses_each[k] is not None else auto_loss
            autoencoder = _autoencoder(layer, shape, activation, tied_weights, noise, noise_type)
            if verbose:
                print(f"layerwise_pretrain: layer {k + 1}/{count} '{layer.name}' "
                      f"({type(layer).__name__}) on inputs {tuple(data.shape)}: "
                      f"{'denoising (' + noise_type + f' {noise}) ' if noise else ''}autoencoder, "
                      f"{activation} decoder, loss {_loss_name(layer_loss)}")
            autoencoder.compile(optimizer=_fresh_optimizer(optimizer), loss=layer_loss)
            histories.append(autoencoder.fit(data, data, epochs=epochs_each[k],
                                             batch_size=batch_size, shuffle=shuffle,
                                             callbacks=callbacks, verbose=verbose))
        if position < last:
            data = _apply(layer, data, batch_size)
    return histories


def _autoencoder(layer, input_shape, activation, tied, noise, noise_type):
    """input -> [noise] -> layer -> mirrored decoder, as a functional kaffe model."""
    inputs = Input(batch_shape=input_shape, name=f"{layer.name}_input")
    h = NOISE_TYPES[noise_type](noise, f"{layer.name}_noise")(inputs) if noise else inputs
    decoder = mirror_decoder(layer, input_shape, activation, tied)
    outputs = decoder(layer(h))
    if tuple(outputs.shape[1:]) != tuple(input_shape[1:]):  # a mirror must give the input back
        raise PretrainingError(f"The decoder of '{layer.name}' gives shape {outputs.shape}, not "
                               f"the input shape {input_shape}.")
    return Functional(inputs, outputs, name=f"{layer.name}_autoencoder")


def _loss_name(loss):
    return loss if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)
