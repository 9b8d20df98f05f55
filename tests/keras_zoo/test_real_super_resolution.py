"""Real third-party super-resolution models (../shared/fixtures/real_small, see its PROVENANCE.md) super-resolve real
photos better than bicubic, converted by keras_zoo and fed as their authors' test code feeds them.

LapSRN x2/x4 and MS-LapSRN are MatConvNet DagNNs ending in a custom training loss (dagnn.vllab_dag_loss, dropped);
VDSR, IDN x2/x3/x4 and FSRCNN are caffemodels with their deploy prototxts. The protocol is PROVENANCE.md's: the Y
channel of MATLAB's rgb2ycbcr in [0, 1] (a grey photo is its own Y, as the authors' code skips rgb2ycbcr for one
channel), the HR crop modcropped to a multiple of the scale, the LR made by MATLAB's imresize(HR, 1/s, 'bicubic')
(antialiased; :func:`matlab_imresize` is a NumPy transcription of MATLAB's imresize contributions: cubic kernel
a = -0.5, kernel widened by 1/s when shrinking, symmetric borders, weights normalised; measured once against
MATLAB's own uint8 results of imresize(baboon, 1/2, 1/3, 1/4, 2, 3, 'bicubic') published in
xinntao/matlab_functions_verification: every pixel equal), PSNR on uint8-quantised Y
(peak 255) after each author's alignment and border shave. Since rgb2ycbcr is affine and imresize linear with
weights summing to 1, resizing the RGB image and then taking Y (the authors' order) equals resizing Y.

Crops are 128 x 128 (126 for x3) at PROVENANCE's calibration corners, so each model runs in seconds; the dB numbers
are printed (pytest -s) and are in the assertion messages. Exactness is checked separately on small inputs: the
.mat models against a NumPy DagNN interpreter (MatConvNet's vl_nnconv / vl_nnconvt / leaky ReLU / Sum), the
caffemodels against OpenCV's DNN module.
"""

import math
import re
import zipfile

import cv2
import h5py
import keras
import numpy as np
import pytest
from skimage import data as photos

import keras_zoo
from converters.matfile import load_mat
from tests.converters.test_matconvnet import mcn_conv, mcn_convt
from tests.helpers import assert_close_rel, fixture_path

REAL = "real_small/"
PHOTOS = {"camera": (60, 150), "astronaut": (20, 140), "coffee": (60, 160), "chelsea": (40, 120)}  # crop corners
CROP = 128


# ------------------------------------------------------------------------- the authors' MATLAB in NumPy
def matlab_cubic(x):
    """imresize's cubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    return ((1.5 * ax ** 3 - 2.5 * ax ** 2 + 1) * (ax <= 1)
            + (-0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def matlab_contributions(in_length, out_length, scale, kernel_width=4.0):
    """imresize's contributions(): (weights, 0-based indices), each (out_length, taps)."""
    if scale < 1:  # antialiasing: the kernel stretched by 1/scale
        def kernel(x):
            return scale * matlab_cubic(scale * x)
        kernel_width = kernel_width / scale
    else:
        kernel = matlab_cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])  # symmetric padding
    indices = mirror[np.mod(indices - 1, len(mirror)).astype(int)]
    used = np.any(weights != 0, axis=0)
    return weights[:, used], indices[:, used] - 1


def matlab_imresize(image, scale):
    """MATLAB's imresize(image, scale, 'bicubic') of a 2-D double image (antialiased when shrinking)."""
    out = np.asarray(image, np.float64)
    for axis in (0, 1):  # MATLAB resizes dimension 1 first for equal scales
        length = out.shape[axis]
        weights, indices = matlab_contributions(length, int(math.ceil(length * scale - 1e-9)), scale)
        moved = np.moveaxis(out, axis, 0)
        out = np.moveaxis(np.einsum("ok,ok...->o...", weights, moved[indices]), 0, axis)
    return out


