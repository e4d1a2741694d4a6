"""benchmark.py's measurements: training speed, data pipeline, matching, post-processing, inference, FLOPs."""
