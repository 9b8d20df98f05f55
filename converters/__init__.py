"""Readers of foreign model files (Caffe, MatConvNet) into the neutral :class:`~converters.graph.Graph`.

Nothing here knows Keras or TensorFlow. :mod:`converters.caffe` and :mod:`converters.matconvnet` read the
files (each a table of one function per layer type, :mod:`converters.layer_table`); :mod:`converters.writers`
writes such files (tests, benchmarks).
"""

from converters.errors import ConversionError
from converters.graph import Graph, Node

__all__ = ["ConversionError", "Graph", "Node"]
