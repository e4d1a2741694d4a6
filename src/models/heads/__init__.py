"""Heads predict box offsets and class scores for every anchor."""
from .shared_head import SharedConvHead
from .ssd_head import SSDHead

__all__ = ["SSDHead", "SharedConvHead"]
