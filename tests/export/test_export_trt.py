"""export.trt: Keras -> verified ONNX -> TensorRT engine; without TensorRT/GPU, the ONNX and the instructions.

TensorRT cannot be installed here, so the version-dependent choices are tested through build_plan (the
expected plans are written out below from NVIDIA's documentation, see BUILD.md) and build_engine against a
stand-in ``tensorrt`` module that has exactly the members each version has.
"""

import json
import pathlib
import shlex
import subprocess
import sys
import types

import numpy as np
import pytest

from export import common, onnx as onnx_export, trt
from tests.helpers import ROOT, assert_close_rel
from tests.export.test_export_formats import SIZE, lenet, small_zoo_model

NO_TENSORRT = trt.tensorrt_unavailable()


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    from keras_zoo.convert import save_model

    folder = tmp_path_factory.mktemp("models")
    return {"small": save_model(small_zoo_model(), folder / "small_zoo.keras"),
            "lenet": save_model(lenet(), folder / "lenet.keras")}


def test_help_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "export.trt", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    for option in ("--precision", "--min-batch", "--opt-batch", "--max-batch", "--representative",
                   "--weights", "--input-size", "--output"):
        assert option in done.stdout


# --------------------------------------------------------------------------------------------- build plans

# (version, precision) -> (family, ONNX, network flags, builder flags set, cleared, trtexec options), as read in
# NVIDIA's documentation: 8.6 weakly typed, 10.x opt-in strong typing, 11.x strong typing only.
EXPECTED_PLANS = {
    ("8.6.1", "fp32"): ("8.6", "fp32", ("EXPLICIT_BATCH",), (), ("TF32",), ("--noTF32",)),
    ("8.6.1", "fp16"): ("8.6", "fp32", ("EXPLICIT_BATCH",), ("FP16",), (), ("--fp16",)),
    ("8.6.1", "int8"): ("8.6", "int8", ("EXPLICIT_BATCH",), ("INT8", "FP16"), (), ("--int8", "--fp16")),
    ("10.0.1", "fp32"): ("10.x", "fp32", ("STRONGLY_TYPED",), (), ("TF32",), ("--stronglyTyped", "--noTF32")),
    ("10.0.1", "fp16"): ("10.x", "fp16", ("STRONGLY_TYPED",), (), (), ("--stronglyTyped",)),
    ("10.13.3.9", "fp16"): ("10.x", "fp16", ("STRONGLY_TYPED",), (), (), ("--stronglyTyped",)),
    ("10.13.3.9", "int8"): ("10.x", "int8", ("STRONGLY_TYPED",), (), (), ("--stronglyTyped",)),
    ("11.4.0.106", "fp32"): ("11.x", "fp32", (), (), ("TF32",), ("--noTF32",)),
    ("11.4.0.106", "fp16"): ("11.x", "fp16", (), (), (), ()),
    ("11.4.0.106", "int8"): ("11.x", "int8", (), (), (), ()),
}


@pytest.mark.parametrize("version, precision", sorted(EXPECTED_PLANS))
def test_build_plan_per_version(version, precision):
    plan = trt.build_plan(version, precision)
    family, onnx, network, builder, cleared, trtexec = EXPECTED_PLANS[version, precision]
    assert (plan.family, plan.onnx, plan.network_flags, plan.builder_flags, plan.cleared_flags,
            plan.trtexec_flags) == (family, onnx, network, builder, cleared, trtexec)
    assert plan.tensorrt == version and plan.precision == precision and not plan.note
    with pytest.raises(AttributeError):  # a frozen record
        plan.onnx = "fp32"


def test_no_weak_typing_from_tensorrt_10_on():
    for version in ("10.0.1", "10.8.0.43", "10.13.3.9", "11.0.0", "11.4.0.106", "11.4.1"):
        for precision in trt.PRECISIONS:
            plan = trt.build_plan(version, precision)
            assert not {"FP16", "INT8", "BF16", "FP8"} & set(plan.builder_flags)
            assert not {"--fp16", "--int8", "--best", "--calib"} & set(plan.trtexec_flags)
            assert plan.onnx == precision  # each precision's own verified ONNX carries the types


