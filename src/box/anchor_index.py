"""Sparse candidate search for anchor matching: which anchors can reach an IoU threshold with a ground-truth box.

`_AnchorIndex` evaluates, per gt, only the anchors near it whose IoU can reach the threshold (plus each gt's best
anchor), instead of the dense [N gts, A anchors] IoU matrix that `match_anchors` takes, which costs about 30 ms at
the 51150 anchors of the configurations here. Its results feed `matcher.AnchorTargetEncoder` and give exactly the
matches of `match_anchors` on the full matrix, ties included.

A call handles a few hundred small windows, so its cost is mostly numpy's per-call overhead: the code keeps the
number of numpy calls low (x and y in one array, tables precomputed, methods rather than np.* wrappers).
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
# Smallest union allowed in the window IoUs, as in box_iou. Constants as float32 arrays: a Python float costs a
# conversion in every ufunc call.
_TINY = np.array(np.finfo(np.float32).tiny, np.float32)
_ZERO = np.array(0, np.float32)
# Bit pattern of float32 1.0: non-negative float32 values up to 1 order as their bit patterns do.
_ONE_BITS = int(np.float32(1).view(np.int32))


def _first_of_runs(sorted_keys):
    """Positions where a run of equal values starts in a sorted array."""
    starts = np.empty(sorted_keys.size, dtype=bool)
    starts[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    return starts.nonzero()[0]


def _best_per_key(key, value, tie):
    """(position of the highest value for each distinct key, ties to the lowest `tie`; the distinct keys, ascending)."""
    order = np.lexsort((tie, -value, key))
    first = order[_first_of_runs(key[order])]
    return first, key[first]


def _best_iou_per_key(key, iou, tie, tie_bound):
    """(the distinct keys ascending, the highest IoU of each, its `tie`, the lowest where IoUs are equal).

    `key` and `tie` (< tie_bound) are non-negative int64, `iou` float32 IoUs in [0, 1]. As the bit pattern of such a
    float is an integer of the same order (at most _ONE_BITS, 30 bits), (key, -iou, tie) packs into one int64, and
    sorting that is several times faster than a three-key lexsort of the few hundred entries here.
    """
    tie_bits = int(tie_bound - 1).bit_length()
    shift = 30 + tie_bits
    if key.size < 64 or int(key.max()).bit_length() + shift > 62:  # lexsort is as fast for a few entries
        pick, keys = _best_per_key(key, iou, tie)
        return keys, iou[pick], tie[pick]
    packed = key << shift
    packed |= (_ONE_BITS - iou.view(np.int32)).astype(np.int64) << tie_bits
    packed |= tie
    packed.sort()
    packed = packed[_first_of_runs(packed >> shift)]
    low_bits = packed & ((1 << shift) - 1)
    best_iou = (_ONE_BITS - (low_bits >> tie_bits)).astype(np.int32).view(np.float32)
    return packed >> shift, best_iou, low_bits & ((1 << tie_bits) - 1)


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
        self._clip = (np.array(-1.0), np.array(self.span - 3.0))

    def window(self, centre, reach, base):
        """(first index into `keys`, count) of the values within `reach` of `centre` (relative to `low`) in the
        array with index base / span."""
        bounds = np.empty((2,) + reach.shape)
        np.subtract(centre, reach, out=bounds[0])
        np.add(centre, reach, out=bounds[1])
        # Clipping keeps every query inside the stretch of keys of its own array.
        np.maximum(bounds, self._clip[0], out=bounds)
        np.minimum(bounds, self._clip[1], out=bounds)
        bounds += base
        first = self.keys.searchsorted(bounds[0], side="left")
        return first, self.keys.searchsorted(bounds[1], side="right") - first


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
        per_grid, slots = [], []
        for start, rows, cols, boxes in blocks:
            grid = self.xyxy[start:start + rows * cols * boxes].reshape(rows, cols, boxes, 4)
            cells = anchors_cxcywh[start:start + rows * cols * boxes].reshape(rows, cols, boxes, 4)
            for box in range(boxes):
                x1, x2 = grid[0, :, box, 0], grid[0, :, box, 2]
                y1, y2 = grid[:, 0, box, 1], grid[:, 0, box, 3]
                # Per shape grid its columns, then its rows ("slots"): centre, low and high edge, extent, and the
                # part of the anchor id (row and column parts add up to the id).
                slots.append((cells[0, :, box, 0], x1, x2, x2 - x1, np.arange(cols) * boxes))
                slots.append((cells[:, 0, box, 1], y1, y2, y2 - y1, start + box + np.arange(rows) * (cols * boxes)))
                # The largest extent over the grid covers float rounding between cells.
                per_grid.append(((x2 - x1).max(), (y2 - y1).max()))
        # Per-axis arrays [2 (x, y), G]: numpy broadcasts much faster over G than over a trailing axis of 2.
        self.grid_wh = np.array(per_grid, dtype=np.float64).T
        self.grid_area = self.grid_wh[0] * self.grid_wh[1]
        centres, self.slot_lo, self.slot_hi, self.slot_extent, self.slot_anchor = zip(*slots)
        self.centres = _SortedCentres(centres)  # an index into its keys is an index into the slot tables
        self.grid_keys = np.arange(2 * len(per_grid)).reshape(-1, 2).T * self.centres.span  # [2, G]
        self.slot_lo, self.slot_hi, self.slot_extent, self.slot_anchor = (
            np.concatenate(column) for column in (self.slot_lo, self.slot_hi, self.slot_extent, self.slot_anchor))

    def overlaps(self, gt, min_iou):
        """Anchors reaching `min_iou` (> 0) with some gt, and each gt's best anchor.

        Returns (anchor ids, their best IoU, their best gt, best IoU per gt [N], best anchor per gt [N]), with
        ties to the lower gt / anchor index exactly as match_anchors on the full matrix; a gt that overlaps no
        anchor gets best IoU -1 or 0. `gt` is float32 (the IoUs are float32 as in box_iou).
        """
        gt_area = box_area(gt)
        per_gt, per_anchor = [], []
        if self.loose.size:
            chunk = max(1, _CHUNK_ELEMENTS // len(gt))
            all_gts = np.arange(len(gt))
            for begin in range(0, self.loose.size, chunk):
                ids = self.loose[begin:begin + chunk]
                _collect(box_iou(gt, self.xyxy.take(ids, axis=0)), all_gts, ids, min_iou, per_gt, per_anchor)
        if self.has_grids:
            gts = (gt_area > 0).nonzero()[0]
            target = self._search(gt, gt_area, gts, min_iou, _WEAK_GT_FRACTION, per_gt, per_anchor)
            gt_best = self._best_per_gt(len(gt), per_gt)
            # The windows hold every anchor that reaches the target, so a gt whose best anchor does is done;
            # for the others (which reach no threshold, so add no anchors), search every anchor that overlaps them.
            missed = gt_best[0][gts] < target
            if missed.any():
                self._search(gt, gt_area, gts[missed], min_iou, 0.0, per_gt, per_anchor)
                gt_best = self._best_per_gt(len(gt), per_gt)
        else:
            gt_best = self._best_per_gt(len(gt), per_gt)
        return (*_best_per_anchor(len(gt), per_anchor), *gt_best)

    def _search(self, gt, gt_area, gts, min_iou, weak_fraction, per_gt, per_anchor):
        """Evaluate, per gt in `gts` (ascending) and shape grid, every anchor that can reach the gt's IoU target.

        The target is min_iou, or weak_fraction times the gt's best possible IoU where that is lower (small or
        thin gts, which may reach min_iou nowhere). Returns the targets [len(gts)].
        """
        # (Multi-dimensional fancy indexing is several times slower than take(); hence take() throughout.)
        g = gt.take(gts, axis=0).T.astype(np.float64)  # [4 (x1, y1, x2, y2), n]
        size = g[2:] - g[:2]
        common = np.minimum(size[:, :, None], self.grid_wh[:, None, :])  # overlap when centred on each other [2, n, G]
        inter = common[0] * common[1]
        gt_sq = (size[0] * size[1])[:, None]
        area_sum = gt_sq + self.grid_area
        best_possible = np.divide(inter, area_sum - inter).max(axis=1)
        target = np.minimum(min_iou, weak_fraction * best_possible)
        t = (target * (1 - _WINDOW_SLACK))[:, None]
        # IoU >= t needs an intersection of t * max(areas) and of t * (sum of areas) / (1 + t). The overlap along
        # one axis is at most `common`, so the other axis must overlap by `need`, which caps the centre distance.
        need_area = np.maximum(gt_sq, self.grid_area)
        np.maximum(need_area, area_sum / (1 + t), out=need_area)
        need_area *= t
        pairs = (need_area <= inter).reshape(-1).nonzero()[0]  # (gt, grid) pairs, sorted by gt
        if pairs.size == 0:
            return target
        pair_gt, pair_grid = np.divmod(pairs, inter.shape[1])
        reach = size.take(pair_gt, axis=1)  # [2 (x, y), P]
        reach += self.grid_wh.take(pair_grid, axis=1)
        reach /= 2
        reach -= need_area.take(pairs) / common[::-1].reshape(2, -1).take(pairs, axis=1)
        reach += _WINDOW_SLACK * (1 + np.abs(g).max())
        centre = ((g[:2] + g[2:]) / 2 - self.centres.low).take(pair_gt, axis=1)
        first, count = self.centres.window(centre, reach, self.grid_keys.take(pair_grid, axis=1))  # first: a slot
        cells = count[0] * count[1]
        hit = cells.nonzero()[0]
        if hit.size == 0:
            return target
        gts, cells = gts[pair_gt[hit]], cells[hit]
        first, count = first.take(hit, axis=1), count.take(hit, axis=1)
        ends = cells.cumsum()
        begin = 0
        while begin < len(gts):  # batches of about _CHUNK_ELEMENTS IoUs, so that temporaries stay small
            stop = len(gts) if ends[-1] <= _CHUNK_ELEMENTS else max(
                begin + 1, int(ends.searchsorted(ends[begin] - cells[begin] + _CHUNK_ELEMENTS, "right")))
            batch = slice(begin, stop)
            self._evaluate(gt, gt_area, gts[batch], first[:, batch], count[:, batch], cells[batch], min_iou,
                           per_gt, per_anchor)
            begin = stop
        return target

    def _evaluate(self, gt, gt_area, gts, first, count, cells, min_iou, per_gt, per_anchor):
        """IoUs of gt gts[p] (ascending) with the anchors of window p: count[1, p] row slots from first[1, p] by
        count[0, p] column slots from first[0, p]; cells = count[0] * count[1].

        Windows differ much in size, so rather than padding them to one shape they are laid out back to back
        (window by window, row by row): along a window row the row terms repeat and the column terms run.
        """
        widths, heights = count
        # Slots: the columns of every window, then the rows of every window.
        counts = count.reshape(-1)
        slot_end = counts.cumsum()
        slots = (first.reshape(-1) + counts - slot_end).repeat(counts)
        slots += np.arange(slots.size)
        # Per slot: the overlap along its axis (box_iou's operations, so that both give bit-identical IoUs:
        # inter_w = max(min(x2s) - max(x1s), 0)) and the anchor's extent along it.
        box = gt.take(gts, axis=0).T
        overlap = box[2:].reshape(-1).repeat(counts)
        np.minimum(overlap, self.slot_hi[slots], out=overlap)
        low = box[:2].reshape(-1).repeat(counts)
        np.maximum(low, self.slot_lo[slots], out=low)
        overlap -= low
        np.maximum(overlap, _ZERO, out=overlap)
        extent = self.slot_extent[slots]
        num_cols = int(slot_end[len(gts) - 1])
        # Elements: one per (window row, window column), intersection = row overlap * column overlap and anchor
        # area = row extent * column extent.
        row_window = np.arange(len(gts)).repeat(heights)
        row_len = widths[row_window]
        row_end = row_len.cumsum()
        col_slot = ((slot_end[:len(gts)] - widths)[row_window] + row_len - row_end).repeat(row_len)
        col_slot += np.arange(col_slot.size)
        inter = overlap[num_cols:].repeat(row_len)
        inter *= overlap[col_slot]
        union = extent[num_cols:].repeat(row_len)
        union *= extent[col_slot]
        union += gt_area[gts].repeat(cells)
        union -= inter
        np.maximum(union, _TINY, out=union)
        iou = np.divide(inter, union, out=inter)

        # Each gt's best: the highest IoU over its windows, ties to the lowest anchor id.
        window_first = _first_of_runs(gts)
        run_start = (cells.cumsum() - cells)[window_first]
        best = np.maximum.reduceat(iou, run_start)
        candidates = (iou == best.repeat(np.add.reduceat(cells, window_first))).nonzero()[0]
        hits = (iou >= min_iou).nonzero()[0]
        picked = np.concatenate((candidates, hits))
        row = row_end.searchsorted(picked, "right")
        anchor = self.slot_anchor[slots[row + num_cols]]
        anchor += self.slot_anchor[slots[col_slot[picked]]]
        best_anchor = np.minimum.reduceat(anchor[:candidates.size], candidates.searchsorted(run_start))
        per_gt.append((gts[window_first], best, best_anchor))
        per_anchor.append((gts[row_window[row[candidates.size:]]], iou[hits], anchor[candidates.size:]))

    def _best_per_gt(self, num_gt, per_gt):
        """Best IoU [N] and anchor [N] per gt from the collected (gts, values, anchors); -1 where none."""
        gt_best_iou = np.full(num_gt, -1.0, dtype=np.float32)
        gt_best_anchor = np.zeros(num_gt, dtype=np.int64)
        if len(per_gt) == 1:  # each part lists a gt once
            gts, value, anchor = per_gt[0]
        elif per_gt:
            gts, value, anchor = _best_iou_per_key(*(np.concatenate(part) for part in zip(*per_gt)),
                                                   self.num_anchors)
        else:
            return gt_best_iou, gt_best_anchor
        gt_best_iou[gts] = value
        gt_best_anchor[gts] = anchor
        return gt_best_iou, gt_best_anchor


def _collect(iou, gts, ids, min_iou, per_gt, per_anchor):
    """From IoUs [N, M] of gt gts[n] with anchors ids [M]: each row's best, and every entry >= min_iou."""
    rows = np.arange(len(gts))
    arg = iou.argmax(axis=1)
    per_gt.append((gts, iou[rows, arg], ids[arg]))
    hit_row, hit_col = (iou >= min_iou).nonzero()
    per_anchor.append((gts[hit_row], iou[hit_row, hit_col], ids[hit_col]))


def _best_per_anchor(num_gt, per_anchor):
    """(anchor ids, best IoU, best gt) from the collected (gts, values, anchors)."""
    if not per_anchor:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
    gts, value, anchor = (np.concatenate(part) for part in zip(*per_anchor))
    return _best_iou_per_key(anchor, value, gts, num_gt)
