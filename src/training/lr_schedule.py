"""Learning-rate schedule: linear warm-up, then cosine decay, one value per step."""
import math

import numpy as np


def warmup_cosine_lr(base_lr, steps_per_epoch, epochs, warmup_epochs=0.0, end_ratio=0.0):
    """float32 [epochs * steps_per_epoch]; warm-up rises linearly from base_lr / warmup_steps to base_lr."""
    total = int(steps_per_epoch * epochs)
    warmup = min(int(round(steps_per_epoch * warmup_epochs)), total)
    step = np.arange(total, dtype=np.float64)
    end_lr = base_lr * end_ratio
    decay_len = max(total - warmup, 1)
    progress = np.clip((step - warmup) / decay_len, 0.0, 1.0)
    lr = end_lr + 0.5 * (base_lr - end_lr) * (1.0 + np.cos(math.pi * progress))
    if warmup:
        lr[:warmup] = base_lr * (step[:warmup] + 1) / warmup
    return lr.astype(np.float32)


def linear_scaled_lr(lr, global_batch, base_batch_size):
    """The linear scaling rule (Goyal et al., 2017): lr was tuned for `base_batch_size`; a k times larger global
    batch takes k times the lr."""
    if base_batch_size < 1:
        raise ValueError(f"base_batch_size must be at least 1, got {base_batch_size}")
    return lr * global_batch / base_batch_size
