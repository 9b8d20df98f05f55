"""keras_zoo.fold_batchnorm: batch norms and per-channel scales folded into the layer before them."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_zoo
from export import common
from keras_zoo import layers as zl
from tests.helpers import ROOT, assert_close_rel


def _randomize(model, rng, kernels=True):
    """Random weights (``kernels=False``: keep the kernels); variances and standard deviations positive,
    scales away from zero."""
    for variable in model.weights:
        shape, name = tuple(variable.shape), variable.name
        if name == "kernel" and not kernels:
            continue
        if name in ("variance", "std"):
            values = rng.uniform(0.5, 2.0, shape)
        elif name == "gamma":
            values = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
        else:
            values = rng.standard_normal(shape) * 0.5
        variable.assign(values.astype(np.float32))


def mixed_net(rng):
    """Every case at once: chains that fold and layers that must not."""
    x = keras.Input((9, 11, 3), name="data")
    y = zl.Conv2D(4, 3, pads=1, use_bias=False, name="conv1")(x)
    y = zl.BatchNorm(name="bn1")(y)                                       # folds
    y = zl.ChannelAffine((4,), name="scale1")(y)                          # folds after bn1
    y = keras.layers.ReLU(name="relu1")(y)
    branch = zl.Conv2D(4, 1, name="conv2")(y)
    normed = zl.BatchNorm(stat="std", center=True, scale=True, name="bn2")(branch)  # conv2 read twice: stays
    y = keras.layers.Add(name="sum")([branch, normed])
    y = zl.Conv2D(5, 3, strides=2, name="conv3")(y)
    y = zl.BatchNorm(use_global_stats=False, name="bn3")(y)               # batch statistics: stays
    y = zl.Conv2D(6, 1, name="conv4")(y)
    y = zl.ChannelAffine((1, 5, 6), name="scale4")(y)                     # one scale per column: stays
    y = zl.ChannelAffine((6,), use_scale=False, name="bias4")(y)          # a per-channel bias after it: stays
    y = keras.layers.Flatten(name="flatten")(y)
    y = keras.layers.Dense(7, name="fc")(y)
    y = zl.BatchNorm(center=True, scale=True, name="bn_fc")(y)            # folds into the dense layer
    out = zl.Conv2D(2, 1, name="conv5")(x)
    also = zl.BatchNorm(name="bn5")(out)                                  # conv5 is a model output: stays
    model = keras.Model(x, [y, out, also], name="mixed")
    _randomize(model, rng)
    return model


def test_folding_keeps_the_function_and_drops_only_foldable_layers(rng):
    model = mixed_net(rng)
    images = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)
    before = [np.asarray(out) for out in model(images)]
    folded = keras_zoo.fold_batchnorm(model)
    names = {layer.name for layer in model.layers}
    assert {layer.name for layer in folded.layers} == names - {"bn1", "scale1", "bn_fc"}
    assert folded.get_layer("conv1").use_bias and folded.name == "mixed"
    for got, expected, what in zip(folded(images), before, ("fc", "conv5", "bn5")):
        assert_close_rel(got, expected, tol=1e-5, what=what)
    for got, expected in zip(model(images), before):  # the original model is not changed
        np.testing.assert_array_equal(np.asarray(got), expected)


@pytest.mark.parametrize("stat", ["variance", "std"])
def test_folded_weights_are_the_closed_form(rng, stat):
    x = keras.Input((4, 4, 2))
    y = zl.BatchNorm(stat=stat, epsilon=1e-3, name="bn")(zl.Conv2D(3, 1, name="conv")(x))
    model = keras.Model(x, zl.ChannelAffine((3,), name="scale")(y))
    _randomize(model, rng)
    kernel, bias = model.get_layer("conv").get_weights()
    mean, spread = model.get_layer("bn").get_weights()
    gamma, beta = model.get_layer("scale").get_weights()
    std = np.sqrt(spread + 1e-3) if stat == "variance" else spread
    folded_kernel, folded_bias = keras_zoo.fold_batchnorm(model).get_layer("conv").get_weights()
    np.testing.assert_allclose(folded_kernel, kernel * gamma / std, rtol=1e-6)
    np.testing.assert_allclose(folded_bias, (bias - mean) * gamma / std + beta, rtol=1e-5, atol=1e-6)


def test_folded_model_saves_and_loads_in_safe_mode(rng, tmp_path):
    folded = keras_zoo.fold_batchnorm(mixed_net(rng))
    images = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)
    folded.save(tmp_path / "folded.keras")
    loaded = keras.saving.load_model(tmp_path / "folded.keras", safe_mode=True)
    for got, expected in zip(loaded(images), folded(images)):
        assert_close_rel(got, expected, tol=1e-6)


def test_nothing_to_fold_gives_an_equal_copy_and_other_models_are_refused(rng):
    model = keras_zoo.VGGM128(weights=None, include_preprocessing=False, include_top=False,
                              input_shape=(64, 64, 3))
    copy = keras_zoo.fold_batchnorm(model)
    assert copy is not model and [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    images = rng.uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(copy(images)), np.asarray(model(images)))
    with pytest.raises(ValueError, match="functional keras.Model.*Sequential"):
        keras_zoo.fold_batchnorm(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def _shared_layers(a, b):
    ids = {id(layer) for layer in a.layers}
    return [layer.name for layer in b.layers if id(layer) in ids]


def _feature_outputs(model, layer, x):
    """What a feature extractor ending at ``layer`` gives for ``x`` (a new keras.Model on model's graph)."""
    return np.asarray(keras.Model(model.inputs, model.get_layer(layer).output)([x]))


def test_the_folded_copy_owns_its_layers_and_weights(rng):
    model = mixed_net(rng)
    images = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)
    folded = keras_zoo.fold_batchnorm(model)
    assert not _shared_layers(model, folded)
    assert not {id(v) for v in model.weights} & {id(v) for v in folded.weights}
    before = [np.asarray(out) for out in model(images)]
    folded_before = [np.asarray(out) for out in folded(images)]
    features = _feature_outputs(model, "relu1", images)
    np.testing.assert_array_equal(folded.get_layer("conv2").kernel, model.get_layer("conv2").kernel)
    # the copy's weights change: the original does not (a folded layer, a copied one, a kept batch norm)
    for name in ("conv1", "conv2", "bn2", "fc"):
        for variable in folded.get_layer(name).weights:
            variable.assign(np.zeros(variable.shape, "float32") + 0.5)
    for got, expected in zip(model(images), before):
        np.testing.assert_array_equal(np.asarray(got), expected)
    # and the other way round
    folded = keras_zoo.fold_batchnorm(model)
    for name in ("conv1", "bn1", "scale1", "conv2", "bn2", "conv4"):
        layer = model.get_layer(name)
        layer.set_weights([np.full(w.shape, 2.0, "float32") for w in layer.get_weights()])
    for got, expected in zip(folded(images), folded_before):
        np.testing.assert_array_equal(np.asarray(got), expected)
    assert_close_rel(_feature_outputs(folded, "relu1", images), features, tol=1e-5)  # relu1 reads folded conv1


