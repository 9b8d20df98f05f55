"""Exporters of keras_zoo models: SavedModel (TF Serving), TFLite/LiteRT, ONNX and TensorRT.

Each is a command, ``python -m export.<format> MODEL`` (``saved_model``, ``tflite``, ``onnx``, ``trt``), and a
function (``export_saved_model``, ``export_tflite``, ``export_onnx``, ``export_engine``) that writes the
artifact atomically, only after it passed its parity check against the Keras model, and returns the
:class:`export.report.ParityReport`. ``export.bench`` measures them side by side; ``export.demo`` (what
``make demo`` runs) classifies sample photos with a zoo model, then exports it and verifies the exports.
"""
