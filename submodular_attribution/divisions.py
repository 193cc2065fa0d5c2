"""Turning a command line's division flags into a label map per image.

Superpixels and grids come from :mod:`utils`; SAM regions are read from label maps made
by ``SAM_mask_generate.py`` (``--sam-masks DIR``) or computed inline (``--sam-checkpoint``);
``prior`` groups the cells of a g×g grid by a saliency map from ``--prior-dir`` (made by
``baseline_attribution.generate_explanation_maps``), ``--per-region`` cells per region.
"""
from __future__ import annotations

import argparse

import numpy as np

import utils

from .data import InputError, ListItem

DIVISIONS = (*utils.DIVISION_MODES, "sam", "prior")


class RegionDivider:
    """Callable ``(image H×W×3 uint8 RGB, list item) -> H×W int32 label map``."""

    def __init__(self, args: argparse.Namespace, options: dict | None = None) -> None:
        self.name = args.division
        self.region_size = args.region_size
        self.options = dict(options or {})
        self.args = args
        self._generator = None
        if self.name == "sam" and not (args.sam_masks or args.sam_checkpoint):
            raise InputError("--division sam needs --sam-masks DIR (made by SAM_mask_generate.py) or --sam-checkpoint")
        if self.name == "prior" and not args.prior_dir:
            raise InputError("--division prior needs --prior-dir DIR (made by baseline_attribution.generate_explanation_maps)")

    def describe(self) -> dict:
        """What is recorded in each result's ``division`` field."""
        if self.name == "sam":
            source = {"label_maps": self.args.sam_masks} if self.args.sam_masks else {
                "model_type": self.args.sam_model_type, "checkpoint": self.args.sam_checkpoint}
            return {"algorithm": "sam", **source}
        if self.name == "prior":
            return {"algorithm": "prior", "prior_dir": self.args.prior_dir, "grid": self.args.grid,
                    "per_region": self.args.per_region}
        return {"algorithm": self.name, "region_size": self.region_size, **self.options}

    def __call__(self, image: np.ndarray, item: ListItem) -> np.ndarray:
        if self.name == "prior":
            return utils.prior_patch_division(self._prior_map(item), self.args.grid, self.args.per_region,
                                              image.shape[:2])
        if self.name != "sam":
            return utils.SubRegionDivision(image, self.name, self.region_size, **self.options)
        from .sam_regions import label_map_path, read_label_map, sam_label_map

        if self.args.sam_masks:
            return read_label_map(label_map_path(self.args.sam_masks, str(item.label), item.stem), image.shape[:2])
        return sam_label_map(image, self._sam_generator())

    def _prior_map(self, item: ListItem) -> np.ndarray:
        from baseline_attribution.maps import read_map

        return read_map(self.args.prior_dir, str(item.label), item.stem)

    def _sam_generator(self):
        if self._generator is None:
            from .sam_regions import build_mask_generator, load_sam

            sam = load_sam(self.args.sam_model_type, self.args.sam_checkpoint, device=self.args.resolved_device)
            self._generator = build_mask_generator(sam)
        return self._generator
