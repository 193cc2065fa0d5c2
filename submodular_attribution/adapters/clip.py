"""Zero-shot CLIP scorer through ``open_clip``, from local weights only.

The architecture comes from open_clip's built-in configs (``open_clip.list_models()``), created
with random initialisation (``pretrained=None``: nothing is downloaded); the user's checkpoint is
then loaded strictly with :func:`~submodular_attribution.adapters.checkpoints.load_weights`.
Class prototypes are the normalised mean of the normalised text embeddings of every prompt
template filled with the class name, cached on disk per (model, weights, classes, templates).

Expected weight files (put them in ``ckpt/``; see ``ckpt/README.md``):

- ``ckpt/ViT-B-32.pt`` — OpenAI CLIP ViT-B/32 (TorchScript), ``model_name="ViT-B-32"``,
  class set ``imagenet``; likewise ``ckpt/ViT-B-16.pt`` / ``ckpt/ViT-L-14.pt``.
- ``ckpt/<arch>-<tag>.bin`` — any open_clip state dict (LAION, DataComp …), ``model_name`` = its
  architecture, any class set.
- ``ckpt/QuiltNet-B-32.bin`` — QuiltNet-B-32 (``open_clip_pytorch_model.bin`` of its release,
  renamed), ``model_name="ViT-B-32"``, class set ``lc25000_lung``:
  ``build_clip_scorer("ViT-B-32", "ckpt/QuiltNet-B-32.bin", "lc25000_lung")``.

* OpenAI's ``.pt`` files are TorchScript archives, which ``torch.load(weights_only=True)``
  refuses. They are recognised by their zip layout (``code/``, ``constants.pkl``) and read with
  ``torch.jit.load(path, map_location="cpu").state_dict()`` (that deserialises TorchScript code,
  so only use archives from a source you trust). Their three non-tensor
  entries (``input_resolution``, ``context_length``, ``vocab_size``) are dropped, and the model is
  built with QuickGELU, the activation every OpenAI CLIP was trained with.
* QuickGELU vs GELU has no parameters, so strict loading cannot tell them apart: weights trained
  with QuickGELU but loaded into a GELU config (or the reverse) load silently and score worse.
  For open_clip/QuiltNet ``.bin`` files, pick the architecture name their
  ``open_clip_config.json`` describes (``ViT-B-32`` or ``ViT-B-32-quickgelu``).
* Published weights on request: ``pretrained="laion2b_s34b_b79k"`` (an open_clip pretrained tag
  of ``model_name``, see ``open_clip.list_pretrained()``) reads the file open_clip would download
  from its cache (the Hugging Face cache for ``hf_hub`` weights, ``~/.cache/clip`` for URL ones, or
  ``pretrained_cache_dir``), with the tag's QuickGELU setting and normalisation; a file not
  cached is an :class:`InputError` saying where to put it, unless ``allow_download=True``.
* Text goes through ``open_clip.get_tokenizer(model_name)``; the CLIP ``SimpleTokenizer`` reads
  the BPE vocabulary bundled with open_clip, so it works offline. Architectures whose tokenizer or
  text tower comes from Hugging Face (SigLIP, ``hf_tokenizer_name``/``hf_model_name`` configs,
  ``hf-hub:``/``local-dir:`` names) are refused with an :class:`InputError`.
"""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import os
import re
import warnings
import zipfile
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import InputError
from ..models import ModelOutput, tune_module
from ..common.atomic import atomic_torch_save
from ..common.checkpoints import load_state, load_weights

DEFAULT_CACHE_DIR = "ckpt/semantic_features"
MAX_LOGIT_SCALE = 100.0  # CLIP clamps its learned temperature at 100 during training
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_JIT_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")
_CACHE_FORMAT = 1


# --------------------------------------------------------------------------- model


def _open_clip():
    try:
        import open_clip
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise InputError(f"the CLIP adapter needs open_clip_torch ({err})") from None
    return open_clip


