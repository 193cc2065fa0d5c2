"""Zero-shot ImageBind (vision or audio) through a user-installed ``imagebind`` package.

ImageBind has no usable PyPI package (the PyPI name ``imagebind`` is an empty placeholder): install
it from its repository (``pip install git+https://github.com/facebookresearch/ImageBind``, or a
clone with ``pip install -e .``) and put its published weights in ``ckpt/imagebind_huge.pth``
(https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth). The model is built with
``imagebind.models.imagebind_model.imagebind_huge(pretrained=False)`` (nothing downloaded) and the
file is loaded strictly (:func:`~submodular_attribution.common.checkpoints.load_weights`).

What is used of the package: ``imagebind.models.imagebind_model`` (``imagebind_huge``,
``ModalityType``; ``model(inputs)`` maps ``{modality: tensor}`` to ``{modality: embedding}``) and
``imagebind.models.multimodal_preprocessors.SimpleTokenizer`` with the package's
``bpe/bpe_simple_vocab_16e6.txt.gz``. The package's ``__init__`` (which imports ``imagebind.data``,
hence torchaudio and pytorchvideo) is *not* run: the submodules are imported under an empty
``imagebind`` package object. Images and sounds are prepared here (sound:
:mod:`.imagebind_audio`).

Zero-shot head: class prototypes are the normalised mean of the normalised text embeddings of the
class name in every template (as for CLIP), cached in ``ckpt/semantic_features/``. Temperature
(logits = s · cos(embedding, prototype)), as the original SMDL-Attribution scripts:

* vision: ``s = 100`` (their ImageNet prototypes are unit vectors × 100; vision embeddings are unit);
* audio: ``s = 0.05 · s_audio · s_text``: ImageBind's audio head scales unit embeddings by a fixed
  ``s_audio = 20`` and its text head by the learned ``s_text`` (``exp`` of its
  ``log_logit_scale``, clipped at 100), and the original multiplies the raw text embeddings by
  0.05. Both scales are read from the model (its postprocessors), so ``s = s_text`` for the
  published weights.

Vision input: RGB in [0, 1] at 224×224 (other sizes are resized here with ``F.interpolate``,
bilinear, ``align_corners=False``, no antialiasing), normalised with the OpenAI CLIP mean/std as
ImageBind's ``load_and_transform_vision_data``. The ``imagenet_imagebind`` task reads image files
as every image task does (``common.images.load_image_rgb``): decoded by OpenCV (EXIF orientation
applied), RGB, resized to ``--input-size`` (224×224) by ``cv2.resize`` bilinear, aspect ratio not
kept, nothing cropped, as the original SMDL-Attribution ImageBind script does
(``cv2.resize(image, (224, 224))``, its ``CenterCrop`` commented out). ImageBind's own function
differs in decoding and geometry: Pillow decoding (no EXIF rotation), shorter side to 224 by Pillow
bicubic (antialiased), ``CenterCrop(224)``. Measured with ImageBind's code
(``tests/test_reference_imagebind.py``): bit-identical for a 224×224 PNG, and for any size
bit-identical to ImageBind's function applied to the squashed 224×224 image; on the file itself it
differs for 300×200 and 150×260 images by up to 3.7 (mean 0.6–0.7) in normalised units (the crop
drops the long side's ends), for a 320×320 one (interpolation alone) by up to 0.73 (mean 0.05).
The squash is kept because the figures, the Python API and some evaluation tools read photos with
``load_image_rgb`` themselves, so a map covers the whole photo they show. Audio input: the
``3×128×204`` spectrogram image of :func:`.imagebind_audio.spectrogram_image` (one channel per
clip), mapped back to log-mel, normalised, and given to the model as ``B×3×1×128×204`` (ImageBind
averages the three clips' embeddings).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..common.checkpoints import load_weights
from ..common.errors import InputError
from ..models import tune_module
from . import imagebind_audio
from .clip import OPENAI_MEAN, OPENAI_STD, ZeroShotCLIPScorer, cached_prototypes

INSTALL_HINT = ("install it from its repository: pip install git+https://github.com/facebookresearch/ImageBind "
                "(the PyPI package 'imagebind' is an empty placeholder)")
VISION_LOGIT_SCALE = 100.0
AUDIO_TEXT_FACTOR = 0.05  # the original script's factor on ImageBind's raw text embeddings
MAX_LOGIT_SCALE = 100.0
VGGSOUND_TEMPLATES = ("a sound of {}",)  # the original script's single template
MODALITIES = ("vision", "audio")
_CLASS_LISTS = Path(__file__).resolve().parents[1] / "class_lists"


def vggsound_classes() -> list[str]:
    """The 309 VGGSound class names, in the index order of the original evaluation lists."""
    path = _CLASS_LISTS / "vggsound.txt"
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as err:  # pragma: no cover - a broken installation
        raise InputError(f"{path}: cannot read the VGGSound class list ({err.strerror})") from None
    return names


# --------------------------------------------------------------------------- the package


def import_skipping_init(package: str, submodules: Sequence[str], what: str, hint: str) -> list[types.ModuleType]:
    """Import ``package.<submodule>`` for each submodule without running ``package/__init__.py``
    (whose imports may need optional packages): an empty package object with the installed
    package's path is registered first, unless the package is already imported. A missing package
    or submodule is a one-line :class:`InputError` (``what`` needs ``package``; ``hint``)."""
    if package not in sys.modules:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise InputError(f"{what} needs the '{package}' package, which is not installed; {hint}")
        stub = types.ModuleType(package)
        stub.__path__ = list(spec.submodule_search_locations)
        stub.__spec__ = spec
        stub.__file__ = spec.origin
        sys.modules[package] = stub
    modules = []
    for name in submodules:
        full = f"{package}.{name}"
        try:
            modules.append(importlib.import_module(full))
        except ModuleNotFoundError as err:
            if err.name and (err.name == full or full.startswith(err.name + ".")):
                where = ", ".join(getattr(sys.modules[package], "__path__", []) or ["?"])
                raise InputError(f"{what}: the installed '{package}' ({where}) has no {full}: not the real "
                                 f"package; {hint}") from None
            raise InputError(f"{what}: {full} needs the package '{err.name}' (pip install {err.name})") from None
    return modules


def imagebind_modules() -> tuple[types.ModuleType, types.ModuleType, Path]:
    """``(imagebind.models.imagebind_model, imagebind.models.multimodal_preprocessors, BPE file)``."""
    model_module, preprocessors = import_skipping_init(
        "imagebind", ["models.imagebind_model", "models.multimodal_preprocessors"], "the ImageBind adapter", INSTALL_HINT)
    bpe = Path(sys.modules["imagebind"].__path__[0]) / "bpe" / "bpe_simple_vocab_16e6.txt.gz"
    if not bpe.is_file():
        raise InputError(f"{bpe}: ImageBind's BPE vocabulary is missing from the installed package; {INSTALL_HINT}")
    return model_module, preprocessors, bpe


def build_imagebind_model(checkpoint: str | Path) -> tuple[nn.Module, types.SimpleNamespace]:
    """``(imagebind_huge with the weights of checkpoint, in eval mode on the CPU, ModalityType)``."""
    model_module, _, _ = imagebind_modules()
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"{path}: ImageBind weights not found (put imagebind_huge.pth in ckpt/; see ckpt/README.md)")
    model = model_module.imagebind_huge(pretrained=False)
    load_weights(model, path)
    return model.eval(), model_module.ModalityType


class ImageBindText:
    """ImageBind's text side in the shape :func:`.clip.class_prototypes` expects: a tokenizer
    (texts → ``N×77`` tokens) and ``encode_text(tokens)`` (the model's raw text embeddings)."""

    def __init__(self, model: nn.Module, modality_type, tokenizer) -> None:
        self.model, self.key, self.tokenizer = model, modality_type.TEXT, tokenizer

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts))
        return tokens[None] if tokens.ndim == 1 else tokens

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model({self.key: tokens})[self.key]


