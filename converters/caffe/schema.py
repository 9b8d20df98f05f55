"""Protobuf schema of Caffe's file formats, built at import time from a compact table.

The table records the field names, numbers, types and defaults of every message that BVLC Caffe's
``caffe.proto`` (master; package ``caffe``, proto2) reaches from NetParameter: NetParameter with both the V1
``layers`` (field 2) and the V2 ``layer`` (field 100) lists, LayerParameter, V1LayerParameter with its enum of
layer types, the 2014 V0LayerParameter, BlobProto/BlobShape, the NetState rules, ParamSpec, FillerParameter and
every ``*_param`` message, the training-only ones (data layers, losses, accuracy, recurrent...) included.
Caffe's few ``required`` fields (ClipParameter's min and max) are optional here: a converter of such a layer
checks them itself.

It also knows, by name, the fields that the common Caffe forks add: SSD (weiliu89/caffe), Fast/Faster R-CNN
(rbgirshick/caffe-fast-rcnn), PSPNet/DeepLab (hszhao/PSPNet), SegNet (alexgkendall/caffe-segnet) and ShuffleNet
(farmingyard/ShuffleNet), plus the forks' ``pooling_param { ceil_mode }``; the fork layers without a message of
their own (ConvolutionDepthwise/DepthwiseConvolution read convolution_param; Axpy and ReLU6 have none) need
nothing here. A fork field keeps the fork's own
number, so that the binary files of that fork read it, unless the number is BVLC's for another field (or another
fork's, where one fork had to be chosen: the comments in the table say which and why); such a field is read from
text prototxts only, numbered ``_TEXT_ONLY`` + the fork's number (a range no Caffe release uses).

Text prototxts are parsed strictly against this schema (:mod:`converters.caffe.prototxt`), so a misspelled
field is an error, as in Caffe; the binary parser keeps fields it does not know as unknown fields.

Message classes are module attributes: ``NetParameter``, ``LayerParameter``, ``V1LayerParameter``,
``V0LayerParameter``, ``BlobProto``, ``BlobShape``...
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "caffe"

#: Reader-private field of V1LayerParameter: the converter rewrites a V1 ``type: NAME`` whose NAME is not a
#: value of Caffe's enum (a fork's layer, e.g. ROI_POOLING) into ``unknown_type: "NAME"`` so that it can
#: report the layer as unsupported instead of failing to parse the file. Never present in real files.
V1_UNKNOWN_TYPE_FIELD = "unknown_type"

#: Base of the numbers of fork fields read from text prototxts only (see the module docstring).
_TEXT_ONLY = 536_000_000

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
# with '*' is repeated; 'M:X' is message X, 'E:X' enum X (nested in the message, or top-level), 'E:M.X' enum X
# nested in message M. BVLC's fields come first in each message, then each fork's, after a comment naming it.
_MESSAGES = {
    "BlobShape": ([
        ("dim", 1, "*int64"),
    ], {}),
    "BlobProto": ([
        ("shape", 7, "M:BlobShape"), ("data", 5, "*float"), ("diff", 6, "*float"), ("double_data", 8, "*double"),
        ("double_diff", 9, "*double"), ("num", 1, "int32", 0), ("channels", 2, "int32", 0),
        ("height", 3, "int32", 0), ("width", 4, "int32", 0),
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
        ("phase", 1, "E:Phase"), ("min_level", 2, "int32"), ("max_level", 3, "int32"), ("stage", 4, "*string"),
        ("not_stage", 5, "*string"),
    ], {}),
    "ParamSpec": ([
        ("name", 1, "string"), ("share_mode", 2, "E:DimCheckMode"), ("lr_mult", 3, "float", 1),
        ("decay_mult", 4, "float", 1),
    ], {"DimCheckMode": {"STRICT": 0, "PERMISSIVE": 1}}),
    "LayerParameter": ([
        ("name", 1, "string"), ("type", 2, "string"), ("bottom", 3, "*string"), ("top", 4, "*string"),
        ("phase", 10, "E:Phase"), ("loss_weight", 5, "*float"), ("param", 6, "*M:ParamSpec"),
        ("blobs", 7, "*M:BlobProto"), ("propagate_down", 11, "*bool"), ("include", 8, "*M:NetStateRule"),
        ("exclude", 9, "*M:NetStateRule"), ("transform_param", 100, "M:TransformationParameter"),
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
        ("loss_param", 101, "M:LossParameter"), ("accuracy_param", 102, "M:AccuracyParameter"),
        ("argmax_param", 103, "M:ArgMaxParameter"), ("clip_param", 148, "M:ClipParameter"),
        ("contrastive_loss_param", 105, "M:ContrastiveLossParameter"), ("embed_param", 137, "M:EmbedParameter"),
        ("exp_param", 111, "M:ExpParameter"), ("hdf5_output_param", 113, "M:HDF5OutputParameter"),
        ("hinge_loss_param", 114, "M:HingeLossParameter"),
        ("infogain_loss_param", 116, "M:InfogainLossParameter"), ("log_param", 134, "M:LogParameter"),
        ("mvn_param", 120, "M:MVNParameter"), ("parameter_param", 145, "M:ParameterParameter"),
        ("recurrent_param", 146, "M:RecurrentParameter"), ("reduction_param", 136, "M:ReductionParameter"),
        ("spp_param", 132, "M:SPPParameter"), ("swish_param", 147, "M:SwishParameter"),
        ("threshold_param", 128, "M:ThresholdParameter"), ("tile_param", 138, "M:TileParameter"),
        # SSD fork (weiliu89/caffe, branch ssd): the numbers of its releases (its early development versions used
        # 145-149, which BVLC later gave to other parameters)
        ("annotated_data_param", 200, "M:AnnotatedDataParameter"),
        ("detection_evaluate_param", 205, "M:DetectionEvaluateParameter"),
        ("detection_output_param", 204, "M:DetectionOutputParameter"),
        ("multibox_loss_param", 201, "M:MultiBoxLossParameter"), ("norm_param", 206, "M:NormalizeParameter"),
        ("permute_param", 202, "M:PermuteParameter"), ("prior_box_param", 203, "M:PriorBoxParameter"),
        ("video_data_param", 207, "M:VideoDataParameter"),
        # Fast/Faster R-CNN fork (rbgirshick/caffe-fast-rcnn)
        ("roi_pooling_param", 8266711, "M:ROIPoolingParameter"),
        ("smooth_l1_loss_param", 8266712, "M:SmoothL1LossParameter"),
        # PSPNet fork (hszhao/PSPNet, as DeepLab's): its 143-148 are BVLC's input_param ... clip_param, so those
        # fields are text-only
        ("adaptive_bias_channel_param", _TEXT_ONLY + 148, "M:AdaptiveBiasChannelParameter"),
        ("bn_param", 152, "M:BNParameter"), ("bias_channel_param", 149, "M:BiasChannelParameter"),
        ("dense_crf_param", _TEXT_ONLY + 146, "M:DenseCRFParameter"),
        ("domain_transform_param", _TEXT_ONLY + 147, "M:DomainTransformParameter"),
        ("interp_param", _TEXT_ONLY + 143, "M:InterpParameter"), ("mat_read_param", 151, "M:MatReadParameter"),
        ("mat_write_param", _TEXT_ONLY + 145, "M:MatWriteParameter"),
        ("seg_accuracy_param", _TEXT_ONLY + 144, "M:SegAccuracyParameter"),
        ("unique_label_param", 150, "M:UniqueLabelParameter"),
        # SegNet fork (alexgkendall/caffe-segnet): its 137/138 are BVLC's embed/tile params, so text-only; its
        # bn_param (45) is named like PSPNet's: PSPNet's is kept. The YOLOv3 ports' one-bottom Upsample reads the
        # same upsample_param { scale = 1 } under numbers that vary from port to port (149, 150, 160...): text-only
        ("dense_image_data_param", _TEXT_ONLY + 138, "M:DenseImageDataParameter"),
        ("upsample_param", _TEXT_ONLY + 137, "M:UpsampleParameter"),
        # ShuffleNet fork (farmingyard/ShuffleNet). HolmesShuan's ChannelShuffle port numbers its
        # channel_shuffle_param 164 too: farmingyard's ShuffleChannel, the layer published ShuffleNet models use
        # (and OpenCV reads), is kept
        ("shuffle_channel_param", 164, "M:ShuffleChannelParameter"),
    ], {}),
    "TransformationParameter": ([
        ("scale", 1, "float", 1), ("mirror", 2, "bool", False), ("crop_size", 3, "uint32", 0),
        ("mean_file", 4, "string"), ("mean_value", 5, "*float"), ("force_color", 6, "bool", False),
        ("force_gray", 7, "bool", False),
        # SSD fork
        ("crop_h", 11, "uint32", 0), ("crop_w", 12, "uint32", 0), ("resize_param", 8, "M:ResizeParameter"),
        ("noise_param", 9, "M:NoiseParameter"), ("distort_param", 13, "M:DistortionParameter"),
        ("expand_param", 14, "M:ExpansionParameter"), ("emit_constraint", 10, "M:EmitConstraint"),
        # PSPNet fork: its 8-10 are SSD's (kept), so text-only
        ("scale_factors", _TEXT_ONLY + 8, "*float"), ("crop_width", _TEXT_ONLY + 9, "uint32", 0),
        ("crop_height", _TEXT_ONLY + 10, "uint32", 0),
    ], {}),
    "BatchNormParameter": ([
        ("use_global_stats", 1, "bool"), ("moving_average_fraction", 2, "float", 0.999),
        ("eps", 3, "float", 1e-05),
        # PSPNet fork
        ("update_global_stats", 4, "bool", False),
    ], {}),
    "BiasParameter": ([
        ("axis", 1, "int32", 1), ("num_axes", 2, "int32", 1), ("filler", 3, "M:FillerParameter"),
    ], {}),
    "ConcatParameter": ([
        ("axis", 2, "int32", 1), ("concat_dim", 1, "uint32", 1),
    ], {}),
    "ConvolutionParameter": ([
        ("num_output", 1, "uint32"), ("bias_term", 2, "bool", True), ("pad", 3, "*uint32"),
        ("kernel_size", 4, "*uint32"), ("stride", 6, "*uint32"), ("dilation", 18, "*uint32"),
        ("pad_h", 9, "uint32", 0), ("pad_w", 10, "uint32", 0), ("kernel_h", 11, "uint32"),
        ("kernel_w", 12, "uint32"), ("stride_h", 13, "uint32"), ("stride_w", 14, "uint32"),
        ("group", 5, "uint32", 1), ("weight_filler", 7, "M:FillerParameter"),
        ("bias_filler", 8, "M:FillerParameter"), ("engine", 15, "E:Engine", "DEFAULT"), ("axis", 16, "int32", 1),
        ("force_nd_im2col", 17, "bool", False),
    ], {"Engine": _ENGINE}),
    "CropParameter": ([
        ("axis", 1, "int32", 2), ("offset", 2, "*uint32"),
    ], {}),
    "DataParameter": ([
        ("source", 1, "string"), ("batch_size", 4, "uint32"), ("rand_skip", 7, "uint32", 0),
        ("backend", 8, "E:DB", "LEVELDB"), ("scale", 2, "float", 1), ("mean_file", 3, "string"),
        ("crop_size", 5, "uint32", 0), ("mirror", 6, "bool", False), ("force_encoded_color", 9, "bool", False),
        ("prefetch", 10, "uint32", 4),
    ], {"DB": {"LEVELDB": 0, "LMDB": 1}}),
    "DropoutParameter": ([
        ("dropout_ratio", 1, "float", 0.5),
        # Fast R-CNN fork; 2 is also SegNet's sample_weights_test: the Fast R-CNN field is kept (py-faster-rcnn's
        # ZF and VGG_CNN_M models need it)
        ("scale_train", 2, "bool", True),
        # SegNet fork: text-only (2 is Fast R-CNN's scale_train)
        ("sample_weights_test", _TEXT_ONLY + 2, "bool", False),
    ], {}),
    "DummyDataParameter": ([
        ("data_filler", 1, "*M:FillerParameter"), ("shape", 6, "*M:BlobShape"), ("num", 2, "*uint32"),
        ("channels", 3, "*uint32"), ("height", 4, "*uint32"), ("width", 5, "*uint32"),
    ], {}),
    "EltwiseParameter": ([
        ("operation", 1, "E:EltwiseOp", "SUM"), ("coeff", 2, "*float"), ("stable_prod_grad", 3, "bool", True),
    ], {"EltwiseOp": {"PROD": 0, "SUM": 1, "MAX": 2}}),
    "ELUParameter": ([
        ("alpha", 1, "float", 1),
    ], {}),
    "FlattenParameter": ([
        ("axis", 1, "int32", 1), ("end_axis", 2, "int32", -1),
    ], {}),
    "HDF5DataParameter": ([
        ("source", 1, "string"), ("batch_size", 2, "uint32"), ("shuffle", 3, "bool", False),
    ], {}),
    "ImageDataParameter": ([
        ("source", 1, "string"), ("batch_size", 4, "uint32", 1), ("rand_skip", 7, "uint32", 0),
        ("shuffle", 8, "bool", False), ("new_height", 9, "uint32", 0), ("new_width", 10, "uint32", 0),
        ("is_color", 11, "bool", True), ("scale", 2, "float", 1), ("mean_file", 3, "string"),
        ("crop_size", 5, "uint32", 0), ("mirror", 6, "bool", False), ("root_folder", 12, "string", ""),
        # PSPNet fork
        ("ignore_label", 15, "int32", 255), ("label_type", 16, "E:LabelType", "IMAGE"),
    ], {"LabelType": {"NONE": 0, "IMAGE": 1, "PIXEL": 2}}),
    "InnerProductParameter": ([
        ("num_output", 1, "uint32"), ("bias_term", 2, "bool", True), ("weight_filler", 3, "M:FillerParameter"),
        ("bias_filler", 4, "M:FillerParameter"), ("axis", 5, "int32", 1), ("transpose", 6, "bool", False),
    ], {}),
    "InputParameter": ([
        ("shape", 1, "*M:BlobShape"),
    ], {}),
    "LRNParameter": ([
        ("local_size", 1, "uint32", 5), ("alpha", 2, "float", 1), ("beta", 3, "float", 0.75),
        ("norm_region", 4, "E:NormRegion", "ACROSS_CHANNELS"), ("k", 5, "float", 1),
        ("engine", 6, "E:Engine", "DEFAULT"),
    ], {"NormRegion": {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1}, "Engine": _ENGINE}),
    "MemoryDataParameter": ([
        ("batch_size", 1, "uint32"), ("channels", 2, "uint32"), ("height", 3, "uint32"), ("width", 4, "uint32"),
    ], {}),
    "PoolingParameter": ([
        ("pool", 1, "E:PoolMethod", "MAX"), ("pad", 4, "uint32", 0), ("pad_h", 9, "uint32", 0),
        ("pad_w", 10, "uint32", 0), ("kernel_size", 2, "uint32"), ("kernel_h", 5, "uint32"),
        ("kernel_w", 6, "uint32"), ("stride", 3, "uint32", 1), ("stride_h", 7, "uint32"),
        ("stride_w", 8, "uint32"), ("engine", 11, "E:Engine", "DEFAULT"), ("global_pooling", 12, "bool", False),
        ("round_mode", 13, "E:RoundMode", "CEIL"),
        # `ceil_mode: false` (a fork's spelling of round_mode: FLOOR, seen in DenseNet and SSD prototxts); forks
        # number it differently (13 clashes with BVLC's round_mode), so it is read from text prototxts only,
        # under a number no Caffe release uses.
        ("ceil_mode", 1001, "bool", True),
    ], {"PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}, "Engine": _ENGINE,
        "RoundMode": {"CEIL": 0, "FLOOR": 1}}),
    "PowerParameter": ([
        ("power", 1, "float", 1), ("scale", 2, "float", 1), ("shift", 3, "float", 0),
    ], {}),
    "PReLUParameter": ([
        ("filler", 1, "M:FillerParameter"), ("channel_shared", 2, "bool", False),
    ], {}),
    "PythonParameter": ([
        ("module", 1, "string"), ("layer", 2, "string"), ("param_str", 3, "string", ""),
        ("share_in_parallel", 4, "bool", False),
    ], {}),
    "ReLUParameter": ([
        ("negative_slope", 1, "float", 0), ("engine", 2, "E:Engine", "DEFAULT"),
    ], {"Engine": _ENGINE}),
    "ReshapeParameter": ([
        ("shape", 1, "M:BlobShape"), ("axis", 2, "int32", 0), ("num_axes", 3, "int32", -1),
    ], {}),
    "ScaleParameter": ([
        ("axis", 1, "int32", 1), ("num_axes", 2, "int32", 1), ("filler", 3, "M:FillerParameter"),
        ("bias_term", 4, "bool", False), ("bias_filler", 5, "M:FillerParameter"),
    ], {}),
    "SigmoidParameter": ([
        ("engine", 1, "E:Engine", "DEFAULT"),
    ], {"Engine": _ENGINE}),
    "SliceParameter": ([
        ("axis", 3, "int32", 1), ("slice_point", 2, "*uint32"), ("slice_dim", 1, "uint32", 1),
    ], {}),
    "SoftmaxParameter": ([
        ("engine", 1, "E:Engine", "DEFAULT"), ("axis", 2, "int32", 1),
    ], {"Engine": _ENGINE}),
    "TanHParameter": ([
        ("engine", 1, "E:Engine", "DEFAULT"),
    ], {"Engine": _ENGINE}),
    "WindowDataParameter": ([
        ("source", 1, "string"), ("scale", 2, "float", 1), ("mean_file", 3, "string"),
        ("batch_size", 4, "uint32"), ("crop_size", 5, "uint32", 0), ("mirror", 6, "bool", False),
        ("fg_threshold", 7, "float", 0.5), ("bg_threshold", 8, "float", 0.5), ("fg_fraction", 9, "float", 0.25),
        ("context_pad", 10, "uint32", 0), ("crop_mode", 11, "string", "warp"),
        ("cache_images", 12, "bool", False), ("root_folder", 13, "string", ""),
    ], {}),
    "V1LayerParameter": ([
        ("bottom", 2, "*string"), ("top", 3, "*string"), ("name", 4, "string"),
        ("include", 32, "*M:NetStateRule"), ("exclude", 33, "*M:NetStateRule"), ("type", 5, "E:LayerType"),
        ("blobs", 6, "*M:BlobProto"), ("param", 1001, "*string"), ("blobs_lr", 7, "*float"),
        ("weight_decay", 8, "*float"), ("loss_weight", 35, "*float"), ("concat_param", 9, "M:ConcatParameter"),
        ("convolution_param", 10, "M:ConvolutionParameter"), ("data_param", 11, "M:DataParameter"),
        ("dropout_param", 12, "M:DropoutParameter"), ("dummy_data_param", 26, "M:DummyDataParameter"),
        ("eltwise_param", 24, "M:EltwiseParameter"), ("hdf5_data_param", 13, "M:HDF5DataParameter"),
        ("image_data_param", 15, "M:ImageDataParameter"), ("inner_product_param", 17, "M:InnerProductParameter"),
        ("lrn_param", 18, "M:LRNParameter"), ("memory_data_param", 22, "M:MemoryDataParameter"),
        ("pooling_param", 19, "M:PoolingParameter"), ("power_param", 21, "M:PowerParameter"),
        ("relu_param", 30, "M:ReLUParameter"), ("sigmoid_param", 38, "M:SigmoidParameter"),
        ("softmax_param", 39, "M:SoftmaxParameter"), ("slice_param", 31, "M:SliceParameter"),
        ("tanh_param", 37, "M:TanHParameter"), ("window_data_param", 20, "M:WindowDataParameter"),
        ("transform_param", 36, "M:TransformationParameter"), ("layer", 1, "M:V0LayerParameter"),
        (V1_UNKNOWN_TYPE_FIELD, 536870911, "string"), ("blob_share_mode", 1002, "*E:DimCheckMode"),
        ("accuracy_param", 27, "M:AccuracyParameter"), ("argmax_param", 23, "M:ArgMaxParameter"),
        ("contrastive_loss_param", 40, "M:ContrastiveLossParameter"), ("exp_param", 41, "M:ExpParameter"),
        ("hdf5_output_param", 14, "M:HDF5OutputParameter"), ("hinge_loss_param", 29, "M:HingeLossParameter"),
        ("infogain_loss_param", 16, "M:InfogainLossParameter"), ("mvn_param", 34, "M:MVNParameter"),
        ("threshold_param", 25, "M:ThresholdParameter"), ("loss_param", 42, "M:LossParameter"),
        # early Fast R-CNN V1 files: the V2 number
        ("roi_pooling_param", 8266711, "M:ROIPoolingParameter"),
    ], {"LayerType": _V1_LAYER_TYPES, "DimCheckMode": {"STRICT": 0, "PERMISSIVE": 1}}),
    "V0LayerParameter": ([
        ("name", 1, "string"), ("type", 2, "string"), ("num_output", 3, "uint32"), ("biasterm", 4, "bool", True),
        ("weight_filler", 5, "M:FillerParameter"), ("bias_filler", 6, "M:FillerParameter"),
        ("pad", 7, "uint32", 0), ("kernelsize", 8, "uint32"), ("group", 9, "uint32", 1),
        ("stride", 10, "uint32", 1), ("pool", 11, "E:PoolMethod", "MAX"), ("dropout_ratio", 12, "float", 0.5),
        ("local_size", 13, "uint32", 5), ("alpha", 14, "float", 1), ("beta", 15, "float", 0.75),
        ("k", 22, "float", 1), ("source", 16, "string"), ("scale", 17, "float", 1), ("meanfile", 18, "string"),
        ("batchsize", 19, "uint32"), ("cropsize", 20, "uint32", 0), ("mirror", 21, "bool", False),
        ("blobs", 50, "*M:BlobProto"), ("blobs_lr", 51, "*float"), ("weight_decay", 52, "*float"),
        ("rand_skip", 53, "uint32", 0), ("det_fg_threshold", 54, "float", 0.5),
        ("det_bg_threshold", 55, "float", 0.5), ("det_fg_fraction", 56, "float", 0.25),
        ("det_context_pad", 58, "uint32", 0), ("det_crop_mode", 59, "string", "warp"),
        ("new_num", 60, "int32", 0), ("new_channels", 61, "int32", 0), ("new_height", 62, "int32", 0),
        ("new_width", 63, "int32", 0), ("shuffle_images", 64, "bool", False), ("concat_dim", 65, "uint32", 1),
        ("hdf5_output_param", 1001, "M:HDF5OutputParameter"),
    ], {"PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}}),
    "AccuracyParameter": ([
        ("top_k", 1, "uint32", 1), ("axis", 2, "int32", 1), ("ignore_label", 3, "int32"),
    ], {}),
    "ArgMaxParameter": ([
        ("out_max_val", 1, "bool", False), ("top_k", 2, "uint32", 1), ("axis", 3, "int32"),
    ], {}),
    "ClipParameter": ([
        ("min", 1, "float"), ("max", 2, "float"),
    ], {}),
    "ContrastiveLossParameter": ([
        ("margin", 1, "float", 1), ("legacy_version", 2, "bool", False),
    ], {}),
    "EmbedParameter": ([
        ("num_output", 1, "uint32"), ("input_dim", 2, "uint32"), ("bias_term", 3, "bool", True),
        ("weight_filler", 4, "M:FillerParameter"), ("bias_filler", 5, "M:FillerParameter"),
    ], {}),
    "ExpParameter": ([
        ("base", 1, "float", -1), ("scale", 2, "float", 1), ("shift", 3, "float", 0),
    ], {}),
    "HDF5OutputParameter": ([
        ("file_name", 1, "string"),
    ], {}),
    "HingeLossParameter": ([
        ("norm", 1, "E:Norm", "L1"),
    ], {"Norm": {"L1": 1, "L2": 2}}),
    "InfogainLossParameter": ([
        ("source", 1, "string"), ("axis", 2, "int32", 1),
    ], {}),
    "LogParameter": ([
        ("base", 1, "float", -1), ("scale", 2, "float", 1), ("shift", 3, "float", 0),
    ], {}),
    "LossParameter": ([
        ("ignore_label", 1, "int32"), ("normalization", 3, "E:NormalizationMode", "VALID"),
        ("normalize", 2, "bool"),
        # SegNet fork: its 3 is BVLC's normalization, so text-only
        ("weight_by_label_freqs", _TEXT_ONLY + 3, "bool", False), ("class_weighting", 4, "*float"),
    ], {"NormalizationMode": {"FULL": 0, "VALID": 1, "BATCH_SIZE": 2, "NONE": 3}}),
    "MVNParameter": ([
        ("normalize_variance", 1, "bool", True), ("across_channels", 2, "bool", False),
        ("eps", 3, "float", 1e-09),
    ], {}),
    "ParameterParameter": ([
        ("shape", 1, "M:BlobShape"),
    ], {}),
    "RecurrentParameter": ([
        ("num_output", 1, "uint32", 0), ("weight_filler", 2, "M:FillerParameter"),
        ("bias_filler", 3, "M:FillerParameter"), ("debug_info", 4, "bool", False),
        ("expose_hidden", 5, "bool", False),
    ], {}),
    "ReductionParameter": ([
        ("operation", 1, "E:ReductionOp", "SUM"), ("axis", 2, "int32", 0), ("coeff", 3, "float", 1),
    ], {"ReductionOp": {"SUM": 1, "ASUM": 2, "SUMSQ": 3, "MEAN": 4}}),
    "SPPParameter": ([
        ("pyramid_height", 1, "uint32"), ("pool", 2, "E:PoolMethod", "MAX"), ("engine", 6, "E:Engine", "DEFAULT"),
    ], {"PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}, "Engine": _ENGINE}),
    "SwishParameter": ([
        ("beta", 1, "float", 1),
    ], {}),
    "ThresholdParameter": ([
        ("threshold", 1, "float", 0),
    ], {}),
    "TileParameter": ([
        ("axis", 1, "int32", 1), ("tiles", 2, "int32"),
    ], {}),
    # SSD fork (weiliu89/caffe, branch ssd)
    "AnnotatedDataParameter": ([
        ("batch_sampler", 1, "*M:BatchSampler"), ("label_map_file", 2, "string"),
        ("anno_type", 3, "E:AnnotatedDatum.AnnotationType"),
    ], {}),
    "DetectionEvaluateParameter": ([
        ("num_classes", 1, "uint32"), ("background_label_id", 2, "uint32", 0),
        ("overlap_threshold", 3, "float", 0.5), ("evaluate_difficult_gt", 4, "bool", True),
        ("name_size_file", 5, "string"), ("resize_param", 6, "M:ResizeParameter"),
    ], {}),
    "DetectionOutputParameter": ([
        ("num_classes", 1, "uint32"), ("share_location", 2, "bool", True), ("background_label_id", 3, "int32", 0),
        ("nms_param", 4, "M:NonMaximumSuppressionParameter"), ("save_output_param", 5, "M:SaveOutputParameter"),
        ("code_type", 6, "E:PriorBoxParameter.CodeType", "CORNER"),
        ("variance_encoded_in_target", 8, "bool", False), ("keep_top_k", 7, "int32", -1),
        ("confidence_threshold", 9, "float"), ("visualize", 10, "bool", False),
        ("visualize_threshold", 11, "float"), ("save_file", 12, "string"),
    ], {}),
    "MultiBoxLossParameter": ([
        ("loc_loss_type", 1, "E:LocLossType", "SMOOTH_L1"), ("conf_loss_type", 2, "E:ConfLossType", "SOFTMAX"),
        ("loc_weight", 3, "float", 1), ("num_classes", 4, "uint32"), ("share_location", 5, "bool", True),
        ("match_type", 6, "E:MatchType", "PER_PREDICTION"), ("overlap_threshold", 7, "float", 0.5),
        ("use_prior_for_matching", 8, "bool", True), ("background_label_id", 9, "uint32", 0),
        ("use_difficult_gt", 10, "bool", True), ("do_neg_mining", 11, "bool"), ("neg_pos_ratio", 12, "float", 3),
        ("neg_overlap", 13, "float", 0.5), ("code_type", 14, "E:PriorBoxParameter.CodeType", "CORNER"),
        ("encode_variance_in_target", 16, "bool", False), ("map_object_to_agnostic", 17, "bool", False),
        ("ignore_cross_boundary_bbox", 18, "bool", False), ("bp_inside", 19, "bool", False),
        ("mining_type", 20, "E:MiningType", "MAX_NEGATIVE"),
        ("nms_param", 21, "M:NonMaximumSuppressionParameter"), ("sample_size", 22, "int32", 64),
        ("use_prior_for_nms", 23, "bool", False),
    ], {"LocLossType": {"L2": 0, "SMOOTH_L1": 1}, "ConfLossType": {"SOFTMAX": 0, "LOGISTIC": 1},
        "MatchType": {"BIPARTITE": 0, "PER_PREDICTION": 1},
        "MiningType": {"NONE": 0, "MAX_NEGATIVE": 1, "HARD_EXAMPLE": 2}}),
    "NormalizeParameter": ([
        ("across_spatial", 1, "bool", True), ("scale_filler", 2, "M:FillerParameter"),
        ("channel_shared", 3, "bool", True), ("eps", 4, "float", 1e-10),
    ], {}),
    "PermuteParameter": ([
        ("order", 1, "*uint32"),
    ], {}),
    "PriorBoxParameter": ([
        ("min_size", 1, "*float"), ("max_size", 2, "*float"), ("aspect_ratio", 3, "*float"),
        ("flip", 4, "bool", True), ("clip", 5, "bool", False), ("variance", 6, "*float"),
        ("img_size", 7, "uint32"), ("img_h", 8, "uint32"), ("img_w", 9, "uint32"), ("step", 10, "float"),
        ("step_h", 11, "float"), ("step_w", 12, "float"), ("offset", 13, "float", 0.5),
    ], {"CodeType": {"CORNER": 1, "CENTER_SIZE": 2, "CORNER_SIZE": 3}}),
    "VideoDataParameter": ([
        ("video_type", 1, "E:VideoType", "WEBCAM"), ("device_id", 2, "int32", 0), ("video_file", 3, "string"),
        ("skip_frames", 4, "uint32", 0),
    ], {"VideoType": {"WEBCAM": 0, "VIDEO": 1}}),
    "ResizeParameter": ([
        ("prob", 1, "float", 1), ("resize_mode", 2, "E:Resize_mode", "WARP"), ("height", 3, "uint32", 0),
        ("width", 4, "uint32", 0), ("height_scale", 8, "uint32", 0), ("width_scale", 9, "uint32", 0),
        ("pad_mode", 5, "E:Pad_mode", "CONSTANT"), ("pad_value", 6, "*float"),
        ("interp_mode", 7, "*E:Interp_mode"),
    ], {"Resize_mode": {"WARP": 1, "FIT_SMALL_SIZE": 2, "FIT_LARGE_SIZE_AND_PAD": 3},
        "Pad_mode": {"CONSTANT": 1, "MIRRORED": 2, "REPEAT_NEAREST": 3},
        "Interp_mode": {"LINEAR": 1, "AREA": 2, "NEAREST": 3, "CUBIC": 4, "LANCZOS4": 5}}),
    "NoiseParameter": ([
        ("prob", 1, "float", 0), ("hist_eq", 2, "bool", False), ("inverse", 3, "bool", False),
        ("decolorize", 4, "bool", False), ("gauss_blur", 5, "bool", False), ("jpeg", 6, "float", -1),
        ("posterize", 7, "bool", False), ("erode", 8, "bool", False), ("saltpepper", 9, "bool", False),
        ("saltpepper_param", 10, "M:SaltPepperParameter"), ("clahe", 11, "bool", False),
        ("convert_to_hsv", 12, "bool", False), ("convert_to_lab", 13, "bool", False),
    ], {}),
    "DistortionParameter": ([
        ("brightness_prob", 1, "float", 0), ("brightness_delta", 2, "float", 0), ("contrast_prob", 3, "float", 0),
        ("contrast_lower", 4, "float", 0), ("contrast_upper", 5, "float", 0), ("hue_prob", 6, "float", 0),
        ("hue_delta", 7, "float", 0), ("saturation_prob", 8, "float", 0), ("saturation_lower", 9, "float", 0),
        ("saturation_upper", 10, "float", 0), ("random_order_prob", 11, "float", 0),
    ], {}),
    "ExpansionParameter": ([
        ("prob", 1, "float", 1), ("max_expand_ratio", 2, "float", 1),
    ], {}),
    "EmitConstraint": ([
        ("emit_type", 1, "E:EmitType", "CENTER"), ("emit_overlap", 2, "float"),
    ], {"EmitType": {"CENTER": 0, "MIN_OVERLAP": 1}}),
    "BatchSampler": ([
        ("use_original_image", 1, "bool", True), ("sampler", 2, "M:Sampler"),
        ("sample_constraint", 3, "M:SampleConstraint"), ("max_sample", 4, "uint32"),
        ("max_trials", 5, "uint32", 100),
    ], {}),
    "NonMaximumSuppressionParameter": ([
        ("nms_threshold", 1, "float", 0.3), ("top_k", 2, "int32"), ("eta", 3, "float", 1),
    ], {}),
    "SaveOutputParameter": ([
        ("output_directory", 1, "string"), ("output_name_prefix", 2, "string"), ("output_format", 3, "string"),
        ("label_map_file", 4, "string"), ("name_size_file", 5, "string"), ("num_test_image", 6, "uint32"),
        ("resize_param", 7, "M:ResizeParameter"),
    ], {}),
    "SaltPepperParameter": ([
        ("fraction", 1, "float", 0), ("value", 2, "*float"),
    ], {}),
    "Sampler": ([
        ("min_scale", 1, "float", 1), ("max_scale", 2, "float", 1), ("min_aspect_ratio", 3, "float", 1),
        ("max_aspect_ratio", 4, "float", 1),
    ], {}),
    "SampleConstraint": ([
        ("min_jaccard_overlap", 1, "float"), ("max_jaccard_overlap", 2, "float"),
        ("min_sample_coverage", 3, "float"), ("max_sample_coverage", 4, "float"),
        ("min_object_coverage", 5, "float"), ("max_object_coverage", 6, "float"),
    ], {}),
    # (only the enum of this dataset message, which AnnotatedDataParameter uses)
    "AnnotatedDatum": ([], {"AnnotationType": {"BBOX": 0}}),
    # Fast/Faster R-CNN fork
    "ROIPoolingParameter": ([
        ("pooled_h", 1, "uint32", 0), ("pooled_w", 2, "uint32", 0), ("spatial_scale", 3, "float", 1),
    ], {}),
    "SmoothL1LossParameter": ([
        ("sigma", 1, "float", 1),
    ], {}),
    # PSPNet fork (hszhao/PSPNet)
    "AdaptiveBiasChannelParameter": ([
        ("num_iter", 1, "int32", 1), ("bg_portion", 2, "float", 0.2), ("fg_portion", 3, "float", 0.2),
        ("suppress_others", 4, "bool", True), ("margin_others", 5, "float", 1e-05),
    ], {}),
    "BNParameter": ([
        ("slope_filler", 1, "M:FillerParameter"), ("bias_filler", 2, "M:FillerParameter"),
        ("momentum", 3, "float", 0.9), ("eps", 4, "float", 1e-05), ("frozen", 5, "bool", False),
        ("engine", 6, "E:Engine", "DEFAULT"),
        # SegNet fork's BN fields (numbers 1-3 are PSPNet's): text-only
        ("bn_mode", _TEXT_ONLY + 3, "E:BNMode", "LEARN"), ("scale_filler", _TEXT_ONLY + 1, "M:FillerParameter"),
        ("shift_filler", _TEXT_ONLY + 2, "M:FillerParameter"),
    ], {"Engine": _ENGINE, "BNMode": {"LEARN": 0, "INFERENCE": 1}}),
    "BiasChannelParameter": ([
        ("bg_bias", 1, "float", 1), ("fg_bias", 2, "float", 2), ("ignore_label", 3, "*int32"),
        ("label_type", 4, "E:LabelType", "IMAGE"), ("background_label", 6, "int32", 0),
    ], {"LabelType": {"IMAGE": 1, "PIXEL": 2}}),
    "DenseCRFParameter": ([
        ("max_iter", 1, "int32", 10), ("pos_xy_std", 2, "*float"), ("pos_w", 3, "*float"),
        ("bi_xy_std", 4, "*float"), ("bi_rgb_std", 5, "*float"), ("bi_w", 6, "*float"),
        ("output_probability", 7, "bool", True),
    ], {}),
    "DomainTransformParameter": ([
        ("num_iter", 1, "int32", 3), ("spatial_sigma", 2, "float", 50), ("range_sigma", 3, "float", 5),
        ("min_weight", 4, "float", 0),
    ], {}),
    "InterpParameter": ([
        ("height", 1, "int32", 0), ("width", 2, "int32", 0), ("zoom_factor", 3, "int32", 1),
        ("shrink_factor", 4, "int32", 1), ("pad_beg", 5, "int32", 0), ("pad_end", 6, "int32", 0),
    ], {}),
    "MatReadParameter": ([
        ("prefix", 1, "string"), ("source", 2, "string", ""), ("strip", 3, "int32", 0),
        ("batch_size", 4, "int32", 1),
    ], {}),
    "MatWriteParameter": ([
        ("prefix", 1, "string"), ("source", 2, "string", ""), ("strip", 3, "int32", 0), ("period", 4, "int32", 1),
    ], {}),
    "SegAccuracyParameter": ([
        ("metric", 1, "E:AccuracyMetric", "PixelAccuracy"), ("ignore_label", 2, "*int32"),
        ("reset", 3, "bool", True),
    ], {"AccuracyMetric": {"PixelAccuracy": 0, "ClassAccuracy": 1, "PixelIOU": 2}}),
    "UniqueLabelParameter": ([
        ("max_labels", 1, "int32"), ("ignore_label", 2, "*int32"), ("force_label", 3, "*float"),
    ], {}),
    # SegNet fork (alexgkendall/caffe-segnet)
    "UpsampleParameter": ([
        ("scale", 1, "uint32", 2), ("scale_h", 2, "uint32"), ("scale_w", 3, "uint32"),
        ("pad_out_h", 4, "bool", False), ("pad_out_w", 5, "bool", False), ("upsample_h", 6, "uint32"),
        ("upsample_w", 7, "uint32"),
    ], {}),
    "DenseImageDataParameter": ([
        ("source", 1, "string"), ("batch_size", 2, "uint32"), ("rand_skip", 3, "uint32", 0),
        ("shuffle", 4, "bool", False), ("new_height", 5, "uint32", 0), ("new_width", 6, "uint32", 0),
        ("is_color", 7, "bool", True), ("mean_file", 8, "string"), ("root_folder", 9, "string", ""),
        ("mirror", 10, "bool", False), ("crop_width", 11, "uint32", 0), ("crop_height", 12, "uint32", 0),
    ], {}),
    # ShuffleNet fork (farmingyard/ShuffleNet)
    "ShuffleChannelParameter": ([
        ("group", 1, "uint32", 1),
    ], {}),
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
    file_proto = descriptor_pb2.FileDescriptorProto(name="converters_caffe.proto", package=PACKAGE,
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
