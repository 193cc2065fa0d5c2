"""Single-modal classifiers: any torchvision classification architecture, or any timm model,
by name, with the user's weights loaded from a file.

ImageNet classifiers and the CUB-200 ResNet-101 are configurations of this one adapter
(different ``arch``/``num_classes``). Models are always built with random initialisation
(never downloading anything) and then filled strictly from the checkpoint.

Published weights on request: ``weights="IMAGENET1K_V2"`` (a torchvision weights name of
``arch``, or ``DEFAULT``) reads the file torchvision would download from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/``); ``pretrained="augreg_in21k_ft_in1k"`` (a timm pretrained tag,
or ``default``) reads timm's file from the Hugging Face cache (or, for weights timm fetches by
URL, the torch hub cache). A file not in its cache is an :class:`InputError` saying where to
put it, unless ``allow_download=True``. The number of classes and the normalisation are then
the weights' own.

Names: ``resnet101``, ``vit_b_16``, ``convnext_tiny`` … (torchvision) or ``timm:<name>``, e.g.
``timm:vit_base_patch16_224``, ``timm:swin_tiny_patch4_window7_224``.
"""
from __future__ import annotations

import difflib
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ..common.errors import InputError
from ..common.images import IMAGENET_MEAN, IMAGENET_STD
from ..models import ClassifierScorer
from ..common.checkpoints import load_state, load_weights
from ..archs import REGISTRY as BENCHMARK_ARCHS, build_arch

TIMM_PREFIX = "timm:"

# torchvision builds these with their pretrained weights as below: the weights were trained on
# inputs normalised to [-1, 1], which ``transform_input`` recreates from ImageNet normalisation.
# (Weight init is skipped: the checkpoint overwrites it.)
_TORCHVISION_KWARGS = {
    "googlenet": {"transform_input": True, "init_weights": False},
    "inception_v3": {"transform_input": True, "init_weights": False},
}
# Auxiliary training heads, unused in eval mode; checkpoints saved without them still load.
_OPTIONAL_KEYS = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}


def _torchvision_names() -> list[str]:
    import torchvision

    # module=torchvision.models keeps classification only (no detection/segmentation/video/quantized)
    return torchvision.models.list_models(module=torchvision.models)


def _timm():
    """timm, or None where it is not installed (it is optional: only ``timm:`` names need it)."""
    try:
        import timm
    except ImportError:
        return None
    return timm


def _unknown(arch: str, candidates: list[str], extra: list[str] = ()) -> InputError:
    matches = list(extra) + difflib.get_close_matches(arch, candidates, n=3)
    hint = f"; did you mean: {', '.join(matches)}?" if matches else ""
    return InputError(f"unknown classifier {arch!r}{hint} (torchvision names, or timm:<name>)")


def _build_torchvision(arch: str, num_classes: int, input_size: tuple[int, int] | None) -> tuple[nn.Module, dict]:
    import torchvision

    names = _torchvision_names()
    if arch not in names:
        timm = _timm()
        # a timm name given without its prefix: point at the spelling that works
        extra = [TIMM_PREFIX + arch] if timm is not None and timm.is_model(arch) else []
        # a clear misspelling of the attribution benchmark's own names (xresnet50, bagnet) first
        extra = difflib.get_close_matches(arch, list(BENCHMARK_ARCHS), n=1, cutoff=0.85) + extra
        raise _unknown(arch, names, extra)
    kwargs: dict = dict(_TORCHVISION_KWARGS.get(arch, {}))
    if input_size is not None:
        h, w = (int(s) for s in input_size)
        if arch.startswith("vit_"):  # position embeddings are sized for one square resolution
            if h != w:
                raise InputError(f"{arch}: torchvision ViTs need a square input size, got {h}×{w}")
            kwargs["image_size"] = h
        elif arch.startswith("maxvit"):  # its attention grids are fixed at build time
            kwargs["input_size"] = (h, w)
        # the others pool adaptively and accept any size above their minimum
    try:
        net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    except ValueError as err:  # e.g. maxvit_t: a size its attention windows do not divide
        raise InputError(f"{arch}: cannot build for input size {input_size} ({str(err).splitlines()[0]})") from None
    if input_size is not None:
        size = (int(input_size[0]), int(input_size[1]))
    elif hasattr(net, "image_size"):  # torchvision ViT
        size = (int(net.image_size), int(net.image_size))
    else:  # the resolution torchvision's own weights for this architecture were evaluated at
        crop = torchvision.models.get_model_weights(arch).DEFAULT.transforms().crop_size
        size = (int(crop[0]), int(crop[-1]))
    return net, {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "input_size": size}


