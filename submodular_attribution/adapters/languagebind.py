"""Zero-shot LanguageBind image tower through the ``languagebind`` PyPI package, from a local folder.

Install (core dependencies only, so that ``opencv-contrib-python`` stays the only OpenCV and
torch is not changed): ``pip install -r requirements-languagebind.txt`` then
``pip install --no-deps languagebind``. Weights: the Hugging Face release ``LanguageBind/LanguageBind_Image``
copied into ``ckpt/LanguageBind_Image/`` (``config.json``, ``pytorch_model.bin`` or
``model.safetensors`` — sharded files with their ``*.index.json`` too — and the tokenizer's
``vocab.json`` and ``merges.txt``). Nothing is downloaded.

Loading: ``LanguageBindImageConfig`` is read from the folder's ``config.json``; the model
``LanguageBindImage(config)`` (a CLIP ViT with LoRA adapters on the vision tower, as released) is
built on the CPU and the weights are loaded strictly with
:func:`~submodular_attribution.common.checkpoints.load_state` (``position_ids`` buffers that old
files carry are ignored). This avoids ``from_pretrained``, which under transformers ≥ 5 leaves
the non-persistent ``position_ids`` of this package's model uninitialised; a vision
``image_size`` written as ``[H, W]`` (transformers ≥ 5 ``save_pretrained``) is read back as
``H`` (square only). The package's ``__init__`` (which imports its video and audio
processors: decord, pytorchvideo, torchaudio, opencv-python) is not run; only
``languagebind.image.*`` is imported.

Scorer: ``probs = softmax(s · ê @ Pᵀ)``, ``ê`` the unit image embedding
(``visual_projection(vision_model(x).pooler_output)``), ``P`` the unit class prototypes (mean of
the unit text embeddings ``text_projection(text_model(tokens).pooler_output)`` over the prompt
templates, renormalised; tokens padded to 77), ``s = exp(logit_scale)`` of the checkpoint,
unclamped, as ``languagebind.LanguageBind.forward`` scales non-language embeddings. Images: RGB in
[0, 1] resized bilinearly to the tower's ``image_size`` (224) and normalised with the OpenAI CLIP
mean/std (``LanguageBindImageProcessor``'s constants). The original SMDL-Attribution ImageNet
script used the video tower (``LanguageBind_Video_FT``) on the image repeated over 8 frames; this
adapter uses the image tower.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..common.checkpoints import load_state, read_tensor_file
from ..common.errors import InputError
from ..models import tune_module
from .clip import OPENAI_MEAN, OPENAI_STD, ZeroShotCLIPScorer, cached_prototypes
from .imagebind import import_skipping_init

INSTALL_HINT = "pip install -r requirements-languagebind.txt && pip install --no-deps languagebind"
CONTEXT_LENGTH = 77
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("vocab.json", "merges.txt")


def languagebind_image_modules():
    """``(modeling_image, configuration_image, tokenization_image)`` of the installed package."""
    return import_skipping_init("languagebind", ["image.modeling_image", "image.configuration_image",
                                                 "image.tokenization_image"], "the LanguageBind adapter", INSTALL_HINT)


def _square(size, what: str, folder: Path) -> int:
    if isinstance(size, (list, tuple)):
        if len(set(int(s) for s in size)) != 1:
            raise InputError(f"{folder}/config.json: vision {what} {list(size)} is not square")
        return int(size[0])
    return int(size)


def read_config(folder: str | Path):
    """The ``LanguageBindImageConfig`` of ``folder/config.json`` (square sizes as ints)."""
    _, configuration, _ = languagebind_image_modules()
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder}: no LanguageBind config.json (put the LanguageBind_Image release in this folder; "
                         f"see ckpt/README.md)")
    try:
        config = configuration.LanguageBindImageConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as err:
        raise InputError(f"{folder}/config.json: not a LanguageBind image config ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    vision = config.vision_config
    vision.image_size = _square(vision.image_size, "image_size", folder)
    vision.patch_size = _square(vision.patch_size, "patch_size", folder)
    for sub in (config, config.text_config, vision):  # plain attention, no dispatch warnings
        try:
            sub._attn_implementation = "eager"
        except (AttributeError, ValueError):  # pragma: no cover - older transformers
            pass
    return config


def read_weights(folder: Path) -> dict:
    """The state dict of ``folder``: one weights file, or the shards an index lists."""
    for name in INDEX_FILES:
        index = folder / name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError) as err:
                raise InputError(f"{index}: unreadable shard index ({err})") from None
            state = {}
            for shard in shards:
                part = read_tensor_file(folder / shard)
                if not isinstance(part, dict):
                    raise InputError(f"{folder / shard}: not a state dict of tensors")
                state.update(part)
            return state
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            state = read_tensor_file(folder / name)
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise InputError(f"{folder / name}: not a state dict of tensors")
            return state
    raise InputError(f"{folder}: no LanguageBind weights ({' or '.join(WEIGHT_FILES)}); see ckpt/README.md")


def build_languagebind_model(folder: str | Path) -> nn.Module:
    """``LanguageBindImage`` with the config and weights of ``folder``, in eval mode on the CPU."""
    modeling, _, _ = languagebind_image_modules()
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: LanguageBind folder not found (put the LanguageBind_Image release there; "
                         f"see ckpt/README.md)")
    config = read_config(folder)
    model = modeling.LanguageBindImage(config)
    own = model.state_dict()
    state = {k: v for k, v in read_weights(folder).items() if k in own or not k.endswith("position_ids")}
    load_state(model, state, folder)
    return model.eval()


def load_tokenizer(folder: str | Path):
    """The folder's ``LanguageBindImageTokenizer`` (CLIP BPE: ``vocab.json`` + ``merges.txt``)."""
    _, _, tokenization = languagebind_image_modules()
    folder = Path(folder)
    missing = [name for name in TOKENIZER_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(f"{folder}: LanguageBind tokenizer files missing ({', '.join(missing)}); copy them from "
                         f"the LanguageBind_Image release")
    return tokenization.LanguageBindImageTokenizer.from_pretrained(str(folder), local_files_only=True)


class LanguageBindText:
    """The text side in the shape :func:`.clip.class_prototypes` expects."""

    def __init__(self, model: nn.Module, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer

    def __call__(self, texts: Sequence[str]):
        return self.tokenizer(list(texts), max_length=CONTEXT_LENGTH, padding="max_length", truncation=True,
                              return_tensors="pt")  # a BatchEncoding: has .to(device)

    def encode_text(self, batch) -> torch.Tensor:
        out = self.model.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return self.model.text_projection(out[1])


class LanguageBindScorer(ZeroShotCLIPScorer):
    """Zero-shot LanguageBind image tower as a :class:`~submodular_attribution.models.Scorer`
    (see the module docstring); ``embeddings`` are the unit image embeddings."""

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.visual_projection(self.model.vision_model(pixel_values=x)[1])

    @property
    def attribution_module(self) -> nn.Module:
        return self.model.vision_model

    def tune(self, channels_last: bool = False, compile: bool = False) -> None:
        """``torch.compile`` for the vision tower (channels-last does not apply to a ViT)."""
        self.model.vision_model = tune_module(self.model.vision_model, False, compile)


def build_languagebind_scorer(folder: str | Path, classes: Sequence[str], templates: Sequence[str],
                              device: str | torch.device = "cpu", cache_dir: str | Path = "ckpt/semantic_features",
                              logit_scale: float | None = None) -> LanguageBindScorer:
    """Zero-shot LanguageBind image scorer from the release folder ``folder``, e.g.
    ``build_languagebind_scorer("ckpt/LanguageBind_Image", imagenet_classes(), imagenet_templates())``."""
    classes, templates = [str(c) for c in classes], [str(t) for t in templates]
    if not classes or not templates:
        raise InputError("zero-shot LanguageBind needs at least one class name and one prompt template")
    folder = Path(folder)
    model = build_languagebind_model(folder)
    text = LanguageBindText(model, load_tokenizer(folder))
    device = torch.device(device)
    model = model.to(device)
    weights = next((folder / n for n in (*INDEX_FILES, *WEIGHT_FILES) if (folder / n).is_file()))
    prototypes = cached_prototypes(text, text, "LanguageBind_Image", weights, classes, templates, device,
                                   cache_dir=cache_dir)
    scale = float(model.logit_scale.detach().float().exp()) if logit_scale is None else float(logit_scale)
    size = _square(model.config.vision_config.image_size, "image_size", folder)
    return LanguageBindScorer(model, prototypes, OPENAI_MEAN, OPENAI_STD, device, logit_scale=scale,
                              image_size=(size, size))
