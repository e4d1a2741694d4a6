"""The helper that compares two runs' detections (tests/detection_match.py) accepts float32 noise and nothing more."""
from detection_match import ACROSS_RUNTIMES, unpaired


def det(label, score, box=(10.0, 20.0, 110.0, 220.0)):
    return {"label": label, "score": score, "box": list(box)}


SIZE = (400, 300)


def test_order_and_last_bits_do_not_matter():
    ours = [det(0, 0.244037), det(1, 0.2440370)]
    theirs = [det(1, 0.24403445), det(0, 0.24403445, (10.01, 20.0, 110.0, 220.01))]
    assert unpaired(ours, theirs, SIZE, 0.02, 100) == ([], [])


def test_a_changed_score_box_or_class_is_found():
    ref = [det(0, 0.5)]
    assert unpaired([det(0, 0.501)], ref, SIZE, 0.02, 100) == ([det(0, 0.501)], ref)
    assert unpaired([det(0, 0.5, (10, 20, 110.5, 220))], ref, SIZE, 0.02, 100)[0]
    assert unpaired([det(2, 0.5)], ref, SIZE, 0.02, 100)[0]
    assert unpaired([], ref, SIZE, 0.02, 100) == ([], ref)


def test_a_detection_at_a_cut_may_be_on_one_side_only():
    # at min_score
    assert unpaired([det(0, 0.5), det(1, 0.020001)], [det(0, 0.5)], SIZE, 0.02, 100) == ([], [])
    # at the max_boxes cut: both runs are full, and their last boxes differ
    ours = [det(0, 0.5), det(1, 0.3)]
    theirs = [det(0, 0.5), det(2, 0.30001)]
    assert unpaired(ours, theirs, SIZE, 0.02, 2) == ([], [])
    # ... but not away from it
    assert unpaired(ours, theirs, SIZE, 0.02, 3) != ([], [])


def test_across_runtimes_the_tolerance_is_wider_but_still_finds_changes():
    onnx, mindspore = [det(2, 0.249426, (19.13, 0.0, 260.49, 384.9))], [det(2, 0.249392, (19.12, 0.0, 260.49, 384.9))]
    assert unpaired(onnx, mindspore, SIZE, 0.02, 100) != ([], [])
    assert unpaired(onnx, mindspore, SIZE, 0.02, 100, **ACROSS_RUNTIMES) == ([], [])
    ref = [det(0, 0.5)]
    assert unpaired([det(0, 0.501)], ref, SIZE, 0.02, 100, **ACROSS_RUNTIMES)[0]
    assert unpaired([det(0, 0.5, (10, 20, 110.5, 220))], ref, SIZE, 0.02, 100, **ACROSS_RUNTIMES)[0]
