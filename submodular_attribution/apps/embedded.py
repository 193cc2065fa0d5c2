"""The embedded default models shipped in ``ckpt/embedded/``: list them, or remake them.

    python -m submodular_attribution.apps.embedded                       # what is shipped
    python -m submodular_attribution.apps.embedded --retrain             # remake all four, replace them
    python -m submodular_attribution.apps.embedded --retrain shapes_cnn --out /tmp/again   # compare only

Every documented number comes from the shipped files, so a fresh clone reproduces it without
training. A retrain is seeded (seed 0, the training recipe of each model's module), but float
rounding differs between machines, thread counts and torch builds, so a retrain elsewhere gives a
slightly different model: the command prints the held-out scores of the shipped and the
retrained copy side by side, and the fraction of held-out predictions on which they agree.
"""
from __future__ import annotations

import argparse
import hashlib
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..common import paths
from ..common.atomic import atomic_torch_save
from ..common.errors import InputError


@dataclass(frozen=True)
class Embedded:
    """One shipped model: its file, what it is, how it is loaded (``load(path)``, which trains
    into ``path`` when the file is absent) and the ``info`` keys that score it."""

    file: str
    what: str
    load: Callable[[Path], tuple[torch.nn.Module, dict]]
    scores: tuple[str, ...]


def _shapes(arch: str) -> Callable[[Path], tuple]:
    def load(path: Path):
        from ..shapes import load_or_train_default
        return load_or_train_default(path, seed=0, arch=arch)
    return load


def _audio(path: Path):
    from ..audio import load_or_train_default
    return load_or_train_default(path, seed=0)


def _detector(path: Path):
    from ..detection.shapes_model import load_or_train_detector
    return load_or_train_detector(path, seed=0)


MODELS: dict[str, Embedded] = {
    "shapes_cnn": Embedded("shapes_cnn.pt", "the shapes CNN (make demo, the shapes task)", _shapes("cnn"),
                           ("val_accuracy", "val_accuracy_object_only")),
    "shapes_vit": Embedded("shapes_vit.pt", "the shapes hybrid ViT (evals.benchmark_search)", _shapes("vit"),
                           ("val_accuracy", "val_accuracy_object_only")),
    "shapes_resnet": Embedded("shapes_resnet.pt", "the shapes ResNet-18 at quarter width (held out in "
                              "evals.benchmark_search)", _shapes("resnet"), ("val_accuracy", "val_accuracy_object_only")),
    "audio_cnn": Embedded("audio_cnn.pt", "the audio CNN (the audio task)", _audio,
                          ("val_accuracy", "val_accuracy_event_only")),
    "shapes_detector": Embedded("shapes_detector.pt", "the shapes detector (the detection task)", _detector,
                                ("recall_iou50",)),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def describe(name: str, path: Path) -> str:
    """One line: name, size, hash and held-out scores of the file ``path``."""
    if not path.is_file():
        return f"{name:<16} missing ({path})"
    info = torch.load(path, map_location="cpu", weights_only=True)["info"]
    scores = ", ".join(f"{key} {info[key]:.3f}" for key in MODELS[name].scores)
    return f"{name:<16} {path.stat().st_size / 1e6:5.2f} MB  sha256 {sha256(path)[:12]}  {scores}"


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m submodular_attribution.apps.embedded",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", nargs="*", metavar="NAME", default=None,
                        help=f"retrain these (default: all of {', '.join(MODELS)}) with seed 0")
    parser.add_argument("--out", default=None,
                        help="write the retrained files here instead of replacing the shipped ones")
    parser.add_argument("--threads", type=int, default=2, help="torch threads while training (rounding depends on it)")
    return parser


def retrain(names: list[str], out: Path | None, threads: int) -> None:
    torch.set_num_threads(threads)
    for name in names:
        model, shipped = MODELS[name], paths.EMBEDDED_DIR / MODELS[name].file
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / model.file
            model.load(fresh)  # trains: the file is absent
            ckpt = torch.load(fresh, map_location="cpu", weights_only=True)
            ckpt["info"]["trained_with"] = {"torch": str(torch.__version__), "threads": threads,
                                            "machine": platform.machine(), "python": platform.python_version()}
            target = (out or paths.EMBEDDED_DIR) / model.file
            previous = Path(tmp) / f"shipped-{model.file}" if shipped.is_file() else None
            if previous:
                shutil.copyfile(shipped, previous)  # compared below, even when the target replaces it
            torch.save(ckpt, fresh)
            atomic_torch_save(ckpt, target)
            print(f"shipped   {describe(name, previous) if previous else 'none'}")
            print(f"retrained {describe(name, fresh)}")
            if previous and name != "shapes_detector":
                print(f"          predictions agree with the shipped copy on {agreement(name, previous, fresh):.1%} "
                      "of 64 default evaluation inputs")
            print(f"wrote {target}")


def agreement(name: str, a: Path, b: Path) -> float:
    """Share of 64 held-out inputs of a classifier on which two checkpoints predict the same class."""
    x = _evaluation_inputs(name)
    with torch.inference_mode():
        predicted = [MODELS[name].load(path)[0](x).argmax(1) for path in (a, b)]
    return float((predicted[0] == predicted[1]).float().mean())


def _evaluation_inputs(name: str) -> torch.Tensor:
    """The model's inputs (normalised as its scorer does) for 64 items of the default evaluation set."""
    if name.startswith("shapes"):
        from ..shapes import MEAN, STD
        from ..shapes.data import EVAL_SEED, make_split
        x = torch.from_numpy(make_split(64, EVAL_SEED)[0]).permute(0, 3, 1, 2).float() / 255
        return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    from ..audio.data import EVAL_SEED, make_split  # one-channel spectrogram images, MEAN 0 and STD 1
    return (torch.from_numpy(make_split(64, EVAL_SEED)[0])[:, None].float() / 255).expand(-1, 3, -1, -1)


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.retrain is None:
        print(f"Shipped embedded models ({paths.EMBEDDED_DIR}):")
        for name, model in MODELS.items():
            print(f"  {describe(name, paths.EMBEDDED_DIR / model.file)}")
        return 0
    names = args.retrain or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"error: --retrain {' '.join(unknown)}: unknown; choose from {', '.join(MODELS)}")
    try:
        retrain(names, Path(args.out) if args.out else None, args.threads)
    except InputError as err:
        raise SystemExit(f"error: {err}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
