"""The two image paths agree on a real JPEG: Pillow (keras_zoo.images: read_image + CropProtocol, used by the
evaluation, tools/classify.py and the demo) and TensorFlow (decode_image_bytes + fit_images inside the
SavedModel's serving_bytes signature), each resizing and cropping as the model card says."""

import numpy as np
import pytest

from export import common, saved_model
from keras_zoo import cards, images
from tests.helpers import fixture_path


# vgg16: shorter side 256, then the central 224 x 224; fcn8s: warped to 500 x 500
@pytest.mark.parametrize("model_name", ["vgg16", "fcn8s"])
def test_pillow_and_the_saved_model_bytes_signature_agree_on_a_real_jpeg(model_name, tmp_path):
    import keras
    import tensorflow as tf

    path = fixture_path("fcn/demo/image.jpg")  # a real photo: a 334 x 500 baseline JPEG
    source = cards.get_card(model_name).source()
    protocol = images.CropProtocol.from_card(source)
    expected = protocol(images.read_image(path))
    pixels = keras.Input((*protocol.input_size, 3), name="images")
    model = keras.Model(pixels, keras.layers.Activation("linear", name="pixels")(pixels))  # shows its input
    samples = expected[None]
    result = saved_model.export_saved_model(model, tmp_path / "1", samples=samples,
                                            reference=common.keras_outputs(model, samples),
                                            fit=images.fit_options(source))
    assert result.passed
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    got = loaded.signatures["serving_bytes"](images=tf.constant([path.read_bytes()]))["pixels"].numpy()[0]
    assert got.shape == expected.shape
    # Both decode with libjpeg's accurate integer DCT (identical pixels) and resample with the same triangle
    # filter in float32; only the order of the float operations differs: measured at most 0.01 of a grey
    # level. 0.05 leaves room for other CPUs' kernels yet fails on any real mismatch: TensorFlow's fast DCT
    # differs by up to 18 levels, a crop one pixel off or a resized size one pixel off by over a hundred.
    assert np.abs(got - expected).max() <= 0.05
