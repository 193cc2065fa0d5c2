"""Speed of the search engine: forward passes, images/s, and overhead over the bare model.

    python -m submodular_attribution.benchmark_engine [--device cuda] [--batch-size 64] [--regions 49 100] \\
        [--searches greedy bidirectional fast] [--images-at-once 1 8] [--precision fp32 bf16] [--channels-last]

On a random-init default CNN (the weights do not change the cost) and a square grid of N
regions, for each search, precision and number of images advancing together: forward passes
per image, seconds per image, images/s through the engine (composition + forward + scoring),
and the overhead: the engine's seconds over the bare model's for the same number of images in
full batches of the same precision (1.00 = no overhead); the engine's own share: its wall time
over the time spent inside the model in the same run (1.00 = every second in the model; drift
of the machine cannot move it, as both sides are measured together); and the fill: images per
model call over the batch size (1.00 = every forward batch full); and ms/step, the seconds per
image over N. Each row times the bare model and the engine alternately ``--repeats`` times and
reports the medians, so that a drifting machine affects both sides of the overhead alike.
``--model null`` (a mean and a linear layer: a model that costs nothing) leaves only the
engine's own cost: its ms/step is the composition, scoring and bookkeeping of one search step,
the time a forward of real work must outweigh.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch
from torch import nn

from .common.checks import check_int
from .common.errors import InputError, run_reporting_input_errors
from .engine import PRECISIONS, forward
from .models import ClassifierScorer, model_input_space, resolve_device
from .objective import Weights
from .regions import grid_division
from .search import explain_many
from .search_methods import SEARCHES
from .shapes import IMAGE_SIZE, ShapesCNN, build_scorer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_model_rate(scorer, batch_size: int, repeats: int = 20, precision: str = "fp32",
                    size: int = IMAGE_SIZE, trials: int = 3) -> float:
    """Images/s of the scorer alone on random full batches of size×size images (after a warm-up);
    the median of ``trials`` timings, since CPU clocks drift by ±10 % between runs."""
    images = torch.rand(batch_size, 3, size, size, device=scorer.device)
    forward(scorer, images, precision)
    rates = []
    for _ in range(trials):
        _sync(scorer.device)
        start = time.perf_counter()
        for _ in range(repeats):
            forward(scorer, images, precision)
        _sync(scorer.device)
        rates.append(repeats * batch_size / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2]


class CountingScorer:
    """A scorer that counts its forward calls and images, for the mean batch fill (images per
    call over the batch size; 1.0: every forward full), and times them: ``model_seconds`` is the
    time inside the model, so the engine's own share of a run is measured in the same run (CUDA
    events on a GPU, so timing adds no synchronisation). Everything else is the wrapped scorer's.
    Build it with :func:`counting_scorer`, which keeps a scorer's input-space path."""

    def __init__(self, scorer) -> None:
        self.scorer, self.calls, self.images = scorer, 0, 0
        self._seconds, self._events = 0.0, []

    def __getattr__(self, name: str):
        return getattr(self.__dict__["scorer"], name)

    def _run(self, model, images: torch.Tensor):
        self.calls += 1
        self.images += images.shape[0]
        if images.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = model(images)
            end.record()
            self._events.append((start, end))
            return out
        start = time.perf_counter()
        out = model(images)
        self._seconds += time.perf_counter() - start
        return out

    def __call__(self, images: torch.Tensor):
        return self._run(self.scorer, images)

    @property
    def model_seconds(self) -> float:
        """Seconds inside the model so far (waits for the device)."""
        if self._events:
            self._events[-1][1].synchronize()
            self._seconds += sum(a.elapsed_time(b) for a, b in self._events) / 1000
            self._events = []
        return self._seconds

    def fill(self, batch_size: int) -> float:
        return self.images / (self.calls * batch_size) if self.calls else 0.0


class _CountingInputScorer(CountingScorer):
    """:class:`CountingScorer` of a scorer the engine feeds in its input space."""

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        return self.scorer.model_input(images)

    def score_input(self, x: torch.Tensor):
        return self._run(self.scorer.score_input, x)


def counting_scorer(scorer) -> CountingScorer:
    """A :class:`CountingScorer` around ``scorer`` that the engine uses as it would ``scorer``."""
    return (_CountingInputScorer if model_input_space(scorer) else CountingScorer)(scorer)


