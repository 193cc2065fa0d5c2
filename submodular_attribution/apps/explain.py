"""Explain images from Python: ``explain(model, image)`` → :class:`Explanation`.

The same pipeline as the command line (``smdl_explanation_<task>``): the image is divided into
regions, a search orders them (:func:`submodular_attribution.search.explain_many`), and the
result is the record and rank map that the command line saves, plus the curves, AUCs and a
figure. ::

    import submodular_attribution as smdl
    exp = smdl.explain(model, "cat.jpg", target=281, mean=smdl.IMAGENET_MEAN, std=smdl.IMAGENET_STD)
    exp.plot("cat_smdl.png"); print(exp.insertion_auc, exp.deletion_auc)

``model`` is any ``torch.nn.Module`` mapping a normalised batch to logits, or one of the
toolkit's scorers (:class:`~submodular_attribution.models.Scorer`, e.g. a CLIP zero-shot
scorer). Bad arguments raise ``TypeError``/``ValueError`` naming the argument.
"""
from __future__ import annotations

import itertools
import math
import os
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from ..adapters.classifier import _pooled_probe, find_classifier_layer
from ..common.curves import deletion_curve, image_aucs, insertion_curve
from ..common.errors import InputError
from ..common.images import image_tensor, load_image_rgb
from ..common.results import LoadedResult, rank_map_saliency, save_result
from ..engine import PRECISIONS
from ..models import ClassifierScorer, Scorer
from ..objective import POSITIONAL_ORDER, Weights
from ..records import build_record
from ..regions import DIVISIONS, DivisionConfig, RegionDivider, check_division
from ..search import SearchTrace
from ..search import explain_many as _search_many
from ..search_methods import OPTIONS, SEARCHES

__all__ = ["DEFAULT_NUM_REGIONS", "DEFAULT_WEIGHTS", "Explanation", "ExplanationFigure", "explain", "explain_many"]

# The published single-modal objective weights (λ1..λ4 = 0.01, 0, 20, 5), as the classifier scripts use.
DEFAULT_WEIGHTS = Weights(confidence=0.01, effectiveness=0.0, consistency=20.0, collaboration=5.0)
DEFAULT_NUM_REGIONS = 49
# Divisions computed from the image alone; SAM label-map folders and prior maps are looked up per
# evaluation-list item, which only the command line has (pass a label map as ``division=`` instead).
IMAGE_DIVISIONS = ("slico", "seeds", "grid")


# --------------------------------------------------------------------------- results


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
        the ordering heat-map over the image, the smallest prefix reaching the best insertion
        score (within ``tolerance``, default 0.01; or the first ``top_k`` regions), and both
        curves. ``options`` go to that function (``top_k``, ``tolerance``, and its drawing
        options such as ``colormap`` and ``alpha``).

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


# --------------------------------------------------------------------------- inputs


@dataclass
class _Input:
    """One image as the search (``tensor``, 3×H×W float32 in [0, 1]) and the division, record and
    figure (``pixels``, H×W×3 uint8) see it."""

    pixels: np.ndarray
    tensor: torch.Tensor
    source: str  # the record's "image"
    name: str


def _input_size(input_size: Any) -> tuple[int, int] | None:
    if input_size is None:
        return None
    if isinstance(input_size, Integral) and not isinstance(input_size, bool):
        input_size = (input_size, input_size)
    try:
        height, width = input_size
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be an int or (H, W), got {input_size!r}") from None
    for value in (height, width):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"input_size must be positive integers (H, W), got {input_size!r}")
    return int(height), int(width)


