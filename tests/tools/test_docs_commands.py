"""Every command line of README.md and BUILD.md runs, so the docs cannot drift from the commands.

The fenced shell blocks (```bash, ```sh, ```console) are read line by line: a backslash continues a line, a
here-document belongs to its command, whole-line comments are no commands. Each command runs through bash in a
sandbox folder standing in for the clone (the packages linked in; HOME, KERAS_ZOO_HOME and a KERAS_ZOO_MIRROR
folder inside it; offline) holding tiny inputs: photos, a folder of class folders, a small Caffe net and
MatConvNet net, a Caffe Model Zoo folder whose caffemodel is in the mirror. Usage notation is run twice: with
every ``[...]`` part left out, and with every part in and its placeholders filled (PLACEHOLDERS).

What the test adds to a line to run it here is in ADDED (each with its reason), what it expects other than
exit status 0 in EXPECTED; the lines it cannot run are in SKIPPED, each with its reason. A documented command
that is neither run nor skipped fails ``test_every_documented_command_is_run_or_skipped``; an entry of these
tables that no longer matches a documented line fails ``test_no_stale_entries``. The few slow lines (SLOW,
tens of seconds each on two cores) are marked ``slow`` and still run: ``-m "not slow"`` leaves them out.
"""

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT

DOCS = ("README.md", "BUILD.md")
SHELL_FENCES = ("bash", "sh", "console", "shell")
PACKAGES = ("tools", "export", "keras_zoo", "converters")
TIMEOUT_S = 600

# the lines that cannot run here, with the reason for each (the CI runs the make targets)
SKIPPED = {
    "make demo": "creates .venv and downloads the original weights: the CI runs it",
    "make test": "creates .venv and runs this whole suite: the CI runs it",
    "pip install": "installs packages (on a GPU host)",
    "docker run": "needs Docker and the TensorFlow Serving image",
    "curl": "asks the TensorFlow Serving server above",
    "python - <<'EOF'": "a client of the TensorFlow Serving server above",
    "trtexec": "TensorRT's own tool, on a GPU host",
}

# usage notation: what stands in for each placeholder when a line is run with its optional parts
PLACEHOLDERS = {"H,W": "32,32", "B,G,R": "104,117,123", "NAME,...": "prediction"}

# (pattern a command matches, the arguments added to it here, why)
RANDOM_WEIGHTS = ["--weights", "none"]
ADDED = [
    (r"^python (-m export\.(saved_model|tflite|onnx|trt)|tools/(classify|segment|evaluate)\.py) ",
     RANDOM_WEIGHTS, "offline, no original weights: untrained weights of the same architecture"),
    (r"^python -m export\.(saved_model|tflite|onnx|trt) ", ["--num-samples", "2"],
     "the parity checks on 2 photos instead of 16: the same checks, faster"),
    (r"(-q|--quantize|--precision) int8", ["--num-representative", "2"], "int8 calibrated on 2 photos: faster"),
]

# what a line's run must show other than exit status 0, and why
ENGINE_STATUS = 3  # export.trt: the ONNX files are written and verified, but this machine builds no engine
EXPECTED = [
    (r"^python -m export\.trt ", "trt", "no NVIDIA GPU or TensorRT here: exit status 3 after the ONNX files"),
    (r"(-q|--quantize|--precision) (int8|int16x8|dynamic)", "int8",
     "int8 (dynamic included) of random weights: class scores nearly tied, its top-1 check may fail (exit status 1)"),
]

# the lines that take tens of seconds each on two cores (marked slow; they still run)
SLOW = r"^python -m export\.bench |^python -m export\.saved_model (vgg16|resnet)"

# a line that needs what an earlier line of the docs writes (the lines may run in any order, or apart)
SERVING_EXPORT = "python -m export.saved_model resnet-50 -o exports/resnet50"
TFLITE_EXPORT = "python -m export.tflite googlenet -q float32"
NEEDS = {"saved_model_cli show --dir exports/resnet50/1 --all": SERVING_EXPORT,
         "python -c \"import tensorflow as tf; m = tf.saved_model.load('exports/resnet50/1'); \\": SERVING_EXPORT,
         "python -m export.speed exports/GoogLeNet/GoogLeNet.float32.tflite": TFLITE_EXPORT}