def check_model_name(model_name: str) -> dict:
    """Return the open_clip config of a built-in architecture; otherwise an ``InputError`` listing
    the closest names (hub and local-dir names are refused: they would fetch or bypass our loader)."""
    open_clip = _open_clip()
    known = open_clip.list_models()
    if model_name not in known:
        close = difflib.get_close_matches(model_name, known, n=5, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else f"known: {', '.join(known[:8])} …"
        raise InputError(f"unknown open_clip model {model_name!r} ({hint}; "
                         f"pass a built-in architecture name and the weights file separately)")
    config = open_clip.get_model_config(model_name)
    text_cfg = config.get("text_cfg", {})
    if text_cfg.get("hf_tokenizer_name") or text_cfg.get("hf_model_name") or "siglip" in model_name.lower():
        raise InputError(f"open_clip model {model_name!r} needs a Hugging Face tokenizer/text model, which "
                         f"cannot be loaded offline here; use an architecture with open_clip's bundled "
                         f"CLIP tokenizer (e.g. ViT-B-32, ViT-B-16, ViT-L-14)")
    return config


def is_torchscript_archive(path: str | Path) -> bool:
    """True for a TorchScript zip (OpenAI's released CLIP ``.pt`` files), False for a state dict."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


@contextlib.contextmanager
def _quiet_logging():
    """open_clip logs 'No pretrained weights loaded … initialized randomly' on the root logger,
    which is misleading here: our weights are loaded right after creation."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _pair(size) -> tuple[int, int]:
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[-1])
    return int(size), int(size)


