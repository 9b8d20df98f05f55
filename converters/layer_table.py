"""A table of "one function per layer type", filled with a decorator: the readers' layer converters use it.

Generic: it knows type names and functions, nothing of any framework::

    LAYERS = LayerTable("unsupported layer type '{type}'")

    @LAYERS.register("ReLU", "ReLU6")
    def relu(layer, inputs, ctx):
        ...

    convert = LAYERS.lookup(layer.type, path=path, layer=layer.name)   # ConversionError if unknown

The readers' functions share one signature, ``fn(layer, inputs, ctx) -> (node, output shapes)``: the foreign
layer, the shapes of its inputs (batch-less, channel-first, ``None`` for an unknown size) and the reader's
conversion context; they return one :class:`~converters.graph.Node` (or a list of nodes computing the layer's
outputs through blobs of their own in between) and one shape per output.
"""

from __future__ import annotations

from converters.errors import ConversionError


class LayerTable:
    """Functions keyed by layer type name; ``unknown`` is the message for a type not registered (``{type}``)."""

    def __init__(self, unknown="unsupported layer type '{type}'"):
        self.unknown = unknown
        self._functions = {}

    def register(self, *type_names):
        """Decorator: ``function`` converts layers of each of ``type_names`` (each registered once)."""
        if not type_names:
            raise ValueError("register needs at least one type name")

        def add(function):
            for name in type_names:
                if name in self._functions:
                    raise ValueError(f"layer type '{name}' is registered twice")
                self._functions[name] = function
            return function

        return add

    def add(self, type_name, function, *, replace=False):
        """Register ``function`` for ``type_name`` (not a decorator); ValueError where the type has a function
        already, unless ``replace``."""
        if not isinstance(type_name, str) or not type_name:
            raise ValueError(f"a layer type name must be a non-empty string, not {type_name!r}")
        if not callable(function):
            raise ValueError(f"the function for layer type '{type_name}' is not callable: {function!r}")
        if type_name in self._functions and not replace:
            raise ValueError(f"layer type '{type_name}' is registered already (replace=True replaces it)")
        self._functions[type_name] = function
        return function

    def lookup(self, type_name, *, path=None, layer=None, layer_type=None):
        """The function of ``type_name``; ConversionError naming the file, the layer and the type if none."""
        function = self._functions.get(type_name)
        if function is None:
            raise ConversionError(self.unknown.format(type=type_name), path=path, layer=layer,
                                  layer_type=layer_type or type_name)
        return function

    def __contains__(self, type_name):
        return type_name in self._functions

    def names(self):
        """The registered type names, as a frozenset."""
        return frozenset(self._functions)