class _WithSublayer(keras.layers.Layer):
    """A layer whose weights belong to a sublayer (its variables are not made by its own add_weight)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(3, name="inner")

    def build(self, input_shape):
        self.inner.build(input_shape)

    def call(self, x):
        return self.inner(x)


def test_nested_models_and_layers_with_sublayers_are_copied_too(rng):
    inner = mixed_net(rng)
    x = keras.Input((9, 11, 3), name="outer_in")
    scores, _, _ = inner(x)
    y = _WithSublayer(name="wrapped")(scores)
    model = keras.Model(x, y)
    _randomize(model, rng)
    folded = keras_zoo.fold_batchnorm(model)

    def every_layer(m):
        return [sub for layer in m.layers for sub in [layer, *(every_layer(layer) if isinstance(layer, keras.Model)
                                                                 else getattr(layer, "_layers", []))]]
    assert not {id(layer) for layer in every_layer(model)} & {id(layer) for layer in every_layer(folded)}
    images = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)
    before = np.asarray(model(images))
    np.testing.assert_array_equal(np.asarray(folded(images)), before)
    folded.get_layer("wrapped").inner.kernel.assign(np.zeros((7, 3), "float32"))
    np.testing.assert_array_equal(np.asarray(model(images)), before)


def test_the_issue_feature_extractor_on_a_folded_resnet(rng):
    model = keras_zoo.ResNet50(weights=None, include_preprocessing=False, fold_batchnorm=True)
    extractor = keras.Model(model.inputs, model.get_layer("pool5").output)
    assert extractor.output.shape == (None, 1, 1, 2048)
    images = rng.uniform(-100, 100, (1, 224, 224, 3)).astype(np.float32)
    pooled = np.asarray(extractor(images))
    flat = np.asarray(keras.Model(model.inputs, model.get_layer("res5c_relu").output)(images)).mean(axis=(1, 2))
    assert_close_rel(pooled[:, 0, 0], flat, tol=1e-5)  # ResNet's pool5: a global 7x7 average


FAMILIES = [  # builder, arguments (small inputs where the builder allows), a layer inside
    ("VGG16", dict(include_top=False, input_shape=(32, 32, 3)), "pool4"),
    ("VGGM128", dict(), "fc7"),
    ("AlexNet", dict(include_top=False, input_shape=(67, 67, 3)), "norm2"),
    ("CaffeNet", dict(), "fc6"),
    ("GoogLeNet", dict(include_top=False, input_shape=(64, 64, 3)), "inception_4a_output"),
    ("ResNet50", dict(include_top=False, input_shape=(64, 64, 3)), "res3a_relu"),
    ("FCN32s", dict(input_shape=(64, 64, 3)), "pool5"),
]


LARGE = ("FCN32s", "CaffeNet", "VGGM128")  # built once (their fully connected layers take seconds)
CASES = [(*family, preprocessing) for family in FAMILIES for preprocessing in (False, True)
         if not (preprocessing and family[0] in LARGE)]


@pytest.mark.parametrize("builder, arguments, layer, preprocessing", CASES,
                         ids=[f"{case[0]}-{'pre' if case[3] else 'raw'}" for case in CASES])
def test_feature_extractors_on_folded_zoo_models(rng, builder, arguments, layer, preprocessing):
    model = getattr(keras_zoo, builder)(weights=None, include_preprocessing=preprocessing, **arguments)
    _randomize(model, rng, kernels=False)
    folded = keras_zoo.fold_batchnorm(model)
    assert not _shared_layers(model, folded)
    images = rng.uniform(0, 255, (1, *model.input.shape[1:])).astype(np.float32)
    assert_close_rel(_feature_outputs(folded, layer, images), _feature_outputs(model, layer, images), tol=1e-5)
    if builder not in LARGE:  # the builders' fold_batchnorm=True
        built = getattr(keras_zoo, builder)(weights=None, include_preprocessing=preprocessing, fold_batchnorm=True,
                                            **arguments)
        extractor = keras.Model(built.inputs, built.get_layer(layer).output)
        assert extractor.output.shape == model.get_layer(layer).output.shape


def test_feature_extractor_on_a_folded_loaded_model(rng, tmp_path):
    model = keras_zoo.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    _randomize(model, rng, kernels=False)
    model.save(tmp_path / "resnet.keras")
    loaded = keras.saving.load_model(tmp_path / "resnet.keras")
    folded = keras_zoo.fold_batchnorm(loaded)
    assert not _shared_layers(loaded, folded) and "bn2a_branch1" not in [layer.name for layer in folded.layers]
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    for layer in ("res2a_relu", "res4f"):
        assert_close_rel(_feature_outputs(folded, layer, images), _feature_outputs(model, layer, images), tol=1e-5)


SMALL_BN_NET = """name: "small_bn"
input: "data" input_shape { dim: 1 dim: 3 dim: 12 dim: 12 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc2" type: "InnerProduct" bottom: "pool1" top: "fc2" inner_product_param { num_output: 3 } }
"""


def test_feature_extractor_on_a_folded_caffe_conversion(rng, tmp_path):
    from converters.writers.caffe import write_caffemodel

    prototxt = tmp_path / "small_bn.prototxt"
    prototxt.write_text(SMALL_BN_NET)
    mean, variance = rng.standard_normal(4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    caffemodel = write_caffemodel(tmp_path / "small_bn.caffemodel", [
        ("conv1", "Convolution", [rng.standard_normal((4, 3, 3, 3)).astype(np.float32)]),
        ("bn1", "BatchNorm", [mean, variance, np.ones(1, np.float32)]),
        ("scale1", "Scale", [rng.uniform(0.5, 1.5, 4).astype(np.float32), rng.standard_normal(4).astype(np.float32)]),
        ("fc2", "InnerProduct", [rng.standard_normal((3, 4 * 6 * 6)).astype(np.float32),
                                 rng.standard_normal(3).astype(np.float32)])])
    folded = keras_zoo.from_caffe(prototxt, caffemodel, fold_batchnorm=True)
    plain = keras_zoo.from_caffe(prototxt, caffemodel)
    assert "bn1" not in [layer.name for layer in folded.layers]
    images = rng.standard_normal((2, 12, 12, 3)).astype(np.float32)
    for layer in ("relu1", "pool1"):
        assert_close_rel(_feature_outputs(folded, layer, images), _feature_outputs(plain, layer, images), tol=1e-5)


def test_zoo_builder_folds_by_default(rng):
    model = keras_zoo.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3), fold_batchnorm=False)
    _randomize(model, rng, kernels=False)  # Glorot kernels keep 50 layers finite
    folded = keras_zoo.fold_batchnorm(model)
    assert not [layer.name for layer in folded.layers if layer.name.startswith(("bn", "scale"))]
    assert len(folded.layers) == len(model.layers) - 2 * 53  # ResNet-50: 53 convolutions with BN + Scale
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    assert_close_rel(folded(images), model(images), tol=1e-5)
    built = keras_zoo.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))  # folded by default
    assert [layer.name for layer in built.layers] == [layer.name for layer in folded.layers]


@pytest.mark.parametrize("keep", [False, True])
def test_exporters_fold_after_taking_the_reference(rng, tmp_path, keep):
    model = mixed_net(rng)
    model = keras.Model(model.input, model.outputs[0], name="mixed_single")
    path = tmp_path / "mixed.keras"
    model.save(path)
    argv = [str(path), "--input-size", "9,11", "--num-samples", "3", "-o", str(tmp_path / "out")]
    options = common.make_parser("test", "test").parse_args(argv + (["--keep-batchnorm"] if keep else []))
    job = common.prepare_job(options, "{name}")
    names = {layer.name for layer in job.model.layers}
    assert ("bn1" in names) == keep and ("bn_fc" in names) == keep
    assert_close_rel(common.keras_outputs(job.model, job.samples)[0], job.reference[0], tol=1e-5)


JAX_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    sys.path.insert(0, sys.argv[1])
    import keras_zoo
    from tests.keras_zoo.test_folding import mixed_net
    assert keras.backend.backend() == "jax"
    rng = np.random.default_rng(0)
    model = mixed_net(rng)
    images = rng.standard_normal((2, 9, 11, 3)).astype(np.float32)
    folded = keras_zoo.fold_batchnorm(model)
    assert len(folded.layers) == len(model.layers) - 3
    for got, expected in zip(folded(images), model(images)):
        got, expected = np.asarray(got), np.asarray(expected)
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    print("ok")
""")


def test_folding_on_the_jax_backend():
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(ROOT)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]
