"""Image region divisions, under the original SMDL-Attribution code's names.

The thin public face of :mod:`submodular_attribution.regions`, which holds the code:

* :func:`SubRegionDivision` -- superpixels (SLICO, SEEDS) or a pixel grid of an RGB image;
* :func:`grid_division` -- exactly ``rows x cols`` cells (e.g. spectrograms);
* :func:`prior_patch_division` -- patches grouped by a prior saliency map;
* :func:`relabel_consecutive`, :func:`merge_small_regions`, :func:`region_areas`,
  :func:`check_division` -- label-map helpers.

A division is an (H, W) int32 label map whose values are exactly 0..N-1.
"""
from submodular_attribution.regions import (  # noqa: F401
    DEFAULT_MIN_AREA_FRACTION,
    DIVISION_MODES,
    SubRegionDivision,
    check_division,
    grid_division,
    merge_small_regions,
    prior_patch_division,
    region_areas,
    relabel_consecutive,
)

__all__ = [
    "DIVISION_MODES",
    "DEFAULT_MIN_AREA_FRACTION",
    "SubRegionDivision",
    "grid_division",
    "prior_patch_division",
    "relabel_consecutive",
    "merge_small_regions",
    "region_areas",
    "check_division",
]
