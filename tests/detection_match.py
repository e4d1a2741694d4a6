"""Compare two runs' detections of the same image, to the precision that float32 through a whole network holds.

Two runtimes, batch sizes or thread counts take different kernels, so scores and boxes differ in their last bits
(seen: 0.244037 at batch 1 against 0.24403445 at batch 8). Detections are therefore paired by class, score and box
with tolerances relative to the values, never by position: two near-equal scores can swap places. A detection whose
score lies within the tolerance of a cut (``min_score``, or the lowest score kept when ``max_boxes`` was reached)
may be kept by one run and dropped by the other, so it is allowed to be on one side only. Everything further from
the cuts must pair one to one.
"""

#: Relative score tolerance within one runtime (batch sizes, thread counts): differences seen are 1e-6..1e-5 of
#: the value.
SCORE_RTOL = 1e-4
#: Box tolerance as a fraction of the image's longer side (0.04 px on a 400 px image).
BOX_RTOL = 1e-4
#: Across runtimes (MindSpore against onnxruntime or Lite) other convolution algorithms round differently; seen:
#: 0.249426 against 0.249392, 1.4e-4 of the value. A tenth of a percent still catches any real change.
ACROSS_RUNTIMES = {"score_rtol": 1e-3, "box_rtol": 1e-3}
#: What the JSON files' rounding adds: scores to 6 decimals, box corners to 0.01 px (COCO's x + w rounds twice).
SCORE_ROUNDING, BOX_ROUNDING = 1e-6, 0.02


def _close(a, b, rtol):
    return abs(a - b) <= rtol * max(abs(a), abs(b)) + SCORE_ROUNDING


def _cut(detections, min_score, max_boxes):
    """The lowest score that a run could have kept: its last score when it was full, else min_score."""
    if max_boxes and len(detections) >= max_boxes:
        return max(min_score, min(d["score"] for d in detections))
    return min_score


def unpaired(ours, theirs, image_size, min_score, max_boxes, score_rtol=SCORE_RTOL, box_rtol=BOX_RTOL):
    """Detections of each side without a partner on the other, leaving out those within tolerance of a cut.

    A detection is a dict with ``label``, ``score`` and ``box`` (pixel x1, y1, x2, y2). Returns ``(ours_left,
    theirs_left)``; both are empty when the two runs agree as far as float32 allows.
    """
    box_tol = box_rtol * max(image_size) + BOX_ROUNDING
    free = sorted(theirs, key=lambda d: -d["score"])
    ours_left = []
    for det in sorted(ours, key=lambda d: -d["score"]):
        partner = next((r for r in free if r["label"] == det["label"] and _close(r["score"], det["score"], score_rtol)
                        and max(abs(a - b) for a, b in zip(r["box"], det["box"])) <= box_tol), None)
        if partner is None:
            ours_left.append(det)
        else:
            free.remove(partner)
    cut = max(_cut(ours, min_score, max_boxes), _cut(theirs, min_score, max_boxes))

    def far_from_cut(d):
        return d["score"] > cut * (1.0 + score_rtol) + SCORE_ROUNDING

    return [d for d in ours_left if far_from_cut(d)], [d for d in free if far_from_cut(d)]


def coco_to_detections(results, label_of_category):
    """COCO result dicts (``bbox`` x, y, w, h) as detections (``box`` x1, y1, x2, y2)."""
    return [{"label": label_of_category[r["category_id"]], "score": r["score"],
             "box": [r["bbox"][0], r["bbox"][1], r["bbox"][0] + r["bbox"][2], r["bbox"][1] + r["bbox"][3]]}
            for r in results]


def relative_difference(got, want):
    """Raw outputs of two runs: the largest |got - want|, relative to the largest magnitude in `want`.

    Element-wise relative errors blow up where a value is near 0 (a score of 1e-7); the scale of the whole output
    is what float32's rounding error is proportional to."""
    import numpy as np
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))
