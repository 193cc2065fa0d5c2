"""The API's arguments checked and turned into the engine's inputs: images, sizes, weights,
search options, devices, targets, the model as a scorer, and the region division.

Every check raises ``TypeError``/``ValueError`` naming the argument, as :func:`explain` promises."""
from __future__ import annotations

import itertools
import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, Iterator, Mapping

import cv2
import numpy as np
import torch
from torch import nn

from ..adapters.classifier import _pooled_probe, find_classifier_layer
from ..common.checks import check_int, check_number
from ..common.errors import InputError
from ..common.images import image_tensor, load_image_rgb
from ..models import ClassifierScorer, Scorer
from ..objective import POSITIONAL_ORDER, Weights
from ..regions import DIVISIONS, DivisionConfig, RegionDivider, check_division
from ..search_methods import OPTIONS, SEARCHES

# The published single-modal objective weights (λ1..λ4 = 0.01, 0, 20, 5), as the classifier scripts use.
DEFAULT_WEIGHTS = Weights(confidence=0.01, effectiveness=0.0, consistency=20.0, collaboration=5.0)
DEFAULT_NUM_REGIONS = 49
# Divisions computed from the image alone; SAM label-map folders and prior maps are looked up per
# evaluation-list item, which only the command line has (pass a label map as ``division=`` instead).
IMAGE_DIVISIONS = ("slico", "seeds", "grid")


# --------------------------------------------------------------------------- inputs


@dataclass
class ApiInput:
    """One image as the search (``tensor``, 3×H×W float32 in [0, 1]) and the division, record and
    figure (``pixels``, H×W×3 uint8) see it."""

    pixels: np.ndarray
    tensor: torch.Tensor
    source: str  # the record's "image"
    name: str


def check_input_size(input_size: Any) -> tuple[int, int] | None:
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


def prepare_image(image: Any, size: tuple[int, int] | None, name: str, argument: str = "image") -> ApiInput:
    if isinstance(image, (str, os.PathLike)):
        try:
            pixels = load_image_rgb(image, size)
        except InputError as err:
            raise ValueError(f"{argument}: {err}") from None
        return ApiInput(pixels, image_tensor(pixels), str(image), Path(image).stem or name)
    pil = sys.modules.get("PIL.Image")  # an image of PIL's exists only once PIL is imported
    if pil is not None and isinstance(image, pil.Image):
        pixels = _resize(np.array(image.convert("RGB"), dtype=np.uint8), size)
        return ApiInput(pixels, image_tensor(pixels), "<PIL image>", name)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"{argument}: a numpy image must be H×W×3 uint8 RGB, got dtype {image.dtype} "
                             "(for floats in [0, 1], pass a 3×H×W torch tensor)")
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"{argument}: a numpy image must be H×W×3 uint8 RGB, got shape {image.shape}")
        pixels = _resize(np.array(image, copy=True), size)
        return ApiInput(pixels, image_tensor(pixels), "<numpy array>", name)
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
        return ApiInput(np.ascontiguousarray(pixels), values, "<tensor>", name)
    raise TypeError(f"{argument} must be a file path, a PIL image, an H×W×3 uint8 numpy array or a 3×H×W float "
                    f"tensor in [0, 1], got {type(image).__name__}")


def check_weights(weights: Any) -> Weights:
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
    return Weights(**{name: check_number(f"weights: {name}", value, finite=True) for name, value in values.items()})


def check_search_options(search: Any, options: Mapping | None, extra: Mapping) -> dict:
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
        OPTIONS[name].check(name, value)
    spec.check(spec.options(given))
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


def check_target(target: Any, num_classes: int, argument: str = "target") -> int | None:
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, Integral):
        raise TypeError(f"{argument} must be a class index (int) or None for the prediction, got {target!r}")
    if not 0 <= target < num_classes:
        raise ValueError(f"{argument}={target} is outside the model's classes 0..{num_classes - 1}")
    return int(target)


# --------------------------------------------------------------------------- the model


DEFAULT_MEAN = (0.0, 0.0, 0.0)
DEFAULT_STD = (1.0, 1.0, 1.0)


@contextmanager
def scorer_for(model: Any, mean: Any, std: Any, device: Any, embeddings: bool, probe: torch.Tensor) -> Iterator[Scorer]:
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
        if tuple(mean) != DEFAULT_MEAN or tuple(std) != DEFAULT_STD:
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
class ApiRegions:
    """The division for every image: a configuration (one divider per input size) or a label map."""

    config: DivisionConfig | None
    label_map: np.ndarray | None
    device: Any = "cpu"  # where an inline SAM runs: the scorer's device
    _dividers: dict = field(default_factory=dict)

    def __call__(self, image: ApiInput) -> tuple[np.ndarray, dict]:
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


def region_divider(division: Any, num_regions: Any, region_size: Any) -> ApiRegions:
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
            return ApiRegions(None, division.astype(np.int32, copy=True))
        if division.name not in DIVISIONS:
            raise ValueError(f"division: unknown division {division.name!r}; choose from {', '.join(DIVISIONS)}")
        if division.name == "prior" or (division.name == "sam" and not division.sam_checkpoint):
            raise ValueError(f"division: {division.name!r} maps are looked up per evaluation-list item (command "
                             "line only); pass the label map itself as division=")
        return ApiRegions(division, None)
    if not isinstance(division, str) or division not in IMAGE_DIVISIONS:
        raise ValueError(f"division must be one of {', '.join(IMAGE_DIVISIONS)}, a DivisionConfig or an H×W label "
                         f"map, got {division!r}")
    if num_regions is not None and region_size is not None:
        raise ValueError("give num_regions or region_size, not both")
    if region_size is not None:
        return ApiRegions(DivisionConfig(division, region_size=check_int("region_size", region_size, 1)), None)
    k = DEFAULT_NUM_REGIONS if num_regions is None else check_int("num_regions", num_regions, 2)
    return ApiRegions(DivisionConfig(division, num_regions=k), None)


