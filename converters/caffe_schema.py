"""Protobuf schema of Caffe's file formats, built at import time from a compact table.

The table records, for the messages a converter needs, the field names, numbers, types and defaults of
Caffe's ``caffe.proto`` (package ``caffe``, proto2): NetParameter with both the V1 ``layers`` (field 2) and
the V2 ``layer`` (field 100) lists, LayerParameter, V1LayerParameter with its enum of layer types, the 2014
V0LayerParameter, BlobProto/BlobShape, the NetState rules, ParamSpec and the ``*_param`` messages of the
layers the converter supports plus the data layers. Fields not listed here (losses, fork-only parameters)
are skipped by the text parser (``allow_unknown_field``) and kept as unknown fields by the binary parser.

Message classes are module attributes: ``NetParameter``, ``LayerParameter``, ``V1LayerParameter``,
``V0LayerParameter``, ``BlobProto``, ``BlobShape``...
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "caffe"

#: Reader-private field of V1LayerParameter: the converter rewrites a V1 ``type: NAME`` whose NAME is not a
#: value of Caffe's enum (a fork's layer, e.g. ROI_POOLING) into ``unknown_type: "NAME"`` so that it can
#: report the layer as unsupported instead of failing to parse the file. Never present in real files.
V1_UNKNOWN_TYPE_FIELD = "unknown_type"

_ENGINE = {"DEFAULT": 0, "CAFFE": 1, "CUDNN": 2}

_V1_LAYER_TYPES = {
    "NONE": 0, "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3, "CONTRASTIVE_LOSS": 37,
    "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39, "DROPOUT": 6, "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7,
    "ELTWISE": 25, "EXP": 38, "FLATTEN": 8, "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28,
    "IM2COL": 11, "IMAGE_DATA": 12, "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15,
    "MEMORY_DATA": 29, "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17, "POWER": 26, "RELU": 18,
    "SIGMOID": 19, "SIGMOID_CROSS_ENTROPY_LOSS": 27, "SILENCE": 36, "SOFTMAX": 20, "SOFTMAX_LOSS": 21,
    "SPLIT": 22, "SLICE": 33, "TANH": 23, "WINDOW_DATA": 24, "THRESHOLD": 31,
}

# Top-level enums: name -> {value name: number}.
_TOP_ENUMS = {"Phase": {"TRAIN": 0, "TEST": 1}}

# Messages: name -> (fields, nested enums). A field is (name, number, type[, default]); a type starting
# with '*' is repeated; 'M:X' is message X, 'E:X' enum X (nested in the message, or top-level).
_MESSAGES = {
    "BlobShape": ([("dim", 1, "*int64")], {}),
    "BlobProto": ([
        ("shape", 7, "M:BlobShape"), ("data", 5, "*float"), ("diff", 6, "*float"),
        ("double_data", 8, "*double"), ("double_diff", 9, "*double"),
        ("num", 1, "int32", 0), ("channels", 2, "int32", 0), ("height", 3, "int32", 0), ("width", 4, "int32", 0),
    ], {}),
    "FillerParameter": ([
        ("type", 1, "string", "constant"), ("value", 2, "float", 0), ("min", 3, "float", 0),
        ("max", 4, "float", 1), ("mean", 5, "float", 0), ("std", 6, "float", 1), ("sparse", 7, "int32", -1),
        ("variance_norm", 8, "E:VarianceNorm", "FAN_IN"),
    ], {"VarianceNorm": {"FAN_IN": 0, "FAN_OUT": 1, "AVERAGE": 2}}),
    "NetParameter": ([
        ("name", 1, "string"), ("input", 3, "*string"), ("input_shape", 8, "*M:BlobShape"),
        ("input_dim", 4, "*int32"), ("force_backward", 5, "bool", False), ("state", 6, "M:NetState"),
        ("debug_info", 7, "bool", False), ("layer", 100, "*M:LayerParameter"),
        ("layers", 2, "*M:V1LayerParameter"),
    ], {}),
    "NetState": ([
        ("phase", 1, "E:Phase", "TEST"), ("level", 2, "int32", 0), ("stage", 3, "*string"),
    ], {}),
    "NetStateRule": ([
        ("phase", 1, "E:Phase"), ("min_level", 2, "int32"), ("max_level", 3, "int32"),
        ("stage", 4, "*string"), ("not_stage", 5, "*string"),
    ], {}),
    "ParamSpec": ([
        ("name", 1, "string"), ("share_mode", 2, "E:DimCheckMode"), ("lr_mult", 3, "float", 1),
        ("decay_mult", 4, "float", 1),
    ], {"DimCheckMode": {"STRICT": 0, "PERMISSIVE": 1}}),
    "LayerParameter": ([
        ("name", 1, "string"), ("type", 2, "string"), ("bottom", 3, "*string"), ("top", 4, "*string"),
        ("phase", 10, "E:Phase"), ("loss_weight", 5, "*float"), ("param", 6, "*M:ParamSpec"),
        ("blobs", 7, "*M:BlobProto"), ("propagate_down", 11, "*bool"),
        ("include", 8, "*M:NetStateRule"), ("exclude", 9, "*M:NetStateRule"),
        ("transform_param", 100, "M:TransformationParameter"),
        ("batch_norm_param", 139, "M:BatchNormParameter"), ("bias_param", 141, "M:BiasParameter"),
        ("concat_param", 104, "M:ConcatParameter"), ("convolution_param", 106, "M:ConvolutionParameter"),
        ("crop_param", 144, "M:CropParameter"), ("data_param", 107, "M:DataParameter"),
        ("dropout_param", 108, "M:DropoutParameter"), ("dummy_data_param", 109, "M:DummyDataParameter"),
        ("eltwise_param", 110, "M:EltwiseParameter"), ("elu_param", 140, "M:ELUParameter"),
        ("flatten_param", 135, "M:FlattenParameter"), ("hdf5_data_param", 112, "M:HDF5DataParameter"),
        ("image_data_param", 115, "M:ImageDataParameter"),
        ("inner_product_param", 117, "M:InnerProductParameter"), ("input_param", 143, "M:InputParameter"),
        ("lrn_param", 118, "M:LRNParameter"), ("memory_data_param", 119, "M:MemoryDataParameter"),
        ("pooling_param", 121, "M:PoolingParameter"), ("power_param", 122, "M:PowerParameter"),
        ("prelu_param", 131, "M:PReLUParameter"), ("python_param", 130, "M:PythonParameter"),
        ("relu_param", 123, "M:ReLUParameter"), ("reshape_param", 133, "M:ReshapeParameter"),
        ("scale_param", 142, "M:ScaleParameter"), ("sigmoid_param", 124, "M:SigmoidParameter"),
        ("softmax_param", 125, "M:SoftmaxParameter"), ("slice_param", 126, "M:SliceParameter"),
        ("tanh_param", 127, "M:TanHParameter"), ("window_data_param", 129, "M:WindowDataParameter"),
    ], {}),
    "TransformationParameter": ([
        ("scale", 1, "float", 1), ("mirror", 2, "bool", False), ("crop_size", 3, "uint32", 0),
        ("mean_file", 4, "string"), ("mean_value", 5, "*float"), ("force_color", 6, "bool", False),
        ("force_gray", 7, "bool", False),
    ], {}),
    "BatchNormParameter": ([
        ("use_global_stats", 1, "bool"), ("moving_average_fraction", 2, "float", 0.999),
        ("eps", 3, "float", 1e-5),
    ], {}),
    "BiasParameter": ([
        ("axis", 1, "int32", 1), ("num_axes", 2, "int32", 1), ("filler", 3, "M:FillerParameter"),
    ], {}),
    "ConcatParameter": ([("axis", 2, "int32", 1), ("concat_dim", 1, "uint32", 1)], {}),
    "ConvolutionParameter": ([
        ("num_output", 1, "uint32"), ("bias_term", 2, "bool", True), ("pad", 3, "*uint32"),
        ("kernel_size", 4, "*uint32"), ("stride", 6, "*uint32"), ("dilation", 18, "*uint32"),
        ("pad_h", 9, "uint32", 0), ("pad_w", 10, "uint32", 0), ("kernel_h", 11, "uint32"),
        ("kernel_w", 12, "uint32"), ("stride_h", 13, "uint32"), ("stride_w", 14, "uint32"),
        ("group", 5, "uint32", 1), ("weight_filler", 7, "M:FillerParameter"),
        ("bias_filler", 8, "M:FillerParameter"), ("engine", 15, "E:Engine", "DEFAULT"),
        ("axis", 16, "int32", 1), ("force_nd_im2col", 17, "bool", False),
    ], {"Engine": _ENGINE}),
    "CropParameter": ([("axis", 1, "int32", 2), ("offset", 2, "*uint32")], {}),
    "DataParameter": ([
        ("source", 1, "string"), ("batch_size", 4, "uint32"), ("rand_skip", 7, "uint32", 0),
        ("backend", 8, "E:DB", "LEVELDB"), ("scale", 2, "float", 1), ("mean_file", 3, "string"),
        ("crop_size", 5, "uint32", 0), ("mirror", 6, "bool", False),
        ("force_encoded_color", 9, "bool", False), ("prefetch", 10, "uint32", 4),
    ], {"DB": {"LEVELDB": 0, "LMDB": 1}}),
    "DropoutParameter": ([("dropout_ratio", 1, "float", 0.5)], {}),
    "DummyDataParameter": ([
        ("data_filler", 1, "*M:FillerParameter"), ("shape", 6, "*M:BlobShape"), ("num", 2, "*uint32"),
        ("channels", 3, "*uint32"), ("height", 4, "*uint32"), ("width", 5, "*uint32"),
    ], {}),
    "EltwiseParameter": ([
        ("operation", 1, "E:EltwiseOp", "SUM"), ("coeff", 2, "*float"), ("stable_prod_grad", 3, "bool", True),
    ], {"EltwiseOp": {"PROD": 0, "SUM": 1, "MAX": 2}}),
    "ELUParameter": ([("alpha", 1, "float", 1)], {}),
    "FlattenParameter": ([("axis", 1, "int32", 1), ("end_axis", 2, "int32", -1)], {}),
    "HDF5DataParameter": ([
        ("source", 1, "string"), ("batch_size", 2, "uint32"), ("shuffle", 3, "bool", False),
    ], {}),
    "ImageDataParameter": ([
        ("source", 1, "string"), ("batch_size", 4, "uint32", 1), ("rand_skip", 7, "uint32", 0),
        ("shuffle", 8, "bool", False), ("new_height", 9, "uint32", 0), ("new_width", 10, "uint32", 0),
        ("is_color", 11, "bool", True), ("scale", 2, "float", 1), ("mean_file", 3, "string"),
        ("crop_size", 5, "uint32", 0), ("mirror", 6, "bool", False), ("root_folder", 12, "string", ""),
    ], {}),
    "InnerProductParameter": ([
        ("num_output", 1, "uint32"), ("bias_term", 2, "bool", True),
        ("weight_filler", 3, "M:FillerParameter"), ("bias_filler", 4, "M:FillerParameter"),
        ("axis", 5, "int32", 1), ("transpose", 6, "bool", False),
    ], {}),
    "InputParameter": ([("shape", 1, "*M:BlobShape")], {}),
    "LRNParameter": ([
        ("local_size", 1, "uint32", 5), ("alpha", 2, "float", 1), ("beta", 3, "float", 0.75),
        ("norm_region", 4, "E:NormRegion", "ACROSS_CHANNELS"), ("k", 5, "float", 1),
        ("engine", 6, "E:Engine", "DEFAULT"),
    ], {"NormRegion": {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1}, "Engine": _ENGINE}),
    "MemoryDataParameter": ([
        ("batch_size", 1, "uint32"), ("channels", 2, "uint32"), ("height", 3, "uint32"),
        ("width", 4, "uint32"),
    ], {}),
    "PoolingParameter": ([
        ("pool", 1, "E:PoolMethod", "MAX"), ("pad", 4, "uint32", 0), ("pad_h", 9, "uint32", 0),
        ("pad_w", 10, "uint32", 0), ("kernel_size", 2, "uint32"), ("kernel_h", 5, "uint32"),
        ("kernel_w", 6, "uint32"), ("stride", 3, "uint32", 1), ("stride_h", 7, "uint32"),
        ("stride_w", 8, "uint32"), ("engine", 11, "E:Engine", "DEFAULT"),
        ("global_pooling", 12, "bool", False), ("round_mode", 13, "E:RoundMode", "CEIL"),
        # `ceil_mode: false` (a fork's spelling of round_mode: FLOOR, seen in DenseNet prototxts); forks number
        # it differently, so it is read from text prototxts only, under a number no Caffe release uses.
        ("ceil_mode", 1001, "bool", True),
    ], {"PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}, "Engine": _ENGINE,
        "RoundMode": {"CEIL": 0, "FLOOR": 1}}),
    "PowerParameter": ([("power", 1, "float", 1), ("scale", 2, "float", 1), ("shift", 3, "float", 0)], {}),
    "PReLUParameter": ([("filler", 1, "M:FillerParameter"), ("channel_shared", 2, "bool", False)], {}),
    "PythonParameter": ([
        ("module", 1, "string"), ("layer", 2, "string"), ("param_str", 3, "string", ""),
        ("share_in_parallel", 4, "bool", False),
    ], {}),
    "ReLUParameter": ([("negative_slope", 1, "float", 0), ("engine", 2, "E:Engine", "DEFAULT")],
                      {"Engine": _ENGINE}),
    "ReshapeParameter": ([
        ("shape", 1, "M:BlobShape"), ("axis", 2, "int32", 0), ("num_axes", 3, "int32", -1),
    ], {}),
    "ScaleParameter": ([
        ("axis", 1, "int32", 1), ("num_axes", 2, "int32", 1), ("filler", 3, "M:FillerParameter"),
        ("bias_term", 4, "bool", False), ("bias_filler", 5, "M:FillerParameter"),
    ], {}),
    "SigmoidParameter": ([("engine", 1, "E:Engine", "DEFAULT")], {"Engine": _ENGINE}),
    "SliceParameter": ([
        ("axis", 3, "int32", 1), ("slice_point", 2, "*uint32"), ("slice_dim", 1, "uint32", 1),
    ], {}),
    "SoftmaxParameter": ([("engine", 1, "E:Engine", "DEFAULT"), ("axis", 2, "int32", 1)],
                         {"Engine": _ENGINE}),
    "TanHParameter": ([("engine", 1, "E:Engine", "DEFAULT")], {"Engine": _ENGINE}),
    "WindowDataParameter": ([
        ("source", 1, "string"), ("scale", 2, "float", 1), ("mean_file", 3, "string"),
        ("batch_size", 4, "uint32"), ("crop_size", 5, "uint32", 0), ("mirror", 6, "bool", False),
        ("fg_threshold", 7, "float", 0.5), ("bg_threshold", 8, "float", 0.5),
        ("fg_fraction", 9, "float", 0.25), ("context_pad", 10, "uint32", 0),
        ("crop_mode", 11, "string", "warp"), ("cache_images", 12, "bool", False),
        ("root_folder", 13, "string", ""),
    ], {}),
    "V1LayerParameter": ([
        ("bottom", 2, "*string"), ("top", 3, "*string"), ("name", 4, "string"),
        ("include", 32, "*M:NetStateRule"), ("exclude", 33, "*M:NetStateRule"),
        ("type", 5, "E:LayerType"), ("blobs", 6, "*M:BlobProto"), ("param", 1001, "*string"),
        ("blobs_lr", 7, "*float"), ("weight_decay", 8, "*float"), ("loss_weight", 35, "*float"),
        ("concat_param", 9, "M:ConcatParameter"), ("convolution_param", 10, "M:ConvolutionParameter"),
        ("data_param", 11, "M:DataParameter"), ("dropout_param", 12, "M:DropoutParameter"),
        ("dummy_data_param", 26, "M:DummyDataParameter"), ("eltwise_param", 24, "M:EltwiseParameter"),
        ("hdf5_data_param", 13, "M:HDF5DataParameter"), ("image_data_param", 15, "M:ImageDataParameter"),
        ("inner_product_param", 17, "M:InnerProductParameter"), ("lrn_param", 18, "M:LRNParameter"),
        ("memory_data_param", 22, "M:MemoryDataParameter"), ("pooling_param", 19, "M:PoolingParameter"),
        ("power_param", 21, "M:PowerParameter"), ("relu_param", 30, "M:ReLUParameter"),
        ("sigmoid_param", 38, "M:SigmoidParameter"), ("softmax_param", 39, "M:SoftmaxParameter"),
        ("slice_param", 31, "M:SliceParameter"), ("tanh_param", 37, "M:TanHParameter"),
        ("window_data_param", 20, "M:WindowDataParameter"),
        ("transform_param", 36, "M:TransformationParameter"), ("layer", 1, "M:V0LayerParameter"),
        (V1_UNKNOWN_TYPE_FIELD, 536870911, "string"),
    ], {"LayerType": _V1_LAYER_TYPES}),
    "V0LayerParameter": ([
        ("name", 1, "string"), ("type", 2, "string"), ("num_output", 3, "uint32"),
        ("biasterm", 4, "bool", True), ("weight_filler", 5, "M:FillerParameter"),
        ("bias_filler", 6, "M:FillerParameter"), ("pad", 7, "uint32", 0), ("kernelsize", 8, "uint32"),
        ("group", 9, "uint32", 1), ("stride", 10, "uint32", 1), ("pool", 11, "E:PoolMethod", "MAX"),
        ("dropout_ratio", 12, "float", 0.5), ("local_size", 13, "uint32", 5), ("alpha", 14, "float", 1),
        ("beta", 15, "float", 0.75), ("k", 22, "float", 1), ("source", 16, "string"),
        ("scale", 17, "float", 1), ("meanfile", 18, "string"), ("batchsize", 19, "uint32"),
        ("cropsize", 20, "uint32", 0), ("mirror", 21, "bool", False), ("blobs", 50, "*M:BlobProto"),
        ("blobs_lr", 51, "*float"), ("weight_decay", 52, "*float"), ("rand_skip", 53, "uint32", 0),
        ("det_fg_threshold", 54, "float", 0.5), ("det_bg_threshold", 55, "float", 0.5),
        ("det_fg_fraction", 56, "float", 0.25), ("det_context_pad", 58, "uint32", 0),
        ("det_crop_mode", 59, "string", "warp"), ("new_num", 60, "int32", 0),
        ("new_channels", 61, "int32", 0), ("new_height", 62, "int32", 0), ("new_width", 63, "int32", 0),
        ("shuffle_images", 64, "bool", False), ("concat_dim", 65, "uint32", 1),
    ], {"PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}}),
}

# Repeated numbers Caffe declares [packed = true], so that messages serialised with this schema match Caffe's.
_PACKED = {("BlobShape", "dim"), ("BlobProto", "data"), ("BlobProto", "diff"), ("BlobProto", "double_data"),
           ("BlobProto", "double_diff")}

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "float": _FDP.TYPE_FLOAT, "double": _FDP.TYPE_DOUBLE, "int32": _FDP.TYPE_INT32,
    "uint32": _FDP.TYPE_UINT32, "int64": _FDP.TYPE_INT64, "bool": _FDP.TYPE_BOOL,
    "string": _FDP.TYPE_STRING, "bytes": _FDP.TYPE_BYTES,
}


def _default_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _add_enum(container, name, values):
    enum = container.add(name=name)
    for value_name, number in values.items():
        enum.value.add(name=value_name, number=number)


def _file_descriptor():
    """The FileDescriptorProto of the table above."""
    file_proto = descriptor_pb2.FileDescriptorProto(name="keras_zoo_caffe.proto", package=PACKAGE,
                                                    syntax="proto2")
    for enum_name, values in _TOP_ENUMS.items():
        _add_enum(file_proto.enum_type, enum_name, values)
    for message_name, (fields, enums) in _MESSAGES.items():
        message = file_proto.message_type.add(name=message_name)
        for enum_name, values in enums.items():
            _add_enum(message.enum_type, enum_name, values)
        for name, number, type_code, *default in fields:
            field = message.field.add(name=name, number=number)
            repeated = type_code.startswith("*")
            type_code = type_code.lstrip("*")
            field.label = _FDP.LABEL_REPEATED if repeated else _FDP.LABEL_OPTIONAL
            if type_code.startswith("M:"):
                field.type = _FDP.TYPE_MESSAGE
                field.type_name = f".{PACKAGE}.{type_code[2:]}"
            elif type_code.startswith("E:"):
                enum_name = type_code[2:]
                scope = message_name + "." if enum_name in enums else ""
                field.type = _FDP.TYPE_ENUM
                field.type_name = f".{PACKAGE}.{scope}{enum_name}"
            else:
                field.type = _SCALARS[type_code]
            if default:
                field.default_value = _default_text(default[0])
            if (message_name, name) in _PACKED:
                field.options.packed = True
    return file_proto


def _build_classes():
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in _MESSAGES}


_CLASSES = _build_classes()
globals().update(_CLASSES)

#: V1 layer type enum names (e.g. 'CONVOLUTION') by number.
V1_TYPE_NAMES = {number: name for name, number in _V1_LAYER_TYPES.items()}

__all__ = ["PACKAGE", "V1_TYPE_NAMES", "V1_UNKNOWN_TYPE_FIELD", *_CLASSES]
