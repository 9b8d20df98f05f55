"""Both int8 forms of real weights against float32: ONNX Runtime's U8S8 QDQ (export.onnx.quantize_int8) and LiteRT's
full integer (export.tflite.convert_tflite(quantization='int8')), and LiteRT's int16x8 (int16 activations).

Classifiers: the real CIFAR-10 caffemodels of ../shared/fixtures/small_caffemodels on crops of the bundled photos
(keras_zoo.images.sample_photos): each photo is cut in two halves along its longer side; calibration crops come
from the first halves, evaluation crops from the second, so no pixel is in both. The real MTCNN nets of
../shared/fixtures/mtcnn on scikit-image's LFW subset (faces and not), its even images calibrating, its odd ones
scored. Super-resolution: the real models of ../shared/fixtures/real_small, fed and scored as
tests/keras_zoo/test_real_super_resolution.py does (its authors' protocols), calibrated on Y crops of the bundled
photos that test does not score. Structure: the int8
graphs of GoogLeNet and ResNet-50 (random weights) run every convolution, pooling, addition and concatenation on
int8 tensors. The measured figures are printed (pytest -s) and are in the assertion messages.
"""

import collections
import pathlib

import keras
import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from ai_edge_litert import schema_py_generated as schema
from skimage import data as skimage_photos

import keras_zoo
from export import onnx as onnx_export
from export import tflite
from export.runners import OnnxRunner, TFLiteRunner
from keras_zoo.images import resize, sample_photos
from keras_zoo.preprocessing import Preprocessing
from tests.helpers import assert_close_rel, fixture_path
from tests.keras_zoo import test_real_super_resolution as sr

CIFAR = {"cifar10_quick": ("small_caffemodels/cifar10_quick_v1/cifar10_quick_v1_deploy.prototxt",
                           "small_caffemodels/cifar10_quick_v1/cifar10_quick_iter_5000.caffemodel"),
         "cifar10_full": ("small_caffemodels/cifar10_full/cifar10_full.prototxt",
                          "small_caffemodels/cifar10_full/cifar10_full_iter_70000.caffemodel")}
EVALUATION, CALIBRATION = 400, 256
# Top-1 agreement with float32 over the 400 evaluation crops. Measured (weights rounded by export.rounding): ONNX
# Runtime (7-bit weights) 95.75% (quick), 98.25% (full); LiteRT 95.25%, 96.5% (rounded to nearest: 95.25%, 96.5%;
# 93.5%, 96.0%). These nets sit at the noise floor on photo crops: float32 itself changes
# 0.5% of its answers when the inputs are rounded to integers and 1-2% with Gaussian noise of one grey level, and
# CIFAR-10 quick's conv3 output alone, in 8 bits, changes 5% (every other tensor and the weights float). Every int8
# disagreement is a near tie of float32's two best classes.
# LiteRT's int16x8 (the same rounded int8 weights, int16 activations): 99.75% for both nets.
AGREEMENT = {"onnxruntime": 0.93, "litert": 0.93, "litert int16x8": 0.99}
NEAR_TIE = 0.15  # the largest gap between float32's two best probabilities where int8 may pick the other


