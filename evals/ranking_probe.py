"""Which cheap ranking finds exact greedy's next region, and at what cost (issue 24, items 2 and 4).

    python -m evals.ranking_probe [--model cnn] [--regions 49] [--num-images 16] [--top 2 4 8 16] [--ig-steps 2 4 8]

Along exact greedy's own path on the first images of the default set (shipped model, SLICO ≈ N
regions, the published single-modal λ), every step t ≥ 1 scores all candidates, so the right
answer is known. Each ranking proposes its top k candidates at each step, from what a search
would know there; the table gives, over all steps of all images:

* recall@k — the share of steps where greedy's pick is among the k proposed;
* regret@k — greedy's best gain less the best gain among the k proposed, in average shares
  |F(V) − F(∅)|/N (0: the step loses nothing once the k are scored exactly);
* forward-equivalents per step — the k exact scores (2 forwards each: insertion and deletion
  image) plus the ranking's own model work, with a backward pass counted as the forwards its
  measured time equals (``backward / forward`` in the header, timed on this machine).

Rankings: ``first gains`` (each region's gain alone, from the first step: never refreshed);
``stale gains`` (the last exact gain of each region, re-scored only when proposed, as ``lazy``
and ``staged`` do); ``ranker`` (the amortised search's per-model network, trained as in
``evals.benchmark_search``); ``path IG, K steps`` (integrated gradients of
λ3·p_t(insert) + λ4·(1 − p_t(delete)) over soft region weights m on the straight path from the
current set to all regions, K midpoints, the 2K images in one batch with their backward pass).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from submodular_attribution.common import paths
from submodular_attribution.common.atomic import atomic_write_text
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.images import image_tensor, load_image_rgb
from submodular_attribution.common.lists import read_eval_list
from submodular_attribution.common.progress import Progress
from submodular_attribution.ranker_training import record_runs
from submodular_attribution.regions import DivisionConfig, RegionDivider
from submodular_attribution.search_ranker import Known, Ranker, features, step_gains
from submodular_attribution.shapes import ARCHITECTURES, IMAGE_SIZE, build_scorer, load_or_train_default
from submodular_attribution.shapes import write_eval_set

from .benchmark_search import WEIGHTS, train_benchmark_ranker


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals.ranking_probe", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="cnn", choices=ARCHITECTURES)
    parser.add_argument("--regions", type=int, default=49, help="about N SLICO regions")
    parser.add_argument("--num-images", type=int, default=16)
    parser.add_argument("--top", type=int, nargs="+", default=[2, 4, 8, 16], help="candidates proposed per step")
    parser.add_argument("--ig-steps", type=int, nargs="+", default=[2, 4, 8], help="path IG midpoints")
    parser.add_argument("--output-dir", default=None, help="default: explanation_results/ranking_probe")
    return parser


def path_ig(scorer, image: torch.Tensor, labels: torch.Tensor, chosen: np.ndarray, target: int,
            steps: int) -> np.ndarray:
    """Integrated gradients of λ3·p_t(insert) + λ4·(1 − p_t(delete)) over the N soft region
    weights, from the current set to all regions (K = ``steps`` midpoints, one batch of 2K)."""
    start = torch.as_tensor(chosen, dtype=torch.float32)
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    weights = (start + alphas[:, None] * (1 - start)).requires_grad_(True)  # K×N
    kept = weights[:, labels][:, None]  # K×1×H×W
    x = torch.cat([image[None] * kept, image[None] * (1 - kept)])
    p = torch.softmax(scorer.net((x - scorer.mean) / scorer.std), 1)[:, target]
    objective = WEIGHTS.consistency * p[:steps].sum() + WEIGHTS.collaboration * (1 - p[steps:]).sum()
    objective.backward()
    return (weights.grad.mean(0) * (1 - start)).double().numpy()  # gradient × the path's displacement


def backward_ratio(scorer, batch: int, repeats: int = 5) -> float:
    """Time of a backward pass over that of a forward, for a batch of ``batch`` images (median)."""
    x = torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE)
    forward, both = [], []
    for _ in range(repeats):
        begin = time.perf_counter()
        with torch.no_grad():
            scorer.net(x)
        forward.append(time.perf_counter() - begin)
        y = x.clone().requires_grad_(True)
        begin = time.perf_counter()
        scorer.net(y).sum().backward()
        both.append(time.perf_counter() - begin)
    return max(float(np.median(both) / np.median(forward)) - 1.0, 0.0)


def _stale_rankings(record, model: Ranker, tops: Sequence[int]):
    """Per (ranking, k): recall and regret per step, each ranking re-scoring only what it proposed."""
    n = len(record.steps[0].chosen)
    out = {}
    for name in ("first gains", "stale gains", "ranker"):
        for k in tops:
            known = Known.empty(n)
            known.record(0, record.steps[0].ids, step_gains(record.steps[0], record.unit))
            hits, regrets = [], []
            for t in range(1, len(record.steps)):
                table = record.steps[t]
                gains = step_gains(table, record.unit)
                if name == "ranker":
                    rank = model.score(features(record.geometry, known, table.ids, table.chosen, t, table.state[1:]))
                else:
                    rank = known.first[table.ids, 0] if name == "first gains" else known.gain[table.ids]
                proposed = np.argsort(-rank, kind="stable")[:k]
                hits.append(int(np.argmax(gains[:, 0])) in proposed)
                regrets.append(gains[:, 0].max() - gains[proposed, 0].max())
                if name != "first gains":
                    known.record(t, table.ids[proposed], gains[proposed])
            out[(name, k)] = (hits, regrets)
    return out


def run(args: argparse.Namespace) -> str:
    if min(args.num_images, *args.top, *args.ig_steps) < 1 or args.regions < 2:
        raise InputError("--num-images, --top and --ig-steps must be ≥ 1 and --regions ≥ 2")
    torch.manual_seed(0)
    net, info = load_or_train_default(None, device="cpu", arch=args.model)
    scorer = build_scorer(net, "cpu")
    divider = RegionDivider(DivisionConfig("slico", num_regions=args.regions), (IMAGE_SIZE, IMAGE_SIZE))
    list_path = write_eval_set(paths.home() / "datasets" / "shapes", n=max(args.num_images, 20))
    items = read_eval_list(list_path)[: args.num_images]
    images = []
    for item in items:
        photo = load_image_rgb(list_path.parent / item.path)
        images.append((image_tensor(photo), torch.from_numpy(divider(photo, item)), item.label))
    output_dir = Path(args.output_dir or paths.explanations_dir() / "ranking_probe")
    ranker_path, _ = train_benchmark_ranker(scorer, divider, output_dir / f"ranker-{args.model}-N{args.regions}.pt")
    model = Ranker.load(ranker_path)
    records, _ = record_runs(scorer, images, WEIGHTS)
    results: dict[tuple[str, int], tuple[list, list]] = {}
    progress = Progress(len(records), "ranking probe")
    for (image, labels, target), record in zip(images, records):
        for key, (hits, regrets) in _stale_rankings(record, model, args.top).items():
            results.setdefault(key, ([], []))[0].extend(hits)
            results[key][1].extend(regrets)
        for steps in args.ig_steps:
            for t in range(1, len(record.steps)):
                table = record.steps[t]
                gains = step_gains(table, record.unit)[:, 0]
                rank = path_ig(scorer, image.float(), labels.long(), table.chosen, target, steps)[table.ids]
                for k in args.top:
                    proposed = np.argsort(-rank, kind="stable")[:k]
                    entry = results.setdefault((f"path IG, {steps} steps", k), ([], []))
                    entry[0].append(int(np.argmax(gains)) in proposed)
                    entry[1].append(gains.max() - gains[proposed].max())
        progress.update()
    progress.close()
    ratio = backward_ratio(scorer, 2 * max(args.ig_steps))
    lines = [f"**{args.model} (held-out accuracy {info['val_accuracy']:.3f}), SLICO ≈{args.regions} regions "
             f"(mean {np.mean([len(r.steps[0].ids) for r in records]):.1f}), {len(records)} images, "
             f"{sum(len(r.steps) - 1 for r in records):,} steps along exact greedy's path; backward / forward "
             f"{ratio:.2f} (a batch of {2 * max(args.ig_steps)}, this machine)**", "",
             "| ranking | k | forward-equivalents / step | recall@k | regret@k (mean) | regret@k (90th pct) |",
             "|---|---|---|---|---|---|"]
    for (name, k), (hits, regrets) in results.items():
        cost = 2 * k + (2 * int(name.split(", ")[1].split()[0]) * (1 + ratio) if name.startswith("path IG") else 0)
        lines.append(f"| {name} | {k} | {cost:.1f} | {np.mean(hits):.1%} | {np.mean(regrets):.3f} "
                     f"| {np.percentile(regrets, 90):.3f} |")
    text = "\n".join(lines)
    atomic_write_text(output_dir / f"{args.model}-N{args.regions}.md", text + "\n")
    print(text, flush=True)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: run(args) and 0)


if __name__ == "__main__":
    sys.exit(main())
