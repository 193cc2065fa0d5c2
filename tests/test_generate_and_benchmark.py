"""Baseline map generation (resumable), its use as an SMDL prior, and the method benchmark."""
import json
import os

import numpy as np
import pytest

from baseline_attribution import generate_explanation_maps as generate
from evals import benchmark
from submodular_attribution import smdl_explanation_shapes as shapes_script
from submodular_attribution.common.results import find_result_files, load_result
from submodular_attribution.shapes import write_eval_set


@pytest.fixture(scope="module")
def shapes_list(tmp_path_factory):
    return write_eval_set(tmp_path_factory.mktemp("shapes"), n=3)


def test_maps_resume_and_feed_the_prior_division(tmp_path, shapes_list, trained_shapes, capsys):
    checkpoint = str(trained_shapes[0])
    args = ["--method", "gradcam", "--model", "shapes", "--eval-list", str(shapes_list), "--checkpoint", checkpoint,
            "--save-dir", str(tmp_path / "maps"), "--device", "cpu"]
    assert generate.main(args) == 0
    maps = sorted((tmp_path / "maps").glob("*/*.npy"))
    assert len(maps) == 3 and np.load(maps[0]).shape == (112, 112)
    mtimes = [os.stat(m).st_mtime_ns for m in maps]
    assert generate.main(args) == 0 and [os.stat(m).st_mtime_ns for m in maps] == mtimes
    assert "3 of 3 maps already done" in capsys.readouterr().err

    assert shapes_script.main(["--eval-list", str(shapes_list), "--checkpoint", checkpoint, "--division", "prior",
                               "--prior-dir", str(tmp_path / "maps"), "--grid", "14", "--per-region", "4",
                               "--save-dir", str(tmp_path / "out"), "--device", "cpu", "--search", "random"]) == 0
    result = load_result(find_result_files(next((tmp_path / "out").iterdir()))[0])
    assert result.record["num_regions"] == 49  # 14×14 cells, 4 per region
    assert result.record["division"]["algorithm"] == "prior"


def test_generate_errors(tmp_path, shapes_list, trained_shapes, capsys):
    base = ["--model", "shapes", "--eval-list", str(shapes_list), "--checkpoint", str(trained_shapes[0]),
            "--save-dir", str(tmp_path / "m"), "--device", "cpu"]
    assert generate.main(["--method", "rise", "--option", "bogus", *base]) == 2
    assert "--option 'bogus': expected KEY=VALUE" in capsys.readouterr().err
    assert generate.main(["--method", "rise", "--option", "nonsense=3", *base]) == 2
    assert "--method rise:" in capsys.readouterr().err
    assert shapes_script.main(["--eval-list", str(shapes_list), "--division", "prior", "--device", "cpu"]) == 2
    assert "--division prior needs --prior-dir" in capsys.readouterr().err


def test_benchmark_table_and_resume(tmp_path, shapes_list, trained_shapes, capsys):
    args = ["--model", "default", "--methods", "smdl,gradcam,rise", "--eval-list", str(shapes_list),
            "--checkpoint", str(trained_shapes[0]), "--search", "bidirectional", "--output-dir", str(tmp_path),
            "--device", "cpu"]
    assert benchmark.main(args) == 0
    table = (tmp_path / "table.md").read_text().splitlines()
    assert table[0].startswith("| method | Insertion AUC ↑ | Deletion AUC ↓ | MuFidelity ↑ | SDS ↑ | Sensitivity-N ↑ | "
                               "DiffID ↑ | IncDel MoRF ↓ | IncDel LeRF ↑ | Pointing ↑ | Energy in mask ↑")
    assert [line.split("|")[1].strip() for line in table[2:]] == ["smdl", "gradcam", "rise"]
    assert (tmp_path / "table.csv").read_text().startswith("method,")
    assert (tmp_path / "mean_insertion_curves.png").stat().st_size > 0
    rows = sorted(p for p in (tmp_path / "rows").rglob("*.json") if p.name != "config.json")
    assert len(rows) == 9
    mtimes = [os.stat(r).st_mtime_ns for r in rows]
    assert benchmark.main(args) == 0 and [os.stat(r).st_mtime_ns for r in rows] == mtimes
    capsys.readouterr()
    assert benchmark.main([*args, "--methods", "smdl,nope"]) == 2
    assert "--methods: unknown nope" in capsys.readouterr().err