def _resize(array: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Bilinear resize of an H×W×3 array to ``size`` = (H, W), as ``load_image_rgb`` does."""
    if size is None or array.shape[:2] == size:
        return array
    return cv2.resize(array, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def _prepare_image(image: Any, size: tuple[int, int] | None, name: str, argument: str = "image") -> _Input:
    if isinstance(image, (str, os.PathLike)):
        try:
            pixels = load_image_rgb(image, size)
        except InputError as err:
            raise ValueError(f"{argument}: {err}") from None
        return _Input(pixels, image_tensor(pixels), str(image), Path(image).stem or name)
    pil = sys.modules.get("PIL.Image")  # an image of PIL's exists only once PIL is imported
    if pil is not None and isinstance(image, pil.Image):
        pixels = _resize(np.array(image.convert("RGB"), dtype=np.uint8), size)
        return _Input(pixels, image_tensor(pixels), "<PIL image>", name)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"{argument}: a numpy image must be H×W×3 uint8 RGB, got dtype {image.dtype} "
                             "(for floats in [0, 1], pass a 3×H×W torch tensor)")
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"{argument}: a numpy image must be H×W×3 uint8 RGB, got shape {image.shape}")
        pixels = _resize(np.array(image, copy=True), size)
        return _Input(pixels, image_tensor(pixels), "<numpy array>", name)
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point():
            raise ValueError(f"{argument}: a tensor image must be 3×H×W float RGB in [0, 1], got dtype {image.dtype} "
                             "(for 8-bit pixels, pass an H×W×3 uint8 numpy array)")
        if image.ndim != 3 or image.shape[0] != 3 or min(image.shape[1:]) < 1:
            hint = "; for several images use explain_many" if image.ndim == 4 else ""
            raise ValueError(f"{argument}: a tensor image must be 3×H×W float RGB in [0, 1], "
                             f"got shape {tuple(image.shape)}{hint}")
        values = image.detach().to("cpu", torch.float32)
        if not bool(torch.isfinite(values).all()) or float(values.min()) < 0.0 or float(values.max()) > 1.0:
            raise ValueError(f"{argument}: tensor values must be finite and in [0, 1] (RGB before normalisation), "
                             f"got range [{float(values.min()):.4g}, {float(values.max()):.4g}]")
        if size is not None and tuple(values.shape[1:]) != size:
            resized = _resize(values.permute(1, 2, 0).numpy(), size)
            values = torch.from_numpy(np.clip(resized, 0.0, 1.0)).permute(2, 0, 1)
        values = values.contiguous()
        pixels = values.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        return _Input(np.ascontiguousarray(pixels), values, "<tensor>", name)
    raise TypeError(f"{argument} must be a file path, a PIL image, an H×W×3 uint8 numpy array or a 3×H×W float "
                    f"tensor in [0, 1], got {type(image).__name__}")


def _check_weights(weights: Any) -> Weights:
    if weights is None:
        return DEFAULT_WEIGHTS
    if isinstance(weights, Weights):
        values = dict(zip(POSITIONAL_ORDER, weights.positional()))
    elif isinstance(weights, Mapping):
        unknown = sorted(set(map(str, weights)) - set(POSITIONAL_ORDER))
        if unknown:
            raise ValueError(f"weights: unknown name(s) {', '.join(unknown)}; use {', '.join(POSITIONAL_ORDER)}")
        values = {**dict(zip(POSITIONAL_ORDER, DEFAULT_WEIGHTS.positional())), **weights}
    else:
        raise TypeError(f"weights must be a Weights or a dict of {', '.join(POSITIONAL_ORDER)}, "
                        f"got {type(weights).__name__}")
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"weights: {name} must be a finite number, got {value!r}")
    return Weights(**{name: float(value) for name, value in values.items()})


def _check_int(argument: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{argument} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{argument} must be ≥ {minimum}, got {value}")
    return int(value)


def _search_options(search: Any, options: Mapping | None, extra: Mapping) -> dict:
    if not isinstance(search, str) or search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {search!r}")
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict of search options, got {type(options).__name__}")
    given = dict(options or {})
    both = sorted(set(given) & set(extra))
    if both:
        raise ValueError(f"search option(s) {', '.join(both)} given both in options= and as keywords")
    given.update(extra)
    spec = SEARCHES[search]
    takes = ", ".join(spec.defaults) or "no options"
    for name, value in given.items():
        if name not in OPTIONS:
            raise TypeError(f"unexpected keyword argument {name!r} (not an argument nor a search option; "
                            f"search options: {', '.join(OPTIONS)})")
        if name not in spec.defaults:
            raise ValueError(f"search option {name!r} does not apply to search={search!r} (it takes {takes})")
        _check_int(name, value, 0 if name == "refresh_every" else 1)
    return spec.options(given)


def _check_normalisation(argument: str, values: Any, positive: bool) -> tuple[float, float, float]:
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be 3 numbers (R, G, B), got {values!r}") from None
    if len(numbers) != 3 or not all(math.isfinite(v) and (v > 0 or not positive) for v in numbers):
        need = "positive " if positive else "finite "
        raise ValueError(f"{argument} must be 3 {need}numbers (R, G, B; [0, 1] pixel scale), got {values!r}")
    return numbers


def _resolve_device(device: Any, net: nn.Module | None) -> torch.device:
    """``auto``: the module's own accelerator if it is on one, else CUDA when available, else CPU."""
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        where = _module_device(net)
        if where is not None and where.type != "cpu":
            return where
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N', ... or a torch.device, "
                             f"got {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available on this machine (use 'cpu' or 'auto')")
    return resolved


