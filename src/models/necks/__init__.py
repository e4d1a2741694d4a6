"""Necks turn backbone features into the pyramid that the head reads."""
from .ssd_extras import InvertedResidualExtras

__all__ = ["InvertedResidualExtras"]