def _timm_module(arch: str):
    timm = _timm()
    if timm is None:
        raise InputError(f"{arch}: timm is not installed (pip install timm)")
    name = arch[len(TIMM_PREFIX):]
    if not timm.is_model(name):
        matches = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise _unknown(arch, [], [TIMM_PREFIX + m for m in matches])
    return timm, name


def _build_timm(arch: str, num_classes: int, input_size: tuple[int, int] | None,
                name: str | None = None, **create: object) -> tuple[nn.Module, dict]:
    """``create`` (timm's published-weights switch and its local-file overlay, set only by --pretrained) goes to ``timm.create_model``; ``name`` is
    the timm name to create (a tagged one for published weights) when not ``arch``'s own."""
    timm, own = _timm_module(arch)
    name = name or own
    if input_size is None:
        net = timm.create_model(name, num_classes=num_classes, **{"pretrained": False, **create})
    else:
        size = (int(input_size[0]), int(input_size[1]))
        try:
            net = timm.create_model(name, num_classes=num_classes, img_size=size, **{"pretrained": False, **create})
        except TypeError as err:  # convnets take no img_size: any size works for them
            if "img_size" not in str(err):
                raise
            net = timm.create_model(name, num_classes=num_classes, **{"pretrained": False, **create})
    cfg = dict(getattr(net, "pretrained_cfg", None) or {})
    mean = tuple(float(v) for v in cfg.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in cfg.get("std", IMAGENET_STD))
    if input_size is not None:
        size = (int(input_size[0]), int(input_size[1]))
    else:
        size = tuple(int(v) for v in cfg.get("input_size", (3, 224, 224))[1:])
    return net, {"mean": mean, "std": std, "input_size": size}


