"""keras_zoo.layers against NumPy restatements of Caffe's and MatConvNet's formulas (written here, NCHW)."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_zoo  # noqa: F401  (registers the layers for safe-mode loading)
from keras_zoo import layers as zl
from tests.helpers import ROOT, assert_close_rel


def nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))


def nchw(x):
    return np.transpose(np.asarray(x), (0, 3, 1, 2))


def run(layer, *inputs):
    """Apply ``layer`` to NCHW numpy input(s); NCHW numpy output(s)."""
    args = [nhwc(x) if x.ndim == 4 else x for x in inputs]
    out = layer(args if len(args) > 1 else args[0])
    if isinstance(out, (list, tuple)):
        return [nchw(o) for o in out]
    out = np.asarray(out)
    return nchw(out) if out.ndim == 4 else out


# ---------------------------------------------------------------- NumPy references (Caffe's loops, vectorised)

def ref_conv(x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Caffe convolution: w (out, in/groups, kh, kw)."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    _, _, height, width = xp.shape
    out_c, in_g, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    oh = (height - dh * (kh - 1) - 1) // sh + 1
    ow = (width - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((x.shape[0], out_c, oh, ow))
    out_g = out_c // groups
    for g in range(groups):
        xg, wg = xp[:, g * in_g:(g + 1) * in_g], w[g * out_g:(g + 1) * out_g]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, g * out_g:(g + 1) * out_g] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    return y + b[None, :, None, None]


def ref_deconv(x, w, b, stride=(1, 1), crops=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Caffe deconvolution (the conv's backward pass): w (in, out/groups, kh, kw)."""
    n, c, height, width = x.shape
    _, out_g, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    full_h, full_w = sh * (height - 1) + dh * (kh - 1) + 1, sw * (width - 1) + dw * (kw - 1) + 1
    y = np.zeros((n, out_g * groups, full_h, full_w))
    in_g = c // groups
    for g in range(groups):
        xg, wg = x[:, g * in_g:(g + 1) * in_g], w[g * in_g:(g + 1) * in_g]
        for i in range(kh):
            for j in range(kw):
                y[:, g * out_g:(g + 1) * out_g, i * dh:i * dh + sh * (height - 1) + 1:sh,
                  j * dw:j * dw + sw * (width - 1) + 1:sw] += np.einsum("nchw,co->nohw", xg, wg[:, :, i, j])
    top, bottom, left, right = crops
    return y[:, :, top:full_h - bottom, left:full_w - right] + b[None, :, None, None]


def pool_extent(size, k, s, before, after, rounding):
    if rounding == "floor":
        return (size + before + after - k) // s + 1
    out = int(np.ceil((size + before + after - k) / s)) + 1
    if (out - 1) * s >= size + before:  # Caffe: the last window must start inside the (top-padded) image
        out -= 1
    return out