def modality_scale(model: nn.Module, key: str) -> float:
    """The factor ImageBind's postprocessor of ``key`` puts on unit embeddings (1 if none)."""
    post = getattr(model, "modality_postprocessors", None)
    if post is None or key not in post:
        return 1.0
    with torch.no_grad():  # normalise-then-scale: the output's norm is the scale
        out = post[key](torch.ones(1, 4, device=next(model.parameters()).device))
    return float(out.norm())


class ImageBindScorer(ZeroShotCLIPScorer):
    """Zero-shot ImageBind on one modality as a :class:`~submodular_attribution.models.Scorer`:
    ``probs = softmax(s · ê @ Pᵀ)`` with ``ê`` the unit embedding of the vision or audio input
    (see the module docstring for inputs and ``s``); ``embeddings`` are ``ê``."""

    def __init__(self, model: nn.Module, modality_type, modality: str, prototypes: torch.Tensor,
                 device: str | torch.device, logit_scale: float) -> None:
        if modality not in MODALITIES:
            raise InputError(f"ImageBind modality {modality!r}: choose from {', '.join(MODALITIES)}")
        self.modality = modality
        self.key = getattr(modality_type, modality.upper())
        image_size = (224, 224) if modality == "vision" else None
        super().__init__(model, prototypes, OPENAI_MEAN, OPENAI_STD, device, logit_scale=logit_scale,
                         image_size=image_size)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Vision: as CLIP's (224×224, OpenAI mean/std); audio: ``B×3×128×204`` spectrogram images
        back to normalised log-mel, ``B×3×1×128×204``."""
        if self.modality == "vision":
            return super().preprocess(images)
        x = images.to(self.device, torch.float32)
        if x.shape[1:] != (imagebind_audio.CLIPS_PER_VIDEO, *imagebind_audio.IMAGE_SIZE):
            raise ValueError(f"ImageBind audio expects B×3×128×204 spectrogram images, got {tuple(x.shape)}")
        return imagebind_audio.normalise(imagebind_audio.image_to_fbank(x))[:, :, None]

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.model({self.key: x})[self.key]

    @property
    def attribution_module(self) -> nn.Module:
        """The modality's trunk, which baseline methods hook into."""
        return self.model.modality_trunks[self.key]

    @property
    def pixel_mean(self):
        return super().pixel_mean if self.modality == "vision" else None

    def tune(self, channels_last: bool = False, compile: bool = False) -> None:
        """``torch.compile`` for the modality's trunk (channels-last does not apply)."""
        trunks = self.model.modality_trunks
        trunks[self.key] = tune_module(trunks[self.key], False, compile)


