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
    image, loc, labels, num_pos, _ = sample(_jpeg(120, 160), np.zeros((1, 4), np.float32),
                                            np.full(1, -1, np.int32), np.array(0, np.int32), np.array(7))
    assert image.shape == (3, 96, 96) and image.dtype == np.float32
    assert labels.shape == (len(_anchors()),) and np.all(labels == 0)
    assert np.all(loc == 0) and int(num_pos) == 0


def test_targets_decode_back_to_the_box_in_network_coordinates():
    anchors = _anchors()
    sample = _sample(anchors, 0)
    box = np.array([[40, 30, 120, 90]], np.float32)  # in a 160 x 120 image
    _, loc, labels, num_pos, _ = sample(_jpeg(120, 160, (40, 30, 120, 90)), box, np.array([2], np.int32),
                                        np.array(1, np.int32), np.array(7))
    pos = labels > 0
    assert int(num_pos) == pos.sum() >= 1 and np.all(labels[pos] == 3)  # class 2 -> label 3 (0 is background)
    decoded = BoxCoder((0.1, 0.2)).decode(loc[pos], anchors[pos])
    np.testing.assert_allclose(decoded, np.tile([[0.25, 0.25, 0.75, 0.75]], (pos.sum(), 1)), atol=1e-5)


def test_eval_sample_keeps_id_and_original_size():
    cfg = _cfg()
    sample = EvalSample(EvalTransform((96, 96), cfg.img_mean, cfg.img_std))
    image, img_id, hw = sample(_jpeg(120, 160), np.array(42, np.int64))
    assert image.shape == (3, 96, 96) and int(img_id) == 42 and list(hw) == [120, 160]


def test_an_images_augmentation_depends_on_the_seed_the_image_and_the_visit_only():
    """Whichever worker thread takes which sample, a seed gives the same run."""
    a, b = _sample(_anchors(), 5), _sample(_anchors(), 5)
    draws = {(img, visit): a.rng_for(img).random() for visit in range(3) for img in (11, 12)}
    # b sees the images in another order: each image's n-th visit still draws the same numbers
    assert {(img, visit): b.rng_for(img).random() for img in (12, 11) for visit in range(3)} == draws
    assert len(set(draws.values())) == 6                      # every visit of every image differs
    assert _sample(_anchors(), 6).rng_for(11).random() != draws[(11, 0)]   # and so does another seed


def test_each_worker_process_draws_its_own_augmentations():
    import pickle
    sample = _sample(_anchors(), 5)
    copy = pickle.loads(pickle.dumps(sample))  # what python_multiprocessing hands each worker
    copy._pid = -1  # as if the copy lived in another process: its own visit counts, so its pid joins the seed
    assert sample.rng_for(3).random() != copy.rng_for(3).random()


def test_the_training_pipeline_with_two_workers_repeats_itself_for_a_seed(tmp_path):
    """Two pipelines of the same seed give the same batches (and another seed other ones), whatever the threads do."""
    import mindspore as ms

    from src.data.pipeline import train_dataset_from_config
    from src.data.sources import build_split

    def config(seed):
        return load_config(img_shape=[96, 96], steps=[], aspect_ratios=[[2], [2]], batch_size=4, seed=seed,
                           num_parallel_workers=2, dataset="demo", demo_root=str(tmp_path / "demo"),
                           demo_num_train=8, demo_num_val=1, mindrecord_dir=str(tmp_path / "mr"))
    info = build_split(config(3), "train")

    def batches(seed):
        ms.set_seed(1)  # the shuffle order follows MindSpore's seed, as train.py sets it
        dataset = train_dataset_from_config(config(seed), info.path, _anchors())
        return [[a.copy() for a in b] for b in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)]

    first, again, other = batches(3), batches(3), batches(4)
    assert len(first) == 2
    for x, y in zip(first, again):
        for a, b in zip(x, y):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0][0], other[0][0])
