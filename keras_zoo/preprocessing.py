"""What a network expects of its input, as a :class:`Preprocessing` and as a serializable Keras layer.

``y = (flip(x) - mean) * scale``: with ``flip_channels`` the model takes RGB 0..255 and reverses the channels
(to the BGR order of Caffe nets) first; ``mean`` is per channel or a (C, H, W) mean image in the network's
channel order, centre-cropped to the input size.
"""

import numpy as np

from keras_zoo.layers import Preprocess


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
    def from_normalization(cls, normalization, scale=1.0):
        """From MatConvNet's ``meta.normalization`` as the reader gives it (``{'mean': (C,) or (C,H,W)}``), then
        ``scale``.

        MatConvNet networks take RGB already; nothing is flipped.
        """
        mean = (normalization or {}).get("mean")
        return cls(mean=mean, scale=scale)

    @classmethod
    def from_card(cls, input_spec, mean=None):
        """From a weight source's :class:`~keras_zoo.cards.records.InputSpec` (channel order, mean, scale).

        ``mean``: the resolved mean (:func:`keras_zoo.weights.resolve_mean`) where the InputSpec names a mean file
        or ``'meta'``; without it a per-channel mean of the InputSpec is used as it is, and any other is left out.
        """
        order = str(input_spec.channel_order).upper()
        if order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', not {order!r}")
        if mean is None and isinstance(input_spec.mean, tuple):
            mean = input_spec.mean
        return cls(flip_channels=order == "BGR", mean=mean, scale=input_spec.scale)

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