def build_classifier(arch: str, num_classes: int, input_size: tuple[int, int] | None = None) -> tuple[nn.Module, dict]:
    """Build a randomly initialised classifier with ``num_classes`` outputs.

    ``arch`` is a torchvision classification name (``resnet101``), ``timm:<name>``, or one of the
    attribution benchmark's architectures (:data:`submodular_attribution.archs.REGISTRY`:
    ``fixup_resnet50``, ``x_resnet50``, ``x_vgg16``, ``bcos_resnet50``, ``bagnet33``).
    ``input_size`` = (H, W) resizes the architectures whose shape depends on it (torchvision
    ``vit_*`` — square only — and ``maxvit_t``; timm ViT/Swin and others accepting ``img_size``);
    convolutional networks pool adaptively and ignore it.

    Returns ``(net, preprocessing)`` where preprocessing is ``{"mean": (r, g, b), "std": (r, g, b),
    "input_size": (H, W)}``: the normalisation the net expects of RGB images in [0, 1] (ImageNet
    statistics for torchvision, the model's ``pretrained_cfg`` for timm) and the resolution it
    was built for (``input_size`` when given, else the architecture's usual evaluation size).
    Unknown names raise :class:`InputError` with close matches.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise InputError(f"{arch}: number of classes must be a positive integer, got {num_classes!r}")
    num_classes = int(num_classes)
    if arch in BENCHMARK_ARCHS:  # the attribution benchmark's own architectures (submodular_attribution.archs)
        return build_arch(arch, num_classes, input_size)
    if arch.startswith(TIMM_PREFIX):
        return _build_timm(arch, num_classes, input_size)
    return _build_torchvision(arch, num_classes, input_size)


def _is_head(module: nn.Module, num_classes: int) -> bool:
    if isinstance(module, nn.Linear):
        return module.out_features == num_classes
    if isinstance(module, nn.Conv2d):  # squeezenet-style head: 1×1 conv, then global pooling
        return module.out_channels == num_classes and tuple(module.kernel_size) == (1, 1)
    return False


def find_classifier_layer(net: nn.Module, num_classes: int) -> nn.Module | None:
    """The final classifier layer: an ``nn.Linear`` (or 1×1 ``nn.Conv2d``) with ``num_classes``
    outputs. Its input is the penultimate feature, used as the embedding.

    A model's own ``get_classifier()`` (timm) wins when it is such a layer; otherwise the last
    match in ``named_modules()`` order. Returns None when there is none.
    """
    getter = getattr(net, "get_classifier", None)
    if callable(getter):
        try:
            head = getter()
        except Exception:  # a foreign get_classifier with another meaning: fall back to the search
            head = None
        if isinstance(head, tuple) and head:  # distilled timm ViTs: (head, head_dist); head reads the class token
            head = head[0]
        if isinstance(head, nn.Module) and _is_head(head, num_classes):
            return head
    found = None
    for _, module in net.named_modules():
        if _is_head(module, num_classes):
            found = module
    return found


def _pooled_probe(conv: nn.Conv2d) -> nn.Module:
    """A module that receives the globally averaged input of a 1×1 conv head on every forward.

    A conv head's input is a B×C×h×w map; averaging it gives the B×C pooled feature that a
    linear head would see, whose size does not depend on the image size.
    """
    probe = nn.Identity()

    def feed(_: nn.Module, inputs: tuple) -> None:  # returning None leaves the conv's input as is
        probe(inputs[0].mean(dim=(2, 3)))

    conv.register_forward_pre_hook(feed)
    return probe


# --------------------------------------------------------------------------- published weights

DEFAULT_TAG = "default"


@dataclass(frozen=True)
class PublishedWeights:
    """What a library's published weights say about themselves.

    label: ``"resnet50 IMAGENET1K_V2"`` or ``"timm:vit_base_patch16_224.augreg_in21k_ft_in1k"``.
    mean/std: the RGB normalisation of the weights' own preprocessing (inputs in [0, 1]).
    input_size: (H, W) the weights were evaluated at (the centre crop); resize: the shorter side
    the image was resized to before that crop (None when not known).
    class_names: the weights' class names in index order, when the library knows them.
    """

    label: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int]
    resize: int | None
    class_names: list[str] | None
    source: object  # the torchvision weights enum member, or the timm PretrainedCfg

    def describe_size(self) -> str:
        h, w = self.input_size
        return f"{h}×{w}" + (f" (resize {self.resize}, centre crop)" if self.resize else "")


def torch_cache_file(url: str) -> Path:
    """Where ``torch.hub`` keeps the download of ``url``: ``<torch hub dir>/checkpoints/<file name>``
    (``$TORCH_HOME/hub/checkpoints``, read when called)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def _torchvision_member(arch: str, name: str):
    import torchvision

    if arch.startswith(TIMM_PREFIX):
        raise InputError(f"--weights {name}: --weights takes torchvision weights names; "
                         f"for {arch} use --pretrained TAG")
    names = _torchvision_names()
    if arch not in names:
        raise _unknown(arch, names)
    enum = torchvision.models.get_model_weights(arch)
    key = name.strip()
    if key.startswith(enum.__name__ + "."):  # "ResNet50_Weights.IMAGENET1K_V2" works too
        key = key[len(enum.__name__) + 1:]
    try:
        return enum[key.upper()]
    except KeyError:
        raise InputError(f"--weights {name}: not a torchvision weights name of {arch} "
                         f"(choose from {', '.join(enum.__members__)})") from None


def _torchvision_published(arch: str, name: str) -> PublishedWeights:
    member = _torchvision_member(arch, name)
    prep = member.transforms()
    crop = [int(v) for v in getattr(prep, "crop_size", [224])]
    resize = [int(v) for v in getattr(prep, "resize_size", [])]
    categories = member.meta.get("categories")
    return PublishedWeights(
        label=f"{arch} {member.name}", num_classes=len(categories) if categories else 1000,
        mean=tuple(float(v) for v in getattr(prep, "mean", IMAGENET_MEAN)),
        std=tuple(float(v) for v in getattr(prep, "std", IMAGENET_STD)),
        input_size=(crop[0], crop[-1]), resize=resize[0] if len(resize) == 1 else None,
        class_names=[str(c) for c in categories] if categories else None, source=member)


def _timm_tagged(arch: str, tag: str):
    """(timm, tagged name, pretrained cfg) of ``--pretrained tag`` for ``timm:<name>``."""
    if not arch.startswith(TIMM_PREFIX):
        raise InputError(f"--pretrained {tag}: --pretrained takes timm tags (for timm:<name>); "
                         f"for {arch} use --weights NAME (torchvision)")
    timm, name = _timm_module(arch)
    from timm.models import get_pretrained_cfg, split_model_name_tag

    base, _ = split_model_name_tag(name)
    try:  # "default": the tag in --arch, else timm's default tag for the architecture
        cfg = get_pretrained_cfg(name if tag.lower() == DEFAULT_TAG else f"{base}.{tag}")
    except RuntimeError:  # an unknown tag
        cfg = None
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        tags = [n.split(".", 1)[1] for n in timm.list_pretrained(f"{base}.*")]
        known = f"tags: {', '.join(tags)}, or {DEFAULT_TAG}" if tags else "it has no published weights"
        raise InputError(f"--pretrained {tag}: not a timm pretrained tag of {base} ({known})")
    return timm, f"{base}.{cfg.tag}", cfg