def test_newer_tensorrt_is_built_as_11_with_a_note():
    plan = trt.build_plan("12.0.1", "fp16")
    assert (plan.family, plan.onnx, plan.network_flags, plan.builder_flags) == ("11.x", "fp16", (), ())
    assert "12.0.1" in plan.note and "11.x" in plan.note


@pytest.mark.parametrize("version, message", [
    ("8.5.3", "TensorRT 8.5.3 is older than 8.6"), ("7.2.3.4", "older than 8.6"),
    ("9.3.0.1", "9.x"), ("", "not a TensorRT version"), ("abc", "not a TensorRT version"),
    ("10", "not a TensorRT version"), ("10..1", "not a TensorRT version"), ("ten.0", "not a TensorRT version"),
    (None, "not a TensorRT version"), (10.0, "not a TensorRT version")])
def test_build_plan_refuses_what_it_does_not_know(version, message):
    with pytest.raises(common.ExportError, match=message) as caught:
        trt.build_plan(version, "fp16")
    assert "8.6, 10.x and 11.x" in str(caught.value) or "not a TensorRT version" in str(caught.value)


def test_build_plan_refuses_an_unknown_precision():
    with pytest.raises(common.ExportError, match="unknown precision 'fp8'"):
        trt.build_plan("10.0.1", "fp8")


# --------------------------------------------------------------------------------------------- a stand-in tensorrt

COMMON_BUILDER_FLAGS = ["DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS"]
FAKE_VERSIONS = {  # version -> (NetworkDefinitionCreationFlag members in bit order, BuilderFlag members)
    "8.6.1": (["EXPLICIT_BATCH", "EXPLICIT_PRECISION"], ["FP16", "INT8", *COMMON_BUILDER_FLAGS]),
    "10.13.3.9": (["EXPLICIT_BATCH", "STRONGLY_TYPED"], ["FP16", "INT8", "BF16", *COMMON_BUILDER_FLAGS]),
    "11.4.0.106": (["STRONGLY_TYPED"], COMMON_BUILDER_FLAGS),  # weak typing removed
}


class _Member:
    def __init__(self, kind, name, index):
        self.kind, self.name, self.index = kind, name, index

    def __int__(self):
        return self.index


class _Members:
    """An enum's members by name; every lookup is recorded, a missing one raises as a removed member does."""

    def __init__(self, calls, kind, names):
        self._calls, self._kind, self._names = calls, kind, list(names)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        self._calls.append(("lookup", self._kind, name))
        if name not in self._names:
            raise AttributeError(f"type object 'tensorrt.{self._kind}' has no attribute '{name}'")
        return _Member(self._kind, name, self._names.index(name))


def fake_tensorrt(version):
    """A ``tensorrt`` module with the members of ``version`` that build_engine may use, recording calls."""
    network_flags, builder_flags = FAKE_VERSIONS[version]
    calls = []

    class Config:
        def __setattr__(self, name, value):
            calls.append(("config attribute", name))
            raise AttributeError(f"'tensorrt.IBuilderConfig' object attribute '{name}' cannot be set here")

        def __getattr__(self, name):
            calls.append(("config attribute", name))
            raise AttributeError(name)

        def set_memory_pool_limit(self, pool, size):
            calls.append(("memory pool", pool.name, size))

        def add_optimization_profile(self, profile):
            calls.append(("profile added",))

        def set_flag(self, flag):
            calls.append(("set flag", flag.kind, flag.name))

        def clear_flag(self, flag):
            calls.append(("clear flag", flag.kind, flag.name))

    class Profile:
        def set_shape(self, name, *shapes):
            calls.append(("shape", name, *shapes))

    class Network:
        num_inputs = 1

        def get_input(self, index):
            return types.SimpleNamespace(name="images", shape=(-1, *SIZE, 3))

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags=0):
            calls.append(("create network", flags))
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls.append(("build",))
            return b"plan"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls.append(("parse", path))
            return True

    module = types.ModuleType("tensorrt")
    module.__version__ = version
    module.calls = calls
    module.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=None: None})
    module.Builder, module.OnnxParser = Builder, OnnxParser
    module.NetworkDefinitionCreationFlag = _Members(calls, "NetworkDefinitionCreationFlag", network_flags)
    module.BuilderFlag = _Members(calls, "BuilderFlag", builder_flags)
    module.MemoryPoolType = _Members(calls, "MemoryPoolType", ["WORKSPACE"])
    return module


