"""In-domain fine-tuning for the ID-SDS variant of the Single Deletion Score.

    python -m evals.finetune_id_sds --model shapes --eval-list train/eval_list.txt \\
        --output ckpt/shapes_cnn-id-sds.pth
    python -m evals.finetune_id_sds --model cub --image-folder /data/CUB_train \\
        --checkpoint ckpt/cub-resnet101.pth --output ckpt/cub-resnet101-id-sds.pth

Hesse et al. (NeurIPS 2024) evaluate the Single Deletion Score on a model that has seen cell
deletions during training, so that deleting a cell is "in domain": the classifier is
fine-tuned on images in which, with probability 0.5, one random cell of the G×G grid
(G = 4, the SDS grid: cells of ``regions.grid_division``, boundaries round(r·H/G) and round(c·W/G)) is replaced by the baseline, zeros in
normalised space (the normalisation mean as an RGB colour), with SGD (lr 0.001, momentum 0.9,
weight decay 1e-4) for 30 epochs and the learning rate divided by 10 every 10 epochs.

``--model`` names a per-task configuration with a classifier network (shapes,
imagenet_classifier, cub); its model flags (``--checkpoint``, ``--arch``, ``--num-classes``,
``--input-size``, ``--device``) choose the network to start from. Training images come from
``--image-folder`` (``<class>/<file>`` folders; class index = position of the folder name in
sorted order, as torchvision's ImageFolder) or from ``--eval-list`` (``<relative path> <class
index>`` lines, paths relative to ``--datasets`` or the list's folder); use training images,
not the images you evaluate on. Images are resized to the model's input size; no other
augmentation.

The result is saved atomically as ``{"state_dict": ..., "info": ...}`` (the base checkpoint's
``info`` where it has one, plus ``info["id_sds"]`` with the recipe and the training history),
which the task's ``--checkpoint`` flag loads: pass it to the SMDL scripts, to
``baseline_attribution.generate_explanation_maps`` and to ``evals.benchmark`` to compute ID-SDS.
Bad input prints one ``error: ...`` line and exits with status 2.

The attribution benchmark's ``train.py`` flags work too (:func:`translate_train_py`):

    python -m evals.finetune_id_sds --model resnet50 --data_dir /data/imagenet --pretrained \
        --store_path ckpt --checkpoint_prefix resnet50-id-sds
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.lists import ListItem

from submodular_attribution.regions import grid_division

#: Tasks whose scorer is a :class:`~submodular_attribution.models.ClassifierScorer` over one network.
CLASSIFIER_TASKS = ("shapes", "imagenet_classifier", "cub")

#: The recipe of the spec (Hesse et al.): the defaults of :func:`finetune_cell_deletion`.
ID_SDS_RECIPE = {"grid": 4, "p_delete": 0.5, "epochs": 30, "lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4,
                 "step_size": 10, "gamma": 0.1, "batch_size": 32}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

Normalize = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- training

def make_optimizer(net: nn.Module, *, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 1e-4,
                   step_size: int = 10, gamma: float = 0.1,
                   ) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.StepLR]:
    """SGD over the trainable parameters and a StepLR stepped once per epoch (lr × γ every
    ``step_size`` epochs)."""
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the network has no trainable parameters")
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    return optimizer, scheduler


def zero_point(normalize: Normalize | None) -> tuple[float, float, float]:
    """The RGB colour in [0, 1] that ``normalize`` maps to zero ("zeros in normalised space").

    ``None`` (the network takes pixels as they are) gives black. Otherwise ``normalize`` must
    be a per-channel affine map, x ↦ (x − m)/s: m = −f(0)/(f(1) − f(0)), checked by f(m) ≈ 0.
    """
    if normalize is None:
        return (0.0, 0.0, 0.0)
    with torch.no_grad():
        zeros, ones = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
        try:
            f0, f1 = normalize(zeros), normalize(ones)
            f0, f1 = f0.float().cpu().mean(dim=(0, 2, 3)), f1.float().cpu().mean(dim=(0, 2, 3))
            mean = -f0 / (f1 - f0)
            check = normalize(mean.view(1, 3, 1, 1).expand(1, 3, 2, 2).clone())
        except Exception as err:  # noqa: BLE001 - any failure: ask for an explicit baseline
            raise ValueError(f"cannot find the zero of normalize ({type(err).__name__}: {err}); "
                             "pass baseline= explicitly") from None
    if not (torch.isfinite(mean).all() and check.abs().max() < 1e-4):
        raise ValueError("normalize is not a per-channel affine map; pass baseline= explicitly")
    return tuple(float(v) for v in mean)


def _fill_colour(baseline, normalize: Normalize | None) -> torch.Tensor:
    if baseline is None:
        baseline = zero_point(normalize)
    values = torch.as_tensor(baseline, dtype=torch.float32).reshape(-1)
    if values.numel() == 1:
        values = values.expand(3)
    if values.numel() != 3:
        raise ValueError(f"baseline must be a float or 3 per-channel values, got {values.numel()} values")
    return values.view(1, 3, 1, 1).clone()


def delete_random_cells(images: torch.Tensor, *, grid: int = 4, p_delete: float = 0.5, baseline=(0.0, 0.0, 0.0),
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image of the batch (B×3×H×W, RGB) independently, with probability ``p_delete``:
    one cell of the ``grid``×``grid`` partition, chosen uniformly, set to ``baseline`` (a
    float or 3 RGB values). Cells are those of the Single Deletion Score (``regions.grid_division``).

    Returns (new images, B-long cell index per image, −1 where nothing was deleted). Random
    numbers come from ``generator`` (CPU).
    """
    if not 0.0 <= p_delete <= 1.0:
        raise ValueError(f"p_delete must be in [0, 1], got {p_delete}")
    b, _, h, w = images.shape
    cells = torch.as_tensor(grid_division(h, w, grid, grid), device=images.device).long()
    chosen = torch.rand(b, generator=generator) < p_delete
    which = torch.randint(0, grid * grid, (b,), generator=generator)
    which = torch.where(chosen, which, torch.full_like(which, -1))
    mask = cells[None] == which.to(images.device)[:, None, None]  # −1 matches no cell
    fill = _fill_colour(baseline, None).to(device=images.device, dtype=images.dtype)
    return torch.where(mask[:, None], fill, images), which


