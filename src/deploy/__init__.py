"""Deployment: loading a trained detector, exporting it (MINDIR, AIR, ONNX), running an exported file, drawing
predictions, and reading the C++ program's output files.

Every path ends in the same inference outputs (normalised boxes, per-class scores) and goes through the same
`src.evaluation.postprocess.image_detections` (NMS, rescale), so exported models score exactly as eval does.
"""

from ..errors import ExportError  # noqa: F401  (re-exported)