def _build_with(monkeypatch, tmp_path, version, precision):
    fake = fake_tensorrt(version)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    paths = trt.onnx_files(tmp_path / "m.engine")
    assert trt.build_engine(paths, precision=precision, batch_range=(1, 4, 8)) == b"plan"
    return fake.calls, paths


def _looked_up(calls, kind):
    return {call[2] for call in calls if call[:2] == ("lookup", kind)}


@pytest.mark.parametrize("precision", ["fp16", "int8", "fp32"])
def test_tensorrt_11_builds_strongly_typed_without_the_removed_api(precision, monkeypatch, tmp_path):
    calls, paths = _build_with(monkeypatch, tmp_path, "11.4.0.106", precision)
    assert ("parse", str(paths[precision])) in calls  # fp16: the float16 ONNX; int8: the QDQ ONNX
    assert not {"FP16", "INT8"} & _looked_up(calls, "BuilderFlag")
    assert not [call for call in calls if call[0] == "config attribute"]  # no int8_calibrator, nothing else
    assert ("create network", 0) in calls  # strongly typed by default, no flag to give
    assert not [call for call in calls if call[0] == "set flag"]
    assert ("shape", "images", (1, *SIZE, 3), (4, *SIZE, 3), (8, *SIZE, 3)) in calls
    cleared = {call[2] for call in calls if call[0] == "clear flag"}
    assert cleared == ({"TF32"} if precision == "fp32" else set())  # fp32 means fp32, not TF32
    assert calls[-1] == ("build",)


def test_tensorrt_10_builds_fp16_strongly_typed_from_the_fp16_onnx(monkeypatch, tmp_path):
    calls, paths = _build_with(monkeypatch, tmp_path, "10.13.3.9", "fp16")
    assert ("parse", str(paths["fp16"])) in calls
    assert ("create network", 1 << 1) in calls  # STRONGLY_TYPED is bit 1 of 10.x's creation flags
    assert not [call for call in calls if call[0] in ("set flag", "config attribute")]


@pytest.mark.parametrize("precision, flags, onnx", [("fp16", {"FP16"}, "fp32"), ("int8", {"INT8", "FP16"}, "int8")])
def test_tensorrt_8_6_sets_explicit_batch_and_precision_flags(precision, flags, onnx, monkeypatch, tmp_path):
    calls, paths = _build_with(monkeypatch, tmp_path, "8.6.1", precision)
    assert ("parse", str(paths[onnx])) in calls
    assert ("create network", 1 << 0) in calls  # EXPLICIT_BATCH is bit 0
    assert {call[2] for call in calls if call[0] == "set flag"} == flags
    assert not [call for call in calls if call[0] == "config attribute"]  # QDQ: no calibrator


def test_unsupported_tensorrt_is_one_clear_error(monkeypatch, tmp_path):
    fake = fake_tensorrt("8.6.1")
    fake.__version__ = "8.5.3"
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    with pytest.raises(common.ExportError, match="TensorRT 8.5.3 is older than 8.6"):
        trt.build_engine(trt.onnx_files(tmp_path / "m.engine"), precision="fp16")
    assert not fake.calls


# --------------------------------------------------------------------------------------------- paths, commands

@pytest.mark.parametrize("engine, stem", [("out/r152.engine", "out/r152"), ("r152.engine", "r152"),
                                          ("exports/ResNet152/ResNet152.fp16.engine", "exports/ResNet152/ResNet152"),
                                          ("m.int8.plan", "m"), ("model", "model"), ("a.b.engine", "a.b")])
def test_onnx_files_lie_beside_the_engine(engine, stem):
    import pathlib

    assert trt.onnx_files(engine) == {"fp32": pathlib.Path(f"{stem}.onnx"), "fp16": pathlib.Path(f"{stem}.fp16.onnx"),
                                      "int8": pathlib.Path(f"{stem}.int8.onnx")}


