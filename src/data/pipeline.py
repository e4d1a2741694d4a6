"""MindDataset pipelines: MindRecord -> decode -> augment -> resize -> normalise -> (train) match and encode.

The per-sample work is numpy and cv2 in a python map; cv2 releases the GIL, so worker threads overlap.
"""
import os
import threading

import cv2
import mindspore.dataset as ds
import numpy as np

from ..box.coder import BoxCoder
from ..box.matcher import AnchorTargetEncoder
from .augment import TrainTransform
from .image_io import decode_bgr
from .mindrecord import unpack_targets


def decode_record_bgr(data):
    """A MindRecord's image (an `S` array) -> HWC uint8 BGR."""
    img = decode_bgr(data)
    if img is None:  # validated when the MindRecord was written, so this means the file changed under us
        raise ValueError("a MindRecord image could not be decoded; rebuild it with --only_create_dataset")
    return img


PREFETCH = 4


def build_train_transform(cfg, bgr=True):
    """The training transform from the augmentation keys; `augment: false` turns every step off."""
    on = 1.0 if cfg.augment else 0.0
    photometric = {"brightness_delta": cfg.brightness_delta, "contrast_range": tuple(cfg.contrast_range),
                   "saturation_range": tuple(cfg.saturation_range), "hue_delta": cfg.hue_delta}
    return TrainTransform(tuple(cfg.img_shape), cfg.img_mean, cfg.img_std,
                          expand_prob=on * cfg.expand_prob, max_expand=cfg.expand_max_ratio,
                          crop_prob=on * cfg.crop_prob, min_ious=cfg.crop_min_ious, crop_min_scale=cfg.crop_min_scale,
                          photometric_prob=on * cfg.photometric_prob, photometric=photometric,
                          flip_prob=on * cfg.flip_prob, bgr=bgr)


def build_target_encoder(cfg, anchors):
    """Matching and box encoding against `anchors`, from the anchor keys."""
    neg_iou = cfg.ignore_threshold if cfg.ignore_threshold > 0 else None
    return AnchorTargetEncoder(anchors, BoxCoder(cfg.prior_scaling), cfg.match_threshold, neg_iou)


class TrainSample:
    """One training sample: augmented CHW image, box targets [A, 4], labels [A] and the positive count.

    `transform` takes a BGR image (as decoded: no full-size colour conversion), `encoder` matches and encodes.
    The augmentation of an image is drawn from its own random stream, seeded by (`seed`, image id, how often this
    image was seen before): a run is the same whichever worker thread takes which sample, so a seed reproduces it.
    With python_multiprocessing every worker counts its own visits, so the process id joins the seed there.
    """

    def __init__(self, transform, encoder, seed):
        self.transform = transform
        self.encoder = encoder
        self.seed = int(seed)
        self._visits = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __getstate__(self):  # python_multiprocessing pickles this object into its workers: not the lock
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def rng_for(self, img_id):
        """The random stream of this visit of image `img_id`."""
        img_id = int(np.asarray(img_id).reshape(-1)[0])
        with self._lock:
            visit = self._visits.get(img_id, 0)
            self._visits[img_id] = visit + 1
        key = [self.seed, img_id, visit]
        pid = os.getpid()
        if pid != self._pid:  # a worker process
            key.append(pid)
        return np.random.default_rng(key)

    def augment(self, image, boxes, labels, num_boxes, img_id):
        """A record's augmented CHW image and its boxes (normalised x1, y1, x2, y2) and labels, before encoding."""
        img = decode_record_bgr(image)
        boxes, labels = unpack_targets(boxes, labels, num_boxes)
        return self.transform(img, boxes, labels, self.rng_for(img_id))

    def __call__(self, image, boxes, labels, num_boxes, img_id):
        chw, boxes, labels = self.augment(image, boxes, labels, num_boxes, img_id)
        loc, target_labels, num_pos = self.encoder(boxes, labels)
        return chw, loc, target_labels, np.array(num_pos, np.int32), img_id


class EvalSample:
    """Resize and normalise only (`transform`, an EvalTransform); keeps the image id and the original (height,
    width)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image, img_id):
        img = cv2.cvtColor(decode_record_bgr(image), cv2.COLOR_BGR2RGB)
        return self.transform(img), img_id, np.array(img.shape[:2], np.int32)


def create_train_dataset(mindrecord_path, sample, batch_size, rank=0, group_size=1, shuffle=True, with_ids=False,
                         workers=2, multiprocessing=False):
    """Batches of (image [B,3,H,W], loc [B,A,4], labels [B,A], num_pos [B]); each rank reads its own shard.

    `sample` (a TrainSample) turns a record into its training tensors, in `workers` threads (or processes).
    The shards are cut from one shuffled order (the same seed on every rank), so the ranks see disjoint images each
    epoch; when the image count does not divide evenly, a few images repeat so that every rank has as many steps.
    `with_ids` appends the img_id of each sample ([B] int64): what rank_dump_dir records.
    """
    # MindSpore queues 16 rows or batches between ops by default: with the 640 models' batches (48 MB at batch 8)
    # that alone is most of a gigabyte, for no speed gained over a few.
    ds.config.set_prefetch_size(PREFETCH)
    columns = ["image", "boxes", "labels", "num_boxes", "img_id"]
    dataset = ds.MindDataset(mindrecord_path, columns_list=columns, shuffle=shuffle,
                             num_shards=group_size if group_size > 1 else None,
                             shard_id=rank if group_size > 1 else None, num_parallel_workers=1)
    outputs = ["image", "loc", "labels", "num_pos"]
    dataset = dataset.map(operations=sample, input_columns=columns, output_columns=outputs + ["img_id"],
                          num_parallel_workers=workers, python_multiprocessing=bool(multiprocessing))
    dataset = dataset.project(outputs + (["img_id"] if with_ids else []))
    return dataset.batch(batch_size, drop_remainder=True)


def train_sample_from_config(cfg, anchors, rank=0):
    """The per-sample training map of `cfg`: augmentation, then matching and encoding against `anchors`."""
    return TrainSample(build_train_transform(cfg), build_target_encoder(cfg, anchors), cfg.seed + 1000 * rank)


def train_dataset_from_config(cfg, mindrecord_path, anchors, rank=0, group_size=1, with_ids=False):
    """The training dataset of `cfg` (augmentation, anchors and data keys) for one rank."""
    sample = train_sample_from_config(cfg, anchors, rank)
    return create_train_dataset(mindrecord_path, sample, cfg.batch_size, rank, group_size, with_ids=with_ids,
                                workers=cfg.num_parallel_workers, multiprocessing=cfg.python_multiprocessing)


def create_eval_dataset(mindrecord_path, transform, batch_size, workers=2):
    """Batches of (image, img_id, original hw), in file order, the last batch possibly short."""
    dataset = ds.MindDataset(mindrecord_path, columns_list=["image", "img_id"], shuffle=False,
                             num_parallel_workers=1)
    dataset = dataset.map(operations=EvalSample(transform), input_columns=["image", "img_id"],
                          output_columns=["image", "img_id", "image_hw"], num_parallel_workers=workers,
                          python_multiprocessing=False)
    return dataset.batch(batch_size, drop_remainder=False)
