"""Annotation readers: each turns one source format into a ParsedDataset of records."""
from .coco import parse_coco
from .txt import parse_txt
from .voc import collect_voc_classes, parse_voc

__all__ = ["parse_coco", "parse_voc", "collect_voc_classes", "parse_txt"]
