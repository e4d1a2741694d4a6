"""Backbones: each module registers its factory on import."""
from . import efficientnet  # noqa: F401
from . import ghostnet  # noqa: F401
from . import mobilenet_v2  # noqa: F401
from . import resnet  # noqa: F401
from . import vgg16  # noqa: F401