def _module_device(net: nn.Module | None) -> torch.device | None:
    """The one device holding ``net``'s parameters and buffers; None when none or several."""
    if net is None:
        return None
    devices = {t.device for t in itertools.chain(net.parameters(), net.buffers())}
    return devices.pop() if len(devices) == 1 else None


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def _check_target(target: Any, num_classes: int, argument: str = "target") -> int | None:
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, Integral):
        raise TypeError(f"{argument} must be a class index (int) or None for the prediction, got {target!r}")
    if not 0 <= target < num_classes:
        raise ValueError(f"{argument}={target} is outside the model's classes 0..{num_classes - 1}")
    return int(target)


# --------------------------------------------------------------------------- the model


_DEFAULT_MEAN = (0.0, 0.0, 0.0)
_DEFAULT_STD = (1.0, 1.0, 1.0)


@contextmanager
def _scorer_for(model: Any, mean: Any, std: Any, device: Any, embeddings: bool, probe: torch.Tensor) -> Iterator[Scorer]:
    """The scorer to search with, for the duration of the block.

    A ``torch.nn.Module`` is wrapped in a :class:`ClassifierScorer` (normalising with mean/std) on
    ``device``, in eval mode; afterwards its train/eval mode and device are restored and the
    embedding hook on its classifier layer is removed. A scorer is used as is.
    """
    if isinstance(model, nn.Module) and not isinstance(model, Scorer):
        mean = _check_normalisation("mean", mean, positive=False)
        std = _check_normalisation("std", std, positive=True)
        target_device = _resolve_device(device, model)
        home, was_training = _module_device(model), model.training
        model.to(target_device).eval()
        try:
            num_classes = _probe_classes(model, probe, mean, std, target_device)
            # Embeddings: the input of the final classifier layer, as the classifier adapter takes
            # them (a model's forward_features may be unpooled tokens, e.g. timm ViTs).
            hooked = find_classifier_layer(model, num_classes)
            split = hasattr(model, "forward_features") and hasattr(model, "forward_head")
            if embeddings and hooked is None and not split:
                raise ValueError(f"weights: the effectiveness term needs embeddings, and {type(model).__name__} has "
                                 f"no final nn.Linear with {num_classes} outputs to take them from; set "
                                 "effectiveness to 0 or pass a scorer that returns embeddings")
            before = set(hooked._forward_pre_hooks) if hooked is not None else set()
            try:
                layer = _pooled_probe(hooked) if isinstance(hooked, nn.Conv2d) else hooked
                yield ClassifierScorer(model, mean, std, device=target_device, num_classes=num_classes,
                                       embedding_layer=layer)
            finally:
                if hooked is not None:  # the scorer's hooks would otherwise stay on the caller's model
                    for key in set(hooked._forward_pre_hooks) - before:
                        del hooked._forward_pre_hooks[key]
        finally:
            model.train(was_training)
            if home is not None and home != target_device:
                model.to(home)
        return
    if isinstance(model, Scorer):
        if tuple(mean) != _DEFAULT_MEAN or tuple(std) != _DEFAULT_STD:
            raise ValueError("mean/std apply to a torch.nn.Module; a scorer normalises images itself")
        if device != "auto" and not _same_device(_resolve_device(device, None), torch.device(model.device)):
            raise ValueError(f"device={device!r}, but the scorer runs on {model.device}")
        yield model
        return
    raise TypeError("model must be a torch.nn.Module mapping normalised N×3×H×W images to N×C logits, or a "
                    f"Scorer (submodular_attribution.models), got {type(model).__name__}")


