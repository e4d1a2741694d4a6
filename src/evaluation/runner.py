"""Run an inference network over an eval dataset and score it with COCOeval."""
import time

import mindspore as ms
import numpy as np

from .postprocess import image_detections


def predict_dataset(infer_net, dataset, batch_size, params, on_image):
    """Calls `on_image(img_id, boxes_px, scores, labels)` for every image; returns images per second.

    A short last batch is padded to `batch_size`, so a graph compiled for one shape is reused.
    """
    start, count = time.perf_counter(), 0
    for batch in dataset.create_dict_iterator(num_epochs=1, output_numpy=True):
        images, img_ids, hws = batch["image"], batch["img_id"], batch["image_hw"]
        n = images.shape[0]
        if n < batch_size:
            images = np.concatenate([images, np.zeros((batch_size - n,) + images.shape[1:], images.dtype)])
        boxes, scores = infer_net(ms.Tensor(images))
        boxes, scores = boxes.asnumpy(), scores.asnumpy()
        for i in range(n):
            on_image(int(img_ids[i]), *image_detections(boxes[i], scores[i], hws[i], params))
        count += n
    return count / max(time.perf_counter() - start, 1e-9)


def evaluate_dataset(infer_net, dataset, batch_size, params, evaluator, verbose=True):
    """Detections for every image, added to `evaluator` (a COCOEvaluator); returns its result dict."""
    infer_net.set_train(False)
    evaluator.reset()
    speed = predict_dataset(infer_net, dataset, batch_size, params, evaluator.add)
    result = evaluator.evaluate(verbose=verbose)
    result["images_per_second"] = speed
    return result