def _timm_class_names(cfg) -> list[str] | None:
    """ImageNet-1k/-22k/-21k names of timm weights trained on one of them (first synonym each)."""
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(cfg)
        if not subset:
            return None
        names = [d.split(",")[0].strip() for d in ImageNetInfo(subset).label_descriptions()]
    except Exception:  # names are a nicety: no names rather than no run
        return None
    return names if len(names) == cfg.num_classes else None


def _timm_published(arch: str, tag: str) -> PublishedWeights:
    _, full, cfg = _timm_tagged(arch, tag)
    size = tuple(int(v) for v in cfg.input_size[1:])
    crop_pct = cfg.crop_pct if cfg.crop_mode == "center" else None
    return PublishedWeights(
        label=f"{TIMM_PREFIX}{full}", num_classes=int(cfg.num_classes),
        mean=tuple(float(v) for v in cfg.mean), std=tuple(float(v) for v in cfg.std), input_size=size,
        resize=int(size[0] / crop_pct) if crop_pct and crop_pct < 1 else None,
        class_names=_timm_class_names(cfg), source=cfg)


def published_weights(arch: str, weights: str | None = None, pretrained: str | None = None) -> PublishedWeights | None:
    """What ``weights`` (a torchvision weights name of ``arch``, or ``DEFAULT``) or ``pretrained``
    (a timm tag of ``timm:<name>``, or ``default``) are, without loading them; None for neither.
    Unknown names, and a name for the other library, are :class:`InputError` s listing the choices."""
    if weights and pretrained:
        raise InputError("--weights (torchvision) and --pretrained (timm) exclude each other")
    if weights:
        return _torchvision_published(arch, weights)
    if pretrained:
        return _timm_published(arch, pretrained)
    return None


def _densenet_keys(state: dict) -> dict:
    """torchvision's DenseNet weights name layers ``norm.1``; the modules are ``norm1`` now."""
    old = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))$")
    return {(m.group(1) + m.group(2) if (m := old.match(k)) else k): v for k, v in state.items()}


def _load_torchvision_published(arch: str, name: str, published: PublishedWeights,
                                input_size: tuple[int, int] | None, allow_download: bool) -> nn.Module:
    member = published.source
    path = torch_cache_file(member.url)
    if not path.is_file() and not allow_download:
        raise InputError(f"--weights {name}: not in the torch cache ({path}); put the file there "
                         f"(from {member.url}) or pass --allow-download")
    if arch.startswith("vit_") and input_size is not None:
        side = int(member.meta.get("min_size", published.input_size)[0])
        if tuple(int(v) for v in input_size) != (side, side):
            raise InputError(f"--weights {name}: {arch}'s position embeddings are for {side}×{side} inputs; "
                             f"pass --input-size {side}")
    net, _ = _build_torchvision(arch, published.num_classes, input_size or published.input_size)
    try:  # the hash in the file name is checked when torch.hub downloads it
        state = member.get_state_dict(progress=False, check_hash=True, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file, or a failed download
        raise InputError(f"{path}: cannot read {published.label} weights ({_first_line(err)})") from None
    if arch.startswith("densenet"):
        state = _densenet_keys(state)
    load_state(net, state, path, allow_missing=_OPTIONAL_KEYS.get(arch, ()))
    return net


def _timm_cached_file(cfg) -> tuple[Path | None, str]:
    """(the cached file, or None and what to do) for a timm pretrained cfg: the Hugging Face cache
    for ``hf_hub_id`` weights (where timm looks first), else the torch hub cache for ``url`` ones."""
    missing = ""
    if cfg.hf_hub_id:
        from huggingface_hub import constants, try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for filename in names:
            found = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(found, str):
                return Path(found), ""
        where = Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))
        missing = (f"not in the Hugging Face cache ({where}); copy it there from a machine that ran "
                   f"'hf download {repo}'")
    if cfg.url:
        path = torch_cache_file(cfg.url)
        if path.is_file():
            return path, ""
        missing = missing or f"not in the torch cache ({path}); put the file there (from {cfg.url})"
    return None, missing


