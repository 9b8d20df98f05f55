"""The one exception type of every reader and builder problem."""


class ConversionError(Exception):
    """A foreign model file could not be read or converted.

    The message always names the file, the line (for a problem a text file pins to one), the layer (where one
    is involved) and what was wrong, e.g.
    ``net.caffemodel: layer 'fc6' (InnerProduct): blob 0 has shape (10, 20), prototxt implies (4096, 9216)`` or
    ``deploy.prototxt: line 12: layer 'conv1' (Convolution): unknown field 'strid' in convolution_param; did you
    mean 'stride'?``.
    """

    def __init__(self, message, *, path=None, layer=None, layer_type=None, line=None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.layer = layer
        self.layer_type = layer_type
        self.reason = message
        super().__init__(self._format())

    def _format(self):
        parts = []
        if self.path:
            parts.append(f"{self.path}:")
        if self.line is not None:
            parts.append(f"line {self.line}:")
        if self.layer is not None:
            kind = f" ({self.layer_type})" if self.layer_type else ""
            parts.append(f"layer '{self.layer}'{kind}:")
        parts.append(self.reason)
        return " ".join(parts)
