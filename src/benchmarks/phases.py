"""The timed parts of benchmark.py, one function each. All times exclude graph compilation (warm-up calls)."""
import itertools
import logging
import os
import time

import mindspore as ms
import numpy as np

from ..config import Config
from .measure import peak_rss_mb, summary, timed

log = logging.getLogger("ssd")


def random_gt_boxes(rng, count):
    """`count` normalised xyxy boxes of COCO-like sizes, and class indices."""
    size = rng.uniform(0.03, 0.5, (count, 2))
    centre = rng.uniform(size / 2, 1 - size / 2)
    return np.concatenate([centre - size / 2, centre + size / 2], 1).astype(np.float32), rng.integers(0, 80, count)


def repeated(dataset, batches, output_numpy=False):
    """An iterator over `batches` batches of `dataset`, repeating its epochs as often as needed."""
    per_epoch = dataset.get_dataset_size()
    if per_epoch == 0:
        from ..errors import DatasetError
        raise DatasetError("the training set has fewer images than one batch; lower --batch_size")
    epochs = -(-batches // per_epoch)
    iterator = dataset.repeat(epochs).create_tuple_iterator(num_epochs=1, output_numpy=output_numpy)
    return itertools.islice(iterator, batches)


def benchmark_matching(encoder, num_boxes=20, images=200, seed=0):
    """Matching + encoding of one image's `num_boxes` gt boxes by `encoder` (an AnchorTargetEncoder)."""
    anchors = encoder.anchors
    rng = np.random.default_rng(seed)
    samples = [random_gt_boxes(rng, num_boxes) for _ in range(images)]
    for boxes, labels in samples[:5]:
        encoder(boxes, labels)
    start = time.perf_counter()
    for boxes, labels in samples:
        encoder(boxes, labels)
    per_image = (time.perf_counter() - start) / images
    return {"anchors": len(anchors), "gt_boxes": num_boxes, "images": images, "ms_per_image": per_image * 1e3}


# The demo set's images are 256-400 px; the pipeline is timed on COCO-sized ones (COCO's average is about
# 580 x 480), which cost more to decode and resize.
COCO_SIZED = {"images": 64, "image_size": (480, 640)}


def coco_sized_source_from_config(cfg, folder):
    """MindRecordInfo of a synthetic set with COCO-sized images under `folder`, read as COCO json with `cfg`'s other
    data keys."""
    from ..data.demo import ensure_demo_dataset
    from ..data.sources import build_split
    root = ensure_demo_dataset(os.path.join(folder, "images"), num_train=COCO_SIZED["images"], num_val=1,
                               image_size=COCO_SIZED["image_size"])
    coco_cfg = Config(dict(cfg, dataset="coco", coco_root=root, mindrecord_dir=os.path.join(folder, "mindrecord")))
    return build_split(coco_cfg, "train")


def benchmark_pipeline(train_info, dataset, batch_size, workers, anchors, batches):
    """The training data pipeline `dataset` alone (read, decode, augment, resize, normalise, match and encode,
    batch)."""
    iterator = repeated(dataset, batches + 1, output_numpy=True)
    next(iterator)  # the pipeline's threads start and fill their queues
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - start
    return {"batches": batches, "batch_size": batch_size, "workers": workers,
            "images_per_s": batches * batch_size / seconds, "source": train_info.path,
            "source_images": train_info.num_images, "anchors": len(anchors)}


def benchmark_inference(infer_net, img_shape, runs):
    """Latency of the inference wrapper (network + box decoding) at batch 1; NMS is not included."""
    x = ms.Tensor(np.random.default_rng(0).standard_normal((1, 3) + tuple(img_shape)).astype(np.float32))
    infer_net.set_train(False)
    start = time.perf_counter()
    infer_net(x)[0].asnumpy()
    compile_s = time.perf_counter() - start
    seconds = timed(lambda: infer_net(x)[0].asnumpy(), runs, warmup=1)
    result = summary(seconds)
    return {"compile_and_first_s": compile_s, "runs": runs, "median_ms": result["median_s"] * 1e3,
            "min_ms": result["min_s"] * 1e3}


def sink_available(dataset_sink_mode):
    """dataset_sink_mode requested and possible: MindSpore's data_sink refuses the CPU."""
    return bool(dataset_sink_mode) and ms.get_context("device_target") != "CPU"


def benchmark_training(train_step, dataset, batch, warmup, steps, dataset_sink_mode=False):
    """Training steps fed by the real data pipeline, as train.py runs them: a step's time runs from the end of the
    previous one, so waiting for data counts. The warm-up steps (compilation) are reported apart."""
    sink_on = sink_available(dataset_sink_mode)
    times, losses = [], []
    if sink_on:  # one step per sink call, so that every step is timed
        sink = ms.data_sink(train_step, dataset, sink_size=1)
        calls = ((sink, ()) for _ in range(warmup + steps))
    else:
        calls = ((train_step, inputs) for inputs in repeated(dataset, warmup + steps))
    tick = time.perf_counter()
    for step, inputs in calls:
        loss = step(*inputs)[0]
        losses.append(float(loss.asnumpy()))
        now = time.perf_counter()
        times.append(now - tick)
        tick = now
        if len(times) <= warmup or len(times) % 5 == 0:
            log.info(f"  step {len(times)}/{warmup + steps}: {times[-1]:.3f} s, loss {losses[-1]:.4f}")
    if len(times) < warmup + steps:
        raise ValueError(f"the dataset gave {len(times)} batches, fewer than --warmup_steps + --timed_steps")
    steady = summary(times[warmup:])
    return {"batch_size": batch, "warmup_steps": warmup, "steps": steps, "dataset_sink": sink_on,
            "warmup_s": [round(t, 3) for t in times[:warmup]], "median_s_per_step": steady["median_s"],
            "mean_s_per_step": steady["mean_s"], "min_s_per_step": steady["min_s"],
            "max_s_per_step": steady["max_s"], "images_per_s": batch / steady["median_s"],
            "first_loss": losses[0], "last_loss": losses[-1], "peak_rss_mb": peak_rss_mb()}
