"""Sparse candidate search for anchor matching: which anchors can reach an IoU threshold with a ground-truth box.

`_AnchorIndex` evaluates, per gt, only the anchors near it whose IoU can reach the threshold (plus each gt's best
anchor), instead of the dense [N gts, A anchors] IoU matrix that `match_anchors` takes, which costs about 30 ms at
the 51150 anchors of the configurations here. Its results feed `matcher.AnchorTargetEncoder` and give exactly the
matches of `match_anchors` on the full matrix, ties included.
"""
import numpy as np

from .iou import box_area, box_iou, cxcywh_to_xyxy

# Stop looking for grid blocks after this many single anchors in a row (unstructured anchors); compare the rest
# with every gt.
_MAX_BLOCK_MISSES = 16
# Candidate IoUs evaluated per batch, so that temporaries stay small.
_CHUNK_ELEMENTS = 1 << 16
# Relative slack of the search windows, so that float rounding never drops an anchor right at a threshold.
_WINDOW_SLACK = 1e-4
# A gt that cannot reach min_iou anywhere is first searched at this fraction of its best possible IoU.
_WEAK_GT_FRACTION = 0.5
# Smallest union allowed in the window IoUs, as in box_iou.
_TINY = np.finfo(np.float32).tiny


def _first_of_runs(sorted_keys):
    """Positions where a run of equal values starts in a sorted array."""
    starts = np.empty(sorted_keys.size, dtype=bool)
    starts[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    return starts.nonzero()[0]


def _best_per_key(key, value, tie):
    """(position of the highest value for each distinct key, ties to the lowest `tie`; the distinct keys)."""
    order = np.lexsort((tie, -value, key))
    first = order[_first_of_runs(key[order])]
    return first, key[first]


def _grid_block_at(anchors, start):
    """(rows, cols, boxes) of the grid block starting at `start`; rows is 0 where there is none.

    A grid block is a run of anchors in (row, column, box) order where cx depends only on the column and grows
    with it, cy only on the row and grows with it, and (w, h) only on the box: one level of any generator here.
    """
    rest = anchors[start:]
    same_cell = np.all(rest[:, :2] == rest[0, :2], axis=1)
    boxes = int(np.argmin(same_cell)) if not same_cell.all() else len(rest)
    same_row = rest[::boxes, 1] == rest[0, 1]
    cols = int(np.argmin(same_row)) if not same_row.all() else len(same_row)
    rows_max = len(rest) // (cols * boxes)
    if rows_max == 0:
        return 0, cols, boxes
    grid = rest[:rows_max * cols * boxes].reshape(rows_max, cols, boxes, 4)
    cx = grid[0, :, 0, 0]
    cy = grid[:, 0, 0, 1]
    if np.any(np.diff(cx) <= 0):
        return 0, cols, boxes
    row_ok = (np.all(grid[..., 0] == cx[None, :, None], axis=(1, 2))
              & np.all(grid[..., 1] == cy[:, None, None], axis=(1, 2))
              & np.all(grid[..., 2:] == grid[:1, :1, :, 2:], axis=(1, 2, 3)))
    row_ok[1:] &= np.diff(cy) > 0
    rows = int(np.argmin(row_ok)) if not row_ok.all() else rows_max
    return rows, cols, boxes


class _SortedCentres:
    """Several sorted arrays in one, so that one searchsorted call answers queries into any of them."""

    def __init__(self, arrays):
        self.low = min(a.min() for a in arrays)
        self.span = max(a.max() for a in arrays) - self.low + 4.0
        self.keys = np.concatenate([(a.astype(np.float64) - self.low) + k * self.span for k, a in enumerate(arrays)])
        self.offsets = np.cumsum([0] + [len(a) for a in arrays[:-1]])

    def window(self, centre, reach, which):
        """First index and count of the values within `reach` of `centre` [P, m] in the arrays `which` [P, m]."""
        bounds = np.empty((2,) + reach.shape)
        np.subtract(centre - self.low, reach, out=bounds[0])
        np.add(centre - self.low, reach, out=bounds[1])
        # Clipping keeps every query inside the stretch of keys of its own array.
        np.maximum(bounds, -1.0, out=bounds)
        np.minimum(bounds, self.span - 3.0, out=bounds)
        bounds += which * self.span
        first = self.keys.searchsorted(bounds[0], side="left")
        return first - self.offsets[which], self.keys.searchsorted(bounds[1], side="right") - first


class _AnchorIndex:
    """Finds the anchors whose IoU with a gt box can reach a threshold, without an [N, A] IoU matrix.

    The anchors are split into grid blocks (one per pyramid level with the generators here) and loose anchors;
    a block's anchors of one box shape form a "shape grid" of rows x columns. IoU >= t needs an intersection of
    at least t * max(areas) and t * (sum of areas) / (1 + t); as the overlap along one axis is at most the smaller
    extent, this sets a least overlap along the other axis, which caps the distance between the centres. So per
    gt and shape grid only a small window of rows and columns is evaluated, and there the intersection is an
    outer product of a row term and a column term. Loose anchors are compared with every gt.
    """

    def __init__(self, anchors_cxcywh):
        self.xyxy = cxcywh_to_xyxy(anchors_cxcywh)
        self.num_anchors = len(self.xyxy)
        blocks, loose = [], []
        start, misses = 0, 0
        while start < self.num_anchors and misses < _MAX_BLOCK_MISSES:
            rows, cols, boxes = _grid_block_at(anchors_cxcywh, start)
            stop = start + max(rows * cols * boxes, 1)
            if stop - start > 1:
                blocks.append((start, rows, cols, boxes))
                misses = 0
            else:  # no structure here
                loose.append(np.arange(start, stop))
                misses += 1
            start = stop
        self.loose = np.concatenate(loose + [np.arange(start, self.num_anchors)])
        self.has_grids = bool(blocks)
        if blocks:
            self._build_shape_grids(anchors_cxcywh, blocks)

    def _build_shape_grids(self, anchors_cxcywh, blocks):
        per_grid, centres = [], []
        col_x1, col_x2, row_y1, row_y2 = [], [], [], []
        col_base = row_base = 0
        for k, (start, rows, cols, boxes) in enumerate(blocks):
            grid = self.xyxy[start:start + rows * cols * boxes].reshape(rows, cols, boxes, 4)
            cells = anchors_cxcywh[start:start + rows * cols * boxes].reshape(rows, cols, boxes, 4)
            centres += [cells[0, :, 0, 0], cells[:, 0, 0, 1]]
            for box in range(boxes):
                col_x1.append(grid[0, :, box, 0])
                col_x2.append(grid[0, :, box, 2])
                row_y1.append(grid[:, 0, box, 1])
                row_y2.append(grid[:, 0, box, 3])
                # The largest extent over the grid covers float rounding between cells.
                width = (grid[0, :, box, 2] - grid[0, :, box, 0]).max()
                height = (grid[:, 0, box, 3] - grid[:, 0, box, 1]).max()
                # Anchor id of (row, col) is first + row * row_step + col * col_step.
                per_grid.append((start + box, cols * boxes, boxes, rows, cols, col_base, row_base,
                                 2 * k, 2 * k + 1, width, height))
                col_base += cols
                row_base += rows
        (self.grid_first, self.grid_row_step, self.grid_col_step, self.grid_rows, self.grid_cols,
         self.grid_col_base, self.grid_row_base, x_array, y_array) = (
            np.array(column, dtype=np.int64) for column in list(zip(*per_grid))[:9])
        self.grid_wh = np.array([g[9:] for g in per_grid], dtype=np.float64)  # [G, 2]
        self.grid_area = self.grid_wh[:, 0] * self.grid_wh[:, 1]
        self.grid_centre_array = np.stack([x_array, y_array], axis=1)  # [G, 2]: which centres array per axis
        self.centres = _SortedCentres(centres)
        # x1, x2 of every shape grid's columns and y1, y2 of its rows, grid after grid.
        self.col_x1, self.col_x2, self.row_y1, self.row_y2 = (
            np.concatenate(parts) for parts in (col_x1, col_x2, row_y1, row_y2))
        self.grid_row_last = self.grid_row_base + self.grid_rows - 1
        self.grid_col_last = self.grid_col_base + self.grid_cols - 1

    def overlaps(self, gt, min_iou):
        """Anchors reaching `min_iou` (> 0) with some gt, and each gt's best anchor.

        Returns (anchor ids, their best IoU, their best gt, best IoU per gt [N], best anchor per gt [N]), with
        ties to the lower gt / anchor index exactly as match_anchors on the full matrix; a gt that overlaps no
        anchor gets best IoU -1.
        """
        gt_area = box_area(gt)
        per_gt, per_anchor = [], []
        if self.loose.size:
            chunk = max(1, _CHUNK_ELEMENTS // len(gt))
            all_gts = np.arange(len(gt))
            for begin in range(0, self.loose.size, chunk):
                ids = self.loose[begin:begin + chunk]
                _collect(box_iou(gt, self.xyxy[ids]), all_gts, ids, min_iou, per_gt, per_anchor)
        if self.has_grids:
            gts = (gt_area > 0).nonzero()[0]
            target = self._search(gt, gt_area, gts, min_iou, _WEAK_GT_FRACTION, per_gt, per_anchor)
            gt_best_iou, gt_best_anchor = _best_per_gt(len(gt), per_gt)
            # The windows hold every anchor that reaches the target, so a gt whose best anchor does is done;
            # for the others, search every anchor that overlaps them at all.
            missed = gt_best_iou[gts] < target
            if missed.any():
                self._search(gt, gt_area, gts[missed], min_iou, 0.0, per_gt, per_anchor)
                gt_best_iou, gt_best_anchor = _best_per_gt(len(gt), per_gt)
        else:
            gt_best_iou, gt_best_anchor = _best_per_gt(len(gt), per_gt)
        return (*_best_per_anchor(per_anchor), gt_best_iou, gt_best_anchor)

    def _search(self, gt, gt_area, gts, min_iou, weak_fraction, per_gt, per_anchor):
        """Evaluate, per gt in `gts` and shape grid, every anchor that can reach the gt's IoU target.

        The target is min_iou, or weak_fraction times the gt's best possible IoU where that is lower (small or
        thin gts, which may reach min_iou nowhere). Returns the targets [len(gts)].
        """
        g = gt[gts].astype(np.float64)
        size = g[:, 2:] - g[:, :2]
        common = np.minimum(size[:, None, :], self.grid_wh)  # overlap when centred on each other [n, G, 2]
        inter = common[..., 0] * common[..., 1]
        gt_sq = (size[:, 0] * size[:, 1])[:, None]
        best_possible = (inter / (gt_sq + self.grid_area - inter)).max(axis=1)
        target = np.minimum(min_iou, weak_fraction * best_possible)
        t = (target * (1 - _WINDOW_SLACK))[:, None]
        # IoU >= t needs an intersection of t * max(areas) and of t * (sum of areas) / (1 + t). The overlap along
        # one axis is at most `common`, so the other axis must overlap by `need`, which caps the centre distance.
        need_area = t * np.maximum(np.maximum(gt_sq, self.grid_area), (gt_sq + self.grid_area) / (1 + t))
        pair_gt, pair_grid = (need_area <= inter).nonzero()
        if pair_gt.size == 0:
            return target
        pair_size, pair_wh = size[pair_gt], self.grid_wh[pair_grid]
        reach = (pair_size + pair_wh) / 2 - (need_area[pair_gt, pair_grid, None] / common[pair_gt, pair_grid, ::-1])
        reach += _WINDOW_SLACK * (1 + np.abs(g).max())
        centre = (g[pair_gt, :2] + g[pair_gt, 2:]) / 2
        first, count = self.centres.window(centre, reach, self.grid_centre_array[pair_grid])  # [P, (x, y)]
        hit = (count.min(axis=1) > 0).nonzero()[0]
        if hit.size:
            self._evaluate_windows(gt, gt_area, gts[pair_gt[hit]], pair_grid[hit], first[hit], count[hit],
                                   min_iou, per_gt, per_anchor)
        return target

    def _evaluate_windows(self, gt, gt_area, gts, grid, first, count, min_iou, per_gt, per_anchor):
        """Evaluate windows in batches; each batch pads its windows to its largest height and width."""
        largest = count.max(axis=0)
        if len(gts) * largest[0] * largest[1] <= _CHUNK_ELEMENTS:
            self._evaluate(gt, gt_area, gts, grid, first[:, 1], first[:, 0], largest[1], largest[0],
                           min_iou, per_gt, per_anchor)
            return
        # Batches group similar sizes, so that padding wastes little.
        order = np.argsort(count[:, 0] * count[:, 1], kind="stable")
        while order.size:
            padded = np.arange(1, order.size + 1) * np.prod(np.maximum.accumulate(count[order], axis=0), axis=1)
            batch, order = np.split(order, [max(1, int(np.count_nonzero(padded <= _CHUNK_ELEMENTS)))])
            largest = count[batch].max(axis=0)
            self._evaluate(gt, gt_area, gts[batch], grid[batch], first[batch, 1], first[batch, 0],
                           largest[1], largest[0], min_iou, per_gt, per_anchor)

    def _evaluate(self, gt, gt_area, gts, grid, row0, col0, height, width, min_iou, per_gt, per_anchor):
        """IoUs of gt p with the window of shape grid p at (row0, col0), padded to height x width by repeating
        the last row / column (repeats change no maximum and, coming later, no first maximum).

        Arrays run [row, column, pair]: windows are small and pairs many, so the pairs make the long inner axis.
        """
        # Rows and columns as indices into the concatenated row / column tables.
        rows = np.minimum(self.grid_row_base[grid] + row0 + np.arange(height)[:, None], self.grid_row_last[grid])
        cols = np.minimum(self.grid_col_base[grid] + col0 + np.arange(width)[:, None], self.grid_col_last[grid])
        y1, y2 = self.row_y1.take(rows), self.row_y2.take(rows)  # [H, P]
        x1, x2 = self.col_x1.take(cols), self.col_x2.take(cols)  # [W, P]
        box = gt[gts].T
        # box_iou's operations in box_iou's order, so that both give bit-identical IoUs.
        inter_h = np.maximum(np.minimum(box[3], y2) - np.maximum(box[1], y1), 0)
        inter_w = np.maximum(np.minimum(box[2], x2) - np.maximum(box[0], x1), 0)
        inter = inter_h[:, None, :] * inter_w[None, :, :]  # [H, W, P]
        union = gt_area[gts] + (y2 - y1)[:, None, :] * (x2 - x1)[None, :, :]
        union -= inter
        np.maximum(union, _TINY, out=union)
        inter /= union
        iou = inter.reshape(height * width, len(gts))
        first = self.grid_first[grid]
        row_id = first + (rows - self.grid_row_base[grid]) * self.grid_row_step[grid]  # [H, P]
        col_id = (cols - self.grid_col_base[grid]) * self.grid_col_step[grid]  # [W, P]

        def anchor_id(flat, pair):
            row, col = np.divmod(flat, width)
            return row_id[row, pair] + col_id[col, pair]

        pairs = np.arange(len(gts))
        best = iou.argmax(axis=0)
        per_gt.append((gts, iou[best, pairs], anchor_id(best, pairs)))
        hit_flat, hit_pair = np.divmod((iou.reshape(-1) >= min_iou).nonzero()[0], len(gts))
        per_anchor.append((gts[hit_pair], iou[hit_flat, hit_pair], anchor_id(hit_flat, hit_pair)))


def _collect(iou, gts, ids, min_iou, per_gt, per_anchor):
    """From IoUs [N, M] of gt gts[n] with anchors ids [M]: each row's best, and every entry >= min_iou."""
    rows = np.arange(len(gts))
    arg = iou.argmax(axis=1)
    per_gt.append((gts, iou[rows, arg], ids[arg]))
    hit_row, hit_col = (iou >= min_iou).nonzero()
    per_anchor.append((gts[hit_row], iou[hit_row, hit_col], ids[hit_col]))


def _best_per_gt(num_gt, per_gt):
    """Best IoU [N] and anchor [N] per gt from the collected (gts, values, anchors); -1 where none."""
    gt_best_iou = np.full(num_gt, -1.0, dtype=np.float32)
    gt_best_anchor = np.zeros(num_gt, dtype=np.int64)
    if per_gt:
        gts, value, anchor = (np.concatenate(part) for part in zip(*per_gt))
        pick, keys = _best_per_key(gts, value, anchor)
        gt_best_iou[keys] = value[pick]
        gt_best_anchor[keys] = anchor[pick]
    return gt_best_iou, gt_best_anchor


def _best_per_anchor(per_anchor):
    """(anchor ids, best IoU, best gt) from the collected (gts, values, anchors)."""
    if not per_anchor:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
    gts, value, anchor = (np.concatenate(part) for part in zip(*per_anchor))
    pick, keys = _best_per_key(anchor, value, gts)
    return keys, value[pick], gts[pick]
