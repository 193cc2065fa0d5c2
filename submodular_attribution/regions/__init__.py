"""Region divisions: label maps H×W with labels 0..N−1 (superpixels, grids, prior patches, SAM).

``utils`` at the repository's top level re-exports the public functions under the original
code's names (``utils.SubRegionDivision``)."""
from .divider import DIVISIONS, DivisionConfig, RegionDivider  # noqa: F401
from .grid import grid_division, sized_grid  # noqa: F401
from .labels import check_division, merge_small_regions, region_areas, relabel_consecutive  # noqa: F401
from .prior import prior_patch_division  # noqa: F401
from .superpixels import DEFAULT_MIN_AREA_FRACTION, DIVISION_MODES, SubRegionDivision  # noqa: F401