def rgb_to_y(rgb):
    """MATLAB rgb2ycbcr's Y of a uint8 RGB image, in [0, 1] (16..235 / 255); a grey image is its own Y."""
    rgb = np.asarray(rgb, np.float64) / 255.0
    if rgb.ndim == 2:
        return rgb
    return (16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def modcrop(image, scale):
    height, width = image.shape[:2]
    return image[:height - height % scale, :width - width % scale]


def quantize(y):
    """im2uint8: round (halves up) and saturate."""
    return np.clip(np.floor(np.asarray(y, np.float64) * 255.0 + 0.5), 0, 255)


def psnr(a, b):
    mse = np.mean((quantize(a) - quantize(b)) ** 2)
    return 10 * math.log10(255.0 ** 2 / mse)


def shave(image, border):
    return image[border:image.shape[0] - border, border:image.shape[1] - border]


# ------------------------------------------------------------------------------------------ the photos
@pytest.fixture(scope="module")
def crops():
    """{photo: 128 x 128 Y crop in [0, 1]} of skimage's camera, astronaut, coffee and chelsea."""
    result = {}
    for name, (top, left) in PHOTOS.items():
        result[name] = rgb_to_y(getattr(photos, name)())[top:top + CROP, left:left + CROP]
    return result


def cases(crops, scale):
    """{photo: (HR Y, LR Y, bicubic Y)} with HR modcropped, LR = imresize(HR, 1/s), bicubic = imresize(LR, s)."""
    result = {}
    for name, image in crops.items():
        hr = modcrop(image, scale)
        lr = matlab_imresize(hr, 1 / scale)
        result[name] = (hr, lr, matlab_imresize(lr, scale))
    return result


def predict(model, *inputs):
    outputs = model([np.asarray(x, np.float32) for x in inputs] if len(inputs) > 1 else
                    np.asarray(inputs[0], np.float32), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [keras.ops.convert_to_numpy(y).astype(np.float64) for y in outputs]


def batch(images, transpose=False):
    """(N, H, W, 1) of same-sized 2-D images (transposed: as matcaffe hands MATLAB's W x H arrays to Caffe)."""
    return np.stack([image.T if transpose else image for image in images])[..., None]


def report(model_name, scale, scores):
    """Print the dB numbers; the mean gain and the per-photo gains (model - bicubic)."""
    gains = {name: ours - bicubic for name, (ours, bicubic) in scores.items()}
    mean = float(np.mean(list(gains.values())))
    table = ", ".join(f"{name} {ours:.2f} vs {bicubic:.2f} ({gains[name]:+.2f})"
                      for name, (ours, bicubic) in scores.items())
    text = f"{model_name} x{scale}: mean gain {mean:+.3f} dB over bicubic; {table}"
    print(text)
    return mean, gains, text


def assert_beats_bicubic(model_name, scale, scores, threshold):
    mean, gains, text = report(model_name, scale, scores)
    assert mean >= threshold, text
    assert all(gain > 0 for gain in gains.values()), text


# Each author's comparison: {photo: (PSNR of the model's HR Y, PSNR of bicubic)} from the model's output batch
# (N, H, W, 1) and cases(); the int8 tests (tests/export/test_int8_real.py) use them too.
def lapsrn_scores(sr, data, scale):
    """SR_LapSRN.m / SR_MSLapSRN.m: the output is the HR Y; PSNR after shave_bd(scale)."""
    return {name: (psnr(shave(sr[i, ..., 0], scale), shave(hr, scale)), psnr(shave(bic, scale), shave(hr, scale)))
            for i, (name, (hr, _, bic)) in enumerate(data.items())}


def vdsr_scores(sr, data, scale):
    """Demo_SR_Conv.m: the output is the transposed HR Y; PSNR after shaving round(scale)."""
    return {name: (psnr(shave(sr[i, ..., 0].T, scale), shave(hr, scale)), psnr(shave(bic, scale), shave(hr, scale)))
            for i, (name, (hr, _, bic)) in enumerate(data.items())}


def idn_scores(residual, data, scale):
    """test_IDN.m: 'upsample' (s(H-1)+1 rows) plus bicubic(s:end, s:end) is the HR Y, whose im_h(2:end-s, 2:end-s)
    is compared with gt(s+1:end-s, s+1:end-s)."""
    scores = {}
    for i, (name, (hr, _, bic)) in enumerate(data.items()):
        im_h = residual[i, ..., 0] + bic[scale - 1:, scale - 1:]
        ground = hr[scale:-scale, scale:-scale]
        scores[name] = (psnr(im_h[1:-scale, 1:-scale], ground), psnr(bic[scale:-scale, scale:-scale], ground))
    return scores


def fsrcnn_scores(sr, data, scale):
    """sr_demo.m: the transposed output (3H-2) is compared with gt(shift+1:end, shift+1:end), shift = scale - 1."""
    shift = scale - 1
    return {name: (psnr(sr[i, ..., 0].T, hr[shift:, shift:]), psnr(bic[shift:, shift:], hr[shift:, shift:]))
            for i, (name, (hr, _, bic)) in enumerate(data.items())}


# Half the mean gains PROVENANCE.md calibrated on 240 x 240 crops, and at least 0.5 dB.
THRESHOLDS = {("LapSRN", 2): 1.45, ("LapSRN", 4): 1.04, ("MSLapSRN", 2): 0.5, ("MSLapSRN", 4): 1.10,
              ("MSLapSRN", 8): 0.5, ("VDSR", 3): 1.23, ("IDN", 2): 1.72, ("IDN", 3): 1.36, ("IDN", 4): 1.16,
              ("FSRCNN", 3): 0.66}


# ----------------------------------------------------------------------------------- LapSRN, MS-LapSRN
@pytest.mark.parametrize("scale", [2, 4])
def test_lapsrn_super_resolves_real_photos(crops, scale):
    """SR_LapSRN.m: the LR Y goes in as 'LR'; 'level1_output' is the HR Y; PSNR after shave_bd(scale)."""
    model = keras_zoo.from_matconvnet(fixture_path(f"{REAL}lapsrn/LapSRN_x{scale}.mat"))
    assert [t.name for t in model.inputs] == ["LR"] and model.output_names == ["level1_output"]
    data = cases(crops, scale)
    (sr,) = predict(model, batch([lr for _, lr, _ in data.values()]))
    assert_beats_bicubic("LapSRN", scale, lapsrn_scores(sr, data, scale), THRESHOLDS["LapSRN", scale])


def test_mslapsrn_super_resolves_at_three_scales_in_one_call(crops):
    """SR_MSLapSRN.m: one net, three inputs x{s}SR_LR, outputs x{s}SR_{s}x_output; the 17 parameters are shared
    by every recursion and level (one Keras variable each)."""
    model = keras_zoo.from_matconvnet(fixture_path(f"{REAL}mslapsrn/MSLapSRN_D5R2.mat"))
    assert [t.name for t in model.inputs] == ["x2SR_LR", "x4SR_LR", "x8SR_LR"]
    assert model.output_names == ["x2SR_2x_output", "x4SR_4x_output", "x8SR_8x_output"]
    assert len(model.weights) == 17
    data = {scale: cases(crops, scale) for scale in (2, 4, 8)}
    outputs = predict(model, *[batch([lr for _, lr, _ in data[scale].values()]) for scale in (2, 4, 8)])
    for scale, sr in zip((2, 4, 8), outputs):
        assert_beats_bicubic("MS-LapSRN", scale, lapsrn_scores(sr, data[scale], scale), THRESHOLDS["MSLapSRN", scale])


def test_mslapsrn_keras_file_holds_each_shared_parameter_once(tmp_path):
    model = keras_zoo.from_matconvnet(fixture_path(f"{REAL}mslapsrn/MSLapSRN_D5R2.mat"))
    path = tmp_path / "mslapsrn.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as handle, h5py.File(handle) as weights:
        arrays = []
        weights.visititems(lambda name, item: arrays.append(name) if isinstance(item, h5py.Dataset) else None)
    assert len(arrays) == 17, arrays
    loaded = keras.saving.load_model(path)  # safe mode
    x = np.random.default_rng(0).random((1, 8, 6, 1)).astype(np.float32)
    for ours, theirs in zip(predict(loaded, x, x, x), predict(model, x, x, x)):
        assert_close_rel(ours, theirs, tol=1e-6)


def dagnn_reference(path, feeds, output):
    """A NumPy interpreter of the .mat's DagNN (Conv, ReLU with leak, ConvTranspose, Sum), from ``output`` back."""
    net = load_mat(path)["net"]
    params = {p["name"]: np.asarray(p["value"], np.float64) for p in net["params"]}
    producer = {layer["outputs"][0] if isinstance(layer["outputs"], list) else layer["outputs"]: layer
                for layer in net["layers"]}
    values = {name: np.asarray(value, np.float64) for name, value in feeds.items()}

    def names(value):
        return value if isinstance(value, list) else [value]

    def value_of(name):
        if name not in values:
            layer = producer[name]
            args = [value_of(source) for source in names(layer["inputs"])]
            block, weights = layer["block"], [params[p] for p in names(layer["params"])]
            if layer["type"] == "dagnn.Conv":
                f = weights[0].reshape(weights[0].shape + (1,) * (4 - weights[0].ndim))
                values[name] = mcn_conv(args[0], f, weights[1] if len(weights) > 1 else None,
                                        tuple(int(v) for v in np.ravel(block["pad"])))
            elif layer["type"] == "dagnn.ConvTranspose":
                f = weights[0].reshape(weights[0].shape + (1,) * (4 - weights[0].ndim))
                values[name] = mcn_convt(args[0], f, weights[1] if len(weights) > 1 else None,
                                         tuple(int(v) for v in np.ravel(block["upsample"])),
                                         tuple(int(v) for v in np.ravel(block["crop"])))
            elif layer["type"] == "dagnn.ReLU":
                leak = float(np.ravel(block["leak"])[0])
                values[name] = np.where(args[0] > 0, args[0], leak * args[0])
            elif layer["type"] == "dagnn.Sum":
                values[name] = sum(args)
            else:
                raise AssertionError(f"unexpected layer type {layer['type']}")
        return values[name]
    return value_of(output)


@pytest.mark.parametrize("file,inputs,output", [
    ("lapsrn/LapSRN_x2.mat", ["LR"], "level1_output"),
    ("lapsrn/LapSRN_x4.mat", ["LR"], "level1_output"),
    ("mslapsrn/MSLapSRN_D5R2.mat", ["x4SR_LR"], "x4SR_4x_output"),
    ("mslapsrn/MSLapSRN_D5R2.mat", ["x8SR_LR"], "x8SR_8x_output"),
])
def test_mat_models_compute_what_matconvnet_computes(rng, file, inputs, output):
    path = fixture_path(REAL + file)
    x = rng.random((1, 12, 10, 1)).astype(np.float32)
    model = keras_zoo.from_matconvnet(path, outputs=[output])
    assert [t.name for t in model.inputs] == inputs  # only the inputs the output needs
    (y,) = predict(model, *[x] * len(inputs))
    assert_close_rel(y, dagnn_reference(path, {name: x for name in inputs}, output))


# --------------------------------------------------------------------------- VDSR, IDN, FSRCNN (Caffe)
def caffe_model(prototxt, caffemodel, size):
    return keras_zoo.from_caffe(fixture_path(REAL + prototxt), fixture_path(REAL + caffemodel), input_shape=size)


def output_named(model, outputs, name):
    return outputs[model.output_names.index(name)]


def test_vdsr_super_resolves_real_photos(crops):
    """Demo_SR_Conv.m: the bicubic-upscaled Y goes in (transposed, as Caffe saw the MATLAB-written training
    data), the net adds its residual to it; PSNR after shaving round(scale)."""
    scale = 3
    data = cases(crops, scale)
    size = next(iter(data.values()))[0].shape
    model = caffe_model("vdsr/VDSR_net_deploy.prototxt", "vdsr/VDSR_Adam.caffemodel", size[::-1])
    (sr,) = predict(model, batch([bic for _, _, bic in data.values()], transpose=True))
    assert_beats_bicubic("VDSR", scale, vdsr_scores(sr, data, scale), THRESHOLDS["VDSR", scale])


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_idn_super_resolves_real_photos(crops, scale):
    """test_IDN.m: the LR Y goes in upright; the 'upsample' blob (s(H-1)+1 rows) plus bicubic(s:end, s:end) is the
    HR Y, whose im_h(2:end-s, 2:end-s) is compared with gt(s+1:end-s, s+1:end-s)."""
    data = cases(crops, scale)
    lr_size = next(iter(data.values()))[1].shape
    model = caffe_model(f"idn/IDN_x{scale}_deploy.prototxt", f"idn/IDN_x{scale}.caffemodel", lr_size)
    lrs = batch([lr for _, lr, _ in data.values()])
    residual = output_named(model, predict(model, lrs, np.zeros_like(lrs)), "upsample")  # 'label' is unused
    assert_beats_bicubic("IDN", scale, idn_scores(residual, data, scale), THRESHOLDS["IDN", scale])


def test_fsrcnn_super_resolves_real_photos(crops):
    """sr_demo.m: the LR Y goes in (transposed, through matcaffe); the 'deconv' output (3H-2) is compared with
    gt(shift+1:end, shift+1:end), shift = scale - 1, no further shave."""
    scale = 3
    data = cases(crops, scale)
    lr_size = next(iter(data.values()))[1].shape
    model = caffe_model("fsrcnn/FSRCNN_mat.prototxt", "fsrcnn/snapshot_iter_2546000.caffemodel", lr_size[::-1])
    (sr,) = predict(model, batch([lr for _, lr, _ in data.values()], transpose=True))
    assert_beats_bicubic("FSRCNN", scale, fsrcnn_scores(sr, data, scale), THRESHOLDS["FSRCNN", scale])


@pytest.mark.parametrize("prototxt,caffemodel,output", [
    ("vdsr/VDSR_net_deploy.prototxt", "vdsr/VDSR_Adam.caffemodel", "sum"),
    ("idn/IDN_x3_deploy.prototxt", "idn/IDN_x3.caffemodel", "upsample"),
    ("idn/IDN_x2_deploy.prototxt", "idn/IDN_x2.caffemodel", "upsample"),  # CR-only line endings
    ("fsrcnn/FSRCNN_mat.prototxt", "fsrcnn/snapshot_iter_2546000.caffemodel", "deconv"),
])
def test_caffemodels_compute_what_opencv_computes(tmp_path, rng, prototxt, caffemodel, output):
    size = (14, 11)
    x = rng.random((1, *size, 1)).astype(np.float32)
    model = caffe_model(prototxt, caffemodel, size)
    outputs = predict(model, *[x] * len(model.inputs))
    text = fixture_path(REAL + prototxt).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    # OpenCV's parser wants line feeds, and its network fails on IDN's dangling second input 'label'
    text = re.sub(rb'input: "label"\n(input_dim: \d+\n){4}', b"", text)
    (tmp_path / "deploy.prototxt").write_bytes(text)
    net = cv2.dnn.readNetFromCaffe(str(tmp_path / "deploy.prototxt"), str(fixture_path(REAL + caffemodel)))
    net.enableWinograd(False)
    net.setInput(x.transpose(0, 3, 1, 2), "data")
    reference = net.forward(output).transpose(0, 2, 3, 1)
    assert_close_rel(output_named(model, outputs, output), reference)


# ------------------------------------------------------------------------------ the MATLAB transcription
def test_matlab_imresize_transcription():
    """Properties MATLAB's imresize has: a constant stays constant; away from the borders a linear ramp is
    sampled at u = x / s + (1 - 1 / s) / 2 (the cubic kernel reproduces linear functions); shrinking by 1/2
    averages over 8 taps of weights cubic(x / 2) / 2."""
    assert np.allclose(matlab_imresize(np.full((12, 9), 0.3), 0.5), 0.3)
    assert np.allclose(matlab_imresize(np.full((5, 7), 0.7), 3), 0.7)
    ramp = np.arange(40, dtype=np.float64)[:, None] * np.ones((1, 6))
    for scale in (0.5, 1 / 3, 0.25, 2, 3):
        out = matlab_imresize(ramp, scale)[:, 0]
        u = np.arange(1, len(out) + 1) / scale + 0.5 * (1 - 1 / scale) - 1  # 0-based source positions
        reach = 2 / min(scale, 1)  # half the kernel's support, in source pixels
        inner = (u - reach >= 0) & (u + reach <= len(ramp) - 1)
        assert inner.sum() >= 3 and np.allclose(out[inner], u[inner]), scale
    weights, indices = matlab_contributions(16, 8, 0.5)
    assert weights.shape == (8, 8) and np.allclose(weights.sum(1), 1)
    taps = np.arange(4, 12)  # output 4 (1-based) sits at u = 7.5; its taps are pixels 4..11 (1-based)
    expected = matlab_cubic((7.5 - taps) / 2) / 2
    assert np.allclose(weights[3], expected / expected.sum()) and list(indices[3]) == list(taps - 1)
