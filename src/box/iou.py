"""Box geometry in plain numpy: areas, pairwise IoU, and xyxy <-> cxcywh conversion."""
import numpy as np


def _as_float(boxes):
    """Float view of `boxes` with a last axis of 4; integer input is promoted to float64."""
    arr = np.asarray(boxes)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 4:
        raise ValueError(f"boxes need a last axis of size 4, got shape {arr.shape}")
    return arr


def box_area(xyxy):
    """Area of `x1, y1, x2, y2` boxes, shape [..., 4] -> [...]; inverted boxes count as empty."""
    b = _as_float(xyxy)
    size = b[..., 2:] - b[..., :2]  # width, height: one operation for both
    np.maximum(size, 0, out=size)
    return size[..., 0] * size[..., 1]


def box_iou(boxes_a, boxes_b):
    """Pairwise IoU of xyxy boxes a [N, 4] and b [M, 4] -> [N, M].

    Pairs whose union is empty (two zero-area boxes) get 0 rather than NaN.
    """
    a = _as_float(boxes_a)
    b = _as_float(boxes_b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"box_iou takes [N, 4] and [M, 4], got {a.shape} and {b.shape}")
    dtype = np.result_type(a.dtype, b.dtype)
    # One [N, M] array per step (not [N, M, 2] slices), b's coordinates as contiguous rows and the results written
    # into the temporaries: several times faster for thousands of anchors.
    b_rows = np.ascontiguousarray(b.T)
    inter = np.minimum(a[:, 2:3], b_rows[2])
    low = np.maximum(a[:, 0:1], b_rows[0])
    inter -= low  # inter_w
    np.maximum(inter, 0, out=inter)
    inter_h = np.minimum(a[:, 3:4], b_rows[3])
    np.maximum(a[:, 1:2], b_rows[1], out=low)
    inter_h -= low
    np.maximum(inter_h, 0, out=inter_h)
    inter *= inter_h
    union = np.add(box_area(a)[:, None], box_area(b)[None, :], out=inter_h)
    union -= inter
    # Where the union is 0 the intersection is 0 too, so a tiny floor turns 0/0 into 0.
    np.maximum(union, np.finfo(dtype).tiny, out=union)
    return np.divide(inter, union, out=inter).astype(dtype, copy=False)


def xyxy_to_cxcywh(boxes):
    """`x1, y1, x2, y2` -> `cx, cy, w, h`, any leading dims."""
    b = _as_float(boxes)
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(boxes):
    """`cx, cy, w, h` -> `x1, y1, x2, y2`, any leading dims."""
    b = _as_float(boxes)
    half = b[..., 2:] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)