def ref_pool(x, method, k, s, pads=(0, 0, 0, 0), rounding="ceil", divisor="padded"):
    """Caffe's pooling loops (and MatConvNet's: floor rounding, average over the in-image cells)."""
    (kh, kw), (sh, sw), (top, bottom, left, right) = k, s, pads
    _, _, height, width = x.shape
    oh = pool_extent(height, kh, sh, top, bottom, rounding)
    ow = pool_extent(width, kw, sw, left, right, rounding)
    y = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        h0 = i * sh - top
        h1 = min(h0 + kh, height + bottom)
        for j in range(ow):
            w0 = j * sw - left
            w1 = min(w0 + kw, width + right)
            window = x[:, :, max(h0, 0):min(h1, height), max(w0, 0):min(w1, width)]
            if method == "max":
                y[:, :, i, j] = window.max(axis=(2, 3))
            else:
                count = (h1 - h0) * (w1 - w0) if divisor == "padded" else window.shape[2] * window.shape[3]
                y[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return y


def ref_lrn_across(x, size, alpha, beta, k):
    """Caffe ACROSS_CHANNELS: scale = k + alpha/size * sum of squares over [c-(size-1)//2, c+size//2]."""
    squares = np.pad(x ** 2, ((0, 0), ((size - 1) // 2, size // 2), (0, 0), (0, 0)))
    total = sum(squares[:, i:i + x.shape[1]] for i in range(size))
    return x * (k + alpha / size * total) ** -beta


def ref_lrn_within(x, size, alpha, beta):
    """Caffe WITHIN_CHANNEL: x * (1 + alpha * AVE-pool(x^2, size, pad (size-1)/2))^-beta."""
    pad = (size - 1) // 2
    average = ref_pool(x ** 2, "avg", (size, size), (1, 1), (pad,) * 4)
    return x * (1 + alpha * average) ** -beta


def set_named(layer, **arrays):
    """Build ``layer`` for 6 channels and assign its weights by name."""
    layer.build((None, None, None, 6))
    variables = {variable.name: variable for variable in layer.weights}
    assert sorted(variables) == sorted(arrays)
    for name, array in arrays.items():
        variables[name].assign(np.asarray(array, np.float32))


@pytest.fixture
def x(rng):
    return rng.standard_normal((2, 6, 11, 13)).astype(np.float32)


# ---------------------------------------------------------------- convolution


@pytest.mark.parametrize("kernel,stride,pads,dilation,groups,filters", [
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 4),
    ((5, 3), (2, 3), (2, 0, 1, 3), (1, 1), 1, 4),
    ((3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1, 4),
    ((3, 3), (2, 2), (1, 1, 1, 1), (2, 1), 1, 4),  # dilation with stride
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, 4),  # AlexNet-style groups
    ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 6, 6),  # depthwise
    ((3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6, 12),  # depthwise with a multiplier
    ((1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3, 9),
])
def test_conv_matches_caffe(x, rng, kernel, stride, pads, dilation, groups, filters):
    w = rng.standard_normal((filters, 6 // groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    layer = zl.Conv2D(filters, kernel, stride, pads, dilation, groups)
    layer.build((None, None, None, 6))
    layer.set_weights([w.transpose(2, 3, 1, 0), b])
    assert_close_rel(run(layer, x), ref_conv(x, w, b, stride, pads, dilation, groups))


@pytest.mark.parametrize("kernel,stride,crops,dilation,groups,filters", [
    ((4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 1, 3),  # FCN-style upsampling
    ((64, 64), (32, 32), (0, 0, 0, 0), (1, 1), 1, 2),
    ((3, 2), (1, 3), (0, 1, 2, 0), (1, 1), 1, 3),  # kernel smaller than the stride
    ((3, 3), (2, 2), (0, 0, 0, 0), (2, 2), 1, 3),
    ((4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 3, 6),
])
def test_deconv_matches_caffe(rng, kernel, stride, crops, dilation, groups, filters):
    x = rng.standard_normal((2, 6, 4, 5)).astype(np.float32)
    w = rng.standard_normal((6, filters // groups, *kernel)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    layer = zl.Deconv2D(filters, kernel, stride, crops, dilation, groups)
    layer.build((None, None, None, 6))
    layer.set_weights([w.transpose(2, 3, 1, 0), b])
    assert_close_rel(run(layer, x), ref_deconv(x, w, b, stride, crops, dilation, groups))


def test_conv_rejects_indivisible_groups():
    with pytest.raises(ValueError, match="groups"):
        zl.Conv2D(4, 3, groups=4).build((None, 8, 8, 6))


# ---------------------------------------------------------------- pooling

POOL_CASES = [
    ("max", (3, 3), (2, 2), (0, 0, 0, 0), "ceil", "padded"),  # CaffeNet pool1 (ceil adds a window)
    ("max", (2, 2), (2, 2), (0, 0, 0, 0), "ceil", "padded"),
    ("avg", (3, 3), (2, 2), (1, 1, 1, 1), "ceil", "padded"),  # AVE divisor counts the padding
    ("max", (2, 2), (2, 2), (1, 1, 1, 1), "ceil", "padded"),  # the last window would start in the padding
    ("avg", (2, 2), (2, 2), (1, 1, 1, 1), "ceil", "padded"),
    ("avg", (5, 3), (3, 1), (0, 0, 2, 2), "ceil", "padded"),
    ("avg", (3, 3), (2, 2), (0, 1, 0, 1), "floor", "valid"),  # MatConvNet pad_corrected, valid divisor
    ("max", (3, 3), (2, 2), (1, 2, 0, 1), "floor", "valid"),
    ("avg", (2, 2), (2, 2), (1, 0, 0, 1), "floor", "valid"),
    ("avg", (7, 7), (1, 1), (0, 0, 0, 0), "ceil", "padded"),
    ("max", (3, 3), (2, 2), (1, 1, 1, 1), "ceil", "padded"),  # windows of 'same' padding (run as such)
    ("max", (3, 3), (1, 1), (1, 1, 1, 1), "ceil", "padded"),  # GoogLeNet's inception pool
    ("max", (3, 3), (1, 1), (2, 0, 1, 1), "ceil", "padded"),  # stride 1 but lopsided: not 'same'
]


@pytest.mark.parametrize("method,kernel,stride,pads,rounding,divisor", POOL_CASES)
def test_pool_matches_reference(x, method, kernel, stride, pads, rounding, divisor):
    layer = zl.Pool2D(method, kernel, stride, pads, rounding, divisor)
    assert_close_rel(run(layer, x), ref_pool(x, method, kernel, stride, pads, rounding, divisor))


@pytest.mark.parametrize("method,kernel,stride,pads,rounding,divisor", POOL_CASES[:7])
def test_pool_with_unknown_spatial_size(rng, method, kernel, stride, pads, rounding, divisor):
    layer = zl.Pool2D(method, kernel, stride, pads, rounding, divisor)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, layer(inputs))
    assert model.output.shape[1:3] == (None, None)
    for height, width in ((9, 10), (12, 7)):
        x = rng.standard_normal((1, 3, height, width)).astype(np.float32)
        y = nchw(model(nhwc(x)))
        assert_close_rel(y, ref_pool(x, method, kernel, stride, pads, rounding, divisor))


def test_pool_output_sizes_follow_caffe():
    """CaffeNet pool1 55 -> 27; GoogLeNet pool1 112 -> 56 (ceil); ResNet pool 7x7 on 14 -> 8; corrections."""
    for size, kernel, stride, pad, expected in ((55, 3, 2, 0, 27), (112, 3, 2, 0, 56), (14, 7, 1, 0, 8),
                                                (11, 3, 2, 1, 6), (4, 3, 2, 2, 3), (11, 2, 2, 1, 6)):
        layer = zl.Pool2D("max", kernel, stride, (pad,) * 4)
        assert layer.compute_output_shape((1, size, size, 1))[1] == expected
        assert pool_extent(size, kernel, stride, pad, pad, "ceil") == expected


def test_global_pool(x):
    assert_close_rel(run(zl.Pool2D("avg", global_pool=True), x), x.mean(axis=(2, 3), keepdims=True))
    assert_close_rel(run(zl.Pool2D("max", global_pool=True), x), x.max(axis=(2, 3), keepdims=True))


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize("size,alpha,beta,k", [(5, 1e-4, 0.75, 1.0), (3, 5e-2, 0.75, 2.0), (4, 0.3, 0.5, 1.5)])
def test_lrn_across_matches_caffe(x, size, alpha, beta, k):
    layer = zl.LRN(size, alpha / size, beta, k, region="across")  # per-element alpha, as the reader gives it
    assert_close_rel(run(layer, x * 3), ref_lrn_across(x * 3, size, alpha, beta, k))


@pytest.mark.parametrize("size", [3, 5])
def test_lrn_within_matches_caffe(x, size):
    alpha, beta = 0.5, 0.75
    layer = zl.LRN(size, alpha / size ** 2, beta, 1.0, region="within")
    assert_close_rel(run(layer, x * 3), ref_lrn_within(x * 3, size, alpha, beta))


def test_batchnorm_global_and_batch_statistics(x, rng):
    mean, var = rng.standard_normal(6), rng.random(6) + 0.1
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    layer = zl.BatchNorm(epsilon=1e-3, center=True, scale=True)
    set_named(layer, mean=mean, variance=var, gamma=gamma, beta=beta)
    c = (None, slice(None), None, None)
    expected = (x - mean[c]) / np.sqrt(var[c] + 1e-3) * gamma[c] + beta[c]
    assert_close_rel(run(layer, x), expected)

    std_layer = zl.BatchNorm(stat="std")
    set_named(std_layer, mean=mean, std=np.sqrt(var))
    assert_close_rel(run(std_layer, x), (x - mean[c]) / np.sqrt(var[c]))

    batch_layer = zl.BatchNorm(epsilon=1e-5, use_global_stats=False)
    batch_mean = x.mean(axis=(0, 2, 3))[c]
    batch_var = ((x - batch_mean) ** 2).mean(axis=(0, 2, 3))[c]  # biased, as Caffe
    assert_close_rel(run(batch_layer, x), (x - batch_mean) / np.sqrt(batch_var + 1e-5))
    assert not batch_layer.weights


def test_channel_affine_and_broadcast(x, rng):
    gamma, beta = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    layer = zl.ChannelAffine((6,))
    layer.build((None, None, None, 6))
    layer.set_weights([gamma, beta])
    c = (None, slice(None), None, None)
    assert_close_rel(run(layer, x), x * gamma[c] + beta[c])
    bias_only = zl.ChannelAffine((6,), use_scale=False)
    bias_only.build((None, None, None, 6))
    bias_only.set_weights([beta])
    assert_close_rel(run(bias_only, x), x + beta[c])
    per_sample = rng.standard_normal((2, 6)).astype(np.float32)
    assert_close_rel(run(zl.Broadcast("mul"), x, per_sample), x * per_sample[:, :, None, None])
    assert_close_rel(run(zl.Broadcast("add"), x, x[:, :, :1, :1]), x + x[:, :, :1, :1])


# ---------------------------------------------------------------- shape layers and elementwise


def test_crop_to_reference_with_offsets(x):
    reference = np.zeros((2, 6, 5, 4), np.float32)
    layer = zl.Crop(axes=(1, 2), offsets=(3, 7))
    assert_close_rel(run(layer, x, reference), x[:, :, 3:8, 7:11])
    # channels too (Caffe axis 1): offsets in C, H, W order map to NHWC axes 3, 1, 2
    reference = np.zeros((2, 4, 5, 4), np.float32)
    assert_close_rel(run(zl.Crop(axes=(3, 1, 2), offsets=(1, 2, 3)), x, reference), x[:, 1:5, 2:7, 3:7])


def test_crop_with_unknown_sizes(x):
    big, small = keras.Input((None, None, 6)), keras.Input((None, None, 6))
    model = keras.Model([big, small], zl.Crop((1, 2), (2, 1))([big, small]))
    out = model([nhwc(x), np.zeros((2, 4, 9, 6), np.float32)])
    assert_close_rel(nchw(out), x[:, :, 2:6, 1:10])


def test_slice_at_points_and_equal_parts(x):
    pieces = run(zl.Slice(axis=3, points=(1, 4)), x)
    for piece, expected in zip(pieces, (x[:, :1], x[:, 1:4], x[:, 4:])):
        assert_close_rel(piece, expected)
    pieces = run(zl.Slice(axis=1, num_outputs=1, points=()), x)
    assert_close_rel(pieces[0], x)
    halves = run(zl.Slice(axis=3, num_outputs=3), x)
    assert [p.shape[1] for p in halves] == [2, 2, 2]
    assert_close_rel(halves[2], x[:, 4:])


def test_flatten_is_in_caffe_order(x):
    flat = np.asarray(zl.CaffeReshape(**zl.flatten_as_reshape(1, -1, 4))(nhwc(x)))
    assert_close_rel(flat, x.reshape(2, -1))


@pytest.mark.parametrize("shape,axis,num_axes,expected", [
    ((0, -1), 0, -1, (2, 6 * 11 * 13)),
    ((0, 2, 3, -1), 0, -1, (2, 2, 3, 143)),
    ((-1,), 2, -1, (2, 6, 143)),
    ((3, 2), 1, 1, (2, 3, 2, 11, 13)),
    ((1,), 4, 0, (2, 6, 11, 13, 1)),
])
def test_reshape_has_caffe_semantics(x, shape, axis, num_axes, expected):
    y = np.asarray(zl.CaffeReshape(shape, axis, num_axes)(nhwc(x)))
    y_nchw = y if y.ndim <= 2 else np.moveaxis(y, -1, 1)
    assert y_nchw.shape == expected
    assert_close_rel(y_nchw, x.reshape(expected))


def test_reshape_keeps_static_shape_for_dense():
    inputs = keras.Input((4, 5, 3))
    assert zl.CaffeReshape((0, -1))(inputs).shape == (None, 60)


def test_eltwise(x, rng):
    y, z = rng.standard_normal(x.shape).astype(np.float32), rng.standard_normal(x.shape).astype(np.float32)
    assert_close_rel(run(zl.Eltwise("sum", (0.5, -2.0, 1.0)), x, y, z), 0.5 * x - 2 * y + z)
    assert_close_rel(run(zl.Eltwise("prod"), x, y, z), x * y * z)
    assert_close_rel(run(zl.Eltwise("max"), x, y, z), np.maximum(np.maximum(x, y), z))


def test_power_and_absval(x):
    assert_close_rel(run(zl.Power(2.0, 0.5, 3.0), x), (3 + 0.5 * x) ** 2)
    assert_close_rel(run(zl.Power(1.0, -1.0, 0.0), x), -x)
    assert_close_rel(run(zl.AbsVal(), x), np.abs(x))


def test_axis_mapping():
    assert [zl.nchw_axis_to_nhwc(a, 4) for a in (0, 1, 2, 3, -1, -3)] == [0, 3, 1, 2, 2, 3]
    assert [zl.nchw_axis_to_nhwc(a, 2) for a in (1, -1)] == [1, 1]
    with pytest.raises(ValueError):
        zl.nchw_axis_to_nhwc(4, 4)


# ---------------------------------------------------------------- serialisation and other backends


def all_layers_model():
    inputs = keras.Input((12, 12, 6), name="data")
    reference = keras.Input((5, 5, 6), name="reference")
    y = zl.Conv2D(6, 3, pads=(1, 1, 1, 1), groups=2, name="conv")(inputs)
    y = zl.Conv2D(6, 3, pads=(1, 1, 1, 1), groups=6, name="dw")(y)
    y = zl.LRN(3, 1e-2, 0.75, 2.0, name="norm")(y)
    y = zl.LRN(3, 1e-2, 0.75, 1.0, region="within", name="norm_within")(y)
    y = zl.BatchNorm(name="bn", center=True, scale=True)(y)
    y = zl.ChannelAffine((6,), name="scale")(y)
    y = zl.Pool2D("avg", 3, 2, (1, 1, 1, 1), name="pool")(y)
    y = zl.Deconv2D(6, 4, 2, (1, 1, 1, 1), name="up")(y)
    y = zl.Crop((1, 2), (1, 2), name="crop")([y, reference])
    a, b = zl.Slice(3, (2,), name="slice")(y)
    y = zl.Eltwise("sum", (1.0, -1.0), name="sum")([a[..., :2], b[..., :2]])
    y = zl.Power(2.0, 0.5, 1.0, name="power")(zl.AbsVal(name="abs")(y))
    y = zl.Broadcast("mul", name="bmul")([y, zl.Pool2D("max", global_pool=True, name="gmax")(y)])
    y = zl.CaffeReshape((0, -1), name="flatten")(y)
    return keras.Model([inputs, reference], y)


def test_keras_file_round_trip_in_safe_mode(tmp_path, rng):
    model = all_layers_model()
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 + (w.name in ("variance",))
                       for w in model.weights])
    inputs = [rng.standard_normal((2, 12, 12, 6)).astype(np.float32), np.zeros((2, 5, 5, 6), np.float32)]
    path = tmp_path / "layers.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert_close_rel(loaded(inputs), model(inputs), tol=1e-6)
    config = loaded.get_layer("pool").get_config()
    assert (config["rounding"], config["avg_divisor"], config["pads"]) == ("ceil", "padded", (1, 1, 1, 1))


JAX_SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np
    import keras
    sys.path.insert(0, sys.argv[1])
    from tests.keras_zoo.test_layers import all_layers_model
    assert keras.backend.backend() == "jax"
    model = all_layers_model()
    model.load_weights(sys.argv[2])
    data = np.load(sys.argv[3])
    np.save(sys.argv[4], np.asarray(model([data["x"], data["ref"]])))
""")


def test_layers_run_on_jax_backend(tmp_path, rng):
    pytest.importorskip("jax")
    model = all_layers_model()
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 + (w.name in ("variance",))
                       for w in model.weights])
    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    x = rng.standard_normal((2, 12, 12, 6)).astype(np.float32)
    ref = np.zeros((2, 5, 5, 6), np.float32)
    np.savez(tmp_path / "in.npz", x=x, ref=ref)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(ROOT), str(weights), str(tmp_path / "in.npz"),
                             str(tmp_path / "out.npy")], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_close_rel(np.load(tmp_path / "out.npy"), model([x, ref]), tol=1e-5)
