"""Default folders, resolved from the current directory, not from where the package lives.

``ckpt/``, ``submodular_results/``, ``explanation_results/`` and ``datasets/`` are looked up
under ``$SMDL_HOME`` when it is set, else under the current working directory, so a
non-editable ``pip install .`` reads and writes beside the user's project, as a checkout does.
"""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``$SMDL_HOME``, or the current directory."""
    return Path(os.environ.get("SMDL_HOME") or os.getcwd())


def ckpt_dir() -> Path:
    return home() / "ckpt"


def results_dir() -> Path:
    """SMDL result folders: ``submodular_results/``."""
    return home() / "submodular_results"


def explanations_dir() -> Path:
    """Saliency maps and method benchmarks: ``explanation_results/``."""
    return home() / "explanation_results"


def datasets_dir() -> Path:
    return home() / "datasets"
