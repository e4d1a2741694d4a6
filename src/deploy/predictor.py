"""Detections on image files: eval's transform, a runtime, eval's NMS; results as JSON and as drawn PNGs."""
import os

import cv2

from ..data.augment import EvalTransform

from ..evaluation.postprocess import image_detections
from ..fileio import atomic_path, write_json_atomic
from .draw import draw_detections

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_images(path):
    """Image files: `path` itself, or the images in folder `path` sorted by name."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--images: {path} is neither a file nor a folder")
    files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise FileNotFoundError(f"--images: no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files in {path}")
    return files


class Predictor:
    def __init__(self, runtime, info):
        self.runtime = runtime
        self.info = info
        self.transform = EvalTransform(info.img_shape, info.img_mean, info.img_std)

    def outputs(self, image_rgb):
        """The network's raw outputs for one image: (boxes [A, 4] normalised, scores [A, C])."""
        boxes, scores = self.runtime(self.transform(image_rgb)[None])
        return boxes[0], scores[0]

    def __call__(self, image_rgb):
        """(boxes [K, 4] in pixels of `image_rgb`, scores [K], labels [K])."""
        return image_detections(*self.outputs(image_rgb), image_rgb.shape[:2], self.info.nms)


def detections_doc(path, image_rgb, boxes, scores, labels, class_names):
    h, w = image_rgb.shape[:2]
    return {"image": os.path.abspath(path), "width": int(w), "height": int(h),
            "box_format": "x1, y1, x2, y2 in pixels of the original image",
            "detections": [{"class_name": class_names[int(k)], "label": int(k), "score": round(float(s), 6),
                            "box": [round(float(v), 2) for v in b]}
                           for b, s, k in zip(boxes, scores, labels)]}


def output_stems(paths):
    """Output names: the file stem, or the whole file name where two inputs share a stem."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return [s if stems.count(s) == 1 else os.path.basename(p) for s, p in zip(stems, paths)]


def write_prediction(out_dir, stem, doc, image_rgb, boxes, scores, labels, class_names, draw_score):
    json_path = write_json_atomic(os.path.join(out_dir, stem + ".json"), doc, indent=1)
    png = draw_detections(image_rgb, boxes, scores, labels, class_names, draw_score)
    png_path = os.path.join(out_dir, stem + ".png")
    with atomic_path(png_path) as tmp:
        if not cv2.imwrite(tmp, png):
            raise OSError(f"could not write {png_path}")
    return json_path, png_path
