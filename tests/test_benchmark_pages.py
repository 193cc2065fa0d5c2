"""docs/benchmarks.md is generated: the committed page is exactly what its fragments render to,
every fragment was made by the command its table names today, and measuring runs that command."""
from __future__ import annotations

import re

import pytest

from submodular_attribution.apps import benchmark_pages as pages


def test_committed_page_is_rendered_from_its_fragments():
    assert pages.PAGE.read_text() == pages.render(pages.read_fragments())


def test_every_fragment_comes_from_its_tables_current_command():
    fragments = pages.read_fragments()
    assert set(fragments) <= set(pages.BY_NAME)
    for name, fragment in fragments.items():
        assert fragment["command"] == pages.BY_NAME[name].command, f"{name}: rerun --only {name}"
        assert fragment["output"].strip(), name


def test_render_shows_command_machine_and_output():
    fragment = {"name": "demo", "command": pages.BY_NAME["demo"].command, "date": "2026-01-02", "seconds": 3,
                "machine": {"cpu": "Some CPU", "cores": 2, "gpu": None, "torch": "9.9", "python": "3.11.7",
                            "os": "Linux"}, "output": "| a | b |\n|---|---|\n| 1 | 2 |\n"}
    text = pages.render({"demo": fragment})
    assert "python -m submodular_attribution.apps.demo" in text
    assert "Measured 2026-01-02 on Some CPU, 2 cores; torch 9.9" in text and "| 1 | 2 |" in text
    assert f"Not measured yet: `{pages.BY_NAME['engine'].command}`" in text


def test_measure_runs_the_command_under_a_fresh_home(monkeypatch):
    table = pages.Table("t", "t", "t", "submodular_attribution.apps.embedded")
    got = pages.measure(table)
    assert got["command"] == "python -m submodular_attribution.apps.embedded"
    assert "shapes_cnn" in got["output"] and got["machine"]["torch"]


def test_unknown_table_is_refused(capsys):
    with pytest.raises(SystemExit):
        pages.main(["--only", "nope"])
    assert "invalid choice" in capsys.readouterr().err


def test_readme_demo_table_is_the_measured_one():
    """The README's quick-start table is the demo fragment's (seconds aside: they depend on the machine)."""
    def rows(text):
        start = text.index("Shapes benchmark:")
        lines = text[start:].splitlines()[:8]
        return [re.sub(r"\s+\d+\.\d\d(\s+\d+%)$", r" \1", line) for line in lines]  # drop s/img
    readme = (pages.ROOT / "README.md").read_text()
    assert rows(readme) == rows(pages.read_fragments()["demo"]["output"])


def test_frontier_figures_read_the_search_tables_back():
    """The page's frontier figures are drawn from the fragments: the table's Δ columns read back exactly."""
    from evals.benchmark_search import format_table
    from submodular_attribution.apps.benchmark_pages import frontier_figure, search_table_entries

    entry = {"forwards": 400.0, "seconds": 1.0, "pure_seconds": 0.5, "overhead": 2.0, "insertion_auc": 0.9,
             "deletion_auc": 0.1, "pointing": 0.5, "n_insertion": 10, "n_deletion": 20, "bar": False}
    table = [{**entry, "search": "greedy", "ratio": 1.0, "d_insertion": 0.0, "d_insertion_se": 0.0,
              "d_insertion_worst": 0.0, "d_deletion": 0.0, "d_deletion_se": 0.0, "d_deletion_worst": 0.0},
             {**entry, "search": "fast", "ratio": 0.185, "d_insertion": -0.0135, "d_insertion_se": 0.0058,
              "d_insertion_worst": -0.1, "d_deletion": 0.0104, "d_deletion_se": 0.0106, "d_deletion_worst": 0.2}]
    title, rows = search_table_entries(format_table("cnn, SLICO ≈49 regions (mean 45.2), 40 images", table))
    assert title == "cnn, SLICO ≈49 regions (mean 45.2), 40 images"
    assert rows[1] == {"search": "fast", "ratio": 0.185, "regions": 45.2, "d_insertion": -0.0135,
                       "d_insertion_se": 0.0058, "d_deletion": 0.0104, "d_deletion_se": 0.0106}
    page = pages.PAGE.read_text()
    for fragment in sorted(pages.FRAGMENTS.glob("search-*.json")):
        figure = frontier_figure(fragment.stem)
        assert (pages.DOCS / figure).is_file() and f"]({figure})" in page