def imagebind_logit_scale(model: nn.Module, modality_type, modality: str) -> float:
    """The temperature ``s`` of the module docstring."""
    if modality == "vision":
        return VISION_LOGIT_SCALE
    text = min(modality_scale(model, modality_type.TEXT), MAX_LOGIT_SCALE)
    audio = min(modality_scale(model, modality_type.AUDIO), MAX_LOGIT_SCALE)
    return AUDIO_TEXT_FACTOR * audio * text


def build_imagebind_scorer(checkpoint: str | Path, modality: str, classes: Sequence[str], templates: Sequence[str],
                           device: str | torch.device = "cpu",
                           cache_dir: str | Path = "ckpt/semantic_features",
                           logit_scale: float | None = None) -> ImageBindScorer:
    """Zero-shot ImageBind scorer for ``modality`` (``vision`` or ``audio``) over ``classes``, e.g.
    ``build_imagebind_scorer("ckpt/imagebind_huge.pth", "audio", vggsound_classes(), VGGSOUND_TEMPLATES)``."""
    if modality not in MODALITIES:
        raise InputError(f"ImageBind modality {modality!r}: choose from {', '.join(MODALITIES)}")
    classes, templates = [str(c) for c in classes], [str(t) for t in templates]
    if not classes or not templates:
        raise InputError("zero-shot ImageBind needs at least one class name and one prompt template")
    _, preprocessors, bpe = imagebind_modules()
    model, modality_type = build_imagebind_model(checkpoint)
    device = torch.device(device)
    model = model.to(device)
    text = ImageBindText(model, modality_type, preprocessors.SimpleTokenizer(bpe_path=str(bpe)))
    prototypes = cached_prototypes(text, text, "imagebind_huge", checkpoint, classes, templates, device,
                                   cache_dir=cache_dir)
    scale = imagebind_logit_scale(model, modality_type, modality) if logit_scale is None else logit_scale
    return ImageBindScorer(model, modality_type, modality, prototypes, device, scale)
