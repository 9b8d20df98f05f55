"""``python -m export FORMAT MODEL ...``: the same as ``python -m export.FORMAT MODEL ...``."""

import importlib
import sys

FORMATS = {"saved_model": "SavedModel for TensorFlow Serving", "tflite": "TFLite / LiteRT flatbuffer",
           "onnx": "ONNX (dynamic batch)", "trt": "TensorRT engine (via ONNX)", "bench": "speed of every format"}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in FORMATS:
        asked = argv[:1] in ([], ["-h"], ["--help"])
        out = sys.stdout if asked else sys.stderr
        print("usage: python -m export FORMAT MODEL [options]   (FORMAT --help for the options)", file=out)
        for name, text in FORMATS.items():
            print(f"  {name:<12} {text}", file=out)
        if not asked:
            print(f"error: unknown format {argv[0]!r} (choose from {', '.join(FORMATS)})", file=out)
        return 0 if asked else 2
    return importlib.import_module(f"export.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
