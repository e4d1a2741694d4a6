"""The per-sample map functions of the MindDataset pipeline, called directly."""
import cv2
import numpy as np

from src.box.anchors import SSDAnchorGenerator
from src.box.coder import BoxCoder
from src.config import load_config
from src.data.augment import EvalTransform
from src.data.pipeline import EvalSample, TrainSample, build_target_encoder, build_train_transform


def _jpeg(h, w, box=None):
    img = np.full((h, w, 3), 40, np.uint8)
    if box is not None:
        x1, y1, x2, y2 = box
        img[y1:y2, x1:x2] = 220
    # As MindDataset hands over a bytes column: an `S<len>` array of shape (1,).
    return np.array([cv2.imencode(".png", img)[1].tobytes()])


def _cfg():
    return load_config(img_shape=[96, 96], steps=[], aspect_ratios=[[2], [2]], augment=False)


def _anchors():
    return SSDAnchorGenerator(aspect_ratios=[[2], [2]]).generate([(6, 6), (3, 3)], (96, 96))


def _sample(anchors, seed, cfg=None):
    cfg = cfg or _cfg()
    return TrainSample(build_train_transform(cfg), build_target_encoder(cfg, anchors), seed)


def test_an_image_without_boxes_is_pure_background():
    sample = _sample(_anchors(), 0)
    # MindRecord stores an empty image as one padding row with num_boxes 0.
    image, loc, labels, num_pos = sample(_jpeg(120, 160), np.zeros((1, 4), np.float32),
                                         np.full(1, -1, np.int32), np.array(0, np.int32))
    assert image.shape == (3, 96, 96) and image.dtype == np.float32
    assert labels.shape == (len(_anchors()),) and np.all(labels == 0)
    assert np.all(loc == 0) and int(num_pos) == 0


def test_targets_decode_back_to_the_box_in_network_coordinates():
    anchors = _anchors()
    sample = _sample(anchors, 0)
    box = np.array([[40, 30, 120, 90]], np.float32)  # in a 160 x 120 image
    _, loc, labels, num_pos = sample(_jpeg(120, 160, (40, 30, 120, 90)), box, np.array([2], np.int32),
                                     np.array(1, np.int32))
    pos = labels > 0
    assert int(num_pos) == pos.sum() >= 1 and np.all(labels[pos] == 3)  # class 2 -> label 3 (0 is background)
    decoded = BoxCoder((0.1, 0.2)).decode(loc[pos], anchors[pos])
    np.testing.assert_allclose(decoded, np.tile([[0.25, 0.25, 0.75, 0.75]], (pos.sum(), 1)), atol=1e-5)


def test_eval_sample_keeps_id_and_original_size():
    cfg = _cfg()
    sample = EvalSample(EvalTransform((96, 96), cfg.img_mean, cfg.img_std))
    image, img_id, hw = sample(_jpeg(120, 160), np.array(42, np.int64))
    assert image.shape == (3, 96, 96) and int(img_id) == 42 and list(hw) == [120, 160]


def test_each_worker_process_draws_its_own_augmentations():
    import pickle
    sample = _sample(_anchors(), 5)
    copy = pickle.loads(pickle.dumps(sample))  # what python_multiprocessing hands each worker
    assert copy.rng.random() == sample.rng.random()  # the same state: the same draws, unless re-seeded
    copy._pid = -1  # as if the copy lived in another process
    here, there = sample._process_rng(), copy._process_rng()
    assert not np.array_equal(here.random(8), there.random(8))
    assert sample._process_rng() is here and copy._process_rng() is there  # each keeps its own stream