def _probe_classes(net: nn.Module, image: torch.Tensor, mean, std, device: torch.device) -> int:
    """C, from one forward pass of the first image (which also checks the output's form)."""
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    with torch.inference_mode():
        out = net((image[None].to(device, torch.float32) - m) / s)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise TypeError(f"model must map a batch N×3×H×W to logits N×C; for 1×3×{image.shape[1]}×{image.shape[2]} "
                        f"it returned {shape} (wrap it, or pass a Scorer)")
    if out.shape[1] < 2:
        raise ValueError(f"model returns {out.shape[1]} logit(s) per image; at least 2 classes are needed")
    return int(out.shape[1])


# --------------------------------------------------------------------------- regions


@dataclass
class _Regions:
    """The division for every image: a configuration (one divider per input size) or a label map."""

    config: DivisionConfig | None
    label_map: np.ndarray | None
    device: Any = "cpu"  # where an inline SAM runs: the scorer's device
    _dividers: dict = field(default_factory=dict)

    def __call__(self, image: _Input) -> tuple[np.ndarray, dict]:
        size = image.pixels.shape[:2]
        if self.label_map is not None:
            if self.label_map.shape != size:
                raise ValueError(f"division: the label map is {self.label_map.shape[0]}×{self.label_map.shape[1]}, "
                                 f"the image {size[0]}×{size[1]}")
            return self.label_map, {"algorithm": "label_map"}
        if size not in self._dividers:
            try:
                self._dividers[size] = RegionDivider(self.config, size, device=self.device)
            except InputError as err:
                raise ValueError(_api_words(f"division: {err}")) from None
        divider = self._dividers[size]
        return divider(image.pixels, None), divider.describe()


def _api_words(message: str) -> str:
    """The command line's flag names in a divider message → this function's arguments."""
    for flag, argument in (("--num-regions K", "num_regions=K"), ("--num-regions", "num_regions"),
                           ("--region-size", "region_size"), ("--division", "division")):
        message = message.replace(flag, argument)
    return message


def _regions(division: Any, num_regions: Any, region_size: Any) -> _Regions:
    if isinstance(division, np.ndarray) or isinstance(division, DivisionConfig):
        if num_regions is not None or region_size is not None:
            raise ValueError("num_regions/region_size apply to a division name; a label map or DivisionConfig "
                             "carries its own")
        if isinstance(division, np.ndarray):
            try:
                check_division(division)
            except ValueError as err:
                raise ValueError(f"division: a label map must be H×W integers 0..N−1 ({err})") from None
            if int(division.max()) < 1:
                raise ValueError("division: the label map has 1 region; at least 2 are needed")
            return _Regions(None, division.astype(np.int32, copy=True))
        if division.name not in DIVISIONS:
            raise ValueError(f"division: unknown division {division.name!r}; choose from {', '.join(DIVISIONS)}")
        if division.name == "prior" or (division.name == "sam" and not division.sam_checkpoint):
            raise ValueError(f"division: {division.name!r} maps are looked up per evaluation-list item (command "
                             "line only); pass the label map itself as division=")
        return _Regions(division, None)
    if not isinstance(division, str) or division not in IMAGE_DIVISIONS:
        raise ValueError(f"division must be one of {', '.join(IMAGE_DIVISIONS)}, a DivisionConfig or an H×W label "
                         f"map, got {division!r}")
    if num_regions is not None and region_size is not None:
        raise ValueError("give num_regions or region_size, not both")
    if region_size is not None:
        return _Regions(DivisionConfig(division, region_size=_check_int("region_size", region_size, 1)), None)
    k = DEFAULT_NUM_REGIONS if num_regions is None else _check_int("num_regions", num_regions, 2)
    return _Regions(DivisionConfig(division, num_regions=k), None)