def build_clip_model(model_name: str, checkpoint: str | Path, quick_gelu: bool = False) -> tuple[nn.Module, dict]:
    """Build open_clip ``model_name`` (random init, no download) and load ``checkpoint`` strictly.

    Returns ``(model, preprocess)`` with ``preprocess = {"mean", "std", "image_size": (H, W),
    "quick_gelu"}``; mean/std come from the model's ``visual.preprocess_cfg`` (open_clip's OpenAI
    defaults for a local file). ``quick_gelu=True`` builds with QuickGELU (as OpenAI's weights,
    which TorchScript archives get anyway, need). The model is in eval mode on the CPU."""
    open_clip = _open_clip()
    config = check_model_name(model_name)
    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found (see ckpt/README.md for where to get it)")
    jit = is_torchscript_archive(path)
    with _quiet_logging():
        model = open_clip.create_model(model_name, pretrained=None, pretrained_image=False,
                                       pretrained_text=False, force_quick_gelu=jit or quick_gelu, device="cpu")
    if jit:
        try:
            with warnings.catch_warnings():  # recent torch warns that torch.jit.load is deprecated
                warnings.simplefilter("ignore", FutureWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        except Exception as err:  # TorchScript raises many types for a foreign archive
            raise InputError(f"{path}: cannot read TorchScript checkpoint "
                             f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
        # Drop the archive's non-tensor config entries, and buffers the open_clip model keeps
        # out of its state dict (``attn_mask`` is rebuilt at creation; traced archives save it).
        own = model.state_dict()
        transient = {name for name, _ in model.named_buffers() if name not in own}
        state = {k: v for k, v in state.items() if k not in _JIT_EXTRA_KEYS and k not in transient}
        load_state(model, state, path)
    else:
        load_weights(model, path)
    model.eval()
    visual = model.visual
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    mean = tuple(float(v) for v in (cfg.get("mean") or getattr(visual, "image_mean", None) or OPENAI_MEAN))
    std = tuple(float(v) for v in (cfg.get("std") or getattr(visual, "image_std", None) or OPENAI_STD))
    size = getattr(visual, "image_size", None) or cfg.get("size") or config["vision_cfg"]["image_size"]
    preprocess = {"mean": mean, "std": std, "image_size": _pair(size),
                  "quick_gelu": bool(jit or quick_gelu or config.get("quick_gelu", False))}
    return model, preprocess


def _safe_alternatives(filename: str) -> list[str]:
    """The safetensors names open_clip tries before a pickled ``.bin``/``.pth`` on the hub."""
    from open_clip.constants import HF_WEIGHTS_NAME

    if filename == HF_WEIGHTS_NAME:
        return ["open_clip_model.safetensors"]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors"]
    return []


def _cached_pretrained(cfg: dict, cache_dir: str | Path | None) -> tuple[Path | None, str]:
    """(the cached file of an open_clip pretrained cfg, or None and where it should be): the
    Hugging Face cache for ``hf_hub`` weights (which open_clip prefers), else its URL cache."""
    missing = ""
    if cfg.get("hf_hub"):
        from huggingface_hub import constants, try_to_load_from_cache
        from open_clip.constants import HF_WEIGHTS_NAME

        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        for name in [*_safe_alternatives(filename), filename]:
            found = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return Path(found), ""
        where = Path(cache_dir or constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))
        missing = (f"not in the Hugging Face cache ({where}); copy it there from a machine that ran "
                   f"'hf download {repo} {filename}'")
    if cfg.get("url"):
        path = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(cfg["url"])
        if path.is_file():
            return path, ""
        missing = missing or f"not in open_clip's cache ({path}); put the file there (from {cfg['url']})"
    return None, missing


def pretrained_checkpoint(model_name: str, tag: str, allow_download: bool = False,
                          cache_dir: str | Path | None = None) -> tuple[Path, dict]:
    """The weights file of open_clip's pretrained ``tag`` for ``model_name``, and the tag's config
    (``mean``, ``std``, ``quick_gelu`` …), from open_clip's cache; downloaded there by open_clip only
    when ``allow_download``. An unknown tag, or a file not cached, is a one-line :class:`InputError`."""
    check_model_name(model_name)
    from open_clip import pretrained as registry

    cfg = registry.get_pretrained_cfg(model_name, tag)
    if not cfg:
        tags = registry.list_pretrained_tags_by_model(model_name)
        known = f"tags: {', '.join(tags)}" if tags else "it has no published weights"
        raise InputError(f"--pretrained {tag}: not an open_clip pretrained tag of {model_name} ({known})")
    if cfg.get("file"):  # a tag registered with a local file
        if not Path(cfg["file"]).is_file():
            raise InputError(f"--pretrained {tag}: {cfg['file']}: weights file not found")
        return Path(cfg["file"]), cfg
    path, missing = _cached_pretrained(cfg, cache_dir)
    if path is not None:
        return path, cfg
    if not allow_download:
        raise InputError(f"--pretrained {tag}: {model_name} weights are {missing}, or pass --allow-download")
    try:
        with _quiet_logging():
            found = registry.download_pretrained(cfg, cache_dir=None if cache_dir is None else str(cache_dir))
    except Exception as err:  # network, hub or checksum errors
        text = str(err).strip().splitlines()
        raise InputError(f"--pretrained {tag}: download of {model_name} weights failed "
                         f"({type(err).__name__}{': ' + text[0] if text else ''})") from None
    if not found:
        raise InputError(f"--pretrained {tag}: open_clip has no download for {model_name} {tag}")
    return Path(found), cfg


def get_offline_tokenizer(model_name: str):
    """open_clip's tokenizer for ``model_name``; only the bundled-vocabulary CLIP tokenizer is allowed."""
    open_clip = _open_clip()
    check_model_name(model_name)
    tokenizer = open_clip.get_tokenizer(model_name)
    if type(tokenizer).__name__ != "SimpleTokenizer":
        raise InputError(f"open_clip model {model_name!r} uses {type(tokenizer).__name__}, which needs "
                         f"Hugging Face files; only the bundled CLIP tokenizer works offline")
    return tokenizer


# --------------------------------------------------------------------------- text prototypes


def _fill(template: str, name: str) -> str:
    if "{}" not in template:
        raise InputError(f"prompt template {template!r} has no '{{}}' for the class name")
    return template.replace("{}", name)


def class_prototypes(model: nn.Module, tokenizer, classes: Sequence[str], templates: Sequence[str],
                     device: str | torch.device, batch_size: int = 256) -> torch.Tensor:
    """``C×D`` float32 class prototypes on ``device``.

    For each class: every template filled with the class name is encoded, each text embedding is
    L2-normalised, the T embeddings are averaged, and the mean is L2-normalised again (the CLIP
    prompt-ensembling recipe). Classes are encoded ``max(1, batch_size // T)`` at a time."""
    classes, templates = list(classes), list(templates)
    if not classes or not templates:
        raise InputError("zero-shot CLIP needs at least one class name and one prompt template")
    device = torch.device(device)
    per_batch = max(1, batch_size // len(templates))
    chunks = []
    from tqdm import tqdm

    with torch.inference_mode(), tqdm(total=len(classes), unit="class", desc="CLIP text prototypes",
                                      disable=len(classes) < 100, leave=False) as progress:
        for start in range(0, len(classes), per_batch):
            names = classes[start:start + per_batch]
            texts = [_fill(t, name) for name in names for t in templates]
            tokens = tokenizer(texts).to(device)
            text = F.normalize(model.encode_text(tokens).float(), dim=-1)
            mean = text.view(len(names), len(templates), -1).mean(dim=1)
            chunks.append(F.normalize(mean, dim=-1))
            progress.update(len(names))
    return torch.cat(chunks).clone()  # clone: a normal tensor, usable where autograd is on


def _weights_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """Size + SHA-1 of the first and last MiB: cheap for GB files, stable under copy/touch."""
    digest = hashlib.sha1()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(chunk))
        if size > chunk:
            f.seek(max(chunk, size - chunk))
            digest.update(f.read(chunk))
    return digest.hexdigest()


def prototype_cache_path(model_name: str, checkpoint: str | Path, classes: Sequence[str],
                         templates: Sequence[str], cache_dir: str | Path = DEFAULT_CACHE_DIR) -> Path:
    """``<cache_dir>/<model_name>-<16 hex>.pt``; the hash covers the model name, the weights
    file's fingerprint, the class list and the templates (all in order)."""
    key = json.dumps({"format": _CACHE_FORMAT, "model": model_name,
                      "weights": _weights_fingerprint(Path(checkpoint)),
                      "classes": list(classes), "templates": list(templates)}, ensure_ascii=False)
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.@+-]", "_", model_name)
    return Path(cache_dir) / f"{safe}-{digest}.pt"


