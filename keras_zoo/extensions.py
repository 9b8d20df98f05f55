"""Extension points: converting layer types keras_zoo does not ship, without forking it.

``register_caffe_layer(type_name, fn)`` adds ``fn`` to the Caffe reader's table of layer types
(:data:`converters.caffe.LAYERS`). ``fn`` has the table's signature, ``fn(layer, inputs, ctx) -> (nodes, shapes)``:

* ``layer``: the layer's V2 ``LayerParameter`` (``layer.name``, ``layer.bottom``, ``layer.top``, its
  ``*_param`` messages, ``layer.param``);
* ``inputs``: the shapes of its bottoms without the batch axis, channel-first ((C, H, W), (C,)...; ``None`` for a
  size known only at run time);
* ``ctx``: the reader's context: ``ctx.error(layer, reason)`` makes the ConversionError naming the file and the
  layer, ``ctx.weights_of(layer, {count})`` gives the caffemodel's blobs of the layer (None without one) and
  ``ctx.blob_array(layer, refs, index, shape)`` one of them as a float32 array of that shape;

and returns one :class:`converters.graph.Node` or a list of them (computing the layer's tops from its bottoms,
through blobs of their own names in between) and the shapes of the tops. Nodes use the neutral Graph's ops
(documented in :mod:`converters.graph`: conv, dense, relu, sigmoid, tanh, bnll, eltwise, power, ...), which the
Keras builder knows; a node carrying weights is named after the layer. See README.md ("Custom layers").

``register_matconvnet_layer(class_or_type, fn)`` is its MatConvNet twin: the same signature for a DagNN class or
SimpleNN type (:func:`register_matconvnet_layer`).
"""

from converters.caffe.layers import LAYERS as CAFFE_LAYERS
from converters.matconvnet import register_layer as _register_matconvnet_layer

__all__ = ["register_caffe_layer", "register_matconvnet_layer"]


def register_caffe_layer(type_name, fn, *, replace=False):
    """Convert Caffe layers of type ``type_name`` with ``fn(layer, inputs, ctx) -> (node or [nodes], [shapes])``.

    From then on :func:`keras_zoo.from_caffe` (and every Caffe reader) converts such layers. A type keras_zoo
    converts already is a ValueError unless ``replace=True`` (then ``fn`` is used instead). Returns ``fn``.
    """
    return CAFFE_LAYERS.add(type_name, fn, replace=replace)


def register_matconvnet_layer(class_or_type, fn, *, replace=False):
    """Convert MatConvNet layers of the DagNN class (``'dagnn.MyBlock'``) or SimpleNN type ``class_or_type`` with
    ``fn(layer, inputs, ctx) -> (node or [nodes], [shapes])``, the signature of :func:`register_caffe_layer`'s.

    ``layer`` is a :class:`converters.matconvnet.MatLayer`: ``name``, ``source_type``, ``inputs`` and ``outputs``
    (variable names), ``options`` (the DagNN block's properties or the SimpleNN layer's fields, as MATLAB values:
    numpy arrays, str, lists, dicts), ``weights`` (its parameter arrays, in order) and ``param_names``;
    ``inputs`` the shapes of its input variables ((C, H, W), channel-first, batch-less, ``None`` where unknown);
    ``ctx.error(layer, reason)`` makes the ConversionError naming the file and the layer. From then on
    :func:`keras_zoo.from_matconvnet` converts such layers where an output needs them. A class or type keras_zoo
    converts already is a ValueError unless ``replace=True``. Returns ``fn``.
    """
    return _register_matconvnet_layer(class_or_type, fn, replace=replace)
