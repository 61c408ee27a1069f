"""Network pieces that several models share, sized by the data's image shape.

``stem`` is the convolutional front of the encoders and discriminators
(conv-VAE, VQ-VAE, DCGAN, WGAN-GP critic): two 4x4 convolutions of stride 2,
28 -> 14 -> 7. ``PIXELS`` and ``STEM_SIDE`` are the sizes the MLPs and the
decoders read, so no model file writes 784 or 7 * 7 itself.
"""

from minigen import nn
from minigen.data import IMAGE_SHAPE
from minigen.nn import functional as F

CHANNELS, SIDE = IMAGE_SHAPE[0], IMAGE_SHAPE[1]
PIXELS = CHANNELS * SIDE * SIDE  # the length of a flattened image (784)
STEM_SIDE = F.conv_output_size(F.conv_output_size(SIDE, 4, 2, 1), 4, 2, 1)  # 28 -> 14 -> 7


def stem(width, activation, batch_norm=False):
    """(N, 1, 28, 28) -> (N, width, 14, 14) -> (N, 2 width, 7, 7): two 4x4 convolutions
    of stride 2 and padding 1, each followed by ``activation()`` (a BatchNorm2d before
    the second one's with ``batch_norm``).

    Returns the layers as a list, to spread into a ``Sequential``: their
    positions are part of the weights' names that checkpoints hold.
    """
    layers = [
        nn.Conv2d(CHANNELS, width, 4, stride=2, padding=1),
        activation(),
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(2 * width))
    return layers + [activation()]
