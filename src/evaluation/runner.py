"""Run an inference network over an eval dataset and score it with COCOeval."""
import time

import mindspore as ms
import numpy as np

from ..data.augment import EvalTransform
from ..data.pipeline import create_eval_dataset
from ..models.inference import InferenceNet
from .coco_evaluator import COCOEvaluator
from .postprocess import NMSParams, image_detections


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


class DatasetEvaluator:
    """COCO mAP of a detector on one eval MindRecord: used by eval.py and by training's periodic evaluation.

    `transform` is the eval preprocessing (an EvalTransform), `nms` the NMSParams, `variances` the box coder's.
    """

    def __init__(self, net, eval_info, transform, nms, variances, batch_size=8, workers=2):
        self.net = net
        self.infer = InferenceNet(net, variances)
        self.batch_size = batch_size
        self.dataset = create_eval_dataset(eval_info.path, transform, batch_size, workers)
        self.coco = COCOEvaluator(eval_info.gt_json, eval_info.class_names, eval_info.category_ids)
        self.params = nms

    @classmethod
    def from_config(cls, cfg, net, eval_info):
        transform = EvalTransform(tuple(cfg.img_shape), cfg.img_mean, cfg.img_std)
        return cls(net, eval_info, transform, NMSParams.from_config(cfg), cfg.prior_scaling, cfg.eval_batch_size,
                   cfg.num_parallel_workers)

    def __call__(self, verbose=True):
        was_training = self.net.training
        self.infer.set_train(False)
        self.coco.reset()
        speed = predict_dataset(self.infer, self.dataset, self.batch_size, self.params, self.coco.add)
        result = self.coco.evaluate(verbose=verbose)
        result["images_per_second"] = speed
        self.net.set_train(was_training)
        return result
