import numpy as np

from src.training.lr_schedule import warmup_cosine_lr


def test_warmup_then_cosine_fixed_values():
    lr = warmup_cosine_lr(1.0, steps_per_epoch=2, epochs=3, warmup_epochs=1, end_ratio=0.0)
    # 2 warm-up steps (0.5, 1.0), then cosine over the 4 remaining steps: 1, cos^2 terms 0.853553, 0.5, 0.146447.
    np.testing.assert_allclose(lr, [0.5, 1.0, 1.0, 0.853553, 0.5, 0.146447], atol=1e-6)


def test_end_ratio_is_the_floor_and_length_matches():
    lr = warmup_cosine_lr(0.1, steps_per_epoch=10, epochs=5, warmup_epochs=0, end_ratio=0.01)
    assert lr.shape == (50,) and lr.dtype == np.float32
    assert lr[0] == np.float32(0.1)
    assert lr.min() >= 0.001 - 1e-9
    assert np.all(np.diff(lr) <= 1e-9)
