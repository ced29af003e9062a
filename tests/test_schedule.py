import math

import pytest

from utils.schedule import budget_share, cosine_lr


def test_budget_share_is_the_larger_of_steps_and_time():
    assert budget_share(50, 100, 10.0, None) == 0.5
    assert budget_share(10, 100, 30.0, 60.0) == 0.5          # time ahead of steps
    assert budget_share(90, 100, 30.0, 60.0) == 0.9          # steps ahead of time
    assert budget_share(500, 100, 0.0, None) == 1.0


def test_cosine_lr_warms_up_then_decays_to_its_floor():
    assert cosine_lr(1.0, 0.0, step=0, warmup_steps=10) == pytest.approx(0.1)
    assert cosine_lr(1.0, 0.0, step=10, warmup_steps=10) == pytest.approx(1.0)
    assert cosine_lr(1.0, 0.5, step=20, warmup_steps=10, min_ratio=0.1) == pytest.approx(0.55)
    assert cosine_lr(2.0, 1.0, min_ratio=0.1) == pytest.approx(0.2)
    # the VAE's former formula, lr * (0.1 + 0.45 * (1 + cos(pi p))), is the same schedule
    for p in (0.0, 0.3, 0.7, 1.0):
        assert cosine_lr(1e-3, p) == pytest.approx(1e-3 * (0.1 + 0.45 * (1 + math.cos(math.pi * p))))
