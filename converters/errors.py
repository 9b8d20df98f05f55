"""The one exception type of every reader and builder problem."""


class ConversionError(Exception):
    """A foreign model file could not be read or converted.

    The message always names the file, the layer (where one is involved) and what was wrong, e.g.
    ``net.caffemodel: layer 'fc6' (InnerProduct): blob 0 has shape (10, 20), prototxt implies (4096, 9216)``.
    """

    def __init__(self, message, *, path=None, layer=None, layer_type=None):
        self.path = str(path) if path is not None else None
        self.layer = layer
        self.layer_type = layer_type
        self.reason = message
        super().__init__(self._format())

    def _format(self):
        parts = []
        if self.path:
            parts.append(f"{self.path}:")
        if self.layer is not None:
            kind = f" ({self.layer_type})" if self.layer_type else ""
            parts.append(f"layer '{self.layer}'{kind}:")
        parts.append(self.reason)
        return " ".join(parts)
