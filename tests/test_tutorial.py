"""Every tutorial notebook runs top to bottom in a real kernel (nbclient, this Python's ipykernel),
against a fresh ``$SMDL_HOME`` that holds only the session's trained default CNN, so every
notebook that wants real weights takes its fallback; then its outputs must say what it promises.

The kernel is started by ``tutorial/run_all.py`` (:func:`execute`), the same harness that saves
the notebooks with their outputs. A failing cell fails the test with the cell and its traceback.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import shutil
import sys
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "tutorial"
NOTEBOOKS = sorted(TUTORIAL.glob("*.ipynb"))
NUMBER = r"(-?\d+\.\d+)"
NO_FIGURES = ("smdl_multigpu",)  # a walk-through of commands and files

# What a tutorial may import: the repository's public API, and the libraries a reader has anyway. Internals
# (submodular_attribution.common, .records, .engine, .search, .regions, visualization.overlay, ...) are off limits.
PUBLIC_MODULES = {
    "submodular_attribution",         # import submodular_attribution as smdl: explain, explain_many, ... (__all__)
    "submodular_attribution.shapes",  # the embedded default benchmark and model
    "submodular_attribution.audio",   # the embedded audio benchmark and model (__all__)
    "visualization",                  # figures (__all__)
    "baseline_attribution",           # the baselines' REGISTRY, attribute, attribution_model
}
PUBLIC_PACKAGES = ("evals",)  # the evaluation layer: metric functions and command lines (docs/evaluation.md)
LIBRARIES = {"numpy", "torch", "torchvision", "matplotlib", "PIL", "IPython", "open_clip"} | set(sys.stdlib_module_names)


def _load_harness():
    spec = importlib.util.spec_from_file_location("tutorial_run_all", TUTORIAL / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_all = _load_harness()


@pytest.fixture(scope="module")
def home(tmp_path_factory, trained_shapes):
    """$SMDL_HOME for the notebooks: ckpt/shapes_cnn.pt from the session's trained CNN, nothing else."""
    folder = tmp_path_factory.mktemp("smdl_home")
    (folder / "ckpt").mkdir()
    shutil.copy(trained_shapes[0], folder / "ckpt" / "shapes_cnn.pt")
    return folder


