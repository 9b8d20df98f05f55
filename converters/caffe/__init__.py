"""Caffe reader: ``.prototxt`` (+ ``.caffemodel``) -> neutral :class:`~converters.graph.Graph`.

Every historic format is read: V0 (2014, ``layers { layer { type: "conv" } bottom top }``), V1 (``layers {``
with enum types) and V2 (``layer {`` with string types), in text and in binary form. V0 and V1 layers are
first upgraded to V2 ``LayerParameter`` messages (as Caffe's upgrade_proto does), so one converter handles
them all.

Train/val nets are read in the TEST phase (include/exclude rules); loss and accuracy layers are dropped, and so
are Silence layers, whose bottoms are consumed all the same (no outputs); a data layer (Data, ImageData, HDF5Data, Python without bottoms...) becomes graph inputs named
after its image tops: the tops that lead to a layer with weights (HDF5 and Python layers name and order
their tops freely), else its first top. Its other tops (labels) are dropped together with the layers that
consume them. The input size comes from ``input_shape`` ((H, W) or (C, H, W)); without it, from the layer
itself (DummyData and MemoryData shapes; a ``crop_size`` gives H = W = crop_size; the forks' crop_h/crop_w
(SSD) and crop_height/crop_width (PSPNet), SSD's resize_param height/width; ImageData's new_height/new_width);
otherwise it is a ConversionError naming the layer. C defaults to 3 (1 for an
ImageData layer with ``is_color: false``). ``Graph.meta`` records ``format`` ('V0', 'V1', 'V2'),
``net_name``, ``data_layers`` ({input: type, scale, mirror, crop_size, mean_file, mean_value}) and
``caffemodel``.

Prototxts are parsed strictly (:mod:`~converters.caffe.prototxt`): an unknown field is a ConversionError naming
the file, line, layer and field with the closest known one, unless ``read_caffe(..., allow_unknown_fields=True)``
(one warning per skipped field). A fork field that changes a supported layer's computation is honoured or
refused (Dropout's ``scale_train: false`` becomes the fork's test-time scaling).

A layer type without a function in :data:`LAYERS` (RNN, LSTM, a Python layer with bottoms...) makes ONE
ConversionError listing every such layer, raised before the caffemodel is read; ``keras_zoo.register_caffe_layer``
adds a function for a custom type. Weights that layers share by ``param { name }`` stay one weight
(``attrs['shares']``: the later layers compute with the first one's; Caffe's last-loaded copy wins where a
caffemodel holds different ones); sharing only some of a layer's blobs, or between layers that compute
differently, is refused by name.
Outputs are the blobs no layer consumes, sorted by name: Caffe's Net keeps its available blobs in a
``std::set`` and reports them in that order.

:func:`read_caffemodel_weights` reads a caffemodel as Caffe loads trained weights: by layer name, each layer on
its own, no net assembled; it reads weights-only files (names, types and blobs) as well as full ones.

Caffemodels are scanned at the protobuf wire level over a memory map: weight arrays are ``np.memmap`` views
of the file (nothing is copied until the consumer reads them), converted once to the layouts of
:mod:`converters.graph` (as transposed views where a transposition is needed).

Modules: :mod:`~converters.caffe.schema` (the protobuf schema), :mod:`~converters.caffe.prototxt` (text
files), :mod:`~converters.caffe.wire` (binary files), :mod:`~converters.caffe.upgrade` (V0/V1 -> V2),
:mod:`~converters.caffe.net` (the net -> Graph) and :mod:`~converters.caffe.layers` (one function per layer
type, in the table :data:`LAYERS`, where a custom layer type can be registered too).
"""

from converters.caffe.layers import LAYERS
from converters.caffe.net import SUPPORTED_LAYER_TYPES, read_caffe, read_caffemodel, read_caffemodel_weights
from converters.caffe.wire import read_mean_file

__all__ = ["read_caffe", "read_caffemodel", "read_caffemodel_weights", "read_mean_file", "SUPPORTED_LAYER_TYPES",
           "LAYERS"]
