"""A division chosen by configuration: one label map per image of a list.

:class:`DivisionConfig` is the typed form of the division flags; :class:`RegionDivider`
resolves it once for the model's input resolution (``num_regions`` → a region size), checks
that it makes sense before any model loads, and divides each image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from ..common.checks import check_int, flag_errors
from ..common.errors import InputError
from ..common.lists import ListItem
from ..common.maps import read_map
from .labels import check_division
from .prior import prior_patch_division
from .superpixels import DIVISION_MODES, SubRegionDivision, grid_fallback

DIVISIONS: tuple[str, ...] = (*DIVISION_MODES, "sam", "prior")


@dataclass(frozen=True)
class DivisionConfig:
    """How images are split into regions.

    name: slico | seeds | grid (``SubRegionDivision``), sam (label maps from ``sam_masks`` or SAM
        run inline from ``sam_checkpoint``), prior (``grid``×``grid`` cells of maps in ``prior_dir``,
        ``per_region`` cells per region).
    region_size: superpixel / cell side in pixels at the model's input resolution.
    num_regions: about this many regions instead: sets region_size (slico, grid), the SEEDS
        superpixel count, or the prior's cells per region, for the input resolution.
    options: mode options of ``SubRegionDivision`` (e.g. ``{"ruler": 40.0}``).
    """

    name: str = "slico"
    region_size: int = 30
    num_regions: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    sam_masks: str | None = None
    sam_checkpoint: str | None = None
    sam_model_type: str = "vit_h"
    prior_dir: str | None = None
    grid: int = 10
    per_region: int = 4

    def resolved(self, input_size: tuple[int, int]) -> "DivisionConfig":
        """The same division with ``num_regions`` turned into this mode's size parameter."""
        if self.num_regions is None:
            return self
        with flag_errors():
            k = check_int("--num-regions", self.num_regions, 2)
        height, width = input_size
        if self.name in ("slico", "grid"):
            return replace(self, region_size=max(1, round(math.sqrt(height * width / k))), num_regions=None)
        if self.name == "seeds":
            return replace(self, options={**self.options, "num_superpixels": k}, num_regions=None)
        if self.name == "prior":
            return replace(self, per_region=max(1, round(self.grid ** 2 / k)), num_regions=None)
        raise InputError(f"--num-regions does not apply to --division {self.name} (SAM decides its regions)")


def _region_count_error(config: DivisionConfig, count: int, size: tuple[int, int]) -> InputError:
    if config.name == "prior":
        what = f"--grid {config.grid} --per-region {config.per_region}"
    elif config.name == "seeds":
        what = f"--division seeds with {config.options.get('num_superpixels', 50)} superpixels"
    else:
        what = f"--region-size {config.region_size}"
    return InputError(f"{what} gives {count} region(s) on {size[0]}×{size[1]} inputs; at least 2 are needed "
                      "(use a smaller size, or --num-regions K)")


class RegionDivider:
    """Callable ``(image H×W×3 uint8 RGB, list item) -> H×W int32 label map``.

    input_size: (H, W) the images arrive at; device: where an inline SAM runs.
    fallback: why slico/seeds divide images of this size into grid cells instead (OpenCV cannot
    divide them), or None; :meth:`describe` records it for every image.
    """

    def __init__(self, config: DivisionConfig, input_size: tuple[int, int], device: Any = "cpu") -> None:
        if config.name not in DIVISIONS:
            raise InputError(f"--division {config.name}: choose from {', '.join(DIVISIONS)}")
        if config.name == "sam" and not (config.sam_masks or config.sam_checkpoint):
            raise InputError("--division sam needs --sam-masks DIR (made by SAM_mask_generate.py) or --sam-checkpoint")
        if config.name == "prior" and not config.prior_dir:
            raise InputError("--division prior needs --prior-dir DIR (made by baseline_attribution.generate_explanation_maps)")
        with flag_errors():
            check_int("--region-size", config.region_size, 1)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.config = config.resolved(self.input_size)
        self.device = device
        self._generator = None
        self._check_count()
        c = self.config
        self.fallback = grid_fallback(*self.input_size, c.name, c.region_size, **dict(c.options))

    def _check_count(self) -> None:
        """Fewer than 2 regions makes no ordering: caught once, before any model loads."""
        c = self.config
        if c.name == "prior":
            if c.grid < 1 or c.per_region < 1 or c.grid > min(self.input_size):
                raise InputError(f"--grid {c.grid} --per-region {c.per_region}: need 1 ≤ grid ≤ the input size "
                                 f"{self.input_size} and per-region ≥ 1")
            count = math.ceil(c.grid ** 2 / c.per_region)
        elif c.name == "sam":
            return  # SAM's count depends on the image (one region when it finds nothing)
        else:
            grey = np.full((*self.input_size, 3), 128, dtype=np.uint8)
            try:
                count = check_division(SubRegionDivision(grey, c.name, c.region_size, **dict(c.options)))
            except ValueError as err:
                raise InputError(f"--division {c.name}: {err}") from None
        if count < 2:
            raise _region_count_error(c, count, self.input_size)

    def describe(self) -> dict:
        """What is recorded in each result's ``division`` field; with ``"fallback": {"to": "grid",
        "reason": ...}`` only where the images are divided into grid cells instead."""
        c = self.config
        if c.name == "sam":
            source = {"label_maps": c.sam_masks} if c.sam_masks else {
                "model_type": c.sam_model_type, "checkpoint": c.sam_checkpoint}
            return {"algorithm": "sam", **source}
        if c.name == "prior":
            return {"algorithm": "prior", "prior_dir": c.prior_dir, "grid": c.grid, "per_region": c.per_region}
        fallback = {} if self.fallback is None else {"fallback": {"to": "grid", "reason": self.fallback}}
        return {"algorithm": c.name, "region_size": c.region_size, **dict(c.options), **fallback}

    def __call__(self, image: np.ndarray, item: ListItem) -> np.ndarray:
        c = self.config
        if c.name == "prior":
            saliency = read_map(c.prior_dir, str(item.label), item.stem)
            return prior_patch_division(saliency, c.grid, c.per_region, image.shape[:2])
        if c.name != "sam":
            return SubRegionDivision(image, c.name, c.region_size, **dict(c.options))
        from .sam import sam_label_map
        from .sam_original import read_sam_division

        if c.sam_masks:
            return read_sam_division(c.sam_masks, item, image.shape[:2])
        return sam_label_map(image, self._sam_generator())

    def _sam_generator(self):
        if self._generator is None:
            from .sam import build_mask_generator, load_sam

            self._generator = build_mask_generator(load_sam(self.config.sam_model_type, self.config.sam_checkpoint,
                                                            device=self.device))
        return self._generator
