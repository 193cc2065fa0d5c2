"""Split an evaluation list by whether the model classifies each image correctly (error analysis).

    python -m evals.split_predictions --model shapes --eval-list datasets/shapes/eval_list.txt \\
        --save-dir explanation_results/shapes/split

``--model`` names a per-task configuration; its model flags (``--checkpoint``, ``--arch``, ...)
and data flags (``--datasets``, ``--begin``/``--end``, ``--input-size``, ``--batch-size``,
``--device``) are accepted too. Every image is resized to the model's input resolution, as the
SMDL scripts do, and classified on the full image (argmax of the softmax, first index among
ties). Writes, atomically:

* ``<save-dir>/correct.txt`` and ``<save-dir>/misclassified.txt``: evaluation lists
  (``<relative path> <class index>``) holding the list's paths unchanged and the **true**
  label. The paths stay relative to the same image root, so pass ``--datasets <root>``
  (printed, and recorded in a ``#`` comment line that list readers skip) when using them.
  With the default ``--target label`` the SMDL scripts then explain the true class of each
  mistake (the "highest confidence" error analysis of ``evals.highest_confidence``); with
  ``--target prediction`` they explain the class the model wrongly chose.
* ``<save-dir>/predictions.csv``: ``path,label,prediction,p_label,p_prediction`` per image
  (softmax probabilities of the true and of the predicted class).

Prints the accuracy on stdout. Bad input prints one ``error: ...`` line and exits with status 2.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from submodular_attribution.common.atomic import atomic_write_text
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.images import image_tensor, load_image_rgb
from submodular_attribution.common.lists import ListItem
from submodular_attribution.common.progress import run_items
from submodular_attribution.frontend import model_parser, prepare
from submodular_attribution.tasks import get_model_task

CSV_COLUMNS = ("path", "label", "prediction", "p_label", "p_prediction")


@dataclass(frozen=True)
class Prediction:
    """The model's answer on one list item."""

    item: ListItem
    prediction: int
    p_label: float
    p_prediction: float

    @property
    def correct(self) -> bool:
        return self.prediction == self.item.label


def get_args_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    return model_parser(argv, "python -m evals.split_predictions", __doc__.split("\n\n")[0],
                        save_dir_help="folder for correct.txt, misclassified.txt and predictions.csv (required)")


@torch.no_grad()
def predict(scorer, items: Sequence[ListItem], root: Path, input_size: tuple[int, int], batch_size: int,
            progress: bool = True, save_dir: str | Path | None = None, strict: bool = False,
            failures: list | None = None) -> list[Prediction]:
    """Classify every item's full image (resized to ``input_size``), ``batch_size`` at a time.
    An unreadable image is reported, recorded in ``<save_dir>/failures.jsonl``, appended to
    ``failures`` as ``(item, reason)`` and left out (``strict``: an error)."""
    results: list[Prediction] = []
    starts = range(0, len(items), batch_size)
    for start in tqdm(starts, desc="predicting", unit="batch", disable=None if progress and len(starts) > 1 else True):
        report = run_items(items[start:start + batch_size],
                           lambda item: image_tensor(load_image_rgb(root / item.path, input_size)),
                           run_dir=save_dir or ".", desc="loading", strict=strict, show=False)
        if failures is not None:
            failures.extend(report.failures)
        loaded = report.results
        if not loaded:
            continue
        batch = list(loaded)
        probs = scorer(torch.stack(list(loaded.values())).to(scorer.device)).probs.detach().double().cpu()
        predictions = probs.argmax(dim=1)
        for item, row, pred in zip(batch, probs, predictions.tolist()):
            results.append(Prediction(item, int(pred), float(row[item.label]), float(row[pred])))
    return results


def _list_text(predictions: Sequence[Prediction], root: Path, correct: bool) -> str:
    kind = "correctly classified" if correct else "misclassified"
    lines = [f"# {kind} images, true labels; paths are relative to {root.resolve()} (pass it as --datasets)"]
    lines += [f"{p.item.path} {p.item.label}" for p in predictions if p.correct == correct]
    return "\n".join(lines) + "\n"


def _csv_text(predictions: Sequence[Prediction]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in predictions:
        writer.writerow([p.item.path, p.item.label, p.prediction, p.p_label, p.p_prediction])
    return out.getvalue()


def write_split(save_dir: str | Path, predictions: Sequence[Prediction], root: Path) -> dict[str, Path]:
    """Write correct.txt, misclassified.txt and predictions.csv atomically; returns their paths."""
    save_dir = Path(save_dir)
    texts = {
        "correct": (save_dir / "correct.txt", _list_text(predictions, root, True)),
        "misclassified": (save_dir / "misclassified.txt", _list_text(predictions, root, False)),
        "predictions": (save_dir / "predictions.csv", _csv_text(predictions)),
    }
    for path, text in texts.values():
        atomic_write_text(path, text)
    return {name: path for name, (path, _) in texts.items()}


def run(args: argparse.Namespace) -> dict:
    if args.save_dir is None:
        raise InputError("--save-dir is required (the folder for correct.txt, misclassified.txt, predictions.csv)")
    save_dir = Path(args.save_dir)
    if save_dir.exists() and not save_dir.is_dir():
        raise InputError(f"--save-dir {save_dir}: exists and is not a folder")
    ready = prepare(get_model_task(args.model), args)
    if ready.worker.world_size > 1:
        raise InputError("split_predictions runs as a single process (one forward pass per image); "
                         "do not start it with torchrun")
    failures: list = []
    predictions = predict(ready.scorer, ready.items, ready.root, tuple(args.input_size), args.batch_size,
                          save_dir=save_dir, strict=args.strict, failures=failures)
    if not predictions:
        raise InputError(f"{args.eval_list}: no image could be read")
    paths = write_split(save_dir, predictions, ready.root)
    n_correct = sum(p.correct for p in predictions)
    n = len(predictions)
    print(f"accuracy: {n_correct / n:.4f} ({n_correct} of {n} correct, {n - n_correct} misclassified)")
    print(f"{paths['correct']}, {paths['misclassified']}, {paths['predictions']}: written; "
          f"use the lists with --datasets {ready.root}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} unreadable images left out (listed in {save_dir / 'failures.jsonl'})", file=sys.stderr)
    return {"accuracy": n_correct / n, "correct": n_correct, "misclassified": n - n_correct,
            "failed": len(failures), **paths}


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 when every image was classified, 1 when some could not be read, 2 on bad input."""
    args = get_args_parser(argv).parse_args(argv)
    return run_reporting_input_errors(lambda: 1 if run(args)["failed"] else 0)


if __name__ == "__main__":
    sys.exit(main())