class NullNet(nn.Module):
    """A classifier that costs nothing: the mean colour, then a linear layer (1000 classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 1000)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _scorer(model: str, device: torch.device):
    """(scorer, input side) of a random-initialised benchmark model."""
    if model == "shapes":
        return build_scorer(ShapesCNN(), device), IMAGE_SIZE
    if model == "null":
        return ClassifierScorer(NullNet(), device=device, num_classes=1000), IMAGE_SIZE
    if model.startswith("classifier:"):
        from .adapters.classifier import build_classifier, wrap_classifier

        arch = model.split(":", 1)[1]
        net, prep = build_classifier(arch, 1000)
        return wrap_classifier(arch, net, prep, 1000, device), int(prep["input_size"][0])
    if model.startswith("open_clip:"):
        import open_clip

        from .adapters.clip import OPENAI_MEAN, OPENAI_STD, ZeroShotCLIPScorer

        name = model.split(":", 1)[1]
        if name not in open_clip.list_models():
            raise InputError(f"--model {model}: open_clip has no model {name!r} (open_clip.list_models() names them)")
        net = open_clip.create_model(name, pretrained=None)
        prototypes = torch.randn(1000, int(net.visual.output_dim))
        side = int(getattr(net.visual, "image_size", (224, 224))[0])
        return ZeroShotCLIPScorer(net, prototypes, OPENAI_MEAN, OPENAI_STD, device, logit_scale=100.0), side
    raise InputError(f"--model {model}: use shapes, null, classifier:<arch> or open_clip:<name>")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--regions", type=int, nargs="+", default=[49, 100], help="square numbers")
    parser.add_argument("--searches", nargs="+", default=["greedy", "bidirectional", "fast"], choices=tuple(SEARCHES))
    parser.add_argument("--images-at-once", type=int, nargs="+", default=[1, 8], help="images advancing together")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=tuple(PRECISIONS))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--model", default="shapes",
                        help="shapes (the default CNN, 112²), null (a model that costs nothing, 112²: the engine's "
                             "own cost), classifier:<arch> (a torchvision or timm classifier, e.g. classifier:resnet50, "
                             "random init, 1000 classes, at its input size) or open_clip:<name> (e.g. "
                             "open_clip:ViT-L-14, random init, 1000 random class prototypes, 224²): the cost does "
                             "not depend on the weights")
    parser.add_argument("--repeats", type=int, default=3,
                        help="time each row this many times, bare model and engine alternately; report the medians")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if any(n < 1 or math.isqrt(n) ** 2 != n for n in args.regions):
        parser.error(f"--regions: square numbers (a side×side grid), got {' '.join(map(str, args.regions))}")
    for flag, values in (("--batch-size", [args.batch_size]), ("--images-at-once", args.images_at_once),
                         ("--repeats", [args.repeats])):
        try:
            check_int(flag, min(values), 1)
        except ValueError as err:
            parser.error(str(err))
    return run_reporting_input_errors(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    scorer, size = _scorer(args.model, device)
    if args.channels_last or args.compile:
        scorer.tune(channels_last=args.channels_last, compile=args.compile)
    weights = Weights(0.0, 0.05, 1.0, 1.0)  # all four terms, so the N embeddings are counted too
    image = torch.rand(3, size, size)
    print(f"{args.model} at {size}², device {device}, batch {args.batch_size}, channels-last {args.channels_last}, "
          f"compile {args.compile}")
    print(f"{'N':>4} {'search':<14} {'precision':<9} {'K':>3} {'forwards':>9} {'s/image':>8} {'images/s':>9} "
          f"{'overhead':>9} {'engine':>7} {'fill':>5} {'ms/step':>8}")
    for precision in args.precision:
        bare = bare_model_rate(scorer, args.batch_size, precision=precision, size=size)
        print(f"{'':>4} bare model, {precision}: {bare:,.0f} images/s")
        for n in args.regions:
            side = math.isqrt(n)
            labels = torch.from_numpy(grid_division(size, size, side, side))
            for search in args.searches:
                for k in args.images_at_once:
                    bares, times, engine_shares, forwards = [], [], [], 0
                    for _ in range(args.repeats):  # alternately, so that drift affects both alike
                        bares.append(bare_model_rate(scorer, args.batch_size, precision=precision, size=size))
                        counting = counting_scorer(scorer)
                        _sync(device)
                        start = time.perf_counter()
                        traces = explain_many(counting, [(image, labels, 0, i) for i in range(k)], weights,
                                              search=search, batch_size=args.batch_size, precision=precision)
                        _sync(device)
                        wall = time.perf_counter() - start
                        times.append(wall / k)
                        engine_shares.append(wall / counting.model_seconds)
                        forwards = traces[0].forward_passes
                    bare, seconds = statistics.median(bares), statistics.median(times)
                    rate = forwards / seconds
                    print(f"{side * side:>4} {search:<14} {precision:<9} {k:>3} {forwards:>9,} {seconds:>8.3f} "
                          f"{rate:>9,.0f} {bare / rate:>8.2f}× {statistics.median(engine_shares):>6.2f}× "
                          f"{counting.fill(args.batch_size):>5.2f} {1000 * seconds / (side * side):>8.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
