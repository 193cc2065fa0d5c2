"""The attribution benchmark of Hesse, Schaub-Meyer & Roth (NeurIPS 2024, "Benchmarking the
Attribution Quality of Vision Models") with that paper's command line, on our metric functions.

    python -m evals.attribution_benchmark --evaluation_protocol single_deletion --grid_rows_and_cols 4 \\
        --model resnet50 --pretrained_ckpt resnet50_imagenet1000_lr0.001_epochs30_step10_checkpoint_best.pth.tar \\
        --data_dir /datasets/imagenet --explainer IxG --batch_size 128
    python -m evals.attribution_benchmark --evaluation_protocol incremental_deletion --id_baseline zeros \\
        --id_steps 32 --id_order ascending --nr_images 2 --explainer IG --id_update_attribution True

Protocols (``evals.saliency_metrics``): ``single_deletion`` — per image the Spearman correlation
between the attribution summed per cell of a ``--grid_rows_and_cols`` grid and the drop of the
target logit when that cell alone is deleted (:func:`single_deletion_score`), averaged over the
images with finite correlations (the ID-SDS when the checkpoint is fine-tuned with
``evals.finetune_id_sds``); ``incremental_deletion`` — the mean target softmax probability over
``--id_steps`` deletion steps (:func:`incremental_deletion`), the attribution recomputed before
each step with ``--id_update_attribution True``. The target is the image's label.

``--model`` takes the paper's names (ResNets, VGGs, ``vit_base_patch16_224``, ``fixup_resnet50``,
``x_resnet50``, ``x_vgg16``, ``bcos_resnet50``, ``bagnet33`` …: built by the classifier adapter,
ImageNet's 1000 classes unless ``--num_classes``), loading ``--pretrained_ckpt`` (their
``.pth.tar`` files load as they are) or, with ``--pretrained True`` and no checkpoint, the
library's published weights from its cache. Without ``--model`` (or with ``default``) it runs on
the embedded default, the shapes benchmark and its CNN. Images: ``--data_dir`` (an ImageNet-style
folder; its ``val/`` subfolder when there is one; class index = sorted folder order) or
``--eval-list`` (``--datasets``), by default the shapes list; the first ``--nr_images`` in order.

Writes one results JSON atomically (``--output``; default
``explanation_results/attribution_benchmark/<model>/<explainer>_<transform>_<protocol>.json``):
the settings, each image's score and the mean; failed images go to ``failures.jsonl`` beside it.
An existing results file is kept unless ``--overwrite True`` (the paper's rule). Bad input
prints one ``error: ...`` line and exits with status 2.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from baseline_attribution.base import REGISTRY, AttributionModel, attribute
from baseline_attribution.models import attribution_model
from baseline_attribution.path import right_riemann_alphas, straight_line_attributions
from submodular_attribution.common import paths
from submodular_attribution.common.atomic import atomic_write_json, ensure_dir
from submodular_attribution.common.curves import mean_finite
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.images import IMAGENET_MEAN, IMAGENET_STD, image_tensor, load_image_rgb
from submodular_attribution.common.lists import ListItem
from submodular_attribution.common.progress import run_items
from submodular_attribution.common.provenance import write_provenance

from .saliency_metrics import incremental_deletion, single_deletion_score

PROTOCOLS = ("single_deletion", "incremental_deletion")
BASELINES = ("zeros", "blur", "average", "random")
TRANSFORMS = ("raw", "abs", "relu")
DEFAULT_MODELS = ("default", "shapes")
#: The paper's ``--model`` names (its evaluate.py) -> our classifier architecture names.
PAPER_MODELS = {name: name for name in (
    "resnet18", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "fixup_resnet50", "vgg11", "vgg13",
    "vgg16", "vgg19", "vgg16_bn", "bagnet9", "bagnet33", "x_resnet50", "bcos_resnet50", "bcos_resnet18", "x_vgg16")}
PAPER_MODELS["vit_base_patch16_224"] = "timm:vit_base_patch16_224"
#: The paper's noise-tunnel setting (captum NoiseTunnel in its explainer wrapper): 4 samples,
#: σ = 1 in normalised space, i.e. the normalisation std in [0, 1] pixel space.
NT_SAMPLES = 4
IG_STEPS = 50


# --------------------------------------------------------------------------- explainers

@dataclass
class Context:
    """What an explainer needs beyond the image: the model, the normalisation (RGB mean/std in
    [0, 1]), a seeded CPU generator, and reference images (EG)."""

    model: AttributionModel
    mean: torch.Tensor  # 1×3×1×1
    std: torch.Tensor  # 1×3×1×1
    generator: torch.Generator
    references: torch.Tensor | None = None
    uniform_baseline: torch.Tensor | None = None


Explain = Callable[[Context, torch.Tensor, torch.Tensor], torch.Tensor]  # (ctx, 1×3×H×W, targets) -> 1×H×W


def _registry(method: str, **fixed) -> Explain:
    """A registered method with fixed options; a callable option value is called with the context."""

    def explain(ctx: Context, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        options = {k: (v(ctx) if callable(v) else v) for k, v in fixed.items()}
        return attribute(method, ctx.model, images, targets, **options)

    explain.method, explain.options = method, fixed  # type: ignore[attr-defined]
    return explain


def _uniform_baseline(ctx: Context) -> torch.Tensor:
    """The paper's IG-U / RISE-U baseline: U(−1, 1) in normalised space, drawn once per run."""
    return ctx.uniform_baseline