def test_command_line_repeats_every_option_that_matters():
    parser = trt.make_parser()
    argv = ["resnet-152", "-o", "out dir/r152.engine", "--weights", "none", "--precision", "int8",
            "--min-batch", "2", "--opt-batch", "16", "--max-batch", "64", "--input-size", "320,320",
            "--samples", "photos", "--num-samples", "12", "--representative", "cal", "--num-representative", "40",
            "--keep-batchnorm", "--opset", "18", "--report", "r.json", "-v"]
    options = parser.parse_args(argv)
    command = trt.command_line(parser, options)
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "export.trt"]
    again = vars(parser.parse_args(words[3:]))
    assert again == {**vars(options), "verbose": False}
    assert "'out dir/r152.engine'" in command  # quoted for the shell
    # defaults stay out, the precision is always said
    plain = trt.command_line(parser, parser.parse_args(["vgg16"]))
    assert plain == "python -m export.trt vgg16 --precision fp16"
    fixed = shlex.split(trt.command_line(parser, parser.parse_args(["vgg16", "--batch", "4", "--input-size", "7"])))
    assert fixed[-4:] == ["--batch", "4", "--input-size", "7,7"]


def test_build_instructions_follow_the_plan_of_each_family():
    paths = trt.onnx_files("out/r152.engine")
    text = trt.build_instructions("python -m export.trt resnet-152 -o out/r152.engine --precision fp16", paths,
                                  "out/r152.engine", "fp16", (224, 224), (1, 8, 32))
    assert "python -m export.trt resnet-152 -o out/r152.engine --precision fp16" in text
    lines = text.splitlines()
    commands = {lines[i - 1].strip(): lines[i].split() for i, line in enumerate(lines) if "trtexec " in line}
    assert set(commands) == {"# TensorRT 8.6", "# TensorRT 10.x", "# TensorRT 11.x"}
    shapes = ["--minShapes=images:1x224x224x3", "--optShapes=images:8x224x224x3", "--maxShapes=images:32x224x224x3"]
    assert commands["# TensorRT 8.6"] == ["trtexec", "--onnx=out/r152.onnx", "--saveEngine=out/r152.engine", *shapes,
                                          "--fp16"]
    assert commands["# TensorRT 10.x"] == ["trtexec", "--onnx=out/r152.fp16.onnx", "--saveEngine=out/r152.engine",
                                           *shapes, "--stronglyTyped"]
    assert commands["# TensorRT 11.x"] == ["trtexec", "--onnx=out/r152.fp16.onnx", "--saveEngine=out/r152.engine",
                                           *shapes]
    int8 = trt.build_instructions("c", paths, "out/r152.engine", "int8", (32, 32), (1, 1, 1))
    assert "--onnx=out/r152.int8.onnx" in int8 and "--int8 --fp16" in int8 and "--onnx=out/r152.onnx" not in int8


def _printed_command(err):
    line = next(line.strip() for line in err.splitlines() if line.strip().startswith("python -m export.trt"))
    return shlex.split(line)


@pytest.mark.skipif(NO_TENSORRT is None, reason="TensorRT and a GPU are present: the engine gets built")
def test_without_tensorrt_the_onnx_files_are_verified_beside_the_engine(keras_files, tmp_path, capsys):
    import keras
    import onnx

    assert "tensorrt" in NO_TENSORRT or "GPU" in NO_TENSORRT or "cuda" in NO_TENSORRT
    out = tmp_path / "out"
    engine = out / "r152.engine"
    argv = [str(keras_files["small"]), "-o", str(engine), "--weights", "none", "--num-samples", "4",
            "--min-batch", "2", "--opt-batch", "4", "--max-batch", "16"]
    status = trt.main(argv)
    captured = capsys.readouterr()
    assert status == trt.NO_ENGINE_STATUS != 0
    # OUT.onnx and OUT.fp16.onnx beside OUT.engine, each with its report; nothing named after the model
    assert sorted(p.name for p in out.iterdir()) == ["r152.fp16.onnx", "r152.fp16.onnx.report.json", "r152.onnx",
                                                     "r152.onnx.report.json"]
    assert not list(tmp_path.glob("*small_zoo*")) and not list(ROOT.glob("small_zoo*"))
    fp32 = json.loads((out / "r152.onnx.report.json").read_text())
    fp16 = json.loads((out / "r152.fp16.onnx.report.json").read_text())
    assert fp32["passed"] and fp32["precision"] == "float32" and fp32["samples"] == 4
    assert fp16["passed"] and fp16["precision"] == "float16" and fp16["artifact"] == str(out / "r152.fp16.onnx")
    # the fp16 file holds float16 weights behind float32 inputs and outputs, and really is the model
    proto = onnx.load(str(out / "r152.fp16.onnx"))
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE}
    assert {init.data_type for init in proto.graph.initializer} & floats == {onnx.TensorProto.FLOAT16}
    assert {v.type.tensor_type.elem_type for v in [*proto.graph.input, *proto.graph.output]} == {onnx.TensorProto.FLOAT}
    samples = common.sample_images(SIZE, 3)
    want = keras.saving.load_model(keras_files["small"]).predict(samples, verbose=0)
    assert_close_rel(onnx_export.OnnxRunner(out / "r152.onnx")(samples)[0], want)
    assert_close_rel(onnx_export.OnnxRunner(out / "r152.fp16.onnx")(samples)[0], want, 1e-2)
    # the commands repeat the user's options and name the files written
    assert "no TensorRT engine built on this machine" in captured.err
    parser = trt.make_parser()
    assert vars(parser.parse_args(_printed_command(captured.err)[3:])) == vars(parser.parse_args(argv))
    assert f"--onnx={out / 'r152.onnx'}" in captured.err and f"--onnx={out / 'r152.fp16.onnx'}" in captured.err
    assert f"--saveEngine={engine}" in captured.err and "--minShapes=images:2x48x48x3" in captured.err
    assert "--maxShapes=images:16x48x48x3 --stronglyTyped" in captured.err


