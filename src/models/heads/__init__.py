"""Heads predict box offsets and class scores for every anchor."""
from .ssd_head import SSDHead

__all__ = ["SSDHead"]
