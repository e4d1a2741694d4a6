"""Tests of src/data/augment.py (numpy + cv2 only)."""
import cv2
import numpy as np
import pytest

from src.data import augment as A

from augment_reference import extract_window, random_crop, random_expand, random_expand_crop

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _coord_image(h, w):
    """An image whose channel 0 is the column and channel 1 the row (both < 256), so a crop tells where it came from."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w, dtype=np.uint8)[None, :]
    img[..., 1] = np.arange(h, dtype=np.uint8)[:, None]
    img[..., 2] = 7
    return img


def _iou(box, win):
    ix = max(0.0, min(box[2], win[2]) - max(box[0], win[0]))
    iy = max(0.0, min(box[3], win[3]) - max(box[1], win[1]))
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (win[2] - win[0]) * (win[3] - win[1]) - inter
    return inter / union


def _random_boxes(rng, h, w, n):
    xy = rng.uniform(0, [w - 20, h - 20], size=(n, 2))
    wh = rng.uniform(10, [w / 2, h / 2], size=(n, 2))
    b = np.concatenate([xy, np.minimum(xy + wh, [w, h])], axis=1)
    return b.astype(np.float32)


# ------------------------------------------------------------------------------------------- fixed expected values
def test_hflip_fixed_values():
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, 2:5] = 255
    boxes = np.array([[2, 3, 5, 8], [0, 0, 20, 10]], np.float32)
    out, b = A.random_hflip(img, boxes, _rng(), prob=1.0)
    np.testing.assert_array_equal(b, [[15, 3, 18, 8], [0, 0, 20, 10]])
    np.testing.assert_array_equal(out, img[:, ::-1])
    assert out[:, 15:18].min() == 255 and out[:, :15].max() == 0
    same, b0 = A.random_hflip(img, boxes, _rng(), prob=0.0)
    np.testing.assert_array_equal(same, img)
    np.testing.assert_array_equal(b0, boxes)


def test_resize_fixed_values():
    assert A.INTERPOLATION == cv2.INTER_LINEAR
    img = _rng(1).integers(0, 256, (100, 200, 3), dtype=np.uint8)
    out, b = A.resize(img, np.array([[10, 20, 30, 40]], np.float32), (50, 400))
    assert out.shape == (50, 400, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(b, [[20, 10, 60, 20]])
    np.testing.assert_array_equal(out, cv2.resize(img, (400, 50), interpolation=cv2.INTER_LINEAR))
    out2, none = A.resize(img, None, (50, 400))
    assert none is None and np.array_equal(out2, out)


def test_crop_boxes_fixed_values():
    boxes = np.array([[0, 0, 30, 30],     # centre (15, 15) inside -> clipped to (10, 10, 30, 30)
                      [40, 40, 70, 55],   # centre (55, 47.5) outside -> dropped
                      [20, 45, 45, 52],   # centre (32.5, 48.5) inside -> clipped to (20, 45, 45, 50)
                      [0, 0, 10, 10]],    # centre (5, 5) outside -> dropped
                     np.float32)
    labels = np.array([1, 2, 3, 4], np.int32)
    b, l = A.crop_boxes(boxes, labels, (10, 10, 50, 50))
    np.testing.assert_array_equal(b, [[0, 0, 20, 20], [10, 35, 35, 40]])
    np.testing.assert_array_equal(l, [1, 3])
    assert b.dtype == np.float32 and l.dtype == np.int32


# --------------------------------------------------------------------------------------------------------- crop
def test_random_crop_keeps_centres_and_clips():
    h, w = 200, 250
    img = _coord_image(h, w)
    cropped_at_least_once = False
    for seed in range(60):
        rng = _rng(seed)
        boxes = _random_boxes(rng, h, w, 5)
        labels = np.arange(5, dtype=np.int32) + 10
        out, b, l = random_crop(img, boxes, labels, rng, min_ious=(0.1, 0.3))
        if out.shape == img.shape:  # no trial succeeded: nothing changes
            np.testing.assert_array_equal(b, boxes)
            continue
        cropped_at_least_once = True
        x0, y0 = int(out[0, 0, 0]), int(out[0, 0, 1])  # where the crop came from
        x1, y1 = x0 + out.shape[1], y0 + out.shape[0]
        np.testing.assert_array_equal(out, img[y0:y1, x0:x1])
        c = (boxes[:, :2] + boxes[:, 2:]) / 2
        keep = (c[:, 0] > x0) & (c[:, 0] < x1) & (c[:, 1] > y0) & (c[:, 1] < y1)
        assert keep.any()
        expected = np.clip(boxes[keep], [x0, y0, x0, y0], [x1, y1, x1, y1]) - [x0, y0, x0, y0]
        np.testing.assert_allclose(b, expected, atol=1e-4)
        np.testing.assert_array_equal(l, labels[keep])
        assert (b >= 0).all() and (b[:, [0, 2]] <= out.shape[1]).all() and (b[:, [1, 3]] <= out.shape[0]).all()
    assert cropped_at_least_once


def test_min_iou_constraint_holds():
    h, w = 300, 400
    found = 0
    for seed in range(80):
        rng = _rng(seed)
        boxes = np.concatenate([_random_boxes(rng, h, w, 2), [[50, 40, 330, 260]]]).astype(np.float32)
        win = A.sample_crop(h, w, boxes, rng, min_ious=(0.7,))
        if win is None:
            continue
        found += 1
        x0, y0, x1, y1 = win
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert max(_iou(b, win) for b in boxes) >= 0.7
        assert x1 - x0 >= 0.3 * w - 1 and y1 - y0 >= 0.3 * h - 1
        assert 0.5 * 0.9 <= (y1 - y0) / (x1 - x0) <= 2.0 * 1.1
        c = (boxes[:, :2] + boxes[:, 2:]) / 2
        assert ((c[:, 0] > x0) & (c[:, 0] < x1) & (c[:, 1] > y0) & (c[:, 1] < y1)).any()
    assert found >= 5
    # mode None keeps the image
    assert A.sample_crop(h, w, boxes, _rng(), min_ious=(None,)) is None


def test_random_expand_places_image_where_boxes_say():
    img = _rng(3).integers(1, 256, (30, 40, 3), dtype=np.uint8)
    lefts, ratios = [], []
    for seed in range(30):
        canvas, b = random_expand(img, [[0, 0, 40, 30]], _rng(seed), fill=0, max_ratio=4.0, prob=1.0)
        left, top = int(b[0, 0]), int(b[0, 1])
        np.testing.assert_array_equal(b, [[left, top, left + 40, top + 30]])
        np.testing.assert_array_equal(canvas[top:top + 30, left:left + 40], img)
        assert (canvas == 0).all(axis=2).sum() == canvas.shape[0] * canvas.shape[1] - 30 * 40
        lefts.append(left)
        ratios.append(canvas.shape[1] / 40)
    assert min(ratios) >= 1 and max(ratios) <= 4 and max(ratios) > 2.5
    assert len(set(lefts)) > 10


@pytest.mark.parametrize("expand_prob,max_expand,crop_prob,min_ious,min_scale", [
    (0.5, 4.0, 1.0, A.MIN_IOU_CHOICES, 0.3),          # SSD's own
    (0.7, 2.0, 0.5, (0.1, 0.3, 0.5, 0.7, 0.9), 0.5),  # the config's form: a crop probability and IoU modes
])
def test_fused_expand_crop_equals_sequential(expand_prob, max_expand, crop_prob, min_ious, min_scale):
    img = _rng(3).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    fill = (10, 20, 30)
    expanded = cropped = 0
    for seed in range(40):
        boxes = _random_boxes(_rng(1000 + seed), 60, 80, 3)
        labels = np.array([1, 2, 3], np.int32)
        r1, r2 = _rng(seed), _rng(seed)
        big, b1 = random_expand(img, boxes, r1, fill, max_ratio=max_expand, prob=expand_prob)
        expanded += big.shape != img.shape
        ref, b1, l1 = random_crop(big, b1, labels, r1, min_ious, prob=crop_prob, min_scale=min_scale)
        cropped += ref.shape != big.shape
        out, b2, l2 = random_expand_crop(img, boxes, labels, r2, fill, expand_prob, max_expand, crop_prob, min_ious,
                                         min_scale)
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_allclose(b2, b1, atol=1e-4)
        np.testing.assert_array_equal(l2, l1)
        assert r1.random() == r2.random()  # the same random numbers were drawn
    assert expanded >= 5 and cropped >= 5


def test_resize_window_matches_resizing_the_window():
    h, w = 120, 160
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 1.5, yy * 2.0, (xx + yy) * 0.9], -1).astype(np.uint8)  # smooth ramps
    fill = (90, 90, 90)
    for seed in range(30):
        rng = _rng(seed)
        win, _, _ = A.sample_expand_crop(h, w, np.zeros((0, 4)), np.zeros(0), rng, expand_prob=0.8)
        out, affine = A.resize_window(img, win, (64, 96), fill)
        ref = cv2.resize(extract_window(img, win, fill), (96, 64), interpolation=cv2.INTER_LINEAR)
        assert out.shape == (64, 96, 3)
        nominal = np.array([96 / (win[2] - win[0]), 64 / (win[3] - win[1])])
        # the image is placed within half an output pixel of where the big window's resize puts it
        for x in (max(win[0], 0) - win[0], min(win[2], w) - win[0]):
            assert abs(affine[0] * x + affine[2] - nominal[0] * x) <= 0.5 + 1e-6
        for y in (max(win[1], 0) - win[1], min(win[3], h) - win[1]):
            assert abs(affine[1] * y + affine[3] - nominal[1] * y) <= 0.5 + 1e-6
        assert np.abs(out.astype(int) - ref).mean() < 3.0


# ----------------------------------------------------------------------------------------------- TrainTransform
def test_train_transform_boxes_inside_and_normalised():
    t = A.TrainTransform((300, 300), MEAN, STD)
    img = _rng(5).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for seed in range(40):
        rng = _rng(seed)
        boxes = _random_boxes(rng, 480, 640, 6)
        labels = np.arange(6, dtype=np.int32) + 1
        chw, b, l = t(img, boxes, labels, rng)
        assert chw.shape == (3, 300, 300) and chw.dtype == np.float32 and chw.flags.c_contiguous
        assert b.dtype == np.float32 and l.dtype == np.int32 and b.shape == (len(l), 4)
        assert (b >= 0).all() and (b <= 1).all()
        assert ((b[:, 2] - b[:, 0]) * 300 >= 1 - 1e-4).all() and ((b[:, 3] - b[:, 1]) * 300 >= 1 - 1e-4).all()
        assert set(l.tolist()) <= set(labels.tolist())


def test_degenerate_boxes_dropped_with_labels():
    t = A.TrainTransform(300, 0, 1, expand_prob=0, crop_prob=0, flip_prob=0, photometric_prob=0)
    img = np.zeros((600, 600, 3), np.uint8)
    boxes = np.array([[10, 10, 11.5, 100], [100, 100, 300, 200], [50, 50, 150, 51],
                      [-100, 10, -10, 100],  # wholly outside the image: nothing left after clipping
                      [-50, 300, 5, 400], [590, 0, 700, 600]], np.float32)  # partly outside: clipped
    chw, b, l = t(img, boxes, np.array([4, 5, 6, 7, 8, 9]), _rng())
    np.testing.assert_allclose(b, [[1 / 6, 1 / 6, 0.5, 1 / 3], [0, 0.5, 2.5 / 300, 2 / 3], [295 / 300, 0, 1, 1]],
                               atol=1e-6)
    np.testing.assert_array_equal(l, [5, 8, 9])


def test_rectangle_pixels_follow_the_box():
    """A white filled rectangle on black is exactly where the transformed box says, after the full transform."""
    h, w = 480, 640
    img = np.zeros((h, w, 3), np.uint8)
    box = np.array([[200, 150, 400, 330]], np.float32)
    img[150:330, 200:400] = 255
    t = A.TrainTransform(300, 0, 1)  # mean 0: the zoom-out fill is black like the background; std 1: values = pixels
    flips = 0
    margin = 3.0  # output pixels of bilinear blending (upscaling is at most ~2.1x)
    centres = np.arange(300) + 0.5
    for seed in range(40):
        chw, b, l = t(img, box, np.array([1]), _rng(seed))
        assert l.tolist() == [1] and b.shape == (1, 4)
        plane = chw[0]
        assert np.array_equal(plane, chw[1]) and np.array_equal(plane, chw[2])  # grey stays grey
        x1, y1, x2, y2 = b[0] * 300
        inside = ((centres[None, :] > x1 + margin) & (centres[None, :] < x2 - margin)
                  & (centres[:, None] > y1 + margin) & (centres[:, None] < y2 - margin))
        outside = ((centres[None, :] < x1 - margin) | (centres[None, :] > x2 + margin)
                   | (centres[:, None] < y1 - margin) | (centres[:, None] > y2 + margin))
        assert inside.sum() > 50
        bright = plane[inside]
        assert bright.min() == bright.max()
        if outside.any():
            dark = plane[outside]
            assert dark.min() == dark.max()
            assert bright[0] > dark[0] + 40
        flips += x1 < 300 - x2 - 10  # the rectangle is right of centre in the source; left means flipped
    assert 5 <= flips <= 35


def test_empty_boxes_pass_every_transform():
    img = _rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    empty, no_labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
    t = A.TrainTransform(300, MEAN, STD)
    for seed in range(20):
        chw, b, l = t(img, empty, no_labels, _rng(seed))
        assert chw.shape == (3, 300, 300) and b.shape == (0, 4) and l.shape == (0,)
        assert np.isfinite(chw).all()
    out, b, l = random_crop(img, empty, no_labels, _rng(0), min_ious=(0.5,))
    assert b.shape == (0, 4) and l.shape == (0,) and out.shape[0] < 480
    assert A.random_hflip(img, empty, _rng(), prob=1.0)[1].shape == (0, 4)
    assert A.resize(img, empty, (300, 300))[1].shape == (0, 4)
    assert A.crop_boxes(empty, no_labels, (0, 0, 10, 10))[0].shape == (0, 4)


def test_same_seed_same_output():
    img = _rng(4).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = _random_boxes(_rng(9), 480, 640, 4)
    labels = np.arange(4, dtype=np.int32)
    t = A.TrainTransform(300, MEAN, STD)
    differs = False
    for seed in range(5):
        a = t(img, boxes, labels, _rng(seed))
        b = t(img, boxes, labels, _rng(seed))
        c = t(img, boxes, labels, _rng(seed + 100))
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        differs |= not np.array_equal(a[0], c[0])
    assert differs


# ---------------------------------------------------------------------------------------- photometric, normalise
def test_photometric_distort():
    img = _rng(6).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    assert A.photometric_distort(img, _rng(), prob=0.0) is img
    changed = 0
    for seed in range(10):
        out = A.photometric_distort(img, _rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, A.photometric_distort(img, _rng(seed)))
        changed += not np.array_equal(out, img)
    assert changed >= 7
    grey = np.repeat(img[..., :1], 3, axis=2)
    out = A.photometric_distort(grey, _rng(1), prob=1.0)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    # saturation x0 (and nothing else) makes every pixel grey at its HSV value, max(R, G, B)
    flat = A.photometric_distort(img, _rng(), brightness_delta=0, contrast_range=(1, 1), saturation_range=(0, 0),
                                 hue_delta=0, prob=1.0)
    for c in range(3):
        np.testing.assert_array_equal(flat[..., c], img.max(axis=2))
    # brightness alone: +delta everywhere (clipped)
    mid = np.full((4, 4, 3), 100, np.uint8)
    out = A.photometric_distort(mid, _rng(), brightness_delta=20, contrast_range=(1, 1), saturation_range=(1, 1),
                                hue_delta=0, prob=1.0)
    assert out.min() == out.max() and 80 <= int(out[0, 0, 0]) <= 120


def test_normalize_constant_image():
    img = np.empty((10, 20, 3), np.uint8)
    img[...] = (100, 150, 200)
    chw = A.normalize_to_chw(img, (100, 100, 100), (1, 50, 25))
    assert chw.shape == (3, 10, 20) and chw.dtype == np.float32 and chw.flags.c_contiguous
    for c, v in enumerate((0.0, 1.0, 4.0)):
        np.testing.assert_allclose(chw[c], v, atol=1e-6)
    e = A.EvalTransform((30, 40), (100, 100, 100), (1, 50, 25))(img)
    assert e.shape == (3, 30, 40)
    for c, v in enumerate((0.0, 1.0, 4.0)):
        np.testing.assert_allclose(e[c], v, atol=1e-6)


def test_eval_transform_matches_resize_then_normalise():
    img = _rng(8).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out = A.EvalTransform(300, MEAN, STD)(img)
    ref = (cv2.resize(img, (300, 300), interpolation=cv2.INTER_LINEAR).astype(np.float32) - MEAN) / STD
    np.testing.assert_allclose(out, ref.transpose(2, 0, 1), atol=1e-4)


@pytest.mark.parametrize("bad", [np.zeros((5, 5, 4), np.uint8), np.zeros((5, 5, 3), np.float32)])
def test_rejects_wrong_images(bad):
    with pytest.raises(ValueError):
        A.EvalTransform(8, MEAN, STD)(bad)


def test_bgr_input_gives_the_rgb_path_output_bit_for_bit():
    # The pipeline hands the transform OpenCV's BGR decode instead of converting every full-size image first.
    rng_img = np.random.default_rng(3)
    img = rng_img.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 90, 100], [100, 5, 150, 60]], np.float32)
    labels = np.array([1, 4], np.int32)
    rgb = A.TrainTransform(64, MEAN, STD)
    bgr = A.TrainTransform(64, MEAN, STD, bgr=True)
    for seed in range(20):  # expand, crop, photometric and flip each drawn both ways over the seeds
        want = rgb(img, boxes, labels, np.random.default_rng(seed))
        got = bgr(np.ascontiguousarray(img[..., ::-1]), boxes, labels, np.random.default_rng(seed))
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------------------ augmentation keys of the config
def _transform(**keys):
    from src.config import load_config
    from src.data.pipeline import build_train_transform
    cfg = load_config(img_shape=[300, 300], **keys)
    return build_train_transform(cfg, bgr=False)


ALL_ON = dict(expand_prob=1.0, crop_prob=1.0, photometric_prob=1.0, flip_prob=1.0)


def _scene():
    img = _rng(8).integers(60, 200, (400, 500, 3), dtype=np.uint8)
    return img, np.array([[40, 100, 140, 300]], np.float32), np.array([3], np.int32)


def _plain(img, boxes):
    chw = A.EvalTransform(300, MEAN, STD)(img)
    return chw, boxes / np.array([500, 400, 500, 400], np.float32)


@pytest.mark.parametrize("keys", [dict(expand_prob=0.0, crop_prob=0.0, photometric_prob=0.0, flip_prob=0.0),
                                  dict(ALL_ON, augment=False)])
def test_no_augmentation_is_a_plain_resize_and_draws_nothing(keys):
    t = _transform(**keys)
    img, boxes, labels = _scene()
    rng = _rng(0)
    state = rng.bit_generator.state
    chw, b, l = t(img, boxes, labels, rng)
    assert rng.bit_generator.state == state
    want_chw, want_boxes = _plain(img, boxes)
    np.testing.assert_array_equal(chw, want_chw)
    np.testing.assert_allclose(b, want_boxes, atol=1e-6)
    assert l.tolist() == [3]


def _widths(t, seeds=30):
    img, boxes, labels = _scene()
    out = [t(img, boxes, labels, _rng(seed))[1] for seed in range(seeds)]
    return np.array([b[0, 2] - b[0, 0] if len(b) else np.nan for b in out]), out


def test_a_zero_probability_turns_its_step_off():
    img, boxes, labels = _scene()
    _, plain = _plain(img, boxes)
    plain_w = plain[0, 2] - plain[0, 0]
    # expand off: nothing shrinks the box (the crop only enlarges it); with expand on alone, every box shrinks
    widths, _ = _widths(_transform(**dict(ALL_ON, expand_prob=0.0)))
    assert np.nanmin(widths) >= plain_w - 1e-3 and np.nanmax(widths) > plain_w * 1.2
    widths, _ = _widths(_transform(**dict(ALL_ON, crop_prob=0.0)))
    assert np.nanmax(widths) < plain_w
    # crop off (and expand off): the box keeps its size; only the flip moves it
    widths, boxes_out = _widths(_transform(**dict(ALL_ON, expand_prob=0.0, crop_prob=0.0)))
    np.testing.assert_allclose(widths, plain_w, atol=1e-5)
    # flip off: the box stays where it is
    _, boxes_out = _widths(_transform(**dict(ALL_ON, expand_prob=0.0, crop_prob=0.0, flip_prob=0.0)))
    for b in boxes_out:
        np.testing.assert_allclose(b, plain, atol=1e-5)
    # photometric off: the pixels are the resized image's, mirrored or not
    t = _transform(**dict(ALL_ON, expand_prob=0.0, crop_prob=0.0, photometric_prob=0.0))
    want, _ = _plain(img, boxes)
    for seed in range(10):
        chw = t(img, boxes, labels, _rng(seed))[0]
        assert np.array_equal(chw, want) or np.array_equal(chw, want[:, :, ::-1])
    # ... and on, it changes them
    t = _transform(**dict(ALL_ON, expand_prob=0.0, crop_prob=0.0, flip_prob=0.0))
    assert not np.array_equal(t(img, boxes, labels, _rng(0))[0], want)
