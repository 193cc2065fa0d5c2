"""The method benchmark's registries: a metric is one entry in evals.saliency_metrics.METRICS, a
method one entry in evals.benchmark.METHODS (SMDL and the baselines alike)."""
import dataclasses
import json

import numpy as np
import pytest

from baseline_attribution.base import REGISTRY
from evals import benchmark, saliency_metrics
from evals.saliency_metrics import METRICS, Metric
from submodular_attribution.shapes import write_eval_set


@pytest.fixture(scope="module")
def shapes_list(tmp_path_factory):
    return write_eval_set(tmp_path_factory.mktemp("shapes"), n=2)


def _argv(shapes_list, trained_shapes, out, methods, images=2):
    return ["--model", "default", "--methods", methods, "--eval-list", str(shapes_list), "--num-images", str(images),
            "--checkpoint", str(trained_shapes[0]), "--search", "random", "--output-dir", str(out), "--device", "cpu"]


def test_every_entry_states_its_column_and_direction():
    assert list(METRICS)[:2] == ["insertion_auc", "deletion_auc"]
    for name, metric in METRICS.items():
        assert metric.header == f"{metric.label} {'↑' if metric.higher_is_better else '↓'}", name
        assert metric.summary and "\n" not in metric.summary, name
    assert METRICS["deletion_auc"].header == "Deletion AUC ↓" and METRICS["energy"].needs_mask


def test_both_aucs_share_one_insertion_deletion_call(monkeypatch):
    calls = []
    monkeypatch.setattr(saliency_metrics, "insertion_deletion",
                        lambda *args: calls.append(args) or {"auc_ins": 0.75, "auc_del": 0.25})
    inputs = saliency_metrics.MetricInputs(None, None, 0, np.zeros((2, 2)))
    assert METRICS["insertion_auc"].compute(inputs) == 0.75 and METRICS["deletion_auc"].compute(inputs) == 0.25
    assert len(calls) == 1


def test_a_registered_metric_is_a_column_and_a_row_field(tmp_path, shapes_list, trained_shapes, monkeypatch):
    seen = []

    def constant(inputs):
        seen.append((inputs.saliency.shape, tuple(inputs.image.shape), inputs.mask is not None))
        return 0.25

    monkeypatch.setitem(METRICS, "constant", Metric(constant, "Constant", False, "always 0.25"))
    assert benchmark.main(_argv(shapes_list, trained_shapes, tmp_path, "smdl,gradcam")) == 0
    header, _, *lines = (tmp_path / "table.md").read_text().splitlines()
    assert header.endswith("| Energy in mask ↑ | Constant ↓ | s/img | forwards/img |")
    assert [line.split("|")[-4].strip() for line in lines] == ["0.2500 ± 0.0000"] * 2  # smdl, gradcam
    assert "constant_mean" in (tmp_path / "table.csv").read_text().splitlines()[0]
    rows = [json.loads(p.read_text()) for p in (tmp_path / "rows").rglob("*.json") if p.name != "config.json"]
    assert sorted(r["method"] for r in rows) == ["gradcam", "gradcam", "smdl", "smdl"]
    assert all(r["constant"] == 0.25 for r in rows)
    assert seen == [((112, 112), (3, 112, 112), True)] * 4  # every map, whatever method made it


def test_methods_come_from_the_registries():
    assert list(benchmark.METHODS) == ["smdl", *sorted(REGISTRY)]
    assert all(isinstance(method, benchmark.Method) for method in benchmark.METHODS.values())
    assert "from smdl, " in benchmark.get_args_parser(["--model", "default"]).format_help().replace("\n", " ")


def test_smdl_goes_through_the_same_path_as_a_baseline(tmp_path, shapes_list, trained_shapes, monkeypatch):
    built, explained = [], []

    def spy(name, method):
        def explainer(ctx):
            built.append((name, type(ctx).__name__))
            inner = method.explainer(ctx)

            def explain(image, x, item, target):
                saliency, forwards = inner(image, x, item, target)
                explained.append((name, np.shape(saliency), type(forwards), forwards > 0))
                return saliency, forwards

            return explain

        return dataclasses.replace(method, explainer=explainer)

    for name in ("smdl", "gradcam"):
        monkeypatch.setitem(benchmark.METHODS, name, spy(name, benchmark.METHODS[name]))
    assert benchmark.main(_argv(shapes_list, trained_shapes, tmp_path, "smdl,gradcam", images=1)) == 0
    assert built == [("smdl", "RunContext"), ("gradcam", "RunContext")]  # once per run, from the same context
    assert explained == [("smdl", (112, 112), int, True), ("gradcam", (112, 112), int, True)]
