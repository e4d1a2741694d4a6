"""Anchor generators: tiny cases checked by hand, model-zoo counts, and the model zoo's own default boxes."""
import math
from pathlib import Path

import numpy as np
import pytest

from src.box.anchors import GridAnchorGenerator, SSDAnchorGenerator, build_anchor_generator

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"

R2 = math.sqrt(2.0)

# Model zoo ssd300 (MobileNetV2) settings.
SSD300 = dict(min_scale=0.2, max_scale=0.95, aspect_ratios=[[], [2, 3], [2, 3], [2, 3], [2, 3], [2, 3]],
              steps=[16, 32, 64, 100, 150, 300])
SSD300_SIZES = [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
# The paper's VGG16 SSD300.
VGG300 = dict(aspect_ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]], steps=[8, 16, 32, 64, 100, 300],
              scales=[0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05])
VGG300_SIZES = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
RETINA640_SIZES = [(80, 80), (40, 40), (20, 20), (10, 10), (5, 5)]


def reference(name):
    """[cy, cx, h, w] rows of a model zoo reference file, or a skip where the files are not around."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"model zoo reference boxes not found at {path} (only present next to the project's checkout)")
    return np.load(path)


def test_ssd_tiny_case_by_hand():
    # Two levels: scales 0.2, 0.9 (+1.0); level 0 is 2x2 with ratio 2, level 1 is 1x1 with no ratios.
    gen = SSDAnchorGenerator(min_scale=0.2, max_scale=0.9, aspect_ratios=[[2], []])
    anchors = gen.generate([(2, 2), (1, 1)], (100, 100))
    assert anchors.dtype == np.float32 and anchors.shape == (4 * 4 + 2, 4)
    s_between = math.sqrt(0.2 * 0.9)
    cell_boxes = [(0.2, 0.2), (0.2 * R2, 0.2 / R2), (0.2 / R2, 0.2 * R2), (s_between, s_between)]
    expected = [(cx, cy, w, h) for cy in (0.25, 0.75) for cx in (0.25, 0.75) for w, h in cell_boxes]
    expected += [(0.5, 0.5, 0.9, 0.9), (0.5, 0.5, math.sqrt(0.9), math.sqrt(0.9))]
    np.testing.assert_allclose(anchors, expected, atol=1e-6)
    assert gen.num_anchors_per_location() == [4, 2]


def test_ssd_first_level_without_ratios_is_the_model_zoo_special_case():
    gen = SSDAnchorGenerator(min_scale=0.2, max_scale=0.9, aspect_ratios=[[], [2]])
    anchors = gen.generate([(1, 1), (1, 1)], (300, 300))
    np.testing.assert_allclose(anchors[:3, 2:], [(0.1, 0.1), (0.2 * R2, 0.2 / R2), (0.2 / R2, 0.2 * R2)], atol=1e-6)
    assert gen.num_anchors_per_location() == [3, 4]


def test_ssd_steps_and_non_square_image():
    anchors = SSDAnchorGenerator(aspect_ratios=[[]], steps=[40]).generate([(2, 2)], (100, 100))
    # centres (j + 0.5) * 40 / 100
    np.testing.assert_allclose(np.unique(anchors[:, 0]), [0.2, 0.6], atol=1e-6)
    wide = SSDAnchorGenerator(aspect_ratios=[[2]]).generate([(2, 4)], (100, 200))
    # step 50 on both axes: cx = (j + 0.5) * 50 / 200, cy = (i + 0.5) * 50 / 100
    np.testing.assert_allclose(np.unique(wide[:, 0]), [0.125, 0.375, 0.625, 0.875], atol=1e-6)
    np.testing.assert_allclose(np.unique(wide[:, 1]), [0.25, 0.75], atol=1e-6)


def test_grid_tiny_case_by_hand():
    # stride 64 / 2 = 32 px, base 2 * 32 = 64 px = 1.0 of the image; ratio outer, scale inner.
    gen = GridAnchorGenerator(anchor_scale=2, scales=(1, 2), aspect_ratios=(1, 4))
    anchors = gen.generate([(2, 2)], (64, 64))
    assert anchors.dtype == np.float32 and anchors.shape == (2 * 2 * 4, 4)
    cell_boxes = [(1, 1), (2, 2), (2, 0.5), (4, 1)]  # (w, h): h = base * s / sqrt(r), w = base * s * sqrt(r)
    expected = [(cx, cy, w, h) for cy in (0.25, 0.75) for cx in (0.25, 0.75) for w, h in cell_boxes]
    np.testing.assert_allclose(anchors, expected, atol=1e-6)
    assert gen.num_anchors_per_location(1) == [4]


def test_grid_explicit_strides():
    gen = GridAnchorGenerator(anchor_scale=2, scales=(1,), aspect_ratios=(1,), strides=[16])
    anchors = gen.generate([(2, 2)], (64, 64))
    # centres (j * 16 + 8) / 64, size 2 * 16 / 64
    np.testing.assert_allclose(anchors, [(0.125, 0.125, 0.5, 0.5), (0.375, 0.125, 0.5, 0.5),
                                         (0.125, 0.375, 0.5, 0.5), (0.375, 0.375, 0.5, 0.5)], atol=1e-6)
    assert gen.num_anchors_per_location() == [1]


@pytest.mark.parametrize("gen, sizes, img, count, per_location", [
    (SSDAnchorGenerator(**SSD300), SSD300_SIZES, 300, 1917, [3, 6, 6, 6, 6, 6]),
    (SSDAnchorGenerator(**VGG300), VGG300_SIZES, 300, 8732, [4, 6, 6, 6, 4, 4]),
    (GridAnchorGenerator(anchor_scale=4, scales=(1, 2 ** 0.5), aspect_ratios=(1, 2, 0.5)), RETINA640_SIZES, 640,
     51150, [6] * 5),
    (GridAnchorGenerator(anchor_scale=4, scales=(1, 2 ** (1 / 3), 2 ** (2 / 3)), aspect_ratios=(1, 2, 0.5)),
     [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4)], 512, 49104, [9] * 5),
])
def test_model_anchor_counts(gen, sizes, img, count, per_location):
    anchors = gen.generate(sizes, (img, img))
    assert anchors.shape == (count, 4)
    assert gen.num_anchors_per_location(len(sizes)) == per_location
    assert sum(n * h * w for n, (h, w) in zip(per_location, sizes)) == count


def test_ssd300_matches_model_zoo_default_boxes():
    expected_yxhw = reference("ssd300_default_boxes_yxhw.npy")
    anchors = SSDAnchorGenerator(**SSD300).generate(SSD300_SIZES, (300, 300))
    assert anchors.shape == expected_yxhw.shape
    np.testing.assert_allclose(anchors[:, [1, 0, 3, 2]], expected_yxhw, rtol=0, atol=1e-6)


def test_resnet50_fpn_matches_model_zoo_grid_anchors():
    expected_yxhw = reference("ssd_resnet50_fpn_default_boxes_yxhw.npy")
    gen = GridAnchorGenerator(anchor_scale=4, scales=(1, 2 ** 0.5), aspect_ratios=(1, 2, 0.5),
                              strides=[8, 16, 32, 64, 128])
    anchors = gen.generate(RETINA640_SIZES, (640, 640))
    assert anchors.shape == expected_yxhw.shape
    np.testing.assert_allclose(anchors[:, [1, 0, 3, 2]], expected_yxhw, rtol=0, atol=1e-6)
    # without explicit strides they follow from image size / feature size: 640 / 80 = 8, ...
    implied = GridAnchorGenerator(anchor_scale=4, scales=(1, 2 ** 0.5), aspect_ratios=(1, 2, 0.5))
    np.testing.assert_array_equal(implied.generate(RETINA640_SIZES, (640, 640)), anchors)


def test_wrong_numbers_of_levels_raise():
    with pytest.raises(ValueError, match="feature sizes"):
        SSDAnchorGenerator(**SSD300).generate(SSD300_SIZES[:5], (300, 300))
    with pytest.raises(ValueError, match="scales"):
        SSDAnchorGenerator(aspect_ratios=[[2], [2]], scales=[0.1, 0.2])
    with pytest.raises(ValueError, match="steps"):
        SSDAnchorGenerator(aspect_ratios=[[2], [2]], steps=[8])
    with pytest.raises(ValueError, match="levels"):
        SSDAnchorGenerator(**SSD300).num_anchors_per_location(5)
    with pytest.raises(ValueError, match="feature sizes"):
        GridAnchorGenerator(strides=[8, 16]).generate([(4, 4)], (32, 32))
    with pytest.raises(ValueError, match="num_levels"):
        GridAnchorGenerator().num_anchors_per_location()


def test_build_anchor_generator():
    gen = build_anchor_generator({"type": "grid", "anchor_scale": 4, "scales": [1, 2 ** 0.5]})
    assert isinstance(gen, GridAnchorGenerator) and gen.num_anchors_per_location(2) == [6, 6]
    ssd = build_anchor_generator(dict(type="ssd", **SSD300))
    assert isinstance(ssd, SSDAnchorGenerator) and len(ssd.generate(SSD300_SIZES, (300, 300))) == 1917
    with pytest.raises(ValueError, match="'yolo'"):
        build_anchor_generator({"type": "yolo"})
    with pytest.raises(ValueError, match="strides_typo"):
        build_anchor_generator({"type": "grid", "strides_typo": [8]})
