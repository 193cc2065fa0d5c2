"""Figures: ordering heat-maps over images, insertion/deletion curves, animations, map grids.

``draw(folder, out_dir, ...)`` draws any result folder (an SMDL run or a method benchmark) and
returns the files it wrote (also ``draw_run``, ``draw_benchmark``); ``python -m visualization
--explanation-dir DIR`` is its command line. Names load on first use, so ``--help`` stays quick.
"""
from importlib import import_module

_EXPORTS = {"draw": "draw", "draw_run": "draw", "draw_benchmark": "draw", "save_explanation_figure": "overlay"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
