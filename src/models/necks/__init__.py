"""Necks turn backbone features into the pyramid that the head reads."""
from .bifpn import BiFPN
from .fpn import FPN
from .ssd_extras import ConvExtras, InvertedResidualExtras

__all__ = ["BiFPN", "ConvExtras", "FPN", "InvertedResidualExtras"]
