"""The result of an API explanation: :class:`Explanation` (the record, rank map, curves and
AUCs of one image, with ``plot`` and ``save``) and its inline figure."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..common.results import LoadedResult, save_result
from ..search import SearchTrace


@dataclass(frozen=True)
class ExplanationFigure:
    """A rendered explanation figure (PNG bytes). Displays inline in Jupyter (``_repr_png_``)."""

    png: bytes

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path: str | os.PathLike) -> Path:
        """Write the PNG to ``path`` (folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.png)
        return path

    def __repr__(self) -> str:
        return f"ExplanationFigure({len(self.png):,} bytes of PNG)"


@dataclass(eq=False)
class Explanation:
    """One explained image.

    order: all N region ids, most important first.
    labels: H×W int32 label map, values 0..N−1 (the division, at the input size).
    image: H×W×3 uint8 RGB, the image as divided (after any resize).
    saliency: H×W float64, (N − rank)/N of each pixel's region: 1 for the first region, 1/N for
        the last (:func:`~submodular_attribution.common.results.rank_map_saliency`).
    ranks: H×W int16 rank map (position in ``order`` of each pixel's region), as saved in the npy.
    insertion_curve, deletion_curve: ``(x, y)``, each (N+1,) float64: x the fraction of image area
        revealed / removed, y the target probability (:mod:`~submodular_attribution.common.curves`).
    insertion_auc, deletion_auc: trapezoid areas under those curves.
    forward_passes: images the search sent through the model for this image, the full and the
        black reference included (as the command line counts them; the one forward pass that
        checks an ``nn.Module``'s output per call is not counted).
    target: the class explained; target_name: its name when ``class_names`` was given.
    trace: the search's :class:`~submodular_attribution.search.SearchTrace` (per-prefix scores).
    record: the result JSON (:func:`~submodular_attribution.records.build_record`).
    name: the file stem :meth:`save` uses by default (the image file's stem, or ``image``/``image_<i>``).
    """

    order: list[int]
    labels: np.ndarray = field(repr=False)
    image: np.ndarray = field(repr=False)
    saliency: np.ndarray = field(repr=False)
    ranks: np.ndarray = field(repr=False)
    insertion_curve: tuple[np.ndarray, np.ndarray] = field(repr=False)
    deletion_curve: tuple[np.ndarray, np.ndarray] = field(repr=False)
    insertion_auc: float
    deletion_auc: float
    forward_passes: int
    target: int
    target_name: str | None
    trace: SearchTrace = field(repr=False)
    record: dict = field(repr=False)
    name: str = "image"

    @property
    def num_regions(self) -> int:
        return len(self.order)

    def __repr__(self) -> str:
        target = f"{self.target}" + (f" ({self.target_name})" if self.target_name else "")
        return (f"Explanation({self.name!r}, target {target}, {self.num_regions} regions, "
                f"insertion AUC {self.insertion_auc:.4f}, deletion AUC {self.deletion_auc:.4f}, "
                f"{self.forward_passes} forward passes)")

    def _loaded(self, json_path: Path | None = None) -> LoadedResult:
        return LoadedResult(json_path or Path(f"{self.name}.json"), self.record,
                            np.asarray(self.record["region_areas"], dtype=np.float64), self.ranks)

    def plot(self, path: str | os.PathLike | None = None, *, title: str | None = None,
             **options: Any) -> Path | ExplanationFigure:
        """The three-panel figure of :func:`visualization.overlay.save_explanation_figure`:
        the ordering heat-map over a greyscale copy of the image
        (:func:`visualization.heat_over_grey`, so its colours read as the colour bar says), the
        smallest prefix reaching the best insertion score (within ``tolerance``, default 0.01; or
        the first ``top_k`` regions) in the image's colours, and both curves. ``options`` go to
        that function (``top_k``, ``tolerance``, and its drawing options such as ``colormap``
        and ``alpha``).

        With ``path``: writes the PNG there and returns the path. Without: returns an
        :class:`ExplanationFigure`, which displays inline in Jupyter (matplotlib's ``Figure``
        has no ``_repr_png_``) and has ``.png`` bytes and ``.save(path)``.
        """
        from visualization.overlay import save_explanation_figure

        if title is None:
            title = f"{self.name}: target {self.target}" + (f" ({self.target_name})" if self.target_name else "")
        if path is not None:
            return save_explanation_figure(self.image, self._loaded(), path, title=title, **options)
        with tempfile.TemporaryDirectory() as folder:
            written = save_explanation_figure(self.image, self._loaded(), Path(folder) / "figure.png", title=title,
                                              **options)
            return ExplanationFigure(written.read_bytes())

    def save(self, directory: str | os.PathLike, class_name: str | int | None = None, stem: str | None = None) -> Path:
        """Write the command line's files for this image: ``<directory>/json/<class>/<stem>.json``
        (the record) and ``<directory>/npy/<class>/<stem>.npy`` (the rank map), npy first.
        ``python -m evals.eval_AUC_faithfulness --explanation-dir <directory>`` reads them.

        class_name: the class folder (default: the target index, as the command line names it);
        stem: the file name (default: :attr:`name`). Returns the JSON's path.
        """
        class_name = str(self.target) if class_name is None else str(class_name)
        stem = self.name if stem is None else str(stem)
        for argument, value in (("class_name", class_name), ("stem", stem)):
            if not value or value in (".", "..") or "/" in value or os.sep in value:
                raise ValueError(f"{argument} must be a plain file name, got {value!r}")
        return save_result(directory, class_name, stem, {**self.record, "class": class_name}, self.ranks)


