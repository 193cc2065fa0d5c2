"""Model families: the flags and scorer builder shared by the tasks of one kind of model.

Each factory returns a :class:`ModelTask`; the task registry
(``tasks.py``) configures one per experiment, so no model code is repeated per task.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from .common import paths
from .common.distributed import file_lock
from .common.errors import InputError
from .common.images import load_image_rgb
from .models import Scorer


@dataclass(frozen=True)
class SMDLDefaults:
    """SMDL's published settings for a task, the command line's defaults (plain data, so a task
    is one entry of ``tasks.py``).

    weights: λ as (confidence, effectiveness, consistency, collaboration); weights_by_search:
    published λ per search where they differ (e.g. CLIP's bidirectional search); save_dir: the
    result folder's name under ``submodular_results/``; division, region_size, division_options
    (per division, e.g. ``{"slico": {"ruler": 40.0}}``); search and search_options: the published
    search and its option values, used where the flags are not given.
    """

    weights: tuple[float, float, float, float]
    save_dir: str
    region_size: int = 30
    division: str = "slico"
    division_options: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    weights_by_search: Mapping[str, tuple[float, float, float, float]] = field(default_factory=dict)
    search: str = "greedy"
    search_options: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelTask:
    """A model and its data.

    build_scorer(args, device, embeddings): the scorer; ``embeddings=True`` when the caller needs
        image embeddings (SMDL's effectiveness term), so their absence is an error up front.
    checkpoint: default weights file name inside ``ckpt/`` (resolved from the current folder).
    eval_list: default evaluation list, relative to the current folder (or ``$SMDL_HOME``).
    add_arguments: adds the model's own flags (architecture, class set, heads) to a group.
    prepare: called before the list is read (e.g. to generate the default benchmark's images).
    class_names: the class names, in index order, that the parsed flags give (None: unknown);
        read them through :meth:`class_names_for`, which checks them against the built model.
    smdl: SMDL's published settings for the task (None: a model-only entry).
    load_input(path, (H, W)): reads one list item's file and returns the H×W×3 uint8 array that
        the region divider splits and the scorer receives (as [0, 1] floats, via
        ``common.images.image_tensor``); an unreadable file is an InputError naming it. None: the
        item is an image file (``common.images.load_image_rgb``). Read items with :meth:`read_input`.
    """

    name: str
    description: str
    build_scorer: Callable[[argparse.Namespace, torch.device, bool], Scorer]
    input_size: tuple[int, int]
    checkpoint: str | None = None
    eval_list: str | None = None
    add_arguments: Callable[[argparse._ArgumentGroup], None] | None = None
    batch_size: int = 64
    prepare: Callable[[argparse.Namespace], None] | None = None
    class_names: Callable[[argparse.Namespace], Sequence[str] | None] | None = None
    load_input: Callable[[Path, tuple[int, int]], np.ndarray] | None = None
    smdl: SMDLDefaults | None = None

    def class_names_for(self, args: argparse.Namespace, num_classes: int) -> list[str] | None:
        """The names of a model with ``num_classes`` outputs (call once the scorer is built).

        A ``--class-names`` file of another length is an :class:`InputError`; the task's own
        names that do not fit (a checkpoint with its own head) are dropped: no names, no error."""
        names = None if self.class_names is None else self.class_names(args)
        if names is None:
            return None
        names = [str(name) for name in names]
        if len(names) != num_classes:
            path = getattr(args, "class_names", None)
            if path:
                raise InputError(f"--class-names {path}: {len(names)} names, but the model has {num_classes} classes")
            return None
        return names

    def read_input(self, path: Path, size: tuple[int, int]) -> np.ndarray:
        """One list item's file as the H×W×3 uint8 array the model sees (an image, or e.g. a
        sound's spectrogram image)."""
        return (self.load_input or load_image_rgb)(path, tuple(size))

    def default_checkpoint(self) -> str | None:
        return None if self.checkpoint is None else str(paths.weights_file(self.checkpoint))

    def default_eval_list(self) -> str | None:
        return None if self.eval_list is None else str(paths.home() / Path(self.eval_list))


def add_download_argument(group: argparse._ArgumentGroup, flags: str) -> None:
    """``--allow-download``, for the published-weights ``flags`` (e.g. ``--weights/--pretrained``)."""
    group.add_argument("--allow-download", action="store_true",
                       help=f"let {flags} download weights that are not in the cache "
                            "(by default nothing is downloaded)")


def add_class_names_argument(group: argparse._ArgumentGroup, use: str, default: str) -> None:
    """``--class-names FILE`` (read by :func:`read_class_names`); ``use`` says what the names are
    for, ``default`` whose names are used without the flag."""
    group.add_argument("--class-names", default=None, metavar="FILE",
                       help=f"file with one class name per line, in index order, {use} (default: {default})")


def add_weights_and_names_arguments(group: argparse._ArgumentGroup, *, arch_flag: str, weights: str,
                                    num_classes: str, names: str, names_use: str = "for the results and figures",
                                    pretrained: str | None = None) -> None:
    """The flags of a model that may run with published weights instead of ``--checkpoint``:
    ``--num-classes`` (the checkpoint's head), ``--class-names``, ``--weights`` (torchvision's, for
    the architecture ``arch_flag`` names; ``weights``: example names), ``--pretrained`` when
    ``pretrained`` gives its help, and ``--allow-download``. ``num_classes`` and ``names`` say what
    is used without ``--num-classes`` and ``--class-names``."""
    published = "--weights/--pretrained" if pretrained is not None else "--weights"
    group.add_argument("--num-classes", type=int, default=None,
                       help=f"classes of the checkpoint's head ({num_classes}; with {published}: the weights' own)")
    add_class_names_argument(group, names_use, names)
    group.add_argument("--weights", default=None, metavar="NAME",
                       help=f"torchvision's published weights for {arch_flag} ({weights}, ...), read from the torch "
                            "cache ($TORCH_HOME/hub/checkpoints); --checkpoint is then not used")
    if pretrained is not None:
        group.add_argument("--pretrained", default=None, metavar="TAG", help=pretrained)
    add_download_argument(group, published)


def _task_names(names: Callable[[], list[str]]) -> list[str] | None:
    """A task's built-in names; None where they come from a package that is not installed
    (ImageNet's are read from open_clip)."""
    try:
        return list(names())
    except ImportError:
        return None


def read_class_names(path: str) -> list[str]:
    """The non-blank lines of a ``--class-names`` file, in index order (one-line errors)."""
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as err:
        raise InputError(f"{path}: cannot read class names ({err.strerror})") from None
    if not names:
        raise InputError(f"{path}: no class names")
    return names


def clip_model(*, name: str, description: str, model_name: str, checkpoint: str, class_set: str,
               input_size: int = 224, smdl: SMDLDefaults | None = None) -> ModelTask:
    """Zero-shot CLIP-family model through open_clip; embeddings are the image embeddings."""

    def add_arguments(group: argparse._ArgumentGroup) -> None:
        from .class_names import CLASS_SETS

        group.add_argument("--model-name", default=model_name, help="open_clip architecture (ViT-L-14, ViT-B-32, RN101, ...)")
        group.add_argument("--class-set", default=class_set, choices=sorted(CLASS_SETS),
                           help="class names and prompt templates of the zero-shot head")
        _zero_shot_arguments(group, "--class-set's names")
        group.add_argument("--pretrained", default=None, metavar="TAG",
                           help="open_clip's published weights for --model-name (openai, laion2b_s34b_b79k, "
                                "...), read from its cache (Hugging Face cache, ~/.cache/clip); --checkpoint is "
                                "then not used")
        add_download_argument(group, "--pretrained")

    def classes(args: argparse.Namespace) -> list[str]:
        from .class_names import CLASS_SETS

        return read_class_names(args.class_names) if args.class_names else list(CLASS_SETS[args.class_set][0]())

    def build(args: argparse.Namespace, device: torch.device, embeddings: bool):
        from .adapters.clip import build_clip_scorer
        from .class_names import CLASS_SETS

        templates = list(CLASS_SETS[args.class_set][1]())
        return build_clip_scorer(args.model_name, args.checkpoint, (classes(args), templates), device=device,
                                 cache_dir=args.semantic_cache, pretrained=args.pretrained,
                                 allow_download=args.allow_download)

    return ModelTask(smdl=smdl, name=name, description=description, build_scorer=build, input_size=(input_size, input_size),
                     checkpoint=checkpoint, add_arguments=add_arguments, class_names=classes)


def classifier_model(*, name: str, description: str, arch: str, checkpoint: str, num_classes: int,
                     input_size: int = 224, class_names: Callable[[], list[str]] | None = None,
                     uncertainty: bool = False, smdl: SMDLDefaults | None = None) -> ModelTask:
    """A single-modal classifier (torchvision, ``timm:`` or ``keras:`` name); embeddings are pooled
    features.

    ``class_names``: the task's names for a ``num_classes`` head (a ``--class-names`` file, or
    published weights' own names, come first). ``uncertainty``: offer ``--uncertainty-head`` (an
    evidential network, as the original's CUB model has) for the EDL confidence term."""

    def add_arguments(group: argparse._ArgumentGroup) -> None:
        group.add_argument("--arch", default=arch,
                           help="torchvision name (resnet101, vit_b_16, ...), timm:<name>, keras:<name> (a file converted by "
                                "convert_keras: keras:resnet101, keras:mobilenet_v2, keras:vgg19), or one of the "
                                "attribution benchmark's fixup_resnet50, x_resnet50, x_vgg16, bcos_resnet50, bagnet33")
        add_weights_and_names_arguments(
            group, arch_flag="--arch", weights="IMAGENET1K_V2, DEFAULT", num_classes=f"default: {num_classes}",
            names="the task's or the published weights' names",
            pretrained="timm:<name> only: timm's published weights (a tag such as augreg_in21k_ft_in1k, or default), "
                       "read from the Hugging Face cache; --checkpoint is then not used")
        if uncertainty:
            group.add_argument("--uncertainty-head", default=None, metavar="FILE",
                               help="evidential network (cub-resnet101-edl.pth); enables the EDL confidence term")

    def names(args: argparse.Namespace) -> list[str] | None:
        if args.class_names:
            return read_class_names(args.class_names)
        if args.weights or args.pretrained:
            from .adapters.classifier import published_weights

            own = published_weights(args.arch, args.weights, args.pretrained).class_names
            if own is not None:
                return own
        return None if class_names is None else _task_names(class_names)

    def build(args: argparse.Namespace, device: torch.device, embeddings: bool):
        from .adapters.classifier import build_classifier_scorer, published_weights

        if args.class_names:  # an unreadable names file stops the run before the model loads
            read_class_names(args.class_names)
        published = published_weights(args.arch, args.weights, args.pretrained)
        classes = args.num_classes if args.num_classes is not None or published else num_classes
        scorer = build_classifier_scorer(args.arch, args.checkpoint, classes, device=device,
                                         with_embeddings=embeddings, input_size=tuple(args.input_size),
                                         weights=args.weights, pretrained=args.pretrained,
                                         allow_download=args.allow_download)
        if published is not None and tuple(args.input_size) != published.input_size:
            h, w = args.input_size
            print(f"note: {published.label} was evaluated at {published.describe_size()}; "
                  f"images are resized to --input-size {h}×{w}", file=sys.stderr)
        if uncertainty:
            from .adapters.edl import attach_cub_edl

            scorer = attach_cub_edl(scorer, args.uncertainty_head)
        return scorer

    return ModelTask(smdl=smdl, name=name, description=description, build_scorer=build, input_size=(input_size, input_size),
                     checkpoint=checkpoint, add_arguments=add_arguments, class_names=names)


def face_model(*, name: str, description: str, checkpoint: str, prototypes: str | None,
               arch: str = "iresnet100", uncertainty_head: str | None = None,
               smdl: SMDLDefaults | None = None) -> ModelTask:
    """Face recognition on 112×112 aligned faces: IR-ResNet + identity prototypes or a head."""

    def add_arguments(group: argparse._ArgumentGroup) -> None:
        ckpt = paths.ckpt_dir()
        group.add_argument("--arch", default=arch, help="iresnet18/34/50/100")
        group.add_argument("--prototypes", default=str(ckpt / prototypes) if prototypes else None,
                           help="C×512 identity prototypes (tensor file)")
        group.add_argument("--head", default=None, help="classification head weights instead of prototypes")
        group.add_argument("--uncertainty-head", default=str(ckpt / uncertainty_head) if uncertainty_head else None,
                           help="evidential (EDL) head weights; enables the EDL confidence term")

    def build(args: argparse.Namespace, device: torch.device, embeddings: bool):
        from .adapters.face import build_face_scorer

        return build_face_scorer(args.arch, args.checkpoint, prototypes=None if args.head else args.prototypes,
                                 head=args.head, uncertainty_head=args.uncertainty_head, device=device)

    return ModelTask(smdl=smdl, name=name, description=description, build_scorer=build, input_size=(112, 112),
                     checkpoint=checkpoint, add_arguments=add_arguments)


def _zero_shot_arguments(group: argparse._ArgumentGroup, names: str) -> None:
    """``--class-names`` (``names``: whose are used without it) and ``--semantic-cache``."""
    add_class_names_argument(group, "naming the classes to score, one text prototype each", names)
    group.add_argument("--semantic-cache", default=str(paths.ckpt_dir() / "semantic_features"),
                       help="where text prototypes are cached")


def imagebind_model(*, name: str, description: str, modality: str, checkpoint: str = "imagebind_huge.pth",
                    smdl: SMDLDefaults | None = None) -> ModelTask:
    """Zero-shot ImageBind (``imagebind_huge``) on ``vision`` (ImageNet names, CLIP's 80 templates,
    images resized to 224×224 without crop as in the original script: see ``adapters.imagebind``)
    or ``audio`` (VGGSound's 309 names, "a sound of {}", sound files read as 128×204 spectrogram
    images, one channel per clip); embeddings are the unit embeddings."""

    def classes(args: argparse.Namespace) -> list[str] | None:
        if args.class_names:
            return read_class_names(args.class_names)
        if modality == "audio":
            from .adapters.imagebind import vggsound_classes

            return vggsound_classes()
        from .class_names import imagenet_classes

        return _task_names(imagenet_classes)

    def build(args: argparse.Namespace, device: torch.device, embeddings: bool):
        from .adapters.imagebind import VGGSOUND_TEMPLATES, build_imagebind_scorer

        if modality == "audio":
            templates = list(VGGSOUND_TEMPLATES)
        else:
            from .class_names import imagenet_templates

            templates = imagenet_templates()
        names = classes(args)
        if names is None:
            raise InputError("the ImageNet class names come from open_clip_torch (pip install open_clip_torch), "
                             "or pass --class-names FILE")
        return build_imagebind_scorer(args.checkpoint, modality, names, templates, device=device,
                                      cache_dir=args.semantic_cache)

    load_input = None
    input_size = (224, 224)
    if modality == "audio":
        from .adapters.imagebind_audio import IMAGE_SIZE, spectrogram_image

        load_input, input_size = spectrogram_image, IMAGE_SIZE
    return ModelTask(smdl=smdl, name=name, description=description, build_scorer=build, input_size=input_size,
                     checkpoint=checkpoint, add_arguments=lambda group: _zero_shot_arguments(
                         group, f"the task's {'VGGSound' if modality == 'audio' else 'ImageNet'} names"),
                     class_names=classes, load_input=load_input)


def languagebind_model(*, name: str, description: str, checkpoint: str = "LanguageBind_Image",
                       smdl: SMDLDefaults | None = None) -> ModelTask:
    """Zero-shot LanguageBind image tower (ImageNet names, CLIP's 80 templates); ``--checkpoint``
    is the release folder (config, weights, tokenizer files)."""

    def classes(args: argparse.Namespace) -> list[str] | None:
        if args.class_names:
            return read_class_names(args.class_names)
        from .class_names import imagenet_classes

        return _task_names(imagenet_classes)

    def build(args: argparse.Namespace, device: torch.device, embeddings: bool):
        from .adapters.languagebind import build_languagebind_scorer
        from .class_names import imagenet_templates

        names = classes(args)
        if names is None:
            raise InputError("the ImageNet class names come from open_clip_torch (pip install open_clip_torch), "
                             "or pass --class-names FILE")
        return build_languagebind_scorer(args.checkpoint, names, imagenet_templates(), device=device,
                                         cache_dir=args.semantic_cache)

    return ModelTask(smdl=smdl, name=name, description=description, build_scorer=build, input_size=(224, 224),
                     checkpoint=checkpoint,
                     add_arguments=lambda group: _zero_shot_arguments(group, "the task's ImageNet names"),
                     class_names=classes)


SHAPES_LIST = "datasets/shapes/eval_list.txt"
AUDIO_LIST = "datasets/audio/eval_list.txt"


def embedded_model(*, name: str, description: str, module: Callable[[], Any], checkpoint: str, eval_list: str,
                   input_size: tuple[int, int], load_input: Callable | None = None) -> ModelTask:
    """A default that needs no download. ``module()`` imports its package (``shapes``, ``audio``),
    which writes the evaluation set at first use (``write_eval_set``), loads the model
    (``load_or_train_default``: the shipped file, or one trained once where it is absent) and gives ``build_scorer`` and
    ``CLASS_NAMES``; imported on use, so listing tasks imports no model."""

    def build(args: argparse.Namespace, device: torch.device, embeddings: bool):
        try:
            with file_lock(args.checkpoint):  # under torchrun, one rank trains and the others reuse it
                net, _ = module().load_or_train_default(args.checkpoint, device=device, seed=0)
        except RuntimeError as err:
            raise InputError(str(err)) from None
        return module().build_scorer(net, device)

    def prepare(args: argparse.Namespace) -> None:
        default = paths.home() / eval_list
        if Path(args.eval_list).resolve() == default.resolve():
            with file_lock(default):
                module().write_eval_set(default.parent)

    return ModelTask(name=name, description=description, build_scorer=build, input_size=input_size,
                     checkpoint=checkpoint, eval_list=eval_list, prepare=prepare,
                     class_names=lambda args: list(module().CLASS_NAMES), load_input=load_input)


def shapes_model() -> ModelTask:
    """The embedded default: synthetic shapes over real photos and a small CNN (shipped)."""
    from .shapes import IMAGE_SIZE

    def module():
        from . import shapes

        return shapes

    return embedded_model(name="shapes", description="the embedded default: coloured shapes on photographs, small CNN",
                          module=module, checkpoint="shapes_cnn.pt", eval_list=SHAPES_LIST,
                          input_size=(IMAGE_SIZE, IMAGE_SIZE))


def audio_model() -> ModelTask:
    """The embedded audio default: synthetic clips (one time–frequency event over real-looking
    background noise), their 80×80 log-mel spectrogram images, a small CNN (shipped)."""
    from .audio.features import IMAGE_SHAPE, load_spectrogram_image

    def module():
        from . import audio

        return audio

    return embedded_model(name="audio", description="the embedded audio default: synthetic sound events over "
                          "background noise, log-mel spectrogram images, small CNN", module=module,
                          checkpoint="audio_cnn.pt", eval_list=AUDIO_LIST, input_size=IMAGE_SHAPE,
                          load_input=load_spectrogram_image)