# --------------------------------------------------------------------------- explaining


def explain(
    model: nn.Module | Scorer,
    image: Any,
    target: int | None = None,
    *,
    mean: Sequence[float] = _DEFAULT_MEAN,
    std: Sequence[float] = _DEFAULT_STD,
    input_size: int | tuple[int, int] | None = None,
    num_regions: int | None = None,
    region_size: int | None = None,
    division: str | DivisionConfig | np.ndarray = "slico",
    search: str = "fast",
    weights: Weights | Mapping[str, float] | None = None,
    options: Mapping[str, int] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    **search_options: int,
) -> Explanation:
    """Order the regions of one image by their contribution to the model's score of ``target``.

    Arguments:
        model: a ``torch.nn.Module`` taking a normalised float batch N×3×H×W (RGB) to N×C logits
            (probabilities are their softmax); it is wrapped in a
            :class:`~submodular_attribution.models.ClassifierScorer` with ``mean``/``std``, moved
            to ``device`` and put in eval mode for the call (its mode and device are restored
            afterwards). Or any :class:`~submodular_attribution.models.Scorer` (e.g. a CLIP
            zero-shot scorer from ``submodular_attribution.adapters.clip``), used as is.
        image: a file path (read as RGB), a PIL image, an H×W×3 uint8 RGB numpy array, or a
            3×H×W float tensor, RGB in [0, 1] (searched as given; divided and drawn at 8 bits).
        target: the class index to explain, 0..C−1; None explains the model's prediction on the
            full image.
        mean, std: the model's input normalisation, 3 numbers each on the [0, 1] pixel scale
            (e.g. ``IMAGENET_MEAN``, ``IMAGENET_STD``); default none. Only for an ``nn.Module``.
        input_size: ``H`` or ``(H, W)``: resize the image (bilinear) to the size the model
            expects; default: the image's own size.
        num_regions: about this many regions (default 49); or ``region_size``: the superpixel /
            grid cell side in pixels at the input size. Not both.
        division: ``slico`` (default), ``seeds`` or ``grid``; or a
            :class:`~submodular_attribution.regions.DivisionConfig`; or an H×W integer label map
            with values 0..N−1 (e.g. SAM masks) at the input size.
        search: a name in :data:`~submodular_attribution.search_methods.SEARCHES`; default
            ``fast``, the quick option (≈ a fifth of exact greedy's forwards at N ≈ 49, close on
            insertion AUC, weaker on deletion: README, "Faster searches"); ``greedy`` is exact
            greedy, ``bidirectional`` LIMA's search (for numbers compared with greedy's).
        weights: the objective's λ, a :class:`~submodular_attribution.objective.Weights` or a
            dict of ``confidence``, ``effectiveness``, ``consistency``, ``collaboration``
            (names not given keep the default); default the published single-modal values
            0.01, 0, 20, 5 (CLIP's are 0, 0.05, 1, 1). A non-zero effectiveness needs embeddings:
            the input of the module's final ``nn.Linear`` with C outputs, or its
            ``forward_features``.
        options, **search_options: the search's options, e.g. ``pending_samples=8`` for
            ``bidirectional``, ``refresh_every``/``lazy_top``/``exact_steps`` for ``lazy``
            (:data:`~submodular_attribution.search_methods.OPTIONS`); other searches' options
            are errors.
        batch_size: images per forward pass (default 64).
        device: ``auto`` (default: the module's accelerator if it is on one, else CUDA when
            available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, or a ``torch.device``. A
            scorer keeps its own device (a different one here is an error).
        precision: ``fp32`` (default), ``bf16`` or ``fp16``: autocast around the model only
            (scores stay float64).
        seed: the random searches' seed (``stochastic``, ``random``); default 0.
        class_names: C names, to fill :attr:`Explanation.target_name`.

    Returns:
        an :class:`Explanation`: the order, label map, image, saliency, curves, AUCs, forward
        passes, target, the search trace and the record; ``.plot()`` and ``.save()``.

    Raises:
        TypeError / ValueError naming the argument for a bad input.
    """
    settings = _settings(mean=mean, std=std, input_size=input_size, num_regions=num_regions,
                         region_size=region_size, division=division, search=search, weights=weights,
                         options=options, batch_size=batch_size, device=device, precision=precision, seed=seed,
                         class_names=class_names, search_options=search_options)
    with _Session(model, settings) as session:
        return session.run([image], [target], ["image"])[0]


