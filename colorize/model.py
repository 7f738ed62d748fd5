"""The paper's colorization network (Fig. 5), its search-space variants, and a real U-net.

`build_model()` with its defaults is exactly the report's network: 16 layers, 6,219,410 parameters,
256x256x1 L in, 256x256x2 tanh a/b out. The search space varies it:

- kernel_size 3/5/7: every convolution uses that kernel.
- padding "same": zero-padded convolutions (the paper's). "valid": each convolution sees only
  pixels of the map, never zeros; the map is first extended by mirroring its border
  (`ReflectionPadding2D`, (k-1)/2 pixels a side) so shapes still meet. Parameter counts are
  unchanged. This needs the smallest map (image_size / 8) to be wider than (k-1)/2.
- strides 2: the three downsampling convolutions use stride 2 (the paper's). strides 1: they use
  stride 1 followed by 2x2 max pooling, as the report's autoencoder section describes.

A combination that cannot work raises `InfeasibleArchitecture` with the reason, before training.
The paper calls its network U-net-like but it has no skip connections; `architecture="unet"` is a
real U-net (encoder features concatenated into the decoder) over the same search space.

Beyond the paper, for both architectures:

- loss "mse" (the paper's, the default) or "classification": the head (`colorize.heads`) sets the
  last convolution (2 tanh channels, or one logit per a/b bin) and what decodes it. The model
  built is always the inference model, L -> a/b / 128; `temperature` is the classification
  head's annealed-mean temperature.
- batch_norm: batch normalization after every convolution but the output one (convolution, then
  normalization, then ReLU; the convolution then has no bias, which the normalization would
  cancel). Off by default, as in the paper.
"""

from __future__ import annotations

import keras

from colorize.choices import ARCHITECTURES, DEFAULT_LOSS, PADDINGS, STRIDES
from colorize.heads import check_options, get_head

DOWNSAMPLINGS = 3  # both networks halve the image three times


class InfeasibleArchitecture(ValueError):
    """A combination of settings that cannot build a working network; the message says why."""


@keras.saving.register_keras_serializable(package="colorize")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by mirroring the border (no zeros enter the convolution)."""

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, inputs):
        p = self.pad
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = 2 * self.pad
        return (
            batch,
            None if height is None else height + grow,
            None if width is None else width + grow,
            channels,
        )

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


def check_space(
    kernel_size: int, padding: str, strides: int, image_size: int, architecture: str = "paper"
) -> None:
    """Raise InfeasibleArchitecture (or ValueError outside the space), saying why."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}"
        )
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, not {padding!r}")
    if strides not in STRIDES:
        raise ValueError(f"strides must be one of {STRIDES}, not {strides!r}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, not {kernel_size!r}")
    factor = 2**DOWNSAMPLINGS
    if image_size % factor or image_size < factor:
        raise InfeasibleArchitecture(
            f"image_size {image_size} is not a multiple of {factor}: the network halves it "
            f"{DOWNSAMPLINGS} times and doubles it back"
        )
    smallest = image_size // factor
    border = (kernel_size - 1) // 2
    if padding == "valid" and border >= smallest:
        raise InfeasibleArchitecture(
            f"valid padding with kernel {kernel_size} mirrors {border} pixels a side, but the "
            f"smallest feature map at image_size {image_size} is only {smallest}x{smallest}"
        )