def _noise_tunnel_ig(nt_type: str) -> Explain:
    """captum's NoiseTunnel around IG (zero baseline in normalised space, 50 steps), as the paper's
    IG-SG / IG-SG-SQ / IG-SG-VG: per noisy copy x̃ = x + σ ε the per-channel IG attribution
    (x̃ − μ) ⊙ mean_k ∇f(μ + (k/50)(x̃ − μ)); smoothgrad = mean, smoothgrad_sq = mean of squares,
    vargrad = mean of squares − squared mean; then summed over channels."""

    def explain(ctx: Context, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        model = ctx.model
        alphas = right_riemann_alphas(IG_STEPS, images)
        attrs = []
        for _ in range(NT_SAMPLES):
            noise = torch.randn(images.shape, generator=ctx.generator).to(images.device, images.dtype)
            noisy = images + ctx.std.to(images) * noise
            bank = ctx.mean.to(images).expand_as(noisy).contiguous()
            ref_index = torch.arange(len(images), device=images.device).view(-1, 1)
            attrs.append(straight_line_attributions(model, noisy, targets, bank, ref_index, alphas))
        stack = torch.stack(attrs)
        if nt_type == "smoothgrad":
            out = stack.mean(dim=0)
        elif nt_type == "smoothgrad_sq":
            out = stack.square().mean(dim=0)
        else:
            out = stack.square().mean(dim=0) - stack.mean(dim=0).square()
        return out.sum(dim=1)

    explain.method, explain.options = f"ig (noise tunnel: {nt_type})", {"steps": IG_STEPS, "nt_samples": NT_SAMPLES}
    return explain


def _mean(ctx: Context) -> torch.Tensor:
    return ctx.mean


def _std(ctx: Context) -> tuple[float, ...]:
    return tuple(float(v) for v in ctx.std.flatten())


def _references(ctx: Context) -> torch.Tensor:
    if ctx.references is None or len(ctx.references) == 0:
        raise InputError("--explainer EG needs at least two images (the others are its references)")
    return ctx.references


def _seed(ctx: Context) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.generator))


#: The paper's ``--explainer`` names -> our methods (see the module docstring of each).
EXPLAINERS: dict[str, Explain] = {
    "Gradient": _registry("saliency", absolute=False),
    "IxG": _registry("ixg", baseline=_mean),
    "IxG-SG": _registry("ixg-sg", baseline=_mean, noise_std=_std, n_samples=NT_SAMPLES, seed=_seed),
    "IG": _registry("ig", baseline=_mean, steps=IG_STEPS),
    "IG-U": _registry("ig", baseline=_uniform_baseline, steps=IG_STEPS),
    "IG-SG": _noise_tunnel_ig("smoothgrad"),
    "IG-SG-SQ": _noise_tunnel_ig("smoothgrad_sq"),
    "IG-SG-VG": _noise_tunnel_ig("vargrad"),
    "EG": _registry("eg", references=_references, seed=_seed),
    "AGI": _registry("agi", seed=_seed),
    "Grad-CAM": _registry("gradcam"),
    "Grad-CAMpp": _registry("gradcam++"),
    "SG-CAMpp": _registry("smoothgradcam++", seed=_seed),
    "XG-CAM": _registry("xgradcam"),
    "Layer-CAM": _registry("layercam"),
    "Score-CAM": _registry("scorecam"),
    "SS-CAM": _registry("ss-cam"),
    "IS-CAM": _registry("is-cam"),
    "Rollout": _registry("rollout"),
    "CheferLRP": _registry("chefer-lrp", start_layer=1),
    "Bcos": _registry("bcos"),
    "BagNet": _registry("bagnet"),
    "RISE": _registry("rise", seed=_seed),
    "RISE-U": _registry("rise-u", seed=_seed),
}
ALIASES = {"Grad-CAM++": "Grad-CAMpp"}


