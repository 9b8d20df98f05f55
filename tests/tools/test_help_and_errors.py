"""Every command's --help is plain text in one style, and every command's error line starts with 'error: '."""

import importlib
import pathlib
import re

import pytest

from keras_zoo import downloads
from keras_zoo.cards import FileSpec
from tests.helpers import load_tool

TOOLS = ("benchmark", "benchmark_convert", "classify", "convert_caffe", "convert_matconvnet", "evaluate", "segment")
MODULES = {"python -m keras_zoo": "keras_zoo.__main__", "python -m keras_zoo list": "keras_zoo.listing",
           "python -m keras_zoo diagram": "keras_zoo.diagram", "python -m export": "export.__main__",
           "python -m export.saved_model": "export.saved_model", "python -m export.tflite": "export.tflite",
           "python -m export.onnx": "export.onnx", "python -m export.trt": "export.trt",
           "python -m export.bench": "export.bench", "python -m export.demo": "export.demo"}
COMMANDS = [f"tools/{name}.py" for name in TOOLS] + list(MODULES)


def command_main(command):
    if command.startswith("tools/"):
        return load_tool(command[len("tools/"):-len(".py")]).main
    return importlib.import_module(MODULES[command]).main


def run(command, argv, capsys):
    """``(exit status, stdout, stderr)`` of one command's ``main(argv)``, in this process."""
    try:
        status = command_main(command)(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    out, err = capsys.readouterr()
    return status, out, err


def option_entries(text):
    """The help of each option and positional argument, its wrapped lines joined."""
    entries, current = [], None
    for line in text.splitlines():
        if re.match(r"^  \S", line):  # an option's (or argument's) first line
            current = [line.strip()]
            entries.append(current)
        elif current is not None and re.match(r"^ {6,}\S", line):
            current.append(line.strip())
        else:
            current = None
    return [" ".join(entry) for entry in entries]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_plain_text_in_one_style(command, capsys):
    status, out, err = run(command, ["--help"], capsys)
    assert status == 0 and out.startswith("usage: "), (status, out, err)
    assert "`" not in out, f"{command} --help shows reStructuredText markup:\n{out}"
    assert not re.search(r":(func|class|mod|meth|attr):", out), out
    assert not re.search(r"::\s*$", out, flags=re.MULTILINE), f"{command} --help ends a line with '::'"
    assert "seed" not in out.lower(), f"{command} --help names internal material"
    for entry in option_entries(out):
        assert entry.count("(default") <= 1, f"{command}: the default is said twice: {entry!r}"
        assert not re.search(r"\(default[^:]", entry), f"{command}: a default not written '(default: X)': {entry!r}"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_usage_error_is_one_error_line(command, capsys):
    status, out, err = run(command, ["--no-such-option"] if command != "python -m export" else ["no_such"],
                           capsys)
    assert status == 2, (status, out, err)
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: ") and sum(line.startswith("error: ") for line in lines) == 1, err


def _failing_runs(tmp_path):
    """A quick failing run of each command that reports its own errors (a missing file, usually)."""
    missing = str(tmp_path / "missing.keras")
    return {
        "tools/classify.py": [str(tmp_path / "photo.jpg"), "--model", missing],
        "tools/segment.py": [str(tmp_path / "photo.jpg"), "--model", missing],
        "tools/evaluate.py": ["classification", str(tmp_path), "--model", missing],
        "tools/convert_caffe.py": [str(tmp_path / "net.prototxt"), str(tmp_path / "net.caffemodel"), "-o",
                                   str(tmp_path / "net.keras")],
        "tools/convert_matconvnet.py": [str(tmp_path / "net.mat"), "-o", str(tmp_path / "net.keras")],
        "tools/benchmark_convert.py": ["--workdir", str(tmp_path / "a_file")],
        "python -m keras_zoo diagram": [missing],
        "python -m keras_zoo": ["no_such_command"],
        "python -m export.saved_model": [missing],
        "python -m export.tflite": [missing],
        "python -m export.onnx": [missing],
        "python -m export.trt": [missing],
        "python -m export.bench": [missing],
        "python -m export.demo": ["--model", "no_such_model"],
    }


@pytest.mark.parametrize("command", sorted(_failing_runs(pathlib.Path("."))))
def test_a_failure_is_one_error_line(command, tmp_path, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    status, out, err = run(command, _failing_runs(tmp_path)[command], capsys)
    assert status not in (0, None), (status, out, err)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), err
    assert not any(line.lower().startswith(("demo failed", "benchmark failed", "benchmark_convert:"))
                   for line in lines), err


@pytest.mark.parametrize("command", ["python -m export.onnx", "python -m export.tflite", "python -m export.saved_model",
                                     "python -m keras_zoo diagram"])
def test_a_truncated_keras_file_is_named_in_one_error_line(command, tmp_path, capsys):
    broken = tmp_path / "net.keras"
    broken.write_bytes(b"PK\x03\x04" + bytes(100))  # a zip's first bytes, the rest cut off
    status, out, err = run(command, [str(broken), "-o", str(tmp_path / "out")] if command.startswith("python -m export")
                           else [str(broken)], capsys)
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert status not in (0, None) and lines == [f"error: {broken}: not a .keras archive: no complete zip file "
                                                 "(truncated, or another format)"], (status, out, err)
    assert not (tmp_path / "out").exists()


def test_the_missing_file_hint_reads_plainly(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_ZOO_OFFLINE", "1")
    monkeypatch.delenv("KERAS_ZOO_MIRROR", raising=False)
    with pytest.raises(downloads.WeightsUnavailable) as unchecked:
        downloads.fetch(FileSpec("net.caffemodel", "https://example.org/net.caffemodel"), progress=False)
    message = str(unchecked.value)
    assert "Put it" not in message and "(no published checksum)" not in message
    assert f"Put the original file into {tmp_path / 'home' / 'downloads'}" in message
    assert "no published checksum, so it is used unverified" in message
    with pytest.raises(downloads.WeightsUnavailable) as checked:
        downloads.fetch(FileSpec("net.caffemodel", "https://example.org/net.caffemodel", md5=("0" * 32,)),
                        progress=False)
    assert f"Put the original file (md5 {'0' * 32}) into" in str(checked.value)
