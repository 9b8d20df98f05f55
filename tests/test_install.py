"""The installation: exactly one TensorFlow, chosen by setup.py's extras; the package data in a built wheel."""

import importlib.metadata
import pathlib
import re
import runpy
import shutil
import subprocess
import sys
import zipfile

import pytest
import setuptools

from tests.helpers import ROOT

# distributions that install the `tensorflow` package itself (tensorflow on Windows is a shell over
# tensorflow-intel, which is why the test counts owners of the package's files rather than names)
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos",
                            "tensorflow-aarch64", "tensorflow-cpu-aws", "tf-nightly", "tf-nightly-cpu",
                            "tf-nightly-gpu", "tf-nightly-intel", "tf-nightly-macos")
PLATFORMS = {  # a few (sys_platform, platform_machine) pairs pip meets
    "Linux x86-64": ("linux", "x86_64"), "Linux ARM": ("linux", "aarch64"), "Windows": ("win32", "AMD64"),
    "macOS ARM": ("darwin", "arm64"), "macOS Intel": ("darwin", "x86_64"),
}


def _normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _owns_tensorflow_package(distribution):
    return any(str(file).replace("\\", "/").startswith("tensorflow/") for file in distribution.files or ())


def test_exactly_one_tensorflow_distribution_is_installed():
    """Two TensorFlows installed over each other (tensorflow and tensorflow-cpu: 3.1 GB, CUDA probing on a CPU
    machine) is what a requirement invisible to pip's build isolation gave; one must be installed."""
    pytest.importorskip("tensorflow")
    owners = sorted({_normalized(d.metadata["Name"]) for d in importlib.metadata.distributions()
                     if _owns_tensorflow_package(d)})
    assert len(owners) == 1, f"more than one distribution installs the tensorflow package: {owners}"
    named = sorted({_normalized(d.metadata["Name"]) for d in importlib.metadata.distributions()} &
                   set(TENSORFLOW_DISTRIBUTIONS))
    assert set(named) - set(owners) <= {"tensorflow"}, f"TensorFlow distributions installed: {named}"


def test_nothing_installed_requires_another_tensorflow():
    """No installed distribution (tf2onnx, ai-edge-litert, onnxconverter-common...) pulls a TensorFlow in: only
    keras_zoo's own extras name one."""
    from packaging.requirements import Requirement

    offenders = []
    for distribution in importlib.metadata.distributions():
        name = _normalized(distribution.metadata["Name"])
        if name in ("keras-zoo", *TENSORFLOW_DISTRIBUTIONS):
            continue
        for text in distribution.requires or ():
            requirement = Requirement(text)
            if _normalized(requirement.name) not in TENSORFLOW_DISTRIBUTIONS:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                offenders.append(f"{name} requires {text}")
    assert not offenders, offenders


def _setup_arguments(monkeypatch):
    """The keyword arguments setup.py gives setuptools.setup (setup.py run with setup() recording them)."""
    given = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: given.update(kwargs))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    return given


@pytest.mark.parametrize("extra", ["cpu", "gpu"])
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_each_tensorflow_extra_selects_exactly_one_tensorflow(extra, platform, monkeypatch):
    from packaging.requirements import Requirement

    sys_platform, machine = PLATFORMS[platform]
    if extra == "gpu" and sys_platform != "linux":
        pytest.skip("TensorFlow's CUDA build is for Linux")
    arguments = _setup_arguments(monkeypatch)
    assert not any("tensorflow" in requirement.lower() for requirement in arguments["install_requires"])
    environment = {"sys_platform": sys_platform, "platform_machine": machine, "extra": extra}
    chosen = [Requirement(text) for text in arguments["extras_require"][extra]]
    chosen = [r for r in chosen if r.marker is None or r.marker.evaluate(environment)]
    assert len(chosen) == 1 and _normalized(chosen[0].name) in TENSORFLOW_DISTRIBUTIONS, chosen
    expected = {"cpu": "tensorflow-cpu" if machine in ("x86_64", "AMD64") and sys_platform != "darwin"
                else "tensorflow", "gpu": "tensorflow"}[extra]
    assert _normalized(chosen[0].name) == expected
    for other in set(arguments["extras_require"]) - {"cpu", "gpu"}:
        assert not any(_normalized(Requirement(text).name) in TENSORFLOW_DISTRIBUTIONS
                       for text in arguments["extras_require"][other]), other


def test_the_makefile_installs_one_tensorflow_extra():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^TF \?= cpu$", makefile, re.M)
    assert re.search(r'pip install .*-e "\.\[\$\(TF\),test\]"', makefile)


def test_a_built_wheel_carries_the_label_files(tmp_path):
    """A non-editable install has the label files and their provenance (package_data). Built from a copy of the
    sources (a build writes build/ and egg-info beside setup.py)."""
    pytest.importorskip("wheel")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("converters", "keras_zoo", "export"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("keras_zoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"keras_zoo/data/labels/{path.name}" for path in (ROOT / "keras_zoo" / "data" / "labels").iterdir()}
    assert "keras_zoo/data/labels/PROVENANCE.md" in shipped and "keras_zoo/data/labels/synset_words.txt" in shipped
    assert shipped <= names, sorted(shipped - names)
    assert not any(pathlib.PurePosixPath(name).parts[0] == "tests" for name in names)