def _load_timm_published(arch: str, tag: str, published: PublishedWeights,
                         input_size: tuple[int, int] | None, allow_download: bool) -> nn.Module:
    cfg = published.source
    full = published.label[len(TIMM_PREFIX):]
    path, missing = _timm_cached_file(cfg)
    if path is None and not allow_download:
        raise InputError(f"--pretrained {tag}: {published.label} is {missing}, or pass --allow-download")
    create: dict = {"pretrained": True}
    if path is not None:  # timm reads this file and looks nothing up
        create["pretrained_cfg_overlay"] = {"file": str(path),
                                            "custom_load": bool(cfg.custom_load) and path.suffix == ".npz"}
    try:
        net, _ = _build_timm(arch, published.num_classes, input_size, name=full, **create)
    except InputError:
        raise
    except Exception as err:  # a foreign file (state dict mismatch), or a failed download
        what = path if path is not None else f"--pretrained {tag}"
        raise InputError(f"{what}: cannot load {published.label} weights ({_first_line(err)})") from None
    return net


def build_classifier_scorer(
    arch: str,
    checkpoint: str | Path | None,
    num_classes: int | None,
    device: str | torch.device = "cpu",
    with_embeddings: bool = False,
    input_size: tuple[int, int] | None = None,
    *,
    weights: str | None = None,
    pretrained: str | None = None,
    allow_download: bool = False,
) -> ClassifierScorer:
    """Build ``arch`` with ``num_classes`` outputs, load ``checkpoint`` strictly, wrap it.

    With ``weights`` (torchvision) or ``pretrained`` (timm) the published weights are loaded
    instead of ``checkpoint`` (see :func:`published_weights`), from the library's cache only
    unless ``allow_download``; their normalisation is used, and ``num_classes`` is theirs (None
    takes it, another number is an :class:`InputError`).

    The scorer takes images ``B×3×H×W`` float32, RGB, values in [0, 1], on ``device``, at the
    model's input resolution (``build_classifier(...)[1]["input_size"]``); it normalises them
    with the model's mean/std and returns probabilities = softmax(logits), B×C.

    Embeddings are the input of the final classifier layer (B×D pooled penultimate features;
    for a 1×1 conv head, its input averaged over space). They are returned whenever that layer
    is found; ``with_embeddings=True`` makes its absence an :class:`InputError`. Weight problems
    (missing file, unreadable file, wrong keys or shapes) are one-line :class:`InputError`s.
    """
    published = published_weights(arch, weights, pretrained)
    if arch.startswith("keras:"):  # a file written by convert_keras (adapters/keras_nets.py)
        from .keras_nets import load_keras_classifier

        net, prep = load_keras_classifier(arch, checkpoint, num_classes, input_size)
    elif published is None:
        if checkpoint is None:
            raise InputError(f"--checkpoint is required for {arch}")
        net, prep = build_classifier(arch, num_classes, input_size)
        load_weights(net, checkpoint, allow_missing=_OPTIONAL_KEYS.get(arch, ()))
    else:
        flag = f"--weights {weights}" if weights else f"--pretrained {pretrained}"
        if num_classes is not None and num_classes != published.num_classes:
            raise InputError(f"{flag}: {published.label} has {published.num_classes} classes, "
                             f"not --num-classes {num_classes}")
        num_classes = published.num_classes
        load = _load_torchvision_published if weights else _load_timm_published
        net = load(arch, weights or pretrained, published, input_size, allow_download)
        prep = {"mean": published.mean, "std": published.std}
    return wrap_classifier(arch, net, prep, num_classes, device, with_embeddings)


def wrap_classifier(arch: str, net: nn.Module, prep: dict, num_classes: int, device: str | torch.device = "cpu",
                    with_embeddings: bool = False) -> ClassifierScorer:
    """``net`` (built by :func:`build_classifier`, weights loaded) as a scorer: normalised with
    ``prep``'s mean/std, embeddings from its final classifier layer (see
    :func:`build_classifier_scorer`)."""
    head = find_classifier_layer(net, num_classes)
    if head is None and with_embeddings:
        raise InputError(f"{arch}: no final linear layer with {num_classes} outputs to take embeddings from")
    if isinstance(head, nn.Conv2d):
        head = _pooled_probe(head)
    # Hook the head even when embeddings are not asked for: it is free, and it keeps
    # ClassifierScorer off its forward_features path, which for timm ViTs gives unpooled tokens.
    return ClassifierScorer(net, prep["mean"], prep["std"], device=device, num_classes=num_classes,
                            embedding_layer=head)
