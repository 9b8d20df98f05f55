"""One SavedModel layout: the command (python -m export.saved_model) and the demo (python -m export.demo --export)
both write TensorFlow Serving's BASE/<version>/saved_model.pb."""

import numpy as np

from export import demo, saved_model


def _tiny_classifier():
    import keras

    keras.utils.set_random_seed(0)
    images = keras.Input((16, 16, 3), name="data")
    x = keras.layers.Conv2D(4, 3, strides=2, name="conv")(images)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(5, name="fc")(x)
    return keras.Model(images, keras.layers.Softmax(name="prob")(x), name="tiny")


def test_version_folder_is_the_tf_serving_layout(tmp_path):
    assert saved_model.version_folder(tmp_path / "m") == tmp_path / "m" / "1"
    assert saved_model.version_folder(tmp_path / "m", 3) == tmp_path / "m" / "3"


def test_the_command_writes_base_slash_version(tmp_path, capsys):
    path = tmp_path / "tiny.keras"
    _tiny_classifier().save(path)
    base = tmp_path / "served"
    assert saved_model.main([str(path), "-o", str(base), "--num-samples", "2", "--version", "2"]) == 0
    assert (base / "2" / "saved_model.pb").is_file()
    assert sorted(p.name for p in base.iterdir()) == ["2"]
    assert f"--model_base_path={base.resolve()}" in capsys.readouterr().out


def test_the_demo_writes_the_same_layout(tmp_path, capsys):
    model = _tiny_classifier()
    samples = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    failed = demo.export_and_verify(model, samples, tmp_path / "out")
    assert failed == []
    assert (tmp_path / "out" / "saved_model" / "1" / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "out" / "saved_model").iterdir()) == ["1"]
