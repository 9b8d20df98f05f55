"""Quiet commands: `python -m keras_zoo list` imports no TensorFlow or Keras; `import keras_zoo` still makes
keras_zoo's .keras files load in safe mode; TensorFlow's start-up banners and progress lines stay off stderr
unless asked for (-v, or TF_CPP_MIN_LOG_LEVEL=0)."""

import logging
import os
import subprocess
import sys

import pytest

from keras_zoo import cli, startup
from tests.helpers import ROOT

BANNERS = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796173512.867849   21296 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1796173512.904143   21296 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]
OTHERS = [
    "E0000 00:00:1796173512.904143   21296 cuda_executor.cc:1] failed call to cuInit: an error",
    "a Python warning: something to know",
    "To enable the following instructions: a line of its own, after a line that was shown",
]


def run_python(code, *args, env=None, timeout=240):
    """``python -c code`` in a fresh process from the repository root, TF_CPP_MIN_LOG_LEVEL unset."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env=environment, timeout=timeout)


def test_list_imports_neither_tensorflow_nor_keras():
    code = ("import runpy, sys\n"
            "sys.argv = ['keras_zoo', 'list']\n"
            "try:\n    runpy.run_module('keras_zoo', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow', 'jax', 'torch'})\n"
            "print('HEAVY', heavy)\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "VGG16" in result.stdout and result.stdout.splitlines()[-1] == "HEAVY []"
    assert result.stderr == ""


def test_import_keras_zoo_loads_its_keras_files_in_safe_mode_in_a_fresh_process(tmp_path):
    """The contract `import keras_zoo` keeps, in either order of the imports: keras_zoo's custom layers are
    registered once Keras is imported, without keras_zoo importing Keras itself."""
    import keras

    from keras_zoo import layers

    inputs = keras.Input((8, 8, 3), name="data")
    outputs = layers.LRN(3, 1e-4, 0.75, name="norm")(layers.Conv2D(4, 3, pads=(1, 1, 1, 1), name="conv")(inputs))
    path = tmp_path / "custom.keras"
    keras.Model(inputs, outputs, name="custom").save(path)
    load = ("model = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
            "print(type(model.get_layer('norm')).__module__, model.get_layer('norm').__class__.__name__)\n")
    for imports in ("import keras_zoo, sys\nassert 'keras' not in sys.modules\nimport keras\n",
                    "import keras, sys\nimport keras_zoo\n"):
        result = run_python(imports + load, str(path))
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split() == ["keras_zoo.layers", "LRN"]
        if imports.startswith("import keras_zoo"):  # imported first, keras_zoo keeps TensorFlow's banners back
            assert result.stderr == ""


def test_the_filter_holds_back_start_up_lines_and_passes_the_rest(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setattr(startup, "held_back", [])
    lines = [BANNERS[0], BANNERS[1], OTHERS[0], BANNERS[2], BANNERS[3], OTHERS[1], OTHERS[2], BANNERS[4]]
    with startup.quiet_stderr():
        os.write(2, "".join(f"{line}\n" for line in lines).encode())
    assert capfd.readouterr().err.splitlines() == OTHERS
    assert startup.held_back == BANNERS


@pytest.mark.parametrize("level, shown", [("0", 8), ("1", 3), ("3", 2)])
def test_the_filter_follows_tensorflows_level(level, shown, capfd, monkeypatch):
    """0 shows everything (no filter at all); 1 hides INFO and absl's warning; 3 hides errors too."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    monkeypatch.setattr(startup, "held_back", [])
    lines = [*BANNERS, *OTHERS]
    with startup.quiet_stderr():
        os.write(2, "".join(f"{line}\n" for line in lines).encode())
    err = capfd.readouterr().err.splitlines()
    assert len(err) == shown, err
    assert sorted(err + startup.held_back) == sorted(lines)


@pytest.fixture
def command_loggers():
    """The loggers :func:`keras_zoo.cli.setup_logging` sets, restored after the test."""
    loggers = [logging.getLogger(name) for name in (*cli.CHATTY_LOGGERS, *cli.PROJECT_LOGGERS)]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    yield
    for logger, (level, propagate) in zip(loggers, saved):
        logger.setLevel(level)
        logger.propagate = propagate


def test_verbose_logging_shows_the_held_back_lines_and_tensorflows_progress(capsys, monkeypatch, command_loggers):
    monkeypatch.setattr(startup, "held_back", ["I0000 00:00:1.2   3 port.cc:153] oneDNN custom operations"])
    tensorflow_logger = logging.getLogger("tensorflow")
    cli.setup_logging(False)
    assert tensorflow_logger.level == logging.WARNING and capsys.readouterr().err == ""
    cli.setup_logging(True)
    assert tensorflow_logger.level == logging.INFO and logging.getLogger("keras_zoo").level == logging.DEBUG
    assert capsys.readouterr().err == "I0000 00:00:1.2   3 port.cc:153] oneDNN custom operations\n"
    assert startup.held_back == []


def test_a_command_prints_no_banner_nor_assets_lines(tmp_path):
    """`python -m export.saved_model` writes SavedModels (its check, the artifact): TensorFlow said
    'Assets written to ...' for each, after its start-up banners; now stderr holds only the command's own
    lines. With -v, TensorFlow's progress (and any start-up lines held back) is shown."""
    import keras

    inputs = keras.Input((16, 16, 3), name="data")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="conv")(inputs))
    keras.Model(inputs, keras.layers.Dense(3, name="fc")(pooled), name="tiny").save(tmp_path / "tiny.keras")
    command = ("import sys, runpy\nsys.argv = ['export.saved_model', *sys.argv[1:]]\n"
               "runpy.run_module('export.saved_model', run_name='__main__', alter_sys=True)\n")
    arguments = [str(tmp_path / "tiny.keras"), "-o", str(tmp_path / "serving"), "--num-samples", "2"]
    result = run_python(command, *arguments, env={"KERAS_ZOO_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.splitlines() == ["tiny: 2 sample inputs of 16x16",
                                          "tiny: folded 0 batch-norm/scale layers into 0 layers"], result.stderr
    verbose = run_python(command, *arguments, "-v", env={"KERAS_ZOO_HOME": str(tmp_path / "home")})
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    # TensorFlow's start-up banners depend on the CPU (oneDNN's is absent on some), so only its progress is sure.
    assert set(result.stderr.splitlines()) < set(verbose.stderr.splitlines())
    assert "Assets written to" in verbose.stderr