@dataclass
class FinetuneResult:
    """The fine-tuned network (in eval mode), the optimizer and scheduler that trained it, and
    per-epoch ``{"epoch", "lr", "loss", "accuracy", "deleted"}`` (mean training cross-entropy,
    accuracy on the cell-deleted training batches, fraction of images with a deleted cell)."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    history: list[dict] = field(default_factory=list)


def _dataset(images, labels) -> Dataset:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"images must be a float N×3×H×W tensor, got {images.dtype} {tuple(images.shape)}")
        if labels is None:
            raise ValueError("labels are required with an image tensor")
        labels = torch.as_tensor(labels).long().reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images")
        return TensorDataset(images, labels)
    if labels is not None:
        raise ValueError("labels must be None when images is a Dataset of (image, label) pairs")
    return images


def finetune_cell_deletion(
    net: nn.Module,
    images: torch.Tensor | Dataset,
    labels: torch.Tensor | Sequence[int] | None = None,
    *,
    grid: int = 4,
    p_delete: float = 0.5,
    baseline=None,
    epochs: int = 30,
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    step_size: int = 10,
    gamma: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
    normalize: Normalize | None = None,
    progress: bool = True,
    num_workers: int = 0,
) -> FinetuneResult:
    """Fine-tune ``net`` in place on cell-deleted images (the ID-SDS recipe by default).

    ``images``: float N×3×H×W RGB in [0, 1] with ``labels`` (N class indices), or a Dataset of
    (3×H×W image, label) pairs (``labels`` None). ``normalize`` maps a pixel batch to the
    network's input (None: none). Each training image gets, with probability ``p_delete``, one
    uniformly chosen cell of the ``grid``×``grid`` partition replaced by ``baseline``: RGB in
    [0, 1] (a float or 3 values); ``None`` = the colour ``normalize`` maps to zero, i.e. zeros in
    normalised space (black without ``normalize``). Cross-entropy, :func:`make_optimizer`
    (SGD, StepLR stepped per epoch), shuffled batches of ``batch_size``, the network in train
    mode (BatchNorm statistics update) on its own device. Shuffling and deletions are seeded
    by ``seed``; randomness inside the network (dropout) uses torch's global generator.

    Returns a :class:`FinetuneResult`; the network is left in eval mode.
    """
    from tqdm import tqdm

    if epochs < 0 or batch_size < 1 or grid < 1 or step_size < 1:
        raise ValueError(f"need epochs >= 0, batch_size >= 1, grid >= 1, step_size >= 1; got {epochs}, "
                         f"{batch_size}, {grid}, {step_size}")
    dataset = _dataset(images, labels)
    if len(dataset) == 0:
        raise ValueError("no training images")
    fill = _fill_colour(baseline, normalize)
    params = list(net.parameters())
    device = params[0].device if params else torch.device("cpu")
    optimizer, scheduler = make_optimizer(net, lr=lr, momentum=momentum, weight_decay=weight_decay,
                                          step_size=step_size, gamma=gamma)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                        generator=torch.Generator().manual_seed(seed))
    deletion_rng = torch.Generator().manual_seed(seed + 1)
    history: list[dict] = []
    bar = tqdm(total=epochs * len(loader), desc="ID-SDS fine-tuning", unit="batch",
               disable=None if progress else True, leave=False)
    for epoch in range(epochs):
        net.train()
        lr_now = optimizer.param_groups[0]["lr"]
        total_loss, correct, deleted, seen = 0.0, 0, 0, 0
        for x, y in loader:
            x, y = x.to(device), torch.as_tensor(y).long().to(device)
            x, which = delete_random_cells(x, grid=grid, p_delete=p_delete, baseline=fill.flatten().tolist(),
                                           generator=deletion_rng)
            logits = net(normalize(x) if normalize is not None else x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            n = len(y)
            total_loss += float(loss.detach()) * n
            correct += int((logits.detach().argmax(1) == y).sum())
            deleted += int((which >= 0).sum())
            seen += n
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{float(loss.detach()):.3f}")
        scheduler.step()
        history.append({"epoch": epoch + 1, "lr": lr_now, "loss": total_loss / seen, "accuracy": correct / seen,
                        "deleted": deleted / seen})
    bar.close()
    net.eval()
    return FinetuneResult(net, optimizer, scheduler, history)


# --------------------------------------------------------------------------- data for the CLI

class ImageListDataset(Dataset):
    """(3×H×W float RGB in [0, 1] at ``size``, label) for list items under ``root``, read lazily."""

    def __init__(self, root: str | Path, items: Sequence[ListItem], size: tuple[int, int]):
        self.root, self.items, self.size = Path(root), list(items), tuple(size)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        from submodular_attribution.common.images import image_tensor, load_image_rgb

        item = self.items[index]
        return image_tensor(load_image_rgb(self.root / item.path, self.size)), item.label


def image_folder_items(folder: str | Path) -> tuple[list[ListItem], list[str]]:
    """Items of an ImageFolder layout (``<class>/<file>``, files found recursively, image
    extensions only) and the class names; class index = position in sorted folder names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--image-folder {folder}: no such folder")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(f"--image-folder {folder}: no class folders (expected <class>/<image file>)")
    items = []
    for index, name in enumerate(classes):
        for path in sorted((folder / name).rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
                items.append(ListItem(path.relative_to(folder).as_posix(), index, 0))
    if not items:
        raise InputError(f"--image-folder {folder}: no images in its class folders")
    return items, classes


# --------------------------------------------------------------------------- CLI

def get_args_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    from submodular_attribution.frontend import model_parser

    parser = model_parser(argv, "python -m evals.finetune_id_sds", __doc__.split("\n\n")[0])
    # run() names the tasks that have a classifier; training takes the recipe's batch size
    parser.set_defaults(eval_list=None, batch_size=ID_SDS_RECIPE["batch_size"])
    for action in parser._actions:
        if action.dest == "eval_list":
            action.help = "training images as '<relative path> <class index>' lines (or --image-folder)"
        elif action.dest == "batch_size":
            action.help = "images per training step"
        elif action.dest == "seed":
            action.help = "seeds shuffling and cell deletions"
    group = parser.add_argument_group("ID-SDS fine-tuning")
    group.add_argument("--grid", type=int, default=ID_SDS_RECIPE["grid"],
                       help="cells per side of the deletion grid (the SDS grid)")
    group.add_argument("--image-folder", default=None, help="training images in <class>/<file> folders")
    group.add_argument("--output", default=None,
                       help="where to save the fine-tuned weights (default: <checkpoint stem>-id-sds.pth beside it)")
    group.add_argument("--epochs", type=int, default=ID_SDS_RECIPE["epochs"], help="training epochs")
    group.add_argument("--lr", type=float, default=ID_SDS_RECIPE["lr"], help="SGD learning rate")
    group.add_argument("--momentum", type=float, default=ID_SDS_RECIPE["momentum"], help="SGD momentum")
    group.add_argument("--weight-decay", type=float, default=ID_SDS_RECIPE["weight_decay"], help="SGD weight decay")
    group.add_argument("--step-size", type=int, default=ID_SDS_RECIPE["step_size"], help="epochs per lr step")
    group.add_argument("--gamma", type=float, default=ID_SDS_RECIPE["gamma"], help="lr factor per step")
    group.add_argument("--p-delete", type=float, default=ID_SDS_RECIPE["p_delete"],
                       help="probability that an image gets one cell deleted")
    group.add_argument("--workers", type=int, default=0, help="data-loading processes")
    return parser


def _base_info(checkpoint: str | None) -> dict:
    """The base checkpoint's ``info`` dict (the shapes task checks it on loading), else {}."""
    if not checkpoint or not Path(checkpoint).is_file():
        return {}
    try:
        obj = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - the scorer has loaded it already; info is optional
        return {}
    info = obj.get("info") if isinstance(obj, dict) else None
    return dict(info) if isinstance(info, dict) else {}


def _check_numbers(args: argparse.Namespace) -> None:
    checks = [(args.epochs >= 1, f"--epochs must be >= 1, got {args.epochs}"),
              (args.lr > 0 and math.isfinite(args.lr), f"--lr must be > 0, got {args.lr}"),
              (args.step_size >= 1, f"--step-size must be >= 1, got {args.step_size}"),
              (0.0 <= args.p_delete <= 1.0, f"--p-delete must be in [0, 1], got {args.p_delete}"),
              (args.grid >= 1, f"--grid must be >= 1, got {args.grid}"),
              (args.workers >= 0, f"--workers must be >= 0, got {args.workers}"),
              (args.batch_size >= 1, f"--batch-size must be >= 1, got {args.batch_size}")]
    for ok, message in checks:
        if not ok:
            raise InputError(message)


def run(args: argparse.Namespace) -> Path:
    from submodular_attribution.common.atomic import atomic_torch_save
    from submodular_attribution.common.lists import read_eval_list, select_range
    from submodular_attribution.frontend import input_size
    from submodular_attribution.models import resolve_device
    from submodular_attribution.tasks import get_model_task

    if args.model not in CLASSIFIER_TASKS:
        raise InputError(f"--model {args.model}: ID-SDS fine-tuning needs a classifier network "
                         f"({', '.join(CLASSIFIER_TASKS)})")
    task = get_model_task(args.model)
    if (args.image_folder is None) == (args.eval_list is None):
        raise InputError("give exactly one of --image-folder or --eval-list (the training images)")
    _check_numbers(args)
    args.input_size = list(input_size(args.input_size))

    if args.image_folder is not None:
        items, classes = image_folder_items(args.image_folder)
        root = Path(args.image_folder)
        print(f"{root}: {len(items)} images in {len(classes)} classes, "
              f"index = sorted folder order ({', '.join(f'{i}={c}' for i, c in enumerate(classes[:5]))}"
              f"{', ...' if len(classes) > 5 else ''})", file=sys.stderr)
    else:
        items = select_range(read_eval_list(args.eval_list), args.begin, args.end)
        root = Path(args.datasets) if args.datasets else Path(args.eval_list).parent
        if not items:
            raise InputError(f"{args.eval_list}: --begin/--end select no images")
    for item in items:
        if not (root / item.path).is_file():
            raise InputError(f"{root / item.path}: image not found")

    output = Path(args.output) if args.output else None
    if output is None:
        if not args.checkpoint:
            raise InputError("--output is required when the task has no --checkpoint")
        output = Path(args.checkpoint).with_name(f"{Path(args.checkpoint).stem}-id-sds.pth")
    if args.checkpoint and output.resolve() == Path(args.checkpoint).resolve():
        raise InputError(f"--output {output}: would overwrite the base checkpoint")
    if output.is_dir():
        raise InputError(f"--output {output}: is a folder")

    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    scorer = task.build_scorer(args, device, False)
    net = getattr(scorer, "net", None)
    if not isinstance(net, nn.Module):
        raise InputError(f"--model {args.model}: ID-SDS fine-tuning needs a classifier network")
    bad = next((item for item in items if not 0 <= item.label < scorer.num_classes), None)
    if bad is not None:
        where = (f"--image-folder {args.image_folder}: {len(classes)} class folders" if args.image_folder is not None
                 else f"{args.eval_list}:{bad.line}: class index {bad.label}")
        raise InputError(f"{where}, but the model has {scorer.num_classes} classes")
    base_info = _base_info(args.checkpoint)

    mean, std = scorer.mean, scorer.std
    started = time.perf_counter()
    result = finetune_cell_deletion(
        net, ImageListDataset(root, items, tuple(args.input_size)), grid=args.grid, p_delete=args.p_delete,
        baseline=[float(v) for v in mean.flatten()], epochs=args.epochs, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, step_size=args.step_size, gamma=args.gamma, batch_size=args.batch_size,
        seed=args.seed, normalize=lambda x: (x - mean) / std, num_workers=args.workers)
    recipe = {"grid": args.grid, "p_delete": args.p_delete, "epochs": args.epochs, "lr": args.lr,
              "momentum": args.momentum, "weight_decay": args.weight_decay, "step_size": args.step_size,
              "gamma": args.gamma, "batch_size": args.batch_size, "seed": args.seed}
    info = {**base_info, "id_sds": {
        "task": args.model, "base_checkpoint": str(args.checkpoint), "num_images": len(items),
        "images": str(args.image_folder or args.eval_list), "recipe": recipe, "history": result.history,
        "baseline_rgb": [float(v) for v in mean.flatten()], "seconds": round(time.perf_counter() - started, 2)}}
    state_dict = {k: v.detach().cpu() for k, v in result.net.state_dict().items()}
    atomic_torch_save({"state_dict": state_dict, "info": info}, output)
    last = result.history[-1]
    print(f"epoch {last['epoch']}: loss {last['loss']:.4f}, accuracy on cell-deleted images {last['accuracy']:.4f}",
          file=sys.stderr)
    print(output)
    return output


#: The attribution benchmark's ``train.py`` flags (Hesse et al.'s code) → ours, where only the name differs.
TRAIN_PY_FLAGS = {"--batch_size": "--batch-size", "-b": "--batch-size", "--step_size": "--step-size",
                  "--wd": "--weight-decay", "--learning-rate": "--lr", "-j": "--workers",
                  "--grid_rows_and_cols": "--grid", "--number_classes": "--num-classes",
                  "--pretrained_ckpt": "--checkpoint"}


def translate_train_py(argv: Sequence[str]) -> list[str]:
    """``train.py``'s command line → ours: ``--data_dir D`` reads ``D/train`` (as train.py does);
    ``--store_path P --checkpoint_prefix X`` saves ``P/X_checkpoint.pth.tar``; a bare
    ``--pretrained`` starts from torchvision's IMAGENET1K_V1 weights (what its ``pretrained`` switch
    gave); ``--model <arch>`` is the imagenet_classifier task with ``--arch <arch>``;
    ``--baseline zeros`` is our baseline (the others are not implemented). Our own flags pass."""
    out, rest, store = [], list(argv), {}
    while rest:
        arg = rest.pop(0)
        name, has_value, value = arg.partition("=")

        def take() -> str:
            if has_value:
                return value
            if not rest:
                raise InputError(f"{name} needs a value")
            return rest.pop(0)

        if name in TRAIN_PY_FLAGS:
            out += [TRAIN_PY_FLAGS[name], take()]
        elif name == "--data_dir":
            root = Path(take())
            out += ["--image-folder", str(root / "train" if (root / "train").is_dir() else root)]
        elif name in ("--store_path", "--checkpoint_prefix"):
            store[name] = take()
        elif name == "--pretrained" and (not rest or rest[0].startswith("-")) and not has_value:
            out += ["--weights", "IMAGENET1K_V1"]
        elif name == "--model":
            model = take()
            from submodular_attribution.tasks import ALIASES, TASK_NAMES

            out += ["--model", model] if model in (*TASK_NAMES, *ALIASES) else \
                ["--model", "imagenet_classifier", "--arch", model]
        elif name == "--baseline":
            if take() != "zeros":
                raise InputError("--baseline: only 'zeros' (the normalisation mean) is implemented here")
        else:
            out.append(arg)
    if store:
        prefix = store.get("--checkpoint_prefix", "experiment")
        out += ["--output", str(Path(store.get("--store_path", ".")) / f"{prefix}_checkpoint.pth.tar")]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    try:
        argv = translate_train_py(sys.argv[1:] if argv is None else argv)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args = get_args_parser(argv).parse_args(argv)
    return run_reporting_input_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
