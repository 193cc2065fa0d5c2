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


#: The embedded default models shipped in the repository (``ckpt/embedded/``, see ckpt/README.md),
#: found beside the package, not under ``$SMDL_HOME``: every documented number comes from them.
EMBEDDED_DIR = Path(__file__).resolve().parents[2] / "ckpt" / "embedded"


def weights_file(filename: str) -> Path:
    """The default weights ``filename``: the shipped copy ``ckpt/embedded/<filename>`` when the
    repository has one, else ``ckpt_dir() / filename`` (a user's file, or a cache trained at first
    use where the package was installed without the shipped files)."""
    shipped = EMBEDDED_DIR / filename
    return shipped if shipped.is_file() else ckpt_dir() / filename


def is_shipped(path: str | Path) -> bool:
    """Whether ``path`` is one of the shipped embedded checkpoints (never overwritten by a run)."""
    return Path(path).resolve().parent == EMBEDDED_DIR.resolve()


def results_dir() -> Path:
    """SMDL result folders: ``submodular_results/``."""
    return home() / "submodular_results"


def explanations_dir() -> Path:
    """Saliency maps and method benchmarks: ``explanation_results/``."""
    return home() / "explanation_results"


def datasets_dir() -> Path:
    return home() / "datasets"