def _read_cache(path: Path, classes: list[str], templates: list[str]) -> torch.Tensor | None:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # corrupt or foreign file: recompute and overwrite
        return None
    if not isinstance(obj, dict):
        return None
    protos = obj.get("prototypes")
    if (not isinstance(protos, torch.Tensor) or protos.ndim != 2 or protos.shape[0] != len(classes)
            or obj.get("classes") != classes or obj.get("templates") != templates):
        return None
    return protos.float()


def cached_prototypes(model: nn.Module, tokenizer, model_name: str, checkpoint: str | Path,
                      classes: Sequence[str], templates: Sequence[str], device: str | torch.device,
                      cache_dir: str | Path = DEFAULT_CACHE_DIR, batch_size: int = 256) -> torch.Tensor:
    """:func:`class_prototypes`, cached at :func:`prototype_cache_path`.

    A hit loads the file (its stored class list and templates must match, else it is recomputed);
    a miss encodes the text and writes the file atomically (temporary file + ``os.replace``), so
    concurrent workers never read half a file. An unwritable cache folder only costs a warning."""
    classes, templates = list(classes), list(templates)
    path = prototype_cache_path(model_name, checkpoint, classes, templates, cache_dir)
    if path.is_file():
        cached = _read_cache(path, classes, templates)
        if cached is not None:
            return cached.to(device)
    protos = class_prototypes(model, tokenizer, classes, templates, device, batch_size)
    record = {"prototypes": protos.detach().cpu(), "classes": classes, "templates": templates,
              "model_name": model_name, "checkpoint": str(checkpoint)}
    try:
        atomic_torch_save(record, path)
    except OSError as err:
        warnings.warn(f"{path}: cannot cache CLIP text prototypes ({err})", stacklevel=2)
    return protos


# --------------------------------------------------------------------------- scorer


