"""Regenerate ``docs/benchmarks.md``: every measured table of the documentation, each from the
command written above it.

    python -m submodular_attribution.apps.benchmark_pages                 # every table (hours on 2 CPU cores)
    python -m submodular_attribution.apps.benchmark_pages --only demo engine   # some tables, the page rebuilt
    python -m submodular_attribution.apps.benchmark_pages --list          # the tables and their commands

Each table runs its command in a fresh process from the repository root, with results under a
temporary ``$SMDL_HOME`` (so nothing is reused from an earlier run), and its standard output is
kept in ``docs/benchmarks/<name>.json`` with the date, the machine, the torch version and the
command. The page is rebuilt from those files, so tables measured on different days or machines
each say where they come from. Forward passes and AUCs do not depend on the machine (the models
are the shipped ones); seconds do.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..common.atomic import atomic_write_json, atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGE = DOCS / "benchmarks.md"
FRAGMENTS = DOCS / "benchmarks"


@dataclass(frozen=True)
class Table:
    """One measured table: a title, what it shows, and the command (a module and its arguments)."""

    name: str
    title: str
    about: str
    module: str
    args: tuple[str, ...] = ()
    figures: tuple[tuple[str, str], ...] = ()  # (glob under $SMDL_HOME: the first match is copied, to docs/...)

    @property
    def command(self) -> str:
        return shlex.join(["python", "-m", self.module, *self.args])


_SEARCH_IMAGES = "40"
# Search options are chosen on the CNN only; these models are held out from every choice.
_HELD_OUT = {"vit": " (held out)", "resnet": " (ResNet-18 layout, held out)"}
TABLES: tuple[Table, ...] = (
    Table("demo", "`make demo`: the embedded default, five orderings and four methods",
          "The README's quick-start table: 20 held-out shapes images, the shipped CNN, SLICO ≈ 45 regions. "
          "The README's figure is the first image's explanation figure of this run.",
          "submodular_attribution.apps.demo",
          figures=(("submodular_results/shapes-demo/figures/*_[0-9][0-9][0-9].png", "figures/demo_explanation.png"),)),
    *(Table(f"search-{arch}-{n}", f"Every search: {arch.upper()}{_HELD_OUT.get(arch, '')}, N ≈ {n}",
            f"All registered searches on the first {_SEARCH_IMAGES} images of the default set, shipped "
            f"{arch.upper()}, SLICO ≈ {n} regions; Δ columns are paired differences to exact greedy "
            "(mean ± standard error over the images, and the worst image); 'images for s.e. 0.002' extrapolates "
            "from the spread seen how many images would pin each Δ to a standard error of 0.002; 'bar': cost ≤ "
            f"{'20' if n < 75 else '10'} % of greedy's with both mean Δ within 0.005 (it judges the means only: where a "
            "Δ's standard error is larger than 0.005, a 'yes' is no evidence). The figure: cost against each Δ "
            "(the frontier).",
            "evals.benchmark_search", ("--models", arch, "--regions", str(n), "--num-images", _SEARCH_IMAGES))
      for arch in ("cnn", "vit", "resnet") for n in (49, 100)),
    *(Table(f"ranking-probe-{arch}", f"Which ranking finds greedy's next region: {arch.upper()}{_HELD_OUT.get(arch, '')}, "
            "N ≈ 49",
            "Along exact greedy's path on the first 16 images of the default set, each ranking proposes k "
            "candidates per step from what a search would know there: recall@k is the share of steps whose "
            "greedy pick is among them, regret@k the gain (in average shares |F(V) − F(∅)|/N) lost by taking "
            "the best of them instead; the cost counts the k exact scores and the ranking's own forward and "
            "backward passes (a backward counted as the forwards its measured time equals). Exact greedy costs "
            "2(N − t) forwards at step t, about 45 per step here on average.",
            "evals.ranking_probe", ("--model", arch, "--regions", "49", "--num-images", "16"))
      for arch in ("cnn", "resnet")),
    Table("engine", "The engine's own cost",
          "Default CNN architecture (random init) on a square grid of N regions, batch 64, fp32.",
          "submodular_attribution.benchmark_engine",
          ("--searches", "greedy", "bidirectional", "staged", "fast", "--images-at-once", "1", "8")),
    Table("engine-null", "The engine's cost per search step (a model that costs nothing)",
          "`--model null`: only composition, scoring and the searches' bookkeeping remain.",
          "submodular_attribution.benchmark_engine",
          ("--model", "null", "--regions", "49", "--searches", "greedy", "staged", "fast", "--images-at-once", "8")),
    *(Table(f"speed-{label}", f"Speed option: {label}",
            "A random-init ResNet-18 at 224², 16 grid regions, `fast`, 8 images at once, batch 64.",
            "submodular_attribution.benchmark_engine",
            ("--model", "classifier:resnet18", "--regions", "16", "--searches", "fast", "--images-at-once", "8",
             *extra))
      for label, extra in (("fp32", ()), ("channels-last", ("--channels-last",)), ("compile", ("--compile",)),
                           ("bf16", ("--precision", "bf16")))),
    Table("detection", "Detection: SMDL and the baselines on the shapes detector",
          "The shipped shapes detector, 17 targets of the default detection list.",
          "evals.detection_benchmark"),
)
BY_NAME = {table.name: table for table in TABLES}


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "os": platform.platform()}


def measure(table: Table) -> dict:
    """Run ``table``'s command from the repository root under a fresh ``$SMDL_HOME``."""
    start = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="smdl-bench-") as home:
        env = {**os.environ, "SMDL_HOME": home, "PYTHONUNBUFFERED": "1"}
        done = subprocess.run([sys.executable, "-m", table.module, *table.args], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=None, text=True)
        for made, kept in table.figures if done.returncode == 0 else ():
            (DOCS / kept).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sorted(Path(home).glob(made))[0], DOCS / kept)
    if done.returncode != 0:
        raise SystemExit(f"error: {table.command} exited with {done.returncode}")
    seconds = (datetime.datetime.now(datetime.timezone.utc) - start).total_seconds()
    return {"name": table.name, "command": table.command, "date": start.strftime("%Y-%m-%d"),
            "seconds": round(seconds), "machine": machine(), "output": done.stdout.replace(home, "$SMDL_HOME")}