# the trtexec lines BUILD.md shows are what this documented command prints (here it builds no engine)
TRTEXEC_SHOWN_BY = "python -m export.trt googlenet -o googlenet.engine"


@dataclasses.dataclass(frozen=True)
class Command:
    doc: str
    line: int  # of its first line in the doc
    text: str  # as written: continuation lines and a here-document included, lines joined by newlines

    @property
    def first_line(self):
        return self.text.split("\n", 1)[0]


def doc_commands(doc):
    """The :class:`Command` s of one doc's fenced shell blocks, in order."""
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    commands, index, fence = [], 0, None
    while index < len(lines):
        line = lines[index]
        index += 1
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = stripped[3:].strip() if fence is None else None
            continue
        if fence not in SHELL_FENCES or not stripped or stripped.startswith("#"):
            continue
        start, text = index, line[2:] if fence == "console" and line.startswith("$ ") else line
        while text.endswith("\\") and index < len(lines):
            text += "\n" + lines[index]
            index += 1
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", text)
        if heredoc:
            while index < len(lines):
                text += "\n" + lines[index]
                index += 1
                if lines[index - 1].strip() == heredoc[1]:
                    break
        commands.append(Command(doc, start, text))
    return commands


def all_commands():
    return [command for doc in DOCS for command in doc_commands(doc)]


def skip_reason(command):
    """The SKIPPED entry of a command: its whole text, or the start of its first line ('trtexec')."""
    for key, reason in SKIPPED.items():
        if command.text == key or command.first_line == key or command.first_line.startswith(key + " "):
            return reason
    return None


def without_comment(text):
    """The command without its trailing '# comment' (a '#' starting a word outside quotes)."""
    quote, previous = None, " "
    for position, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and previous.isspace():
            return text[:position].rstrip()
        previous = char
    return text.rstrip()


def variants(command):
    """``[(name, shell text)]`` to run: the line; for usage notation ``[...]``, without and with its parts."""
    text = without_comment(command.text)
    if "[" not in text or "'" in text or '"' in text:
        return [("as written", text)]
    bare = re.sub(r"\s*\[[^\]]*\]", "", text)
    full = re.sub(r"\[([^\]]*)\]", r"\1", text)
    for placeholder, value in PLACEHOLDERS.items():
        full = full.replace(placeholder, value)
    return [("without its [...] parts", bare), ("with every [...] part", full)]


def added_arguments(text):
    words = text.split()
    extra = []
    for pattern, arguments, _ in ADDED:
        if re.search(pattern, text) and arguments[0] not in words:
            extra += arguments
    return extra


def expectations(text):
    return {kind for pattern, kind, _ in EXPECTED if re.search(pattern, text)}


def runnable():
    """pytest params: every (command, variant) the test runs."""
    params = []
    for command in all_commands():
        if skip_reason(command) is not None:
            continue
        for name, text in variants(command):
            marks = [pytest.mark.slow] if re.search(SLOW, text) else []
            params.append(pytest.param(command, text, id=f"{command.doc}:{command.line}:{name}", marks=marks))
    return params


# --------------------------------------------------------------------------------------------- the sandbox

