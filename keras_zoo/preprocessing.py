"""What a network expects of its input, as a spec and as a serializable Keras layer.

``y = (flip(x) - mean) * scale``: with ``flip_channels`` the model takes RGB 0..255 and reverses the channels
(to the BGR order of Caffe nets) first; ``mean`` is per channel or a (C, H, W) mean image in the network's
channel order, centre-cropped to the input size.
"""

import keras
import numpy as np
from keras import ops

from keras_zoo.layers import register


class Preprocessing:
    """The preprocessing a network's weights were trained with (see the module docstring)."""

    def __init__(self, flip_channels=False, mean=None, scale=1.0):
        self.flip_channels = bool(flip_channels)
        self.scale = float(scale)
        if mean is None:
            self.mean = None
        else:
            mean = np.asarray(mean, dtype=np.float32)
            if mean.ndim not in (1, 3):
                raise ValueError(f"mean must be per channel (C,) or an image (C, H, W), not shape {mean.shape}")
            self.mean = mean

    @classmethod
    def from_normalization(cls, normalization):
        """From MatConvNet's ``meta.normalization`` as the reader gives it (``{'mean': (C,) or (C,H,W)}``).

        MatConvNet networks take RGB already; nothing is flipped.
        """
        mean = (normalization or {}).get("mean")
        return cls(mean=mean)

    @classmethod
    def from_card(cls, source):
        """From a weight source's card: ``{'channel_order': 'BGR'|'RGB', 'mean': ..., 'scale': 1}``."""
        order = str(source.get("channel_order", "RGB")).upper()
        if order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', not {order!r}")
        return cls(flip_channels=order == "BGR", mean=source.get("mean"), scale=source.get("scale", 1.0))

    def layer(self, name="preprocess"):
        """The Keras layer applying this preprocessing to NHWC input."""
        if self.mean is None or self.mean.ndim == 1:
            mean_values = None if self.mean is None else [float(v) for v in self.mean]
            return Preprocess(self.flip_channels, mean_values=mean_values, scale=self.scale, name=name)
        image = np.transpose(self.mean, (1, 2, 0))
        layer = Preprocess(self.flip_channels, mean_image_shape=image.shape, scale=self.scale, name=name)
        layer.build((None, None, None, image.shape[-1]))
        layer.mean_image.assign(image)
        return layer

    def __repr__(self):
        mean = None if self.mean is None else f"array{self.mean.shape}"
        return f"Preprocessing(flip_channels={self.flip_channels}, mean={mean}, scale={self.scale})"


@register
class Preprocess(keras.layers.Layer):
    """``(flip(x) - mean) * scale`` on NHWC input; a mean image is a non-trainable weight, centre-cropped."""

    def __init__(self, flip_channels=False, mean_values=None, scale=1.0, mean_image_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.flip_channels = bool(flip_channels)
        self.mean_values = None if mean_values is None else [float(v) for v in mean_values]
        self.scale = float(scale)
        self.mean_image_shape = None if mean_image_shape is None else tuple(int(d) for d in mean_image_shape)

    def build(self, input_shape):
        if self.mean_image_shape is not None:
            self.mean_image = self.add_weight(name="mean_image", shape=self.mean_image_shape,
                                              initializer="zeros", trainable=False)

    def call(self, x):
        if self.flip_channels:
            x = ops.flip(x, axis=-1)
        if self.mean_values is not None:
            x = x - ops.convert_to_tensor(np.asarray(self.mean_values, dtype=np.float32), dtype=x.dtype)
        if self.mean_image_shape is not None:
            x = x - self._cropped_mean(x)
        if self.scale != 1.0:
            x = x * self.scale
        return x

    def compute_output_shape(self, input_shape):
        if self.mean_image_shape is not None:
            self._check_size(input_shape[1], input_shape[2])
        return input_shape

    def _check_size(self, height, width):
        mean_h, mean_w = self.mean_image_shape[:2]
        if (isinstance(height, int) and height > mean_h) or (isinstance(width, int) and width > mean_w):
            raise ValueError(f"{self.name}: input {height}x{width} is larger than the mean image "
                             f"{mean_h}x{mean_w}")

    def _cropped_mean(self, x):
        mean_h, mean_w = self.mean_image_shape[:2]
        height, width = (x.shape[axis] if x.shape[axis] is not None else ops.shape(x)[axis] for axis in (1, 2))
        self._check_size(height, width)
        top, left = (mean_h - height) // 2, (mean_w - width) // 2
        return self.mean_image[top:top + height, left:left + width, :]

    def get_config(self):
        config = super().get_config()
        config.update(flip_channels=self.flip_channels, mean_values=self.mean_values, scale=self.scale,
                      mean_image_shape=self.mean_image_shape)
        return config
