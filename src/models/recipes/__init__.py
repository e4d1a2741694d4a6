"""Model recipes: which backbone, neck and head make each named detector, one file per detector.

A recipe takes the width multiplier and the input size `(h, w)` and returns (backbone, neck, head_factory);
`build_detector` calls the head factory with the anchors per location and the number of class outputs, which it
derives from the anchor settings and the loss.
A new detector is one file here with `@register_model("name")` on its recipe, plus its import below.
"""
from . import efficientdet_d0  # noqa: F401
from . import ssd_ghostnet  # noqa: F401
from . import ssd_mobilenet_v2  # noqa: F401
from . import ssd_resnet50_fpn  # noqa: F401
from . import ssd_vgg16  # noqa: F401
