"""V0 (2014) and V1 layers -> V2 ``LayerParameter`` messages, as Caffe's upgrade_proto does.

V1 enum types and V0 type strings become V2 type names; V1 ``*_param`` messages are copied; V0 layer fields
move to their V2 parameter messages, and V0 'padding' layers merge into the convolution or pooling after them.
"""

from __future__ import annotations

import converters.caffe.schema as schema

# V1 enum names -> V2 type names (Caffe's upgrade table).
_V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DECONVOLUTION": "Deconvolution",
    "DATA": "Data", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
# V1 enum names that only a fork's enum has -> its V2 type names (early Fast R-CNN files).
_V1_FORK_TYPES = {"ROI_POOLING": "ROIPooling"}
# V0 type strings -> V2 type names.
_V0_TYPES = {
    "accuracy": "Accuracy", "bnll": "BNLL", "concat": "Concat", "conv": "Convolution", "data": "Data",
    "dropout": "Dropout", "euclidean_loss": "EuclideanLoss", "flatten": "Flatten", "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output", "im2col": "Im2col", "images": "ImageData", "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct", "lrn": "LRN", "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling", "relu": "ReLU", "sigmoid": "Sigmoid", "softmax": "Softmax",
    "softmax_loss": "SoftmaxWithLoss", "split": "Split", "tanh": "TanH", "window_data": "WindowData",
}
_V1_PARAM_FIELDS = tuple(
    field.name for field in schema.V1LayerParameter.DESCRIPTOR.fields
    if field.name.endswith("_param") and field.name in schema.LayerParameter.DESCRIPTOR.fields_by_name)


def upgrade_layers(net):
    """The net's layers as V2 LayerParameter messages, and the format name ('V0', 'V1' or 'V2')."""
    if net.layer and net.layers:
        raise ValueError("the net mixes V1 'layers' and V2 'layer' entries")
    if net.layer:
        return list(net.layer), "V2"
    if any(layer.HasField("layer") for layer in net.layers):
        return _upgrade_v0(net.layers), "V0"
    return [_upgrade_v1(layer) for layer in net.layers], "V1"


def _upgrade_v1(v1):
    layer = schema.LayerParameter(name=v1.name, bottom=v1.bottom, top=v1.top)
    if v1.HasField(schema.V1_UNKNOWN_TYPE_FIELD):
        enum_name = getattr(v1, schema.V1_UNKNOWN_TYPE_FIELD)
        layer.type = _V1_FORK_TYPES.get(enum_name, enum_name)
    else:
        enum_name = schema.V1_TYPE_NAMES.get(v1.type, str(v1.type))
        layer.type = _V1_TYPES.get(enum_name, enum_name)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    for index, name in enumerate(v1.param):  # shared weights by name (Caffe's upgrade: one ParamSpec each)
        spec = layer.param.add(name=name)
        if index < len(v1.blob_share_mode):
            spec.share_mode = v1.blob_share_mode[index]
    for field in _V1_PARAM_FIELDS:
        if v1.HasField(field):
            getattr(layer, field).CopyFrom(getattr(v1, field))
    return layer


def _upgrade_v0(connections):
    """V0 layers (with Caffe's merging of 'padding' layers into the following conv/pool) as V2 layers."""
    layers = []
    padding = {}  # top of a padding layer -> (its bottom, pad)
    for connection in connections:
        v0 = connection.layer
        if v0.type == "padding":
            padding[connection.top[0] if connection.top else ""] = (
                connection.bottom[0] if connection.bottom else "", v0.pad)
            continue
        layer = schema.LayerParameter(name=v0.name, top=connection.top,
                                      type=_V0_TYPES.get(v0.type, v0.type))
        pad = v0.pad
        for bottom in connection.bottom:
            if bottom in padding:
                bottom, pad = padding[bottom]
            layer.bottom.append(bottom)
        if v0.type == "conv":
            conv = layer.convolution_param
            conv.num_output, conv.group = v0.num_output, v0.group
            if v0.HasField("biasterm"):
                conv.bias_term = v0.biasterm
            if v0.HasField("kernelsize"):
                conv.kernel_size.append(v0.kernelsize)
            conv.stride.append(v0.stride)
            conv.pad.append(pad)
        elif v0.type == "innerproduct":
            layer.inner_product_param.num_output = v0.num_output
            if v0.HasField("biasterm"):
                layer.inner_product_param.bias_term = v0.biasterm
        elif v0.type == "pool":
            pool = layer.pooling_param
            pool.pool, pool.stride, pool.pad = v0.pool, v0.stride, pad
            if v0.HasField("kernelsize"):
                pool.kernel_size = v0.kernelsize
        elif v0.type == "lrn":
            lrn = layer.lrn_param
            lrn.local_size, lrn.alpha, lrn.beta, lrn.k = v0.local_size, v0.alpha, v0.beta, v0.k
        elif v0.type == "dropout":
            layer.dropout_param.dropout_ratio = v0.dropout_ratio
        elif v0.type == "concat":
            layer.concat_param.concat_dim = v0.concat_dim
        elif v0.type in ("data", "images", "window_data"):
            if v0.cropsize:
                layer.transform_param.crop_size = v0.cropsize
            layer.transform_param.scale = v0.scale
        layers.append(layer)
    return layers
