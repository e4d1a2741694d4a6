"""Checks shared by recipes."""
from ...config import ConfigError


def require_unit_width(model_name, width_mult):
    """Models without a width multiplier (VGG16, ResNet50, EfficientDet's compound scaling) refuse another value,
    rather than silently ignoring it."""
    if width_mult != 1.0:
        raise ConfigError(f"{model_name} has no width multiplier; width_mult must be 1.0, got {width_mult}")