def explain_many(
    model: nn.Module | Scorer,
    images: Iterable[Any],
    targets: Iterable[int | None] | None = None,
    *,
    mean: Sequence[float] = _DEFAULT_MEAN,
    std: Sequence[float] = _DEFAULT_STD,
    input_size: int | tuple[int, int] | None = None,
    num_regions: int | None = None,
    region_size: int | None = None,
    division: str | DivisionConfig | np.ndarray = "slico",
    search: str = "fast",
    weights: Weights | Mapping[str, float] | None = None,
    options: Mapping[str, int] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    images_at_once: int = 8,
    **search_options: int,
) -> list[Explanation]:
    """:func:`explain` for several images, the same results as one at a time, faster.

    ``images``: any iterable of what :func:`explain` takes as ``image`` (sizes may differ unless
    ``input_size`` is given); ``targets``: one class index or None per image (default: None for
    all, the predictions). The searches of ``images_at_once`` images (default 8) advance together,
    each forward batch of ``batch_size`` filled across them
    (:func:`submodular_attribution.search.explain_many`); the iterable is read that many images
    at a time. Every image uses the same ``seed``. Other arguments as for :func:`explain`.
    Returns one :class:`Explanation` per image, in order (names ``image_<i>`` unless a path gave one).
    """
    images_at_once = _check_int("images_at_once", images_at_once, 1)
    settings = _settings(mean=mean, std=std, input_size=input_size, num_regions=num_regions,
                         region_size=region_size, division=division, search=search, weights=weights,
                         options=options, batch_size=batch_size, device=device, precision=precision, seed=seed,
                         class_names=class_names, search_options=search_options)
    if isinstance(images, (str, os.PathLike, np.ndarray, torch.Tensor)) or not isinstance(images, Iterable):
        raise TypeError(f"images must be an iterable of images (a list of paths, arrays, ...), "
                        f"got {type(images).__name__}")
    if targets is not None and (isinstance(targets, (str, bytes)) or not isinstance(targets, Iterable)):
        raise TypeError(f"targets must be an iterable of class indices or None, got {type(targets).__name__}")
    if targets is not None and hasattr(images, "__len__") and hasattr(targets, "__len__") \
            and len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} targets")
    missing = object()
    if targets is None:
        pairs = ((image, None) for image in images)
    else:
        pairs = itertools.zip_longest(images, targets, fillvalue=missing)
    results: list[Explanation] = []
    with _Session(model, settings) as session:
        while True:
            group = list(itertools.islice(pairs, images_at_once))
            if any(image is missing for image, _ in group):
                raise ValueError("targets has more entries than images")
            if any(target is missing for _, target in group):
                raise ValueError("images has more entries than targets")
            if not group:
                return results
            start = len(results)
            results += session.run([image for image, _ in group], [target for _, target in group],
                                   [f"image_{start + i}" for i in range(len(group))], first=start)


@dataclass
class _Settings:
    mean: Any
    std: Any
    input_size: tuple[int, int] | None
    regions: _Regions
    search: str
    options: dict
    weights: Weights
    batch_size: int
    device: Any
    precision: str
    seed: int
    class_names: list[str] | None


