"""The embedded default end to end: the shapes script on held-out images with the trained CNN.

SMDL's orderings must beat a random ordering of the same regions by a wide margin, and the
first region must usually lie on the object (the ground truth is known here)."""
import numpy as np

from evals.auc import summarize_run
from evals.localization import first_regions_hit
from submodular_attribution import smdl_explanation_shapes as shapes_script
from submodular_attribution.common.results import iter_results
from submodular_attribution.shapes import load_mask, write_eval_set


def test_shapes_script_beats_random_ordering(tmp_path, trained_shapes):
    checkpoint, _, _ = trained_shapes
    eval_list = write_eval_set(tmp_path / "shapes", n=6)
    summaries, pointing = {}, {}
    for search in ("greedy", "bidirectional", "random"):
        assert shapes_script.main(["--eval-list", str(eval_list), "--checkpoint", str(checkpoint), "--search", search,
                                   "--save-dir", str(tmp_path / "out"), "--device", "cpu"]) == 0
        (run_dir,) = [p for p in (tmp_path / "out").iterdir() if p.name.endswith(
            {"greedy": "5.0", "bidirectional": "pending-samples-8", "random": "seed-0"}[search])]
        summaries[search] = summarize_run(run_dir)
        pointing[search] = np.mean([first_regions_hit(r.npy, load_mask(eval_list.parent / r.record["image"]))
                                    for r in iter_results(run_dir)])
    for search in ("greedy", "bidirectional"):
        assert summaries[search]["num_images"] == 6
        assert summaries[search]["insertion_auc"] > summaries["random"]["insertion_auc"] + 0.2
        assert summaries[search]["deletion_auc"] < summaries["random"]["deletion_auc"] - 0.2
        assert pointing[search] >= 0.5 > pointing["random"]
    assert summaries["bidirectional"]["forward_passes"] < 0.75 * summaries["greedy"]["forward_passes"]
