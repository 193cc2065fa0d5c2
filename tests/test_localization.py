import numpy as np
import pytest

from evals.localization import first_regions_hit


def test_first_regions_hit_by_majority():
    ranks = np.array([[0, 0, 1], [0, 2, 1], [2, 2, 1]])
    mask = np.zeros((3, 3), bool)
    mask[0, :2] = True  # 2 of the 3 pixels of region 0
    assert first_regions_hit(ranks, mask, k=1)
    assert not first_regions_hit(ranks, mask, k=2)  # 2 of 6 pixels
    mask[:] = False
    mask[0, 0] = True  # 1 of 3
    assert not first_regions_hit(ranks, mask)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        first_regions_hit(np.zeros((2, 2), int), np.zeros((3, 3), bool))