class ZeroShotCLIPScorer:
    """Zero-shot CLIP as a :class:`~submodular_attribution.models.Scorer`.

    ``probs = softmax(s · ê @ Pᵀ)`` where ``ê`` is the L2-normalised image embedding, ``P`` the
    ``C×D`` unit class prototypes and ``s`` the temperature: ``logit_scale`` when given, else the
    model's learned ``logit_scale.exp()`` clamped at 100 (= 100 for trained CLIPs).

    The temperature matters: cosine similarities between CLIP images and prompts all lie within a
    few hundredths of each other (≈0.2–0.35), so ``softmax(cos)`` over 1000 classes is almost
    uniform — every masked image would score ≈1/C and the submodular search would have nothing to
    rank. Scaling by 100 restores CLIP's actual zero-shot confidence.

    ``embeddings`` are the L2-normalised image features ``ê`` (B×D), used by the effectiveness
    term (which only looks at angles). Images are ``B×3×H×W`` RGB in [0, 1] on ``device``; they are
    normalised with ``mean``/``std`` and, if ``image_size`` is given and differs from ``H×W``,
    resized bilinearly to it first (ViTs only accept their training resolution).

    Other zero-shot towers (ImageBind, LanguageBind) are subclasses that override
    :meth:`encode_image`, and :meth:`preprocess` where their input differs.
    """

    def __init__(self, model: nn.Module, prototypes: torch.Tensor, mean: Sequence[float],
                 std: Sequence[float], device: str | torch.device, logit_scale: float | None = None,
                 image_size: tuple[int, int] | int | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if prototypes.ndim != 2:
            raise ValueError(f"prototypes must be C×D, got shape {tuple(prototypes.shape)}")
        self.prototypes = F.normalize(prototypes.detach().float(), dim=-1).to(self.device)
        self.num_classes = int(prototypes.shape[0])
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        if logit_scale is None:
            learned = getattr(model, "logit_scale", None)
            logit_scale = float(learned.detach().float().exp().item()) if learned is not None else MAX_LOGIT_SCALE
            logit_scale = min(logit_scale, MAX_LOGIT_SCALE)
        if not logit_scale > 0:
            raise ValueError(f"logit_scale must be positive, got {logit_scale}")
        self.logit_scale = float(logit_scale)
        self.image_size = None if image_size is None else _pair(image_size)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's input for ``B×3×H×W`` RGB [0, 1] images: float32 on ``device``, resized
        to ``image_size`` (when given and different) and normalised with ``mean``/``std``."""
        x = images.to(self.device, torch.float32)
        if self.image_size is not None and tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """The model's ``B×D`` embeddings of :meth:`preprocess`'s output, not yet normalised."""
        return self.model.encode_image(x)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings ``B×D`` of RGB [0, 1] images."""
        return F.normalize(self.encode_image(self.preprocess(images)).float(), dim=-1)

    @property
    def attribution_module(self) -> nn.Module:
        """The image tower, which baseline methods hook into."""
        return self.model.visual

    def tune(self, channels_last: bool = False, compile: bool = False) -> None:
        """Channels-last memory and/or ``torch.compile`` for the image tower."""
        self.model.visual = tune_module(self.model.visual, channels_last, compile)

    @property
    def pixel_mean(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.mean.reshape(-1))

    def representation(self, images: torch.Tensor) -> torch.Tensor:
        """The unit image embedding ``B×D`` (differentiable)."""
        return self.embed(images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable B×C zero-shot logits s·cos(e, prototypes) (for gradient baselines)."""
        return self.logit_scale * self.embed(images) @ self.prototypes.T

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        e = self.embed(images)
        logits = self.logit_scale * e @ self.prototypes.T
        return ModelOutput(probs=logits.softmax(dim=-1), embeddings=e)


def resolve_class_set(class_set: str | tuple[Sequence[str], Sequence[str]]) -> tuple[list[str], list[str]]:
    """A registered name (``imagenet``, ``cub``, ``lc25000_lung``) or ``(classes, templates)``."""
    from ..class_names import get_class_set

    if isinstance(class_set, str):
        return get_class_set(class_set)
    classes, templates = class_set
    classes, templates = [str(c) for c in classes], [str(t) for t in templates]
    if not classes or not templates:
        raise InputError("zero-shot CLIP needs at least one class name and one prompt template")
    return classes, templates


def build_clip_scorer(model_name: str, checkpoint: str | Path | None,
                      class_set: str | tuple[Sequence[str], Sequence[str]],
                      device: str | torch.device = "cpu", cache_dir: str | Path = DEFAULT_CACHE_DIR,
                      logit_scale: float | None = None, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None, *, pretrained: str | None = None,
                      allow_download: bool = False,
                      pretrained_cache_dir: str | Path | None = None) -> ZeroShotCLIPScorer:
    """Zero-shot CLIP scorer from a local weights file, e.g.
    ``build_clip_scorer("ViT-B-32", "ckpt/QuiltNet-B-32.bin", "lc25000_lung")`` for QuiltNet.

    ``mean``/``std`` override the normalisation (for weights trained with other statistics);
    ``logit_scale`` overrides the model's temperature. ``pretrained`` (an open_clip tag) takes
    the published weights from open_clip's cache instead of ``checkpoint`` (see
    :func:`pretrained_checkpoint`), with the tag's QuickGELU setting and mean/std."""
    classes, templates = resolve_class_set(class_set)
    quick_gelu = False
    if pretrained:
        checkpoint, cfg = pretrained_checkpoint(model_name, pretrained, allow_download, pretrained_cache_dir)
        quick_gelu = bool(cfg.get("quick_gelu", False))
        mean = mean or cfg.get("mean")
        std = std or cfg.get("std")
    elif checkpoint is None:
        raise InputError(f"--checkpoint is required for {model_name}")
    model, preprocess = build_clip_model(model_name, checkpoint, quick_gelu=quick_gelu)
    tokenizer = get_offline_tokenizer(model_name)
    device = torch.device(device)
    model = model.to(device)
    prototypes = cached_prototypes(model, tokenizer, model_name, checkpoint, classes, templates, device,
                                   cache_dir=cache_dir)
    return ZeroShotCLIPScorer(model, prototypes, mean or preprocess["mean"], std or preprocess["std"], device,
                              logit_scale=logit_scale, image_size=preprocess["image_size"])
