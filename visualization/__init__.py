"""Figures: ordering heat-maps over images, insertion/deletion curves, animations, map grids.

``draw(folder, out_dir, ...)`` draws any result folder (an SMDL run or a method benchmark) and
returns the files it wrote (also ``draw_run``, ``draw_benchmark``); ``python -m visualization
--explanation-dir DIR`` is its command line. ``save_explanation_figure`` draws one result,
``save_maps_grid`` several methods' maps over one photo, and ``heat_over_grey`` is the overlay
they all draw: the heat-map through a colour map, blended over a greyscale copy of the photo.
Names load on first use, so ``--help`` stays quick.
"""
from importlib import import_module

_EXPORTS = {"draw": "draw", "draw_run": "draw", "draw_benchmark": "draw", "heat_over_grey": "canvas",
            "save_explanation_figure": "overlay", "save_maps_grid": "grid"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
