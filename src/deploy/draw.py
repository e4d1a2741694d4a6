"""Detections drawn on the image: a box and a `name score` tag per detection, one colour per class."""
import cv2
import numpy as np


def class_colour(label):
    """A distinct, stable BGR colour per class (golden-ratio hue steps)."""
    hue = int((label * 0.618033988749895 % 1.0) * 180)
    hsv = np.uint8([[[hue, 200, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_detections(image_rgb, boxes, scores, labels, class_names, min_score):
    """A BGR copy of `image_rgb` with the detections scoring at least `min_score`, lowest score drawn first."""
    canvas = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    h, w = canvas.shape[:2]
    thickness = max(1, round(min(h, w) / 300))
    font_scale = max(0.4, min(h, w) / 900)
    for i in np.argsort(scores, kind="stable"):
        if scores[i] < min_score:
            continue
        colour = class_colour(int(labels[i]))
        x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[i])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        text = f"{class_names[int(labels[i])]} {scores[i]:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = y1 - th - base if y1 - th - base >= 0 else min(y1 + thickness, h - th - base)
        cv2.rectangle(canvas, (x1, ty), (x1 + tw + 2, ty + th + base), colour, -1)
        cv2.putText(canvas, text, (x1 + 1, ty + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return canvas