@pytest.mark.skipif(NO_TENSORRT is None, reason="TensorRT and a GPU are present: the engine gets built")
def test_without_tensorrt_int8_writes_the_explicitly_quantized_onnx(keras_files, tmp_path, capsys):
    argv = [str(keras_files["lenet"]), "-o", str(tmp_path / "ln.engine"), "--num-samples", "16", "--precision",
            "int8", "--num-representative", "32"]
    status = trt.main(argv)
    captured = capsys.readouterr()
    assert status == trt.NO_ENGINE_STATUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ln.int8.onnx", "ln.int8.onnx.report.json", "ln.onnx",
                                                          "ln.onnx.report.json"]
    report = json.loads((tmp_path / "ln.int8.onnx.report.json").read_text())
    assert report["passed"] and report["precision"] == "int8" and report["errors"]["top1_agreement"] >= 0.9
    assert f"--onnx={tmp_path / 'ln.int8.onnx'}" in captured.err and "--int8 --fp16" in captured.err
    parser = trt.make_parser()
    assert vars(parser.parse_args(_printed_command(captured.err)[3:])) == vars(parser.parse_args(argv))


def test_bad_batch_range_is_one_clear_error(keras_files, capsys):
    status = trt.main([str(keras_files["small"]), "--min-batch", "8", "--opt-batch", "4", "--num-samples", "2"])
    assert status == 1
    assert "batches must grow" in capsys.readouterr().err


def test_an_engine_named_like_its_onnx_is_refused(keras_files, tmp_path, capsys):
    status = trt.main([str(keras_files["small"]), "-o", str(tmp_path / "m.onnx"), "--num-samples", "2"])
    assert status == 1
    assert "would overwrite its own ONNX file" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_an_fp16_onnx_failing_its_check_is_not_written(tmp_path):
    from keras_zoo.files import Rejected

    model = small_zoo_model()
    samples = common.sample_images(SIZE, 4)
    reference = common.keras_outputs(model, samples)
    paths = trt.onnx_files(tmp_path / "m.engine")
    assert onnx_export.export_onnx(model, paths["fp32"], samples=samples, reference=reference).passed
    wrong = [output[:, ::-1] * 2 for output in reference]  # not the model's outputs
    try:
        result = onnx_export.export_onnx_fp16(paths["fp32"], paths["fp16"], samples=samples, reference=wrong)
        assert not result.passed and result.precision == "float16"
    except Rejected:
        pass
    assert not paths["fp16"].exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# --------------------------------------------------------------------------------------------- on a GPU

def _verified_onnx(model, samples, reference, folder, precision):
    paths = trt.onnx_files(folder / f"m.{precision}.engine")
    assert onnx_export.export_onnx(model, paths["fp32"], samples=samples, reference=reference).passed
    if precision == "fp16":
        assert onnx_export.export_onnx_fp16(paths["fp32"], paths["fp16"], samples=samples, reference=reference).passed
    return paths


