"""Search quality is a regression test: every registered search, run by the shapes task's command
line on the shipped CNN and the first images of the default evaluation set, must reproduce the
forward passes of tests/fixtures/search_quality.json exactly and each image's Insertion/Deletion
AUC to ±0.002 (float rounding of another CPU or torch build), so a change that quietly costs
faithfulness, or forwards, fails here. The baseline is remade by
``tests/fixtures/make_search_quality.py`` for a change meant to move it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures.make_search_quality import FIXTURE, measure

AUC_TOLERANCE = 0.002


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return measure(tmp_path_factory.mktemp("search_quality"))


EXPECTED = json.loads(FIXTURE.read_text())


def test_every_registered_search_has_a_baseline():
    from submodular_attribution.search_methods import SEARCHES
    assert sorted(EXPECTED) == sorted(SEARCHES)


@pytest.mark.parametrize("search", sorted(EXPECTED))
def test_search_quality(measured, search):
    got, want = measured[search], EXPECTED[search]
    assert got["images"] == want["images"]
    assert got["forward_passes"] == want["forward_passes"]
    for auc in ("insertion_auc", "deletion_auc"):
        np.testing.assert_allclose(got[auc], want[auc], atol=AUC_TOLERANCE, rtol=0, err_msg=f"{search} {auc}")
