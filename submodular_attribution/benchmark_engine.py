"""Speed of the search engine: forward passes, images/s, and overhead over the bare model.

    python -m submodular_attribution.benchmark_engine [--device cuda] [--batch-size 64] [--regions 49 100]

On a random-init default CNN (the weights do not change the cost), for each region count N
(a square grid division) and each search, prints the forward passes per image, seconds per
image, images/s through the engine (composition + forward + scoring), and the ratio to the
bare model's images/s on same-size batches — the engine's overhead.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from .models import resolve_device
from .objective import Weights
from .regions import grid_division
from .search import explain
from .shapes import IMAGE_SIZE, ShapesCNN, build_scorer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_model_rate(scorer, batch_size: int, repeats: int = 20) -> float:
    """Images/s of the scorer alone on random batches (after a warm-up)."""
    images = torch.rand(batch_size, 3, IMAGE_SIZE, IMAGE_SIZE, device=scorer.device)
    with torch.inference_mode():
        scorer(images)
        _sync(scorer.device)
        start = time.perf_counter()
        for _ in range(repeats):
            scorer(images)
        _sync(scorer.device)
    return repeats * batch_size / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--regions", type=int, nargs="+", default=[49, 100], help="square numbers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    scorer = build_scorer(ShapesCNN(), device)
    weights = Weights(0.0, 0.05, 1.0, 1.0)  # all four terms, so the N embeddings are counted too
    image = torch.rand(3, IMAGE_SIZE, IMAGE_SIZE)
    bare = bare_model_rate(scorer, args.batch_size)
    print(f"device {device}, batch {args.batch_size}, bare model {bare:,.0f} images/s")
    print(f"{'N':>4} {'search':<14} {'forwards':>9} {'s/image':>8} {'images/s':>9} {'vs bare':>8}")
    for n in args.regions:
        side = math.isqrt(n)
        labels = torch.from_numpy(grid_division(IMAGE_SIZE, IMAGE_SIZE, side, side))
        counts = {}
        for search in ("greedy", "bidirectional"):
            _sync(device)
            start = time.perf_counter()
            trace = explain(scorer, image, labels, 0, weights, search=search, batch_size=args.batch_size)
            _sync(device)
            seconds = time.perf_counter() - start
            rate = trace.forward_passes / seconds
            counts[search] = trace.forward_passes
            print(f"{side * side:>4} {search:<14} {trace.forward_passes:>9,} {seconds:>8.2f} {rate:>9,.0f} "
                  f"{rate / bare:>7.0%}")
        print(f"{'':>4} greedy / bidirectional forward passes: {counts['greedy'] / counts['bidirectional']:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
