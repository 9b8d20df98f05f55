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


def test_nothing_to_fold_returns_the_model_and_other_models_are_refused():
    model = keras_zoo.VGGM128(weights=None, include_preprocessing=False)
    assert keras_zoo.fold_batchnorm(model) is model
    with pytest.raises(ValueError, match="functional keras.Model.*Sequential"):
        keras_zoo.fold_batchnorm(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))


def test_zoo_builder_folds_on_request(rng):
    model = keras_zoo.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    _randomize(model, rng, kernels=False)  # Glorot kernels keep 50 layers finite
    folded = keras_zoo.fold_batchnorm(model)
    assert not [layer.name for layer in folded.layers if layer.name.startswith(("bn", "scale"))]
    assert len(folded.layers) == len(model.layers) - 2 * 53  # ResNet-50: 53 convolutions with BN + Scale
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    assert_close_rel(folded(images), model(images), tol=1e-5)
    built = keras_zoo.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3), fold_batchnorm=True)
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