def test_reference_methods_get_their_references(tmp_path, shapes_list, trained_shapes, capsys):
    base = ["--model", "shapes", "--eval-list", str(shapes_list), "--checkpoint", str(trained_shapes[0]),
            "--device", "cpu"]
    images = shapes_list.parent / "images"
    assert generate.main(["--method", "lpi", "--reference-folder", str(images), "--option", "num_centres=2",
                          "--option", "n_alphas=2", "--save-dir", str(tmp_path / "lpi"), *base]) == 0
    assert len(list((tmp_path / "lpi").glob("*/*.npy"))) == 3
    assert generate.main(["--method", "ig2", "--option", "steps=4", "--option", "n_refs=2",
                          "--save-dir", str(tmp_path / "ig2"), *base]) == 0  # other-class images of the list
    assert np.isfinite(np.load(next((tmp_path / "ig2").glob("*/*.npy")))).all()
    assert generate.main(["--method", "eg", "--save-dir", str(tmp_path / "eg"), *base]) == 2
    assert "--method eg needs --reference-folder" in capsys.readouterr().err


def test_generator_help_has_only_its_own_flags(capsys):
    with pytest.raises(SystemExit):
        generate.main(["--model", "shapes", "--method", "rise", "--help"])
    out = capsys.readouterr().out
    for smdl_only in ("--lambda1", "--search", "--sam-masks", "--division", "--pending-samples"):
        assert smdl_only not in out
    assert "explanation_results/<model>/<method>" in out and "--strict" in out


def test_generator_records_a_bad_image_and_goes_on(tmp_path, shapes_list, trained_shapes, capsys):
    lines = shapes_list.read_text().splitlines()
    bad_list = shapes_list.parent / "with_missing.txt"
    bad_list.write_text("\n".join([lines[0], "images/missing.png 0", *lines[1:]]) + "\n")
    args = ["--method", "gradcam", "--model", "shapes", "--eval-list", str(bad_list),
            "--checkpoint", str(trained_shapes[0]), "--save-dir", str(tmp_path), "--device", "cpu"]
    assert generate.main(args) == 1
    assert len(list(tmp_path.glob("*/*.npy"))) == 3
    assert "missing.png: image not found" in (tmp_path / "failures.jsonl").read_text()
    assert "images/missing.png" in capsys.readouterr().err


def test_benchmark_cache_follows_the_configuration(tmp_path, shapes_list, trained_shapes):
    args = ["--model", "default", "--methods", "smdl,rise", "--eval-list", str(shapes_list), "--num-images", "1",
            "--checkpoint", str(trained_shapes[0]), "--output-dir", str(tmp_path), "--device", "cpu",
            "--search", "random"]

    def folders(method):
        return sorted(p.name for p in (tmp_path / "rows" / method).iterdir())

    assert benchmark.main(args) == 0
    smdl_first, rise_first = folders("smdl"), folders("rise")
    assert len(smdl_first) == 1 and len(rise_first) == 1
    config = (tmp_path / "rows" / "smdl" / smdl_first[0] / "config.json").read_text()
    assert '"search": "random"' in config
    row = next(p for p in (tmp_path / "rows" / "smdl" / smdl_first[0]).rglob("*.json") if p.name != "config.json")
    stamp = os.stat(row).st_mtime_ns
    # another λ: SMDL's rows are recomputed in a new folder, the baseline's reused
    assert benchmark.main([*args, "--lambda3", "1"]) == 0
    assert len(folders("smdl")) == 2 and folders("rise") == rise_first
    assert os.stat(row).st_mtime_ns == stamp
    # another model flag changes every method's key
    assert benchmark.main([*args, "--seed", "1"]) == 0
    assert len(folders("smdl")) == 3 and len(folders("rise")) == 2
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 3


def test_rows_reused_from_other_code_are_noted(tmp_path, shapes_list, trained_shapes, capsys, monkeypatch):
    args = ["--model", "default", "--methods", "gradcam", "--eval-list", str(shapes_list),
            "--checkpoint", str(trained_shapes[0]), "--output-dir", str(tmp_path), "--device", "cpu"]
    monkeypatch.setattr(benchmark, "source_fingerprint", lambda: "old")
    assert benchmark.main(args) == 0 and "note:" not in capsys.readouterr().out
    row = next(p for p in (tmp_path / "rows").rglob("*.json") if p.name != "config.json")
    assert json.loads(row.read_text())["code"] == "old"
    assert benchmark.main(args) == 0 and "note:" not in capsys.readouterr().out  # same code: nothing to say
    monkeypatch.setattr(benchmark, "source_fingerprint", lambda: "new")
    assert benchmark.main(args) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and notes[0].startswith("note: gradcam: 3 of 3 rows were computed by other code (old; now new)")
    assert json.loads(row.read_text())["code"] == "old"  # reused, not recomputed