class _Blocks:
    """Makes the layers of one network so both architectures share padding/stride handling."""

    def __init__(self, kernel_size: int, padding: str, strides: int, batch_norm: bool = False):
        self.kernel_size, self.padding, self.strides = kernel_size, padding, strides
        self.batch_norm = batch_norm

    def conv(
        self,
        x,
        filters: int,
        *,
        downsample: bool = False,
        activation: str | None = "relu",
        output: bool = False,
    ):
        if self.padding == "valid" and self.kernel_size > 1:
            x = ReflectionPadding2D((self.kernel_size - 1) // 2)(x)
        stride = 2 if downsample and self.strides == 2 else 1
        normalize = self.batch_norm and not output
        x = keras.layers.Conv2D(
            filters,
            self.kernel_size,
            strides=stride,
            padding=self.padding,
            activation=None if normalize else activation,
            use_bias=not normalize,
        )(x)
        if normalize:
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation(activation)(x)
        if downsample and self.strides == 1:
            x = keras.layers.MaxPooling2D(2)(x)
        return x


def _paper_network(x, blocks: _Blocks, channels: int = 2, activation: str | None = "tanh"):
    # Fig. 5 of the report: encoder 64-128-128-256-256-512, then 512-256-128 and a decoder.
    x = blocks.conv(x, 64, downsample=True)
    x = blocks.conv(x, 128)
    x = blocks.conv(x, 128, downsample=True)
    x = blocks.conv(x, 256)
    x = blocks.conv(x, 256, downsample=True)
    for filters in (512, 512, 256, 128):
        x = blocks.conv(x, filters)
    x = keras.layers.UpSampling2D(2)(x)
    x = blocks.conv(x, 64)
    x = keras.layers.UpSampling2D(2)(x)
    x = blocks.conv(x, 32)
    x = blocks.conv(x, 16)
    x = blocks.conv(x, channels, activation=activation, output=True)
    return keras.layers.UpSampling2D(2)(x)


def _unet(
    x,
    blocks: _Blocks,
    channels: int = 2,
    activation: str | None = "tanh",
    base_filters: int = 32,
):
    skips = []
    filters = base_filters
    for _ in range(DOWNSAMPLINGS):
        x = blocks.conv(x, filters)
        x = blocks.conv(x, filters)
        skips.append(x)
        x = blocks.conv(x, filters, downsample=True)
        filters *= 2
    x = blocks.conv(x, filters)
    x = blocks.conv(x, filters)
    for skip in reversed(skips):
        filters //= 2
        x = keras.layers.UpSampling2D(2)(x)
        x = blocks.conv(x, filters)
        x = keras.layers.Concatenate()([skip, x])
        x = blocks.conv(x, filters)
        x = blocks.conv(x, filters)
    return keras.layers.Conv2D(channels, 1, activation=activation)(x)


def build_model(
    kernel_size: int = 3,
    padding: str = "same",
    strides: int = 2,
    image_size: int = 256,
    architecture: str = "paper",
    *,
    loss: str = DEFAULT_LOSS,
    batch_norm: bool = False,
    **head_options: float,
) -> keras.Model:
    """Build an (uncompiled) colorization network: (S, S, 1) scaled L -> (S, S, 2) a/b / 128.

    Args:
        loss: the head (`colorize.choices.LOSSES`): "mse" (the paper's) or "classification".
        batch_norm: batch normalization after every convolution but the output one.
        head_options: the heads' options (`colorize.heads.HEAD_OPTIONS`), passed on to the
            head, which takes its own: e.g. `temperature`, the classification head's
            annealed-mean temperature (1: the mean of the predicted distribution; towards 0:
            its mode).

    Raises:
        InfeasibleArchitecture: the combination cannot build a working network (message says why).
        ValueError: a setting outside the space (unknown loss, non-positive temperature).
        TypeError: an option no head declares.
    """
    check_options(head_options)
    check_space(kernel_size, padding, strides, image_size, architecture)
    head = get_head(loss)
    blocks = _Blocks(kernel_size, padding, strides, batch_norm=bool(batch_norm))
    inputs = keras.Input((image_size, image_size, 1), name="L")
    body = _paper_network if architecture == "paper" else _unet
    raw = body(inputs, blocks, head.channels(), head.activation)
    outputs = head.decode(raw, **head_options)
    name = f"{architecture}_k{kernel_size}_{padding}_s{strides}"
    if architecture == "paper" and (kernel_size, padding, strides) == (3, "same", 2):
        name = "paper"
    if loss != DEFAULT_LOSS:
        name += f"_{loss}"
    if batch_norm:
        name += "_bn"
    return keras.Model(inputs, outputs, name=name)