def _photo(path, size=(60, 80), seed=0):
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.chelsea()).resize(size[::-1])
    array = np.asarray(photo).astype(np.int16) + np.random.default_rng(seed).integers(-20, 20, (*size, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path)
    return path


TINY_PROTOTXT = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc2" type: "InnerProduct" bottom: "pool1" top: "fc2" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc2" top: "prob" }
"""


def make_sandbox(root):
    """The folder the documented lines run in, and their environment."""
    from converters.writers.mat import write_mat
    from keras_zoo.random_weights import random_caffemodel

    root.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        (root / package).symlink_to(ROOT / package)
    for name in ("photo.jpg", "cat.jpg"):
        _photo(root / name)
    for index, class_id in enumerate(("n01440764", "n01443537")):  # the first two ImageNet classes
        _photo(root / "val" / class_id / f"{index}.jpg", seed=index)
    for index in range(2):
        _photo(root / "home" / "calibration_photos" / f"{index}.jpg", seed=10 + index)
    (root / "deploy.prototxt").write_text(TINY_PROTOTXT)
    random_caffemodel(root / "deploy.prototxt", root / "net.caffemodel")
    rng = np.random.default_rng(0)
    write_mat(root / "net.mat", {
        "layers": [{"type": "conv", "name": "conv1", "pad": 1,
                    "weights": [rng.standard_normal((3, 3, 3, 4)).astype(np.float32), np.zeros((1, 4), np.float32)]},
                   {"type": "relu", "name": "relu1"},
                   {"type": "conv", "name": "fc2",
                    "weights": [rng.standard_normal((4, 3, 4, 5)).astype(np.float32), np.ones((1, 5), np.float32)]}],
        "meta": {"normalization": {"averageImage": (rng.random((4, 3, 3)) * 100).astype(np.float32),
                                   "imageSize": np.array([[4.0, 3, 3]])}}})
    # a Caffe Model Zoo folder; its caffemodel (random weights, SHA1 in the readme) is in the mirror
    zoo = root / "models" / "bvlc_googlenet"
    zoo.mkdir(parents=True)
    shutil.copy(root / "deploy.prototxt", zoo / "deploy.prototxt")
    mirror = root / "mirror"
    mirror.mkdir()
    # (not the zoo's bvlc_googlenet.caffemodel: the mirror would offer it to the GoogLeNet card too)
    caffemodel = random_caffemodel(zoo / "deploy.prototxt", mirror / "tiny_googlenet.caffemodel", seed=1)
    sha1 = hashlib.sha1(caffemodel.read_bytes()).hexdigest()
    (zoo / "readme.md").write_text(
        "---\nname: BVLC GoogleNet Model (a tiny stand-in)\ncaffemodel: tiny_googlenet.caffemodel\n"
        "caffemodel_url: http://dl.caffe.berkeleyvision.org/tiny_googlenet.caffemodel\n"
        f"license: unrestricted\nsha1: {sha1}\n---\n\nA stand-in with random weights.\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("KERAS_ZOO_")}
    env.pop("PYTHONPATH", None)
    env.update(PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}", HOME=str(root / "home"),
               KERAS_ZOO_HOME=str(root / "zoo_home"), KERAS_ZOO_MIRROR=str(mirror), KERAS_ZOO_OFFLINE="1",
               KERAS_ZOO_SPEED_SECONDS="0.05", KERAS_BACKEND="tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("clone")
    return {"root": root, "env": make_sandbox(root), "ran": {}}


def run_line(sandbox, text):
    """Run one shell line in the sandbox (once): ``(exit status, output)``."""
    if text not in sandbox["ran"]:
        result = subprocess.run(["bash", "-c", text], cwd=sandbox["root"], env=sandbox["env"], capture_output=True,
                                text=True, timeout=TIMEOUT_S)
        sandbox["ran"][text] = (result.returncode, result.stdout + result.stderr)
    return sandbox["ran"][text]


def with_additions(text):
    extra = added_arguments(text)
    return f"{text} {' '.join(extra)}" if extra else text


# --------------------------------------------------------------------------------------------- the tests

@pytest.mark.parametrize("command, text", runnable())
def test_documented_command_runs(sandbox, command, text):
    needed = NEEDS.get(without_comment(command.first_line))
    if needed is not None:
        earlier = next(c for c in all_commands() if without_comment(c.text) == needed)
        status, output = run_line(sandbox, with_additions(without_comment(earlier.text)))
        assert status == 0, f"{earlier.doc}:{earlier.line} (needed by line {command.line}) failed:\n{output}"
    line = with_additions(text)
    status, output = run_line(sandbox, line)
    expect = expectations(text)
    where = f"{command.doc}:{command.line}: {line}\nexit status {status}:\n{output[-6000:]}"
    assert "Traceback (most recent call last)" not in output, where
    if "int8" in expect and status == 1:  # also export.trt's int8 ONNX step, before any engine
        assert "parity check failed" in output and "top-1" in output, where
    elif "trt" in expect:
        from export.trt import tensorrt_unavailable

        assert status == (ENGINE_STATUS if tensorrt_unavailable() else 0), where
        assert status == 0 or "written and verified" in output, where
    else:
        assert status == 0, where


def test_the_trtexec_lines_shown_are_what_export_trt_prints(sandbox):
    """BUILD.md shows the trtexec lines `export.trt` prints where it builds no engine: they must be the same."""
    from export.trt import tensorrt_unavailable

    if not tensorrt_unavailable():
        pytest.skip("TensorRT and a GPU are present: export.trt builds the engine and prints no trtexec lines")
    shown = [" ".join(command.text.replace("\\\n", " ").split()) for command in doc_commands("BUILD.md")
             if command.first_line.startswith("trtexec --onnx=")]
    assert len(shown) == 3
    status, output = run_line(sandbox, with_additions(TRTEXEC_SHOWN_BY))
    assert status == ENGINE_STATUS, output
    printed = {" ".join(line.split()) for line in output.splitlines()}
    for line in shown:
        assert line in printed, f"BUILD.md shows {line!r}; export.trt printed:\n{output}"


def test_every_documented_command_is_run_or_skipped():
    commands = all_commands()
    assert len(commands) >= 30, "the docs' shell blocks were not found"
    run = {param.values[0] for param in runnable()}
    for command in commands:
        assert command in run or skip_reason(command), f"{command.doc}:{command.line} neither run nor skipped"


def test_no_stale_entries():
    commands = all_commands()
    texts = {command.text for command in commands}
    for key in SKIPPED:
        assert any(skip_reason(command) == SKIPPED[key] for command in commands), f"SKIPPED: no line {key!r}"
    for key, needed in NEEDS.items():
        documented = {without_comment(command.first_line) for command in commands}
        assert key in documented, f"NEEDS: {key!r} is no documented line"
        assert needed in {without_comment(text) for text in texts}, f"NEEDS: {needed!r} is no documented line"
    assert TRTEXEC_SHOWN_BY in {without_comment(text) for text in texts}
    for pattern, *_ in ADDED + EXPECTED:
        assert any(re.search(pattern, command.text) for command in commands), f"no line matches {pattern!r}"


def test_the_line_reader_joins_continuations_and_here_documents(tmp_path, monkeypatch):
    doc = tmp_path / "DOC.md"
    doc.write_text("text\n```bash\n# a comment\nls -l \\\n    -a   # a listing\ncat <<'EOF'\nhello\nEOF\n```\n"
                   "```python\nprint()\n```\n```console\n$ echo hi\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [(c.line, c.text) for c in doc_commands("DOC.md")] == [
        (4, "ls -l \\\n    -a   # a listing"), (6, "cat <<'EOF'\nhello\nEOF"), (14, "echo hi")]
    assert without_comment("ls -l \\\n    -a   # a listing") == "ls -l \\\n    -a"
    assert without_comment("echo '# not a comment' x#y # comment") == "echo '# not a comment' x#y"
    assert variants(Command("D", 1, "tool a [--size H,W] [--flag]  # usage")) == [
        ("without its [...] parts", "tool a"), ("with every [...] part", "tool a --size 32,32 --flag")]


def test_make_test_shows_skip_reasons():
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    pytest_line = next(line for line in recipe[1].splitlines() if "pytest" in line)
    assert re.search(r"\s-r\w*s", pytest_line), pytest_line


INTERNAL_WORDS = r"\b(seeds?|steering|bar|issues?|sessions?|helpers?|DESIGN|rules?)\b"


def skip_messages():
    """``[(file:line, text)]`` of every skip reason in the tests: pytest.skip(...), skipif(reason=...),
    importorskip(reason=...), the constant parts of f-strings included."""
    import ast

    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if not re.search(r"(^|\.)(skip|skipif|importorskip|xfail)$", name):
                continue
            given = [*node.args] if name.endswith(".skip") or name == "skip" else []
            given += [keyword.value for keyword in node.keywords if keyword.arg in ("reason", "msg")]
            for value in given:
                parts = [part for part in ast.walk(value) if isinstance(part, ast.Constant)
                         and isinstance(part.value, str)]
                if parts:
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", "".join(p.value for p in parts)))
    return found


def test_skip_reasons_name_no_internal_material():
    messages = skip_messages()
    assert any("KERAS_ZOO_FIXTURES" in text for _, text in messages)
    for where, text in messages:
        assert not re.search(INTERNAL_WORDS, text, flags=re.IGNORECASE), f"{where}: {text!r}"
        if "absent" in text and "fixture" in text.lower():
            assert "KERAS_ZOO_FIXTURES" in text, f"{where}: a missing fixture's skip says what to set: {text!r}"
