"""Pretrained weights from other frameworks: a torch-free reader for PyTorch checkpoints and name mapping."""
