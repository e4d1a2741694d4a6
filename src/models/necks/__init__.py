"""Necks turn backbone features into the pyramid that the head reads."""
from .ssd_extras import ConvExtras, InvertedResidualExtras

__all__ = ["ConvExtras", "InvertedResidualExtras"]