@pytest.mark.skipif(NO_TENSORRT is not None, reason=f"no engine can be built here: {NO_TENSORRT}")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_matches_keras(precision, tmp_path):
    model = small_zoo_model()
    samples = common.sample_images(SIZE, 8)
    reference = common.keras_outputs(model, samples)
    paths = _verified_onnx(model, samples, reference, tmp_path, precision)
    engine = tmp_path / f"small.{precision}.engine"
    result = trt.export_engine(paths, engine, samples=samples, reference=reference,
                               output_names=onnx_export.output_names(model), precision=precision,
                               batch_range=(1, 4, 8))
    assert result.passed
    runner = trt.EngineRunner(engine.read_bytes(), max_batch=8)
    tolerance = 1e-4 if precision == "fp32" else 1e-2
    assert_close_rel(runner(samples[:3])[0], reference[0][:3], tolerance)


@pytest.mark.skipif(NO_TENSORRT is not None, reason=f"no engine can be built here: {NO_TENSORRT}")
def test_int8_engine_agrees_on_real_photos(tmp_path):
    model = lenet()
    photos = common.sample_images((28, 28), 32, channels=1)
    reference = common.keras_outputs(model, photos)
    paths = _verified_onnx(model, photos, reference, tmp_path, "int8")
    calibration = common.sample_images((28, 28), 48, channels=1)[16:]
    onnx_export.quantize_int8(paths["fp32"], paths["int8"], calibration, target="tensorrt")
    engine = trt.build_engine(paths, precision="int8", batch_range=(1, 8, 32))
    got = trt.EngineRunner(engine, max_batch=32)(photos)[0]
    assert np.mean(got.argmax(-1) == reference[0].argmax(-1)) >= 0.9


def test_engine_is_judged_on_the_logits_and_written_without_check_files(monkeypatch, tmp_path):
    """A softmax model's engine is built from a copy of the ONNX with the logits as extra outputs and judged on
    them; the copy is no artifact. The fake TensorRT 'engine' is the ONNX it parsed, run by ONNX Runtime."""
    model = small_zoo_model()
    samples = common.sample_images(SIZE, 4)
    reference, reference_logits = common.reference_outputs(model, samples)
    assert reference_logits, "the test model must end in a softmax"
    paths = _verified_onnx(model, samples, reference, tmp_path, "fp32")
    fake = fake_tensorrt("11.4.0.106")
    fake.Builder.build_serialized_network = lambda self, network, config: pathlib.Path(
        [call[1] for call in fake.calls if call[0] == "parse"][-1]).read_bytes()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)

    class OnnxEngine:
        def __init__(self, engine_bytes, *, max_batch):
            import onnxruntime

            self.session = onnxruntime.InferenceSession(engine_bytes, providers=["CPUExecutionProvider"])
            self.outputs = [output.name for output in self.session.get_outputs()]

        def __call__(self, images):
            return self.session.run(None, {onnx_export.INPUT_NAME: np.asarray(images, np.float32)})

    monkeypatch.setattr(trt, "EngineRunner", OnnxEngine)
    engine = tmp_path / "m.fp32.engine"
    before = sorted(path.name for path in tmp_path.iterdir())
    result = trt.export_engine(paths, engine, samples=samples, reference=reference,
                               output_names=onnx_export.output_names(model), reference_logits=reference_logits,
                               precision="fp32", batch_range=(1, 4, 4))
    assert result.passed and result.errors["judged_on"] == "logits"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(before + [engine.name])
    assert [call[1] for call in fake.calls if call[0] == "parse"][-1] != str(paths["fp32"])  # the check copy
    assert any(name.endswith("_logits") for name in OnnxEngine(engine.read_bytes(), max_batch=4).outputs)
    wrong = {index: logits * 1.01 for index, logits in reference_logits.items()}
    refused = trt.export_engine(paths, tmp_path / "again.engine", samples=samples, reference=reference,
                                output_names=onnx_export.output_names(model), reference_logits=wrong,
                                precision="fp32", batch_range=(1, 4, 4))
    assert not refused.passed and "logits" in "; ".join(refused.failures)
    assert not (tmp_path / "again.engine").exists()