def _text(nb) -> str:
    """Printed text and plain-text results of every code cell, in order."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output:
                parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def _figures(nb) -> int:
    return sum("image/png" in output.get("data", {}) for cell in nb.cells for output in cell.get("outputs", []))


def _floats(pattern: str, text: str) -> list[tuple[float, ...]]:
    return [tuple(float(v) for v in (m if isinstance(m, tuple) else (m,))) for m in re.findall(pattern, text)]


def _in_unit_interval(values) -> bool:
    return all(0.0 <= v <= 1.0 for row in values for v in row)


# --------------------------------------------------------------------------- what each notebook promises


def check_quickstart(text, nb, home):
    ((insertion, deletion),) = _floats(rf"Insertion AUC {NUMBER}, Deletion AUC {NUMBER}", text)
    assert 0.5 < insertion <= 1 and 0 <= deletion < insertion
    assert (home / "explanation_results" / "tutorial" / "smdl_quickstart.png").stat().st_size > 0
    assert _figures(nb) == 1


def check_own_classifier(text, nb, home):
    assert "resnet101-imagenet.pth is not in ckpt/: the default shapes CNN" in text  # the fallback, said
    aucs = _floats(rf"insertion AUC {NUMBER}, deletion AUC {NUMBER}", text)
    assert len(aucs) == 3 and _in_unit_interval(aucs)  # explain, then explain_many of 2 images
    assert aucs[0] == aucs[1]  # explain and explain_many agree on the first image
    assert all(insertion > deletion for insertion, deletion in aucs)  # a trained model
    ((score,),) = _floats(rf"Insertion AUC Score: {NUMBER}", text)  # the evaluation read the saved files
    assert score == pytest.approx((aucs[1][0] + aucs[2][0]) / 2, abs=1e-4)
    assert len(list((home / "explanation_results" / "tutorial" / "own_classifier" / "json").rglob("*.json"))) == 2
    assert _figures(nb) == 1


def check_clip_imagenet(text, nb, home):
    assert "RANDOM-INITIALISED TINY CLIP" in text and "not its numbers" in text
    rows = _floats(rf"p\(full image\) {NUMBER}, insertion AUC {NUMBER}, deletion AUC {NUMBER}", text)
    assert len(rows) == 2 and _in_unit_interval(rows)
    assert "1000 classes" in text and "tabby cat" in text
    assert list((home / "ckpt" / "semantic_features").glob("*.pt"))  # the text prototypes were cached
    assert _figures(nb) == 1


def check_sam_regions(text, nb, home):
    assert "RANDOM-INITIALISED TINY SAM" in text
    maps = sorted((home / "datasets" / "sam_masks" / "tutorial" / "vit_tiny").rglob("*.npy"))
    assert len(maps) == 2
    for path in maps:  # a division: labels exactly 0..N−1, N ≥ 2
        labels = np.load(path)
        assert labels.shape == (112, 112) and labels.max() >= 1
        assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    explained = re.findall(rf"(\d+) regions, insertion AUC {NUMBER}, deletion AUC {NUMBER}", text)
    assert sorted(int(n) for n, _, _ in explained) == sorted(int(np.load(path).max()) + 1 for path in maps)
    assert _in_unit_interval([(float(i), float(d)) for _, i, d in explained])
    results = home / "submodular_results" / "tutorial-sam" / "vit_tiny"
    assert len(list((results / "json").rglob("*.json"))) == 2  # saved, and read back by the evaluation:
    assert _in_unit_interval(_floats(rf"Insertion AUC Score: {NUMBER}", text) + _floats(rf"Deletion AUC Score: {NUMBER}", text))
    assert _figures(nb) == 1


def check_baselines_metrics(text, nb, home):
    rows = {}
    for name in ("gradcam", "ig", "rise", "smdl"):
        (row,) = _floats(rf"\n *{re.escape(name)} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER}", "\n" + text)
        rows[name] = row
        insertion, deletion, mufidelity, sds, pointing = row
        assert _in_unit_interval([(insertion, deletion, pointing)]) and -1 <= mufidelity <= 1 and -1 <= sds <= 1
    assert rows["smdl"][0] > rows["smdl"][1]  # SMDL's insertion AUC above its deletion AUC
    assert (home / "explanation_results" / "tutorial" / "baselines_side_by_side.png").stat().st_size > 0
    assert _figures(nb) == 1


def check_error_analysis(text, nb, home):
    ((accuracy,),) = _floats(rf"accuracy: {NUMBER} \(", text)
    assert 0.5 < accuracy < 1  # the trained CNN misclassifies a few of the 120 images
    picked = re.findall(r": true (\w+) \(p [\d.]+\), predicted (\w+) \(p [\d.]+\)", text)
    assert len(picked) == 3 and picked[0][0] != picked[0][1]  # the lowest true-class probability is an error
    assert "highest confidence" in text
    rows = _floats(rf"p\(true class \| whole image\) {NUMBER}; best within 25% {NUMBER}, 50% {NUMBER}, "
                   rf"75% {NUMBER}, 100% {NUMBER}", text)
    assert len(rows) == 3 and _in_unit_interval(rows)
    for whole, *best in rows:
        assert best == sorted(best)  # a larger budget never lowers the best confidence
        assert best[-1] >= whole - 1e-3  # all regions together are the whole image
    assert _figures(nb) == 1


def check_multigpu(text, nb, home):
    assert text.count("same order True, same rank map True") == 4 and "False" not in text
    assert "(rank 1 of 2)" in text and "2 provenance lines" in text
    assert text.count("2 of 2 images already done") == 2  # the rerun explained nothing


def _row(name: str, count: int, text: str) -> tuple[float, ...]:
    """The ``count`` numbers of the one table row that starts with ``name``."""
    (row,) = _floats(rf"\n *{re.escape(name)}" + rf" +{NUMBER}" * count + r" *\n", "\n" + text + "\n")
    return row


def check_cub(text, nb, home):
    assert "cub-resnet101.pth is not in ckpt/: a RANDOM-INITIALISED ResNet-18 with a 200-class head" in text
    assert "not its numbers" in text
    rows = re.findall(rf"(\w+): (\d+) regions \((\d+) in the label map\), insertion AUC {NUMBER}, "
                      rf"deletion AUC {NUMBER}, (\d+) forward passes", text)
    assert [row[0] for row in rows] == ["slico", "seeds", "grid"]
    for division, n, labels, insertion, deletion, forwards in rows:
        n = int(n)
        assert n == int(labels) and 2 <= n <= 16  # the label map holds exactly the regions ordered
        assert int(forwards) == n * (n + 1)       # exact greedy: every candidate inserted and deleted, each step
        assert _in_unit_interval([(float(insertion), float(deletion))])
    assert int(rows[2][1]) == 16                  # grid: 4 × 4 cells of the 64 × 64 stand-in input
    (target,) = re.findall(r"explained: class (\d+) \(", text)
    assert 0 <= int(target) < 200
    for name in ("SMDL (slico)", "SMDL (seeds)", "SMDL (grid)", "gradcam"):
        insertion, deletion, sds = _row(name, 3, text)
        assert _in_unit_interval([(insertion, deletion)]) and -1 <= sds <= 1
    assert (home / "explanation_results" / "tutorial" / "cub_divisions.png").stat().st_size > 0
    assert _figures(nb) == 2


def check_quilt(text, nb, home):
    assert "QuiltNet-B-32.bin is not in ckpt/: a RANDOM-INITIALISED TINY CLIP" in text and "not its numbers" in text
    classes = ("lung adenocarcinoma", "benign lung tissue", "lung squamous cell carcinoma")
    probs = [float(p) for p in re.findall(rf"p\((?:{'|'.join(classes)})\) = {NUMBER}", text)]
    assert len(probs) == 3 and sum(probs) == pytest.approx(1.0, abs=2e-4)
    rows = re.findall(rf"({'|'.join(classes)}): p\(full tile\) {NUMBER}, (\d+) regions, insertion AUC {NUMBER}, "
                      rf"deletion AUC {NUMBER}", text)
    assert [row[0] for row in rows] == list(classes)  # one explanation per class
    assert [float(row[1]) for row in rows] == pytest.approx(probs, abs=1.5e-4)  # the search's full-tile score
    assert len({row[2] for row in rows}) == 1 and int(rows[0][2]) >= 2  # one division of the tile, every class
    insertions, deletions = [float(row[3]) for row in rows], [float(row[4]) for row in rows]
    assert _in_unit_interval([insertions, deletions])
    for name in ("smdl", "ig"):
        insertion, deletion, mufidelity = _row(name, 3, text)
        assert _in_unit_interval([(insertion, deletion)]) and -1 <= mufidelity <= 1
    ((ins,),), ((dele,),) = _floats(rf"Insertion AUC Score: {NUMBER}", text), _floats(rf"Deletion AUC Score: {NUMBER}", text)
    assert ins == pytest.approx(np.mean(insertions), abs=1e-4) and dele == pytest.approx(np.mean(deletions), abs=1e-4)
    assert len(list((home / "submodular_results" / "tutorial-quilt" / "json").rglob("*.json"))) == 3
    assert _figures(nb) == 2


def check_imagebind(text, nb, home):
    assert "imagebind_huge.pth is not in ckpt/: a RANDOM-INITIALISED TINY CLIP" in text
    assert "not ImageBind's network or its numbers" in text
    probs = dict(re.findall(r"(?:^|, )([a-z ]+) (\d\.\d{3})", text.split("template(s) per class")[0].splitlines()[-1]))
    assert len(probs) == 8 and sum(map(float, probs.values())) == pytest.approx(1.0, abs=4e-3)
    (explained,) = re.findall(r"explaining: (.+)", text)
    assert float(probs[explained]) == max(map(float, probs.values()))  # TARGET None: the prediction
    rows = {search: (int(n), float(i), float(d), int(f)) for search, n, i, d, f in re.findall(
        rf"(greedy|bidirectional): (\d+) regions, insertion AUC {NUMBER}, deletion AUC {NUMBER}, (\d+) forward passes", text)}
    (n, *_, greedy), (m, *_, bidirectional) = rows["greedy"], rows["bidirectional"]
    assert n == m >= 2 and greedy == n * (n + 1) and bidirectional < greedy  # LIMA needs fewer forward passes
    assert _in_unit_interval([row[1:3] for row in rows.values()])
    assert _in_unit_interval([_row(name, 4, text) for name in ("SMDL greedy", "SMDL bidirectional", "rise")])
    assert _figures(nb) == 2


def check_languagebind(text, nb, home):
    assert "LanguageBind_Image/ is not in ckpt/: a RANDOM-INITIALISED TINY CLIP" in text
    assert "not LanguageBind's network or its numbers" in text and "1000 classes" in text
    rows = re.findall(rf"(tabby cat|espresso): p\(full image\) {NUMBER}, (\d+) regions, insertion AUC {NUMBER}, "
                      rf"deletion AUC {NUMBER}", text)
    assert [row[0] for row in rows] == ["tabby cat", "espresso"]
    aucs = [(float(i), float(d)) for _, _, _, i, d in rows]
    assert _in_unit_interval(aucs) and all(int(n) >= 2 for _, _, n, _, _ in rows)
    ((insertion, deletion),) = _floats(rf"2 images: mean insertion AUC {NUMBER}, mean deletion AUC {NUMBER}", text)
    assert insertion == pytest.approx(np.mean([a[0] for a in aucs]), abs=1e-4)  # the saved files, read back
    assert deletion == pytest.approx(np.mean([a[1] for a in aucs]), abs=1e-4)
    figures = home / "explanation_results" / "tutorial" / "languagebind"
    assert "3 files: explanations/281/chelsea the cat.png, explanations/967/coffee.png, mean_curves.png" in text
    assert all((figures / name).stat().st_size > 0 for name in ("explanations/281/chelsea the cat.png", "mean_curves.png"))
    table = re.findall(rf"(chelsea the cat|coffee) +(smdl|occlusion) +{NUMBER} +{NUMBER}\n", text)
    assert [row[:2] for row in table] == [(image, method) for image in ("chelsea the cat", "coffee")
                                          for method in ("smdl", "occlusion")]
    assert _in_unit_interval([(float(i), float(d)) for _, _, i, d in table])
    assert _figures(nb) == 2


def check_vggsound_audio(text, nb, home):
    ((accuracy,),) = _floats(rf"held-out accuracy {NUMBER}", text)
    assert accuracy > 0.9  # the shipped audio CNN, not a stand-in
    rows = re.findall(rf"(\w+): (\d+) regions of 20 × 20 px, insertion AUC {NUMBER}, deletion AUC {NUMBER}, "
                      rf"(\d+) forward passes", text)
    assert [row[0] for row in rows] == ["steady_tone", "up_chirp"]
    for _, n, insertion, deletion, forwards in rows:
        assert int(n) == 16 and int(forwards) == 16 * 17  # a 4 × 4 grid of the 80 × 80 spectrogram, exact greedy
        assert 0 <= float(deletion) < float(insertion) <= 1  # a trained model
    pointing = re.findall(rf"\w+: hit (\d), chance {NUMBER}, top-10% recall {NUMBER}", text)
    assert [hit for hit, _, _ in pointing] == ["1", "1"]  # both first patches hold event bins (known for these clips)
    assert all(0 < float(chance) < 1 and 0 <= float(recall) <= 1 for _, chance, recall in pointing)
    table = re.findall(rf"(steady_tone|up_chirp) +(smdl|ig) +{NUMBER} +{NUMBER} +([01])\n", text)
    assert [row[:2] for row in table] == [(clip, method) for clip in ("steady_tone", "up_chirp") for method in ("smdl", "ig")]
    assert _in_unit_interval([(float(i), float(d)) for _, _, i, d, _ in table])
    assert all(float(i) > float(d) for _, method, i, d, _ in table if method == "smdl")  # SMDL's order, by evals
    assert "ImageBind on VGGSound skipped" in text  # no weights, no package, no list
    assert (home / "explanation_results" / "tutorial" / "audio_maps.png").stat().st_size > 0
    assert _figures(nb) == 3


CHECKS = {
    "smdl_quickstart": check_quickstart,
    "smdl_own_classifier": check_own_classifier,
    "smdl_clip_imagenet": check_clip_imagenet,
    "smdl_sam_regions": check_sam_regions,
    "smdl_baselines_metrics": check_baselines_metrics,
    "smdl_error_analysis": check_error_analysis,
    "smdl_multigpu": check_multigpu,
    "smdl_cub": check_cub,
    "smdl_quilt": check_quilt,
    "smdl_imagebind": check_imagebind,
    "smdl_languagebind": check_languagebind,
    "smdl_vggsound_audio": check_vggsound_audio,
}


def _ours(module: str) -> bool:
    return module.split(".")[0] in {"submodular_attribution", "visualization", "baseline_attribution", "evals",
                                     "utils", "tests", "SAM_mask_generate"}


def _public(module: str) -> bool:
    return module in PUBLIC_MODULES or module.split(".")[0] in PUBLIC_PACKAGES


def _public_names(module: str) -> set[str]:
    """A module's ``__all__``; without one, its names that are not private, not modules, and not
    imported from outside it (``LoadedResult`` in an evals module is not the evals module's)."""
    loaded = importlib.import_module(module)
    if hasattr(loaded, "__all__"):
        return set(loaded.__all__)
    return {name for name, value in vars(loaded).items() if not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and (getattr(value, "__module__", None) or module).startswith(module)}


def private_uses(source: str) -> list[str]:
    """What a cell imports, or reaches through an imported module, that is not public."""
    tree = ast.parse(source)
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module = alias.name
                if _ours(module) and not _public(module):
                    found.append(f"import {module}")
                elif not _ours(module) and module.split(".")[0] not in LIBRARIES:
                    found.append(f"import {module} (not a listed library)")
                elif _ours(module):
                    aliases[alias.asname or module.split(".")[0]] = module if alias.asname else module.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or (_ours(module) and not _public(module)):
                found.append(f"from {module} import ...")
            elif not _ours(module) and module.split(".")[0] not in LIBRARIES:
                found.append(f"from {module} import ... (not a listed library)")
            elif _ours(module):
                names = _public_names(module)
                found += [f"from {module} import {a.name}" for a in node.names if a.name not in names]
    for node in ast.walk(tree):  # smdl.<name>: only what the module exports
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            module = aliases[node.value.id]
            if _public(module) and node.attr not in _public_names(module):
                found.append(f"{node.value.id}.{node.attr}")
    return found


def test_private_uses_are_found():
    assert private_uses("import submodular_attribution as smdl\nsmdl.explain\nimport numpy, torch.nn") == []
    assert private_uses("from submodular_attribution.common.lists import read_eval_list") == \
        ["from submodular_attribution.common.lists import ..."]
    assert private_uses("from submodular_attribution import search") == ["from submodular_attribution import search"]
    assert private_uses("import visualization\nvisualization.overlay.region_borders") == ["visualization.overlay"]
    assert private_uses("import utils") == ["import utils"]
    assert private_uses("import sklearn") == ["import sklearn (not a listed library)"]
    assert private_uses("from baseline_attribution import base") == ["from baseline_attribution import base"]
    assert private_uses("from evals.saliency_metrics import mufidelity, _rank, LoadedResult") == \
        ["from evals.saliency_metrics import _rank", "from evals.saliency_metrics import LoadedResult"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_uses_only_the_public_api(path):
    """Tutorials teach the public API: ``smdl.explain``/``explain_many``, ``visualization``, the default
    benchmark, the baselines' registry and the evaluation's functions and commands; nothing private."""
    nb = nbformat.read(path, as_version=4)
    found = {i: uses for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             for uses in [private_uses(cell.source)] if uses}
    assert not found, f"{path.name}: cell → private imports {found}"
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert "smdl.explain" in code or path.stem in NO_FIGURES  # explains through the API (multigpu: the scripts)


# --------------------------------------------------------------------------- tests


def test_every_notebook_is_checked():
    assert NOTEBOOKS and sorted(p.stem for p in NOTEBOOKS) == sorted(CHECKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_a_kernel(path, home):
    before = sorted(p.name for p in TUTORIAL.iterdir())
    nb = run_all.execute(path, home=home)
    CHECKS[path.stem](_text(nb), nb, home)
    assert sorted(p.name for p in TUTORIAL.iterdir()) == before  # everything went under $SMDL_HOME


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_as_saved(path):
    """Configuration first (plain constants, no heavy imports); saved with outputs (and a figure) when it runs
    on the default model, without them when it needs weights; no errors in what was saved."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    config = ast.parse(code[0].source)
    imported = {alias.name for node in ast.walk(config) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])}
    assert imported <= {"os", "sys", "pathlib"}, imported
    assert "DEVICE" in code[0].source
    outputs = [output for cell in code for output in cell.outputs]
    if path.stem in run_all.NEEDS_WEIGHTS:
        assert not outputs and all(cell.execution_count is None for cell in code)
    else:
        assert all(cell.execution_count is not None for cell in code), "run tutorial/run_all.py to save its outputs"
        assert _figures(nb) >= (path.stem not in NO_FIGURES)
        assert not [output for output in outputs if output.output_type == "error"]
        assert str(ROOT) not in _text(nb)  # paths print relative to the checkout