def _settings(*, mean, std, input_size, num_regions, region_size, division, search, weights, options, batch_size,
              device, precision, seed, class_names, search_options) -> _Settings:
    """Every argument checked once, before any image is read or the model runs."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if class_names is not None:
        if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
            raise TypeError(f"class_names must be a list of C names, got {type(class_names).__name__}")
        class_names = [str(name) for name in class_names]
    return _Settings(
        mean=mean, std=std, input_size=_input_size(input_size),
        regions=_regions(division, num_regions, region_size),
        search=search, options=_search_options(search, options, search_options), weights=_check_weights(weights),
        batch_size=_check_int("batch_size", batch_size, 1), device=device, precision=precision,
        seed=_check_int("seed", seed, 0), class_names=class_names)


class _Session:
    """The scorer (built on the first image, which it needs for a probe) and the runs through it."""

    def __init__(self, model: Any, settings: _Settings) -> None:
        self.model, self.settings = model, settings
        self.scorer: Scorer | None = None
        self._stack = ExitStack()

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc) -> bool | None:
        return self._stack.__exit__(*exc)

    def _start(self, probe: torch.Tensor) -> None:
        s = self.settings
        self.scorer = self._stack.enter_context(
            _scorer_for(self.model, s.mean, s.std, s.device, s.weights.effectiveness != 0, probe))
        if s.class_names is not None and len(s.class_names) != self.scorer.num_classes:
            raise ValueError(f"class_names has {len(s.class_names)} names for a model with "
                             f"{self.scorer.num_classes} classes")
        s.regions.device = self.scorer.device

    def run(self, images: list, targets: list, names: list[str], first: int | None = None) -> list[Explanation]:
        """Explain ``images`` (their searches advance together, whatever their sizes);
        ``first``: their index in ``explain_many``'s input, for error messages (None: ``explain``)."""
        s = self.settings
        where = ["image"] if first is None else [f"images[{first + i}]" for i in range(len(images))]
        inputs = [_prepare_image(image, s.input_size, name, argument)
                  for image, name, argument in zip(images, names, where)]
        if self.scorer is None:
            self._start(inputs[0].tensor)
        checked = [_check_target(t, self.scorer.num_classes, "target" if first is None else f"targets[{first + i}]")
                   for i, t in enumerate(targets)]
        divided = [s.regions(inp) for inp in inputs]
        traces = _search_many(
            self.scorer, [(inp.tensor, torch.from_numpy(labels), target, s.seed)
                          for inp, (labels, _), target in zip(inputs, divided, checked)],
            s.weights, search=s.search, options=s.options, batch_size=s.batch_size, precision=s.precision)
        return [self._explanation(inp, labels, describe, trace)
                for inp, (labels, describe), trace in zip(inputs, divided, traces)]

    def _explanation(self, inp: _Input, labels: np.ndarray, division: dict, trace: SearchTrace) -> Explanation:
        s = self.settings
        record, ranks = build_record(trace, labels, s.weights, image=inp.source, class_name=str(trace.target),
                                     division=division, search=s.search, options=s.options,
                                     class_names=s.class_names)
        # The curves and AUCs exactly as the evaluation computes them from the saved files.
        loaded = LoadedResult(Path(f"{inp.name}.json"), record, np.asarray(record["region_areas"]), ranks)
        insertion_auc, deletion_auc = image_aucs(loaded)
        return Explanation(
            order=list(trace.order), labels=np.asarray(labels, dtype=np.int32), image=inp.pixels,
            saliency=rank_map_saliency(ranks, len(trace.order)), ranks=ranks,
            insertion_curve=insertion_curve(loaded), deletion_curve=deletion_curve(loaded),
            insertion_auc=insertion_auc, deletion_auc=deletion_auc, forward_passes=trace.forward_passes,
            target=trace.target, target_name=None if s.class_names is None else s.class_names[trace.target],
            trace=trace, record=record, name=inp.name)
