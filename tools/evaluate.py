#!/usr/bin/env python
"""Reproduce the published numbers on your own data.

    python tools/evaluate.py classification VAL_DIR --model vgg16 [--dense] [--json out.json]
    python tools/evaluate.py segmentation VOC2011 --model fcn8s --split seg11valid.txt

See ``keras_zoo.evaluate`` for the protocols and the metric definitions.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from keras_zoo.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
