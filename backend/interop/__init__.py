"""Interoperability with other tools: published encoder weights in (``import-weights``), ONNX out (``export-onnx``)."""
