"""Feature-map sizes computed from layer geometry, so that anchors follow the model and the image size."""


def conv_out_size(size, kernel_size, stride, padding, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def downsampled_size(size, stride):
    """Size after log2(stride) stride-2 convs with k // 2 padding (3x3 pad 1, or 1x1 pad 0): each rounds up."""
    if stride < 1 or stride & (stride - 1):
        raise ValueError(f"stride must be a power of two, got {stride}")
    while stride > 1:
        size = conv_out_size(size, 3, 2, 1)
        stride //= 2
    return size


def downsampled_hw(img_hw, stride):
    return tuple(downsampled_size(s, stride) for s in img_hw)
