"""Detectors assembled from backbones, necks and heads."""