def resolve_explainer(name: str) -> Explain:
    name = ALIASES.get(name, name)
    if name not in EXPLAINERS:
        raise InputError(f"--explainer {name}: unknown; choose from {', '.join(EXPLAINERS)}")
    explain = EXPLAINERS[name]
    method = getattr(explain, "method")
    if method.split(" ")[0] not in REGISTRY:
        raise InputError(f"--explainer {name}: its method {method!r} is not implemented here")
    return explain


def transform(maps: torch.Tensor, how: str) -> torch.Tensor:
    """The paper's ``--attribution_transform``: raw, abs or relu of the channel-summed map."""
    return maps.abs() if how == "abs" else maps.clamp(min=0) if how == "relu" else maps


# --------------------------------------------------------------------------- baselines of the protocols

def fill_image(kind: str, image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator,
               kernel: int = 51, sigma: float = 41.0) -> torch.Tensor:
    """The deleted pixels' values, 3×H×W RGB in [0, 1]: ``zeros`` = zeros in normalised space (the
    normalisation mean); ``random`` = U(−1, 1) in normalised space (μ + σ(2u − 1)), drawn per image;
    ``blur`` = the image blurred by a ``kernel``×``kernel`` Gaussian of std ``sigma`` px (reflect
    padding); ``average`` = the image's mean colour (the paper leaves it unimplemented)."""
    if kind == "zeros":
        return mean.reshape(3, 1, 1).to(image).expand_as(image).clone()
    if kind == "random":
        u = torch.rand(image.shape, generator=generator).to(image)
        return mean.reshape(3, 1, 1).to(image) + std.reshape(3, 1, 1).to(image) * (2 * u - 1)
    if kind == "blur":
        from torchvision.transforms.functional import gaussian_blur

        size = min(kernel, 2 * (min(image.shape[1:]) // 2) - 1) if kernel > min(image.shape[1:]) else kernel
        return gaussian_blur(image[None], [size, size], [sigma, sigma])[0]
    if kind == "average":
        return image.mean(dim=(1, 2), keepdim=True).expand_as(image).clone()
    raise InputError(f"unknown baseline {kind!r}; choose from {', '.join(BASELINES)}")


# --------------------------------------------------------------------------- command line

def str2bool(value: str) -> bool:
    """The paper's boolean flags: True/False, yes/no, 1/0 (case-insensitive)."""
    lowered = str(value).strip().lower()
    if lowered in ("true", "yes", "1", "t", "y"):
        return True
    if lowered in ("false", "no", "0", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals.attribution_benchmark", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    main = parser.add_argument_group("the paper's flags")
    main.add_argument("--evaluation_protocol", required=True, help=f"one of {', '.join(PROTOCOLS)}")
    main.add_argument("--explainer", required=True, help=f"one of {', '.join(EXPLAINERS)}")
    main.add_argument("--model", default="default",
                      help=f"default (the shapes benchmark) or one of {', '.join(PAPER_MODELS)}")
    main.add_argument("--pretrained", default=False, type=str2bool,
                      help="True: published weights from the library's cache when --pretrained_ckpt is none")
    main.add_argument("--pretrained_ckpt", default="none", help="weights file (e.g. the fine-tuned .pth.tar), or none")
    main.add_argument("--data_dir", default=None, help="ImageNet-style image folder (its val/ when present)")
    main.add_argument("-b", "--batch_size", type=int, default=64, help="images per forward pass")
    main.add_argument("-j", "--workers", type=int, default=0, help="accepted for compatibility; images load in-process")
    main.add_argument("--seed", type=int, default=0, help="seeds noise, random baselines and stochastic explainers")
    main.add_argument("--gpu", type=int, default=None, help="GPU index (same as --device cuda:N)")
    main.add_argument("--overwrite", default=False, type=str2bool, help="recompute an existing results file")
    main.add_argument("--attribution_transform", default="raw", help=f"one of {', '.join(TRANSFORMS)}")
    main.add_argument("--nr_images", type=int, default=-1, help="evaluate the first N images; -1 = all")
    main.add_argument("--use_softmax", default=False, type=str2bool, help="only False is supported (logit models)")
    main.add_argument("--grid_rows_and_cols", type=int, default=4, help="single deletion: cells per side")
    main.add_argument("--sd_baseline", default="zeros", help=f"single deletion fill: {', '.join(BASELINES)}")
    main.add_argument("--id_baseline", default="zeros", help=f"incremental deletion fill: {', '.join(BASELINES)}")
    main.add_argument("--id_baseline_gaussian_kernel", type=int, default=51, help="blur fill: kernel size (px)")
    main.add_argument("--id_baseline_gaussian_sigma", type=float, default=41, help="blur fill: Gaussian std (px)")
    main.add_argument("--id_steps", type=int, default=32, help="incremental deletion: steps")
    main.add_argument("--id_order", default="ascending", help="ascending (least attributed first) or descending")
    main.add_argument("--id_update_attribution", default=False, type=str2bool,
                      help="recompute the attribution before every deletion step")
    ours = parser.add_argument_group("ours")
    ours.add_argument("--eval-list", default=None, help="images as '<relative path> <class index>' lines")
    ours.add_argument("--datasets", default=None, help="image root of --eval-list (default: the list's folder)")
    ours.add_argument("--num_classes", "--num-classes", type=int, default=None,
                      help="classes of the checkpoint's head (default 1000 for the paper's models)")
    ours.add_argument("--input-size", type=int, nargs="+", default=None, help="model input size (default: the task's)")
    ours.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    ours.add_argument("--output", default=None, help="results JSON (default under explanation_results/)")
    ours.add_argument("--strict", action="store_true", help="stop at the first image that fails")
    return parser


def _check(args: argparse.Namespace) -> None:
    checks = [
        (args.evaluation_protocol in PROTOCOLS,
         f"--evaluation_protocol {args.evaluation_protocol}: choose from {', '.join(PROTOCOLS)}"),
        (args.model in (*DEFAULT_MODELS, *PAPER_MODELS),
         f"--model {args.model}: unknown; choose from {', '.join((*DEFAULT_MODELS, *PAPER_MODELS))}"),
        (args.attribution_transform in TRANSFORMS,
         f"--attribution_transform {args.attribution_transform}: choose from {', '.join(TRANSFORMS)}"),
        (args.sd_baseline in BASELINES, f"--sd_baseline {args.sd_baseline}: choose from {', '.join(BASELINES)}"),
        (args.id_baseline in BASELINES, f"--id_baseline {args.id_baseline}: choose from {', '.join(BASELINES)}"),
        (args.id_order in ("ascending", "descending"), f"--id_order {args.id_order}: ascending or descending"),
        (args.id_steps >= 1, f"--id_steps must be >= 1, got {args.id_steps}"),
        (args.grid_rows_and_cols >= 1, f"--grid_rows_and_cols must be >= 1, got {args.grid_rows_and_cols}"),
        (args.nr_images == -1 or args.nr_images >= 1, f"--nr_images must be -1 or >= 1, got {args.nr_images}"),
        (args.batch_size >= 1, f"--batch_size must be >= 1, got {args.batch_size}"),
        (args.id_baseline_gaussian_kernel >= 1 and args.id_baseline_gaussian_kernel % 2 == 1,
         f"--id_baseline_gaussian_kernel must be odd and >= 1, got {args.id_baseline_gaussian_kernel}"),
        (not args.use_softmax, "--use_softmax True is not supported: the models here return logits"),
        (args.data_dir is None or args.eval_list is None, "give --data_dir or --eval-list, not both"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)


@dataclass
class Loaded:
    """The model and the images to evaluate."""

    task: str
    arch: str | None
    scorer: object
    items: list[ListItem]
    root: Path
    input_size: tuple[int, int]
    device: torch.device


def _inner_argv(args: argparse.Namespace, device: str) -> tuple[str, list[str], str | None]:
    """(task name, argv for that task's own parser, architecture) for ``--model``."""
    argv = ["--device", device, "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    if args.input_size:
        argv += ["--input-size", *map(str, args.input_size)]
    if args.model in DEFAULT_MODELS:
        if args.pretrained_ckpt != "none":
            argv += ["--checkpoint", args.pretrained_ckpt]
        return "shapes", argv, None
    arch = PAPER_MODELS[args.model]
    argv += ["--arch", arch]
    if args.num_classes is not None:
        argv += ["--num-classes", str(args.num_classes)]
    if args.pretrained_ckpt != "none":
        argv += ["--checkpoint", args.pretrained_ckpt]
    elif args.pretrained:
        argv += ["--pretrained", "default"] if arch.startswith("timm:") else ["--weights", "DEFAULT"]
    else:
        raise InputError(f"--model {args.model}: give --pretrained_ckpt FILE (e.g. its fine-tuned "
                         f"{args.model}_imagenet1000_lr0.001_epochs30_step10_checkpoint_best.pth.tar) "
                         "or --pretrained True (published weights from the cache)")
    return "imagenet_classifier", argv, arch


def load(args: argparse.Namespace) -> Loaded:
    """Build the scorer and read the image list (``--data_dir``, ``--eval-list`` or the default)."""
    from submodular_attribution.frontend import base_parser, check_common, input_size, read_items
    from submodular_attribution.models import resolve_device
    from submodular_attribution.tasks import get_model_task

    from .finetune_id_sds import image_folder_items

    device = f"cuda:{args.gpu}" if args.gpu is not None else args.device
    task_name, argv, arch = _inner_argv(args, device)
    if task_name != "shapes" and args.data_dir is None and args.eval_list is None:
        raise InputError(f"--model {args.model}: give the images with --data_dir DIR or --eval-list FILE")
    task = get_model_task(task_name)
    inner = base_parser(task, "attribution_benchmark", "").parse_args(argv)
    if args.eval_list is not None:
        inner.eval_list = args.eval_list
        inner.datasets = args.datasets
    if args.data_dir is not None:
        folder = Path(args.data_dir)
        folder = folder / "val" if (folder / "val").is_dir() else folder
        items, _ = image_folder_items(folder)
        root = folder
        inner.input_size = list(input_size(inner.input_size))
    else:
        check_common(inner)
        if task.prepare is not None:
            task.prepare(inner)  # the default list's images are generated on first use
        items, root = read_items(inner)
    if args.nr_images != -1:
        items = items[: args.nr_images]
    torch.manual_seed(args.seed)
    resolved = resolve_device(inner.device)
    scorer = task.build_scorer(inner, resolved, False)
    bad = next((i for i in items if not 0 <= i.label < scorer.num_classes), None)
    if bad is not None:
        raise InputError(f"{bad.path}: class index {bad.label}, but the model has {scorer.num_classes} classes")
    return Loaded(task_name, arch, scorer, items, Path(root), tuple(inner.input_size), resolved)


def _normalisation(scorer) -> tuple[torch.Tensor, torch.Tensor]:
    mean = getattr(scorer, "mean", None)
    std = getattr(scorer, "std", None)
    mean = torch.as_tensor(IMAGENET_MEAN if mean is None else mean, dtype=torch.float32).reshape(1, 3, 1, 1).cpu()
    std = torch.as_tensor(IMAGENET_STD if std is None else std, dtype=torch.float32).reshape(1, 3, 1, 1).cpu()
    return mean, std


def default_output(args: argparse.Namespace) -> Path:
    return (paths.explanations_dir() / "attribution_benchmark" / args.model /
            f"{args.explainer}_{args.attribution_transform}_{args.evaluation_protocol}.json")


def run(args: argparse.Namespace) -> int:
    _check(args)
    explain = resolve_explainer(args.explainer)
    output = Path(args.output) if args.output else default_output(args)
    if output.is_dir():
        raise InputError(f"--output {output}: is a folder")
    if output.is_file() and not args.overwrite:
        print(f"{output}: exists; evaluation skipped (--overwrite True recomputes it)", file=sys.stderr)
        return 0
    loaded = load(args)
    if not loaded.items:
        raise InputError("no images to evaluate")
    run_dir = ensure_dir(output.parent, "--output")
    model = attribution_model(loaded.scorer, batch_size=args.batch_size)
    mean, std = _normalisation(loaded.scorer)
    generator = torch.Generator().manual_seed(args.seed)
    h, w = loaded.input_size
    uniform = mean + std * (2 * torch.rand((1, 3, h, w), generator=generator) - 1)  # U(−1, 1) normalised
    ctx = Context(model, mean.to(model.device), std.to(model.device), generator,
                  uniform_baseline=uniform.to(model.device))
    read = lambda item: image_tensor(load_image_rgb(loaded.root / item.path, (h, w)))  # noqa: E731
    if args.explainer == "EG":
        ctx.references = torch.stack([read(i) for i in loaded.items[:16]]).to(model.device)
    write_provenance(run_dir, {**vars(args), "output": str(output)})
    calls = {"explain": 0}

    def saliency_of(image: torch.Tensor, target: int) -> torch.Tensor:
        calls["explain"] += 1
        maps = explain(ctx, image[None].to(model.device), torch.tensor([target], device=model.device))
        return transform(maps, args.attribution_transform)[0].detach().float().cpu()

    # The first image's map up front: an explainer that does not fit the architecture (CheferLRP on a
    # CNN, Grad-CAM on a network without conv layers) is one bad command line, not N failed images.
    first = loaded.items[0]
    try:
        probe = {first: saliency_of(read(first).to(model.device), first.label)}
    except (TypeError, ValueError) as err:
        raise InputError(f"--explainer {args.explainer} does not apply to --model {args.model}: "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None

    def evaluate(item: ListItem) -> float:
        image = read(item).to(model.device)
        target = item.label
        sal = probe.pop(item) if item in probe else saliency_of(image, target)
        if args.evaluation_protocol == "single_deletion":
            fill = fill_image(args.sd_baseline, image, mean, std, generator)
            return single_deletion_score(model, image, target, sal, grid=args.grid_rows_and_cols, baseline=fill)
        fill = fill_image(args.id_baseline, image, mean, std, generator, args.id_baseline_gaussian_kernel,
                          args.id_baseline_gaussian_sigma)
        update = (lambda current: saliency_of(current, target)) if args.id_update_attribution else None
        return incremental_deletion(model, image, target, sal, order=args.id_order, steps=args.id_steps,
                                    baseline=fill, update_attribution=update)

    report = run_items(loaded.items, evaluate, run_dir=run_dir, desc=f"{args.explainer} {args.evaluation_protocol}",
                       strict=args.strict)
    scores = [report.results[i] for i in loaded.items if i in report.results]
    mean_score, dropped = mean_finite(scores)
    result = {
        "protocol": args.evaluation_protocol, "explainer": args.explainer,
        "method": getattr(explain, "method"), "method_options": {k: (v if not callable(v) else v.__name__.strip("_"))
                                                                 for k, v in getattr(explain, "options").items()},
        "attribution_transform": args.attribution_transform, "model": args.model, "task": loaded.task,
        "arch": loaded.arch, "checkpoint": None if args.pretrained_ckpt == "none" else args.pretrained_ckpt,
        "settings": {k: getattr(args, k) for k in (
            "grid_rows_and_cols", "sd_baseline", "id_baseline", "id_baseline_gaussian_kernel",
            "id_baseline_gaussian_sigma", "id_steps", "id_order", "id_update_attribution", "nr_images", "seed")},
        "score": None if math.isnan(mean_score) else mean_score, "num_images": len(scores),
        "num_nonfinite_dropped": dropped, "num_failed": len(report.failures), "explain_calls": calls["explain"],
        "per_image": [{"path": i.path, "label": i.label,
                       "score": (None if not np.isfinite(report.results[i]) else float(report.results[i]))}
                      for i in loaded.items if i in report.results],
    }
    atomic_write_json(output, result)
    label = "Mean rank correlation" if args.evaluation_protocol == "single_deletion" else "Incremental deletion score"
    print(f"{label}: {mean_score:.6f} over {len(scores) - dropped} images"
          + (f" ({dropped} non-finite dropped)" if dropped else ""), file=sys.stderr)
    print(output)
    return report.exit_status


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
