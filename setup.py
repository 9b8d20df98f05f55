"""keras_zoo: the classic Caffe and MatConvNet model zoos as exact Keras 3 models."""

import pathlib
import re

from setuptools import find_packages, setup

ROOT = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "keras_zoo" / "version.py").read_text()).group(1)


# Exactly one TensorFlow distribution, chosen by an extra: "cpu" (tensorflow-cpu, no CUDA probing) or
# "gpu" (tensorflow with its CUDA libraries). The JAX and PyTorch backends need neither. tensorflow-cpu is
# published for x86-64 Linux and Windows only; elsewhere (macOS, ARM Linux) "tensorflow" is the CPU build.
# Nothing else installed requires a TensorFlow (tf2onnx and ai-edge-litert do not; tests/test_install.py checks).
TENSORFLOW = "tensorflow{}>=2.16,<2.22"
CPU_BUILT = 'sys_platform != "darwin" and (platform_machine == "x86_64" or platform_machine == "AMD64")'
CPU_PLAIN = 'sys_platform == "darwin" or (platform_machine != "x86_64" and platform_machine != "AMD64")'
EXPORT = ["onnx>=1.16", "onnxruntime>=1.18", "tf2onnx>=1.16", "onnxconverter-common>=1.14", "ai-edge-litert>=1.0"]
TEST = ["pytest>=8", "pytest-xdist>=3.5", "hypothesis>=6", "opencv-python-headless>=4.8,<5", "scikit-image>=0.22",
        "jax>=0.4.30"]

setup(
    name="keras_zoo",
    version=VERSION,
    description="The classic Caffe and MatConvNet model zoos as Keras 3 models with numerical parity",
    long_description=(ROOT / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="BSD-2-Clause",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_zoo", "keras_zoo.*", "converters", "converters.*",
                                    "export", "export.*"]),
    package_data={"keras_zoo": ["data/*", "data/**/*"]},
    install_requires=[
        "keras>=3.8",
        "numpy>=1.26",
        "protobuf>=4.25",
        "scipy>=1.11",
        "h5py>=3.10",
        "pillow>=10",
    ],
    extras_require={"cpu": [f"{TENSORFLOW.format('-cpu')}; {CPU_BUILT}", f"{TENSORFLOW.format('')}; {CPU_PLAIN}"],
                    "gpu": [TENSORFLOW.format("[and-cuda]")],
                    "export": EXPORT, "demo": ["scikit-image>=0.22"], "test": TEST + EXPORT},
    entry_points={"console_scripts": ["keras-zoo=keras_zoo.__main__:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