def photo_crops(size, count, part, seed):
    """``count`` float32 RGB crops (size x size) of the bundled photos: squares of 30-100% of the shorter side of
    each photo's first (``part='calibration'``) or second half, at random places, half of them mirrored."""
    rng = np.random.default_rng(seed)
    halves = []
    for _, photo in sample_photos():
        height, width = photo.shape[:2]
        first, second = (photo[:height // 2], photo[height // 2:]) if height >= width else \
            (photo[:, :width // 2], photo[:, width // 2:])
        halves.append(first if part == "calibration" else second)
    crops = []
    for index in range(count):
        half = halves[index % len(halves)]
        side = int(rng.uniform(0.3, 1.0) * min(half.shape[:2]))
        top, left = rng.integers(0, half.shape[0] - side + 1), rng.integers(0, half.shape[1] - side + 1)
        crop = half[top:top + side, left:left + side]
        crops.append(resize(crop[:, ::-1] if rng.random() < 0.5 else crop, (size, size)))
    return np.stack(crops).astype(np.float32)


def int8_outputs(model, calibration, images, tmp_path, *, batch=8):
    """{form: float32 outputs of ``images``}: the ONNX Runtime and LiteRT int8 forms of ``model`` and LiteRT's int16x8
    (int16 activations), calibrated on ``calibration``."""
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    onnx_export.write_onnx(onnx_export.convert_onnx(model), fp32)
    onnx_export.quantize_int8(fp32, int8, calibration)
    content = tflite.convert_tflite(model, quantization="int8", representative=calibration, batch=batch)
    wide = tflite.convert_tflite(model, quantization="int16x8", representative=calibration, batch=batch)
    outputs = {"onnxruntime": OnnxRunner(int8, batch=batch)(images)[0],
               "litert": TFLiteRunner(content)(images)[0], "litert int16x8": TFLiteRunner(wide)(images)[0]}
    return {form: np.asarray(y, np.float64) for form, y in outputs.items()}


# ------------------------------------------------------------------------------------------- CIFAR-10
@pytest.mark.parametrize("net", list(CIFAR))
def test_int8_forms_of_real_cifar10_nets_agree_with_float_on_photos(net, tmp_path):
    prototxt, caffemodel = CIFAR[net]
    model = keras_zoo.from_caffe(fixture_path(prototxt), fixture_path(caffemodel),
                                 preprocessing=Preprocessing(flip_channels=True, mean=[114.0, 122.0, 125.0]))
    evaluation = photo_crops(32, EVALUATION, "evaluation", seed=1)
    calibration = photo_crops(32, CALIBRATION, "calibration", seed=2)
    expected = model.predict(evaluation, verbose=0).astype(np.float64)
    assert len(set(expected.argmax(-1))) >= 6  # the crops reach most classes
    outputs = int8_outputs(model, calibration, evaluation, tmp_path)
    best_two = np.sort(expected, axis=-1)[:, -2:]
    for form, got in outputs.items():
        flipped = got.argmax(-1) != expected.argmax(-1)
        gaps = best_two[flipped, 1] - best_two[flipped, 0]
        text = (f"{net} {form}: top-1 agreement {1 - flipped.mean():.2%} over {EVALUATION} crops; float32's gap "
                f"between its two best classes where they differ: {np.round(np.sort(gaps)[::-1][:5], 3)}")
        print(text)
        assert 1 - flipped.mean() >= AGREEMENT[form], text
        assert (gaps < NEAR_TIE).all(), text


# ---------------------------------------------------------------------------------------------- MTCNN
# The real MTCNN caffemodels (face / not a face, ../shared/fixtures/mtcnn) on scikit-image's LFW subset: 100 faces of
# Labeled Faces in the Wild and 100 patches of other photos, 25 x 25 grey. Its authors' protocol: (x - 127.5) / 128,
# RGB, the image transposed (their MATLAB code fed column-major arrays); so fed, float32 is right on all 200, and
# on 53-70% untransposed. Even images calibrate (with crops of the bundled photos), odd ones and their mirror
# images are scored. Measured: ONNX Runtime 100% for all three nets; LiteRT 100% (RNet, ONet) and 99.5% (PNet: one
# image, float32's face probability 0.504); LiteRT's int16x8 100%.
MTCNN = {"pnet": ("mtcnn/det1.prototxt", "mtcnn/det1.caffemodel", 12),
         "rnet": ("mtcnn/det2.prototxt", "mtcnn/det2.caffemodel", 24),
         "onet": ("mtcnn/det3.prototxt", "mtcnn/det3.caffemodel", 48)}


def lfw_faces(size, indices):
    """The LFW subset's images ``indices`` (0-99 faces, 100-199 not), at ``size`` x ``size``, grey in three channels
    (0-255), transposed as MTCNN's authors fed them."""
    grey = skimage_photos.lfw_subset()[indices, ..., None].astype(np.float32) * 255
    return np.stack([np.repeat(resize(image, (size, size)), 3, axis=-1) for image in grey]).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("net", list(MTCNN))
def test_int8_forms_of_real_mtcnn_nets_agree_with_float_on_faces(net, tmp_path):
    prototxt, caffemodel, size = MTCNN[net]
    model = keras_zoo.from_caffe(fixture_path(prototxt), fixture_path(caffemodel),
                                 preprocessing=Preprocessing(mean=[127.5] * 3, scale=1 / 128))
    classifier = keras.Model(model.inputs[0], model.outputs[model.output_names.index("prob1")])
    scored = np.arange(1, 200, 2)
    images = lfw_faces(size, scored)
    mirrored = images[:, ::-1]  # axis 1 is the photo's width once transposed
    images = np.ascontiguousarray(np.concatenate([images, mirrored]), dtype=np.float32)
    calibration = np.concatenate([lfw_faces(size, np.arange(0, 200, 2)),
                                  photo_crops(size, 156, "calibration", seed=2).transpose(0, 2, 1, 3)])
    expected = classifier.predict(images, verbose=0).reshape(len(images), 2).astype(np.float64)
    faces = np.tile(scored < 100, 2)
    assert (expected.argmax(-1) == faces).all(), "float32 misjudges LFW: the authors' protocol is not followed"
    outputs = int8_outputs(classifier, np.ascontiguousarray(calibration, dtype=np.float32), images, tmp_path)
    for form, got in outputs.items():
        flipped = got.reshape(len(images), 2).argmax(-1) != expected.argmax(-1)
        gaps = np.abs(expected[flipped, 1] - expected[flipped, 0])
        text = (f"MTCNN {net} {form}: face / not a face agreement {1 - flipped.mean():.2%} over {len(images)} LFW "
                f"images; float32's gap between the two where they differ: {np.round(gaps, 3)}")
        print(text)
        assert 1 - flipped.mean() >= 0.99, text
        assert (gaps < NEAR_TIE).all(), text


# On a CPU without VNNI (AVX2, say) ONNX Runtime's kernels add two uint8 x int8 products in 16 bits: full 8-bit
# weights overflow there (measured on an AMD EPYC with AVX2: the CIFAR-10 nets' int8 kernels agreed with the QDQ
# graph on 78-85% of the crops, probabilities apart by up to 0.8). Measured with 7-bit weights: every top-1 the
# same, probabilities apart by at most 0.02 (requantization's rounding).
KERNELS_VS_GRAPH = 0.05


@pytest.mark.parametrize("net", list(CIFAR))
@pytest.mark.parametrize("target", onnx_export.INT8_TARGETS)
def test_onnxruntime_int8_kernels_compute_what_the_qdq_graph_means(net, target, tmp_path):
    """ONNX Runtime's int8 kernels on this CPU give what the CPU form's QDQ graph means (its operators one by one
    in float): its weights keep to 7 bits, so no CPU overflows. TensorRT's form keeps 8-bit weights (TensorRT sums
    in 32 bits) and export_onnx_int8 verifies it as written, as TensorRT computes it."""
    prototxt, caffemodel = CIFAR[net]
    model = keras_zoo.from_caffe(fixture_path(prototxt), fixture_path(caffemodel),
                                 preprocessing=Preprocessing(flip_channels=True, mean=[114.0, 122.0, 125.0]))
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    onnx_export.write_onnx(onnx_export.convert_onnx(model), fp32)
    calibration, images = photo_crops(32, 64, "calibration", seed=2), photo_crops(32, 200, "evaluation", seed=1)
    if target == "tensorrt":
        result = onnx_export.export_onnx_int8(fp32, int8, samples=images, calibration=calibration,
                                              reference=[model.predict(images, verbose=0)], target=target)
        assert result.passed
    else:
        onnx_export.quantize_int8(fp32, int8, calibration, target=target)
    weights = [numpy_helper.to_array(tensor) for tensor in onnx.load(str(int8)).graph.initializer
               if tensor.data_type == onnx.TensorProto.INT8 and len(tensor.dims) > 1]
    assert weights and max(np.abs(w.astype(np.int32)).max() for w in weights) == (64 if target == "onnxruntime"
                                                                                  else 127)
    if target == "onnxruntime":
        got, meant = OnnxRunner(int8)(images)[0], OnnxRunner(int8, optimize=False)(images)[0]
        assert (got.argmax(-1) == meant.argmax(-1)).mean() >= 0.99
        assert np.abs(got - meant).max() <= KERNELS_VS_GRAPH


# ------------------------------------------------------------------------------------- super-resolution
def caffe_net(prototxt, caffemodel, output):
    def build(size):
        model = sr.caffe_model(prototxt, caffemodel, size)
        return keras.Model(model.inputs[0], model.outputs[model.output_names.index(output)])
    return build


def lapsrn(scale):
    return lambda size: keras_zoo.from_matconvnet(fixture_path(f"{sr.REAL}lapsrn/LapSRN_x{scale}.mat"),
                                                  input_shape=size)


def mslapsrn(scale):
    """MS-LapSRN's path from its x``scale`` input to its x``scale`` output (the weights shared by every scale)."""
    return lambda size: keras_zoo.from_matconvnet(fixture_path(f"{sr.REAL}mslapsrn/MSLapSRN_D5R2.mat"),
                                                  input_shape={f"x{scale}SR_LR": size},
                                                  outputs=[f"x{scale}SR_{scale}x_output"])


def idn(scale):
    return caffe_net(f"idn/IDN_x{scale}_deploy.prototxt", f"idn/IDN_x{scale}.caffemodel", "upsample")


# name: (builder of the input size, scale, what goes in: 'lr' or 'bicubic', transposed, scores)
SUPER_RESOLUTION = {
    "VDSR": (caffe_net("vdsr/VDSR_net_deploy.prototxt", "vdsr/VDSR_Adam.caffemodel", "sum"), 3, "bicubic", True,
             sr.vdsr_scores),
    **{f"IDN x{scale}": (idn(scale), scale, "lr", False, sr.idn_scores) for scale in (2, 3, 4)},
    "FSRCNN": (caffe_net("fsrcnn/FSRCNN_mat.prototxt", "fsrcnn/snapshot_iter_2546000.caffemodel", "deconv"), 3, "lr",
               True, sr.fsrcnn_scores),
    **{f"LapSRN x{scale}": (lapsrn(scale), scale, "lr", False, sr.lapsrn_scores) for scale in (2, 4)},
    **{f"MS-LapSRN x{scale}": (mslapsrn(scale), scale, "lr", False, sr.lapsrn_scores) for scale in (2, 4, 8)},
}
# Share of float32's mean PSNR gain over bicubic that int8 keeps, per form. Measured (ONNX Runtime's 7-bit weights,
# LiteRT): VDSR 95%, 95%; IDN x2 95%, 96%; x3 96%, 95%; x4 97%, 99%; LapSRN x2 91%, 90%; x4 95%, 97%; MS-LapSRN x2
# 90%, 88%; x4 87%, 95%; x8 95%, 100% (its shared convolutions are not equalized); FSRCNN 76%, 74%. Without
# equalizing the channels (export.equalization): IDN x2 93%, 95%; LapSRN x2 89%, 89%; x4 94%, 95%; FSRCNN 63%, 64%.
# Before export.rounding, fuse_prelu and the float image path (export.onnx.image_path): LapSRN x2 76% in ONNX
# Runtime's form (its upsampling of the input image in int8 cost 12 points); FSRCNN worse than bicubic there (-74%)
# and 49% in LiteRT. FSRCNN maps the LR image to the HR image itself (the others predict a residual added to the
# image in float), so int8's error lands in the picture: with every weight and tensor float but one, each of its 17
# int8 tensors costs up to 9 points (conv7's output; 4 once equalized, in a NumPy model of the rounding), and they
# add up. LiteRT's int16x8 (int16 activations): 94-101%, FSRCNN 95%; MS-LapSRN's was worse than bicubic (-76% to -401%)
# before export.tflite.rescale_shared_biases (its recursions call each convolution twice).
KEPT = {name: (0.7, 0.7, 0.9) if name == "FSRCNN" else (0.8, 0.8, 0.9) for name in SUPER_RESOLUTION}
FORMS = ("onnxruntime", "litert", "litert int16x8")


def y_crops():
    """The 128 x 128 Y crops test_real_super_resolution scores, and 16 calibration crops of the other photos."""
    scored = {name: sr.rgb_to_y(getattr(skimage_photos, name)())[top:top + sr.CROP, left:left + sr.CROP]
              for name, (top, left) in sr.PHOTOS.items()}
    others = [sr.rgb_to_y(photo.astype(np.uint8)) for name, photo in sample_photos() if name not in sr.PHOTOS]
    rng = np.random.default_rng(3)
    calibration = {}
    for index in range(16):
        photo = others[index % len(others)]
        top, left = (rng.integers(0, extent - sr.CROP + 1) for extent in photo.shape[:2])
        calibration[index] = photo[top:top + sr.CROP, left:left + sr.CROP]
    return scored, calibration


@pytest.mark.parametrize("name", list(SUPER_RESOLUTION))
def test_int8_super_resolution_keeps_its_gain_over_bicubic(name, tmp_path):
    build, scale, feed, transposed, scores = SUPER_RESOLUTION[name]
    scored, calibration = y_crops()
    data, calibration_data = sr.cases(scored, scale), sr.cases(calibration, scale)

    def inputs(cases):
        return sr.batch([bic if feed == "bicubic" else lr for _, lr, bic in cases.values()],
                        transpose=transposed).astype(np.float32)

    images = inputs(data)
    model = build(images.shape[1:3])
    expected = model.predict(images, verbose=0).astype(np.float64)
    gain, _, _ = sr.report(f"{name} float32", scale, scores(expected, data, scale))
    outputs = int8_outputs(model, inputs(calibration_data), images, tmp_path, batch=len(images))
    texts = {}
    for form, got in outputs.items():
        kept, _, text = sr.report(f"{name} int8 {form}", scale, scores(got, data, scale))
        texts[form] = (kept, text + f"; keeps {kept / gain:.0%} of float32's gain {gain:+.3f} dB")
        print(texts[form][1])
    for form, (kept, text) in texts.items():
        assert kept >= KEPT[name][FORMS.index(form)] * gain, text


@pytest.mark.parametrize("form", FORMS)
def test_int8_exporters_judge_a_picture_on_psnr(form, tmp_path):
    """The exporters check and write FSRCNN's integer forms (its output a picture, no classes: judged on PSNR against
    the Keras output, 40-46 dB here) and report the figure."""
    build, scale, _, transposed, _ = SUPER_RESOLUTION["FSRCNN"]
    scored, calibration = y_crops()
    images, calibration = (sr.batch([lr for _, lr, _ in sr.cases(crops, scale).values()], transpose=transposed)
                           .astype(np.float32) for crops in (scored, calibration))
    model = build(images.shape[1:3])
    reference = [model.predict(images, verbose=0)]
    if form == "onnxruntime":
        fp32 = tmp_path / "fsrcnn.onnx"
        onnx_export.write_onnx(onnx_export.convert_onnx(model), fp32)
        result = onnx_export.export_onnx_int8(fp32, tmp_path / "fsrcnn.int8.onnx", samples=images,
                                              reference=reference, calibration=calibration)
    else:
        result = tflite.export_tflite(model, tmp_path / "fsrcnn.tflite", samples=images, reference=reference,
                                      quantization="int8" if form == "litert" else "int16x8",
                                      representative=calibration, batch=len(images))
    print(f"FSRCNN {form}: PSNR {result.errors['psnr_db']:.1f} dB against float32")
    assert result.passed, result.failures
    assert result.errors["top1_agreement"] is None and result.errors["psnr_db"] >= 38, result.errors
    assert pathlib.Path(result.artifact).is_file() and "PSNR" in result.table()


# -------------------------------------------------------------------------------- int8 from end to end
def onnxruntime_kernels(path, tmp_path):
    """{operator: count} of the graph ONNX Runtime runs for ``path`` (after its optimizations and QDQ fusions)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL  # as the runners
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return collections.Counter(node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)


def litert_kernels(content):
    """{(operator, type of its first input): count} of a .tflite flatbuffer."""
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    types = {value: key for key, value in vars(schema.TensorType).items() if not key.startswith("_")}
    model = schema.Model.GetRootAsModel(content, 0)
    graph = model.Subgraphs(0)
    kernels = collections.Counter()
    for index in range(graph.OperatorsLength()):
        operator = graph.Operators(index)
        code = model.OperatorCodes(operator.OpcodeIndex())
        kernels[names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())],
                types[graph.Tensors(operator.Inputs(0)).Type()]] += 1
    return kernels


# What stays float. ONNX Runtime: the LRN as export.onnx.fuse_lrn writes it, the logits' Gemm and the Softmax, the RGB
# preprocessing before the first convolution (flip to BGR, subtract the mean), and the moves in and out of int8.
ORT_FLOAT_LRN = {"Pow", "Mul", "MatMul", "Add", "Sqrt", "Div"}
ORT_FLOAT = {"Gemm", "Softmax", "Gather", "Sub", "Transpose", "Reshape", "QuantizeLinear", "DequantizeLinear"}
# LiteRT: the LRN's squares, power and division, the softmax and the QUANTIZE of the float input.
LITERT_FLOAT_LRN = {"SQUARE", "POW", "DIV"}
LITERT_FLOAT = {"SOFTMAX", "QUANTIZE"}


@pytest.mark.parametrize("name,lrn", [("googlenet", 2), ("resnet-50", 0)])
def test_classifiers_run_int8_from_end_to_end(name, lrn, tmp_path):
    """Every convolution, pooling, addition, concatenation and the classifier of GoogLeNet and ResNet-50 (random
    weights, folded) run on int8 tensors in both forms; only GoogLeNet's two LRNs (for ONNX Runtime rewritten by
    fuse_lrn, which computes what the spelled-out form does), the softmax head (ONNX Runtime: the logits' Gemm too)
    and ONNX Runtime's float RGB preprocessing before the first convolution stay float."""
    keras.utils.set_random_seed(0)  # the same random weights whichever tests ran before in this process
    model = keras_zoo.models.get_model(name, weights=None, fold_batchnorm=True)
    calibration = photo_crops(224, 8, "calibration", seed=4)
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    onnx_export.write_onnx(onnx_export.convert_onnx(model), fp32)
    fused = onnx.load(str(fp32))
    assert len(onnx_export.fuse_lrn(fused)) == 7 * lrn  # each: squares, sums, + bias, two roots, power, divide
    onnx.save(fused, str(tmp_path / "fused.onnx"))
    photos = photo_crops(224, 2, "evaluation", seed=5)
    assert_close_rel(OnnxRunner(tmp_path / "fused.onnx")(photos)[0], OnnxRunner(fp32)(photos)[0], tol=1e-5)
    onnx_export.quantize_int8(fp32, int8, calibration)
    float_convolutions = collections.Counter(node.op_type for node in onnx.load(str(fp32)).graph.node)["Conv"]
    kernels = onnxruntime_kernels(int8, tmp_path)
    assert kernels["QLinearConv"] == float_convolutions and kernels["Conv"] == 0, kernels
    allowed = ORT_FLOAT | (ORT_FLOAT_LRN if lrn else set())
    floats = {op for op in kernels if not op.startswith(("QLinear", "Nhwc", "QGemm")) and op not in allowed}
    assert not floats, f"{name}: float operators {floats} in {dict(kernels)}"
    assert kernels["QuantizeLinear"] <= 1 + 2 * lrn, kernels  # into int8 once, and after each LRN

    lite = litert_kernels(tflite.convert_tflite(model, quantization="int8", representative=calibration))
    allowed = LITERT_FLOAT | (LITERT_FLOAT_LRN if lrn else set())
    floats = {op for (op, dtype) in lite if dtype == "FLOAT32" and op not in allowed}
    assert not floats, f"{name}: float LiteRT operators {floats} in {dict(lite)}"
    assert lite["CONV_2D", "INT8"] == float_convolutions and lite["FULLY_CONNECTED", "INT8"] == 1, lite
    assert sum(count for (op, _), count in lite.items() if op == "QUANTIZE") <= 1 + 2 * lrn, lite
