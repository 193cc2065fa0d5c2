"""Every search on the same images and divisions: forward passes, speed and faithfulness.

    python -m evals.benchmark_search [--models cnn vit resnet] [--regions 49 100] [--num-images 20]

On the embedded default benchmark (its CNN, and a small ViT and a ResNet-18 trained on the same
data; all shipped in ``ckpt/embedded/``), with SLICO divisions of about N regions at 112×112 and the
published single-modal λ (0.01, 0, 20, 5), each search orders the same images. One table per
(model, N):

* forwards/img — model forward passes per image (2 references, the search, any prefix scored
  for the curves); ratio — to exact greedy's;
* s/img — wall time per image (division excluded; the images stream through the engine with
  ``--images-at-once`` in flight, as on the command line, and each takes its share of the
  time); pure s — the same forwards through the bare scorer (normalisation and model) in full
  batches of random images, its rate timed just before each search; overhead — s/img ÷ pure s;
  engine — the run's wall time over its time inside the model, measured in the same run, so
  the machine's drift cannot move it; fill — forward images per model call over the batch size
  (1.00: every batch full; every call counts, the rounds that hold the images' reference images
  included);
* Insertion / Deletion AUC — area-based, as ``evals.eval_AUC_faithfulness``, mean over images;
  Δ mean ± s.e. and Δ worst — per-image difference to exact greedy: its mean with the standard
  error of that mean (paired over the same images), and the worst image (lowest for insertion,
  highest for deletion);
* amortised — its per-model ranker is trained first (:func:`train_benchmark_ranker`) on
  RANKER_IMAGES images of a split of their own, and its forwards/img include that training's
  forwards divided by AMORTISED_OVER (1,000 images served);
* pointing — share of images whose first region lies mostly on the object;
* images for s.e. 0.002 — how many images each Δ would need for a standard error of 0.002,
  (sd / 0.002)² from the per-image spread seen;
* bar — whether the search meets the bar of a quick search (:func:`meets_bar`: ≤ 20 % of
  greedy's forwards, 10 % from N ≈ 75 up, with mean ΔIns ≥ −0.005 and mean ΔDel ≤ +0.005).

``--models`` are the shipped CNN (search options are chosen on it) and two architectures held
out from those choices: the hybrid ViT and a quarter-width ResNet-18.

Writes ``<output-dir>/<model>-N<n>.md`` per table, ``<model>-N<n>-frontier.png`` (cost against
ΔIns and ΔDel per search) and ``results.json``; prints the tables.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import torch

from submodular_attribution.benchmark_engine import bare_model_rate, counting_scorer
from submodular_attribution.common import paths
from submodular_attribution.common.atomic import atomic_write_json, atomic_write_text
from submodular_attribution.common.curves import image_aucs
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.images import image_tensor, load_image_rgb
from submodular_attribution.common.lists import read_eval_list
from submodular_attribution.common.progress import Progress
from submodular_attribution.common.results import LoadedResult, cumulative_areas, rank_map
from submodular_attribution.engine import PRECISIONS
from submodular_attribution.models import resolve_device
from submodular_attribution.objective import Weights
from submodular_attribution.regions import DivisionConfig, RegionDivider
from submodular_attribution.search import explain_stream
from submodular_attribution.search_methods import SEARCHES
from submodular_attribution.shapes import ARCHITECTURES, IMAGE_SIZE, build_scorer, load_mask, load_or_train_default
from submodular_attribution.shapes import write_eval_set
from submodular_attribution.shapes.data import make_split
from submodular_attribution.ranker_training import train_ranker
from submodular_attribution.search_ranker import Ranker

from .localization import first_regions_hit

WEIGHTS = Weights(0.01, 0.0, 20.0, 5.0)
RANKER_IMAGES, RANKER_SEED = 8, 4321  # the amortised search's training images: a split of their own
AMORTISED_OVER = 1000  # images a ranker serves: its training forwards are spread over them
DEFAULT_SEARCHES = tuple(SEARCHES)  # every registered search, in registry order


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evals.benchmark_search", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES,
                        help="default-benchmark models (shipped in ckpt/embedded/)")
    parser.add_argument("--regions", type=int, nargs="+", default=[49, 100], help="about N SLICO regions")
    parser.add_argument("--searches", default=",".join(DEFAULT_SEARCHES),
                        help=f"comma-separated, from {', '.join(SEARCHES)}; greedy is the reference")
    parser.add_argument("--num-images", type=int, default=20, help="images of the default evaluation set")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images-at-once", type=int, default=8,
                        help="images whose searches advance together, sharing forward batches (as the CLI's)")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32")
    parser.add_argument("--output-dir", default=None, help="default: explanation_results/benchmark_search")
    parser.add_argument("--ckpt-dir", default=None, help="a folder of retrained models (default: the shipped ckpt/embedded/)")
    parser.add_argument("--data-dir", default=None, help="where the images are generated (default: datasets/shapes)")
    return parser


def train_benchmark_ranker(scorer, divider: RegionDivider, path: Path) -> tuple[Path, int]:
    """The amortised search's ranker for ``scorer`` at this division, trained on RANKER_IMAGES
    shapes images of their own (seed RANKER_SEED, none of the evaluation set), kept in ``path``
    (reused when there); → (path, the forwards its training took)."""
    if not path.is_file():
        images, labels, _ = make_split(RANKER_IMAGES, RANKER_SEED)
        named = [SimpleNamespace(path=f"ranker_{k:03d}.png") for k in range(len(images))]
        train = [(image_tensor(image), torch.from_numpy(divider(image, item)), int(label))
                 for image, label, item in zip(images, labels, named)]
        train_ranker(scorer, train, WEIGHTS).save(path)
    return path, int(Ranker.load(path).meta["forwards"])


def _per_image(trace, labels: np.ndarray, image_path: Path) -> dict:
    ranks = rank_map(labels, trace.order)
    record = {"consistency_score": trace.consistency, "collaboration_score": trace.collaboration,
              "org_score": trace.org_score, "baseline_score": trace.baseline_score}
    insertion, deletion = image_aucs(LoadedResult(image_path, record, cumulative_areas(ranks), ranks))
    mask = load_mask(image_path)
    return {"insertion_auc": insertion, "deletion_auc": deletion, "forwards": trace.forward_passes,
            "seconds": trace.seconds, "pointing": float(first_regions_hit(ranks, mask)) if mask is not None else None,
            "regions": len(trace.order)}


def run_setting(scorer, images: list[tuple[Path, np.ndarray, np.ndarray, int]], searches: Sequence[str],
                batch_size: int, precision: str, desc: str,
                at_once: int = 8, options: dict | None = None,
                training: dict[str, int] | None = None) -> tuple[dict[str, list[dict]], dict[str, dict[str, float]]]:
    """Per search, one dict per image (AUCs, forwards, seconds, pointing), and its run's figures:
    the bare scorer's rate timed just before it (``bare``), the mean fill of its forward batches
    and the engine share (wall time over time inside the model). The images stream through
    ``at_once`` in flight, as on the command line's ``--images-at-once``; each image's seconds
    are its share of the time. ``training``: per search, forwards spent before the run (a
    ranker's), added to each image's forwards spread over AMORTISED_OVER images."""
    rows: dict[str, list[dict]] = {}
    runs: dict[str, dict[str, float]] = {}
    for search in searches:
        bare_rate = bare_model_rate(scorer, batch_size, precision=precision)
        progress = Progress(len(images), f"{desc} {search}")
        per_image: dict[int, dict] = {}
        counting = counting_scorer(scorer)
        jobs = ((k, (image_tensor(image), torch.from_numpy(labels), label, k))
                for k, (_, image, labels, label) in enumerate(images))
        for k, trace in explain_stream(counting, jobs, WEIGHTS, search=search, options=options, batch_size=batch_size,
                                       precision=precision, at_once=at_once):
            if isinstance(trace, Exception):
                raise trace
            path, _, labels, _ = images[k]
            per_image[k] = {**_per_image(trace, labels, path), "pure_seconds": trace.forward_passes / bare_rate}
            per_image[k]["forwards"] += (training or {}).get(search, 0) / AMORTISED_OVER
            progress.update()
        progress.close()
        rows[search] = [per_image[k] for k in range(len(images))]
        wall = sum(r["seconds"] for r in rows[search])  # the images' shares add up to the run's time
        runs[search] = {"bare": bare_rate, "fill": counting.fill(batch_size), "engine": wall / counting.model_seconds}
    return rows, runs


def _standard_error(differences: np.ndarray) -> float:
    """Standard error of a mean of paired per-image differences (0 for one image)."""
    return float(differences.std(ddof=1) / np.sqrt(len(differences))) if len(differences) > 1 else 0.0


#: The bar of a quick search (issue 24): at most this share of greedy's forwards (N ≈ 49; half at N ≈ 100)
#: with mean ΔIns ≥ −TOLERANCE and mean ΔDel ≤ +TOLERANCE; each mean wanted to a standard error ≤ TARGET_SE.
COST_BAR, TOLERANCE, TARGET_SE = 0.2, 0.005, 0.002


def images_for_se(differences: np.ndarray, target: float = TARGET_SE) -> int | None:
    """Images a paired mean difference needs for a standard error ≤ ``target``, from the sample's spread."""
    if len(differences) < 2:
        return None
    return int(np.ceil(round((differences.std(ddof=1) / target) ** 2, 9)))


def meets_bar(entry: dict, regions: float) -> bool:
    """Cost ≤ COST_BAR of greedy's (half of it from N ≈ 75 up) and both mean Δ within TOLERANCE."""
    cost_bar = COST_BAR if regions < 75 else COST_BAR / 2
    return entry["ratio"] <= cost_bar and entry["d_insertion"] >= -TOLERANCE and entry["d_deletion"] <= TOLERANCE


def summarize(rows: dict[str, list[dict]], runs: dict[str, dict[str, float]] | None = None) -> list[dict]:
    reference = rows.get("greedy")
    table = []
    for search, per_image in rows.items():
        get = lambda key: np.array([r[key] for r in per_image], dtype=float)  # noqa: E731
        entry = {"search": search, "forwards": float(get("forwards").mean()), "seconds": float(get("seconds").mean()),
                 "pure_seconds": float(get("pure_seconds").mean()), "insertion_auc": float(get("insertion_auc").mean()),
                 "deletion_auc": float(get("deletion_auc").mean()), "regions": float(get("regions").mean())}
        entry["overhead"] = entry["seconds"] / entry["pure_seconds"]
        entry["fill"] = (runs or {}).get(search, {}).get("fill")
        entry["engine"] = (runs or {}).get(search, {}).get("engine")
        pointing = [r["pointing"] for r in per_image if r["pointing"] is not None]
        entry["pointing"] = float(np.mean(pointing)) if pointing else None
        if reference is not None:
            ins = get("insertion_auc") - np.array([r["insertion_auc"] for r in reference])
            dele = get("deletion_auc") - np.array([r["deletion_auc"] for r in reference])
            entry.update(ratio=entry["forwards"] / float(np.mean([r["forwards"] for r in reference])),
                         d_insertion=float(ins.mean()), d_insertion_worst=float(ins.min()),
                         d_insertion_se=_standard_error(ins),
                         d_deletion=float(dele.mean()), d_deletion_worst=float(dele.max()),
                         d_deletion_se=_standard_error(dele), n_insertion=images_for_se(ins),
                         n_deletion=images_for_se(dele))
            entry["bar"] = meets_bar(entry, entry["regions"])
        table.append(entry)
    return table


def format_table(title: str, table: list[dict]) -> str:
    lines = [f"**{title}**", "",
             "| search | forwards/img | ratio | s/img | pure s | overhead | engine | fill | Insertion AUC ↑ "
             "| Δ mean ± s.e. | Δ worst | Deletion AUC ↓ | Δ mean ± s.e. | Δ worst | pointing ↑ "
             "| images for s.e. 0.002 (ins / del) | bar |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in table:
        d = (lambda k: f"{e[k]:+.4f}" if k in e else "–")  # noqa: E731
        mean = (lambda k: f"{e[k]:+.4f} ± {e[k + '_se']:.4f}" if k in e else "–")  # noqa: E731
        ratio = f"{e['ratio']:.3f}" if "ratio" in e else "–"
        pointing = f"{e['pointing']:.0%}" if e["pointing"] is not None else "–"
        fill = f"{e['fill']:.2f}" if e.get("fill") is not None else "–"
        engine = f"{e['engine']:.2f}" if e.get("engine") is not None else "–"
        lines.append(f"| {e['search']} | {e['forwards']:,.0f} | {ratio} | {e['seconds']:.3f} | {e['pure_seconds']:.3f} "
                     f"| {e['overhead']:.2f} | {engine} | {fill} | {e['insertion_auc']:.4f} | {mean('d_insertion')} | {d('d_insertion_worst')} "
                     f"| {e['deletion_auc']:.4f} | {mean('d_deletion')} | {d('d_deletion_worst')} | {pointing} "
                     f"| {_count(e.get('n_insertion'))} / {_count(e.get('n_deletion'))} "
                     f"| {'–' if 'bar' not in e or e['search'] == 'greedy' else ('yes' if e['bar'] else 'no')} |")
    return "\n".join(lines)


def _count(n: int | None) -> str:
    return "–" if not n else f"{n:,}"


def save_frontier(title: str, table: list[dict], path: Path) -> None:
    """Cost (share of greedy's forwards) against mean ΔIns and ΔDel ± s.e., one point per search,
    with the bar's tolerances and cost drawn in."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    from submodular_attribution.common.atomic import atomic_write

    # greedy is the origin; the random control lies far off and would squash the rest
    entries = [e for e in table if "ratio" in e and e["search"] not in ("greedy", "random")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharex=True)
    cost_bar = COST_BAR if table[0]["regions"] < 75 else COST_BAR / 2
    for ax, key, label, sign in ((axes[0], "d_insertion", "Δ Insertion AUC (higher is better)", -1),
                                 (axes[1], "d_deletion", "Δ Deletion AUC (lower is better)", 1)):
        for e in entries:
            ax.errorbar(e["ratio"], e[key], yerr=e[key + "_se"], fmt="o", capsize=3)
            ax.annotate(e["search"], (e["ratio"], e[key]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axhline(sign * TOLERANCE, color="tab:red", ls="--", lw=0.8, label=f"tolerance {sign * TOLERANCE:+.3f}")
        ax.axvline(cost_bar, color="tab:green", ls=":", lw=0.8, label=f"cost bar {cost_bar:.0%}")
        ax.set_xscale("log")
        for axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
            axis(FuncFormatter(lambda x, _: f"{x:.0%}"))
        ax.set_xlabel("forward passes, share of exact greedy's")
        ax.set_ylabel(label)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("\n".join(textwrap.wrap(title + " (random control not drawn)", 130)), fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110))
    plt.close(fig)


def run(args: argparse.Namespace) -> dict:
    searches = [s.strip() for s in args.searches.split(",") if s.strip()]
    unknown = [s for s in searches if s not in SEARCHES]
    if unknown or not searches:
        raise InputError(f"--searches: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(SEARCHES)}")
    if "greedy" in searches:  # the reference first
        searches = ["greedy"] + [s for s in searches if s != "greedy"]
    if min(args.num_images, args.batch_size, args.images_at_once) < 1 or min(args.regions) < 2:
        raise InputError("--num-images, --batch-size and --images-at-once must be ≥ 1 and --regions ≥ 2")
    device = resolve_device(args.device)
    output_dir = Path(args.output_dir or paths.explanations_dir() / "benchmark_search")
    list_path = write_eval_set(Path(args.data_dir) if args.data_dir else paths.home() / "datasets" / "shapes",
                               n=max(args.num_images, 20))
    items = read_eval_list(list_path)[: args.num_images]
    photos = [(list_path.parent / item.path, load_image_rgb(list_path.parent / item.path), item.label)
              for item in items]
    results, tables = {}, []
    for arch in args.models:
        path = Path(args.ckpt_dir) / f"shapes_{arch}.pt" if args.ckpt_dir else None  # None: the shipped model
        net, info = load_or_train_default(path, device=device, arch=arch)
        scorer = build_scorer(net, device)
        for n in args.regions:
            divider = RegionDivider(DivisionConfig("slico", num_regions=n), (IMAGE_SIZE, IMAGE_SIZE))
            images = [(path, image, divider(image, item), label) for (path, image, label), item in zip(photos, items)]
            options, training = {}, {}
            if "amortised" in searches:
                ranker, training["amortised"] = train_benchmark_ranker(scorer, divider, output_dir / f"ranker-{arch}-N{n}.pt")
                options["ranker"] = str(ranker)
            rows, runs = run_setting(scorer, images, searches, args.batch_size, args.precision, f"{arch} N≈{n}",
                                     args.images_at_once, options, training)
            table = summarize(rows, runs)
            bare = float(np.median([r["bare"] for r in runs.values()]))
            title = (f"{arch} (held-out accuracy {info['val_accuracy']:.3f}), SLICO ≈{n} regions "
                     f"(mean {table[0]['regions']:.1f}), {len(images)} images, {device.type}, batch {args.batch_size}, "
                     f"{args.precision}, {args.images_at_once} images at once, {torch.get_num_threads()} CPU threads, "
                     f"bare scorer {bare:,.0f} images/s (median over the searches)"
                     + (f"; amortised: its ranker's training ({RANKER_IMAGES} other images, "
                        f"{training['amortised']:,} forwards) is in its forwards, spread over "
                        f"{AMORTISED_OVER:,} images" if training else ""))
            text = format_table(title, table)
            atomic_write_text(output_dir / f"{arch}-N{n}.md", text + "\n")
            if "greedy" in rows and len(rows) > 1:
                save_frontier(title, table, output_dir / f"{arch}-N{n}-frontier.png")
            results[f"{arch}-N{n}"] = {"title": title, "table": table, "per_image": rows}
            tables.append(text)
            print("\n" + text, flush=True)
    atomic_write_json(output_dir / "results.json", results)
    print(f"\nWritten: {output_dir}/", file=sys.stderr)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    return run_reporting_input_errors(lambda: run(args) and 0)


if __name__ == "__main__":
    sys.exit(main())