def render(fragments: dict[str, dict]) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `python -m submodular_attribution.apps.benchmark_pages` (do not edit by hand). Each "
             "table is the standard output of the command above it, run from the repository root on a fresh "
             "`$SMDL_HOME`; `--only NAME` reruns one. Forward passes and AUCs come from the shipped models and do "
             "not depend on the machine (to float rounding); seconds and images/s do.", ""]
    for table in TABLES:
        lines.append(f"- [{table.title.replace('`', '')}](#{table.name})")
    for table in TABLES:
        lines += ["", f'<a id="{table.name}"></a>', f"## {table.title}", "", table.about, ""]
        got = fragments.get(table.name)
        if got is None:
            lines += [f"Not measured yet: `{table.command}`."]
            continue
        m = got["machine"]
        where = m["gpu"] or f"{m['cpu']}, {m['cores']} cores"
        lines += [f"```bash\n{got['command']}\n```", "",
                  f"Measured {got['date']} on {where}; torch {m['torch']}, Python {m['python']}; "
                  f"{got['seconds']} s in all.", ""]
        output = got["output"].rstrip()
        # markdown tables print as they are; anything else stays verbatim
        lines += [output] if output.lstrip().startswith(("**", "|")) else ["```", output, "```"]
        if (DOCS / frontier_figure(table.name)).is_file():
            lines += ["", f"![the frontier of {table.name}]({frontier_figure(table.name)})"]
    return "\n".join(lines) + "\n"


def frontier_figure(name: str) -> str:
    """The page's figure of a search table, relative to docs/."""
    return f"figures/frontier-{name.removeprefix('search-')}.png"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def search_table_entries(output: str) -> tuple[str, list[dict]]:
    """The title and rows (search, ratio, Δ means and standard errors, regions) of a search
    table printed by evals.benchmark_search, read back from the fragment."""
    title = next(line.strip("*") for line in output.splitlines() if line.startswith("**"))
    regions = float(re.search(r"\(mean ([\d.]+)\)", title).group(1))
    rows = [line for line in output.splitlines() if line.startswith("| ") and "---" not in line]
    header, entries = _cells(rows[0]), []
    ins, dele = header.index("Insertion AUC ↑") + 1, header.index("Deletion AUC ↓") + 1
    for cells in map(_cells, rows[1:]):
        (d_ins, se_ins), (d_del, se_del) = (map(float, cells[i].split(" ± ")) for i in (ins, dele))
        entries.append({"search": cells[0], "ratio": float(cells[header.index("ratio")]), "regions": regions,
                        "d_insertion": d_ins, "d_insertion_se": se_ins, "d_deletion": d_del, "d_deletion_se": se_del})
    return title, entries


def draw_frontiers(fragments: dict[str, dict]) -> None:
    """docs/figures/frontier-<model>-<n>.png for every measured search table, from its fragment."""
    from evals.benchmark_search import save_frontier

    for name, fragment in fragments.items():
        if name.startswith("search-"):
            title, entries = search_table_entries(fragment["output"])
            save_frontier(title, entries, DOCS / frontier_figure(name))


def read_fragments() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(FRAGMENTS.glob("*.json"))}


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m submodular_attribution.apps.benchmark_pages",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=tuple(BY_NAME), help="rerun these tables only")
    parser.add_argument("--list", action="store_true", help="print the tables and their commands")
    parser.add_argument("--render", action="store_true", help="only rebuild the page from docs/benchmarks/*.json")
    return parser


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    if args.list:
        for table in TABLES:
            print(f"{table.name:<20} {table.command}")
        return 0
    if not args.render:
        for name in args.only or list(BY_NAME):
            print(f"[{name}] {BY_NAME[name].command}", file=sys.stderr, flush=True)
            atomic_write_json(FRAGMENTS / f"{name}.json", measure(BY_NAME[name]))
    fragments = read_fragments()
    draw_frontiers(fragments)
    atomic_write_text(PAGE, render(fragments))
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
