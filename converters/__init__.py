"""Readers of foreign model files (Caffe, MatConvNet) into the neutral :class:`~converters.graph.Graph`.

Nothing here knows Keras or TensorFlow.
"""

from converters.errors import ConversionError
from converters.graph import Graph, Node

__all__ = ["ConversionError", "Graph", "Node"]
