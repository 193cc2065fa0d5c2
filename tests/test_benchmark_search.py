"""The search benchmark: one table per setting, every search on the same images."""
import json

from evals import benchmark_search
from submodular_attribution.search_methods import SEARCHES


def test_default_searches_are_the_registry():
    assert benchmark_search.DEFAULT_SEARCHES == tuple(SEARCHES)
    assert benchmark_search.get_args_parser().parse_args([]).searches == ",".join(SEARCHES)


def test_tables_and_results(tmp_path, trained_shapes, capsys):
    ckpt_dir = trained_shapes[0].parent
    argv = ["--models", "cnn", "--regions", "9", "--num-images", "2", "--searches", "random,greedy,fast,lazy",
            "--device", "cpu", "--ckpt-dir", str(ckpt_dir), "--data-dir", str(tmp_path / "data"),
            "--output-dir", str(tmp_path / "out")]
    assert benchmark_search.main(argv) == 0
    out = capsys.readouterr().out
    table = (tmp_path / "out" / "cnn-N9.md").read_text()
    assert table in out + "\n"
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == ["search", "greedy", "random", "fast", "lazy"]  # greedy first: the reference
    results = json.loads((tmp_path / "out" / "results.json").read_text())["cnn-N9"]
    by_search = {e["search"]: e for e in results["table"]}
    assert by_search["greedy"]["ratio"] == 1.0 and by_search["greedy"]["d_insertion"] == 0.0
    assert by_search["random"]["forwards"] < by_search["fast"]["forwards"] < by_search["greedy"]["forwards"]
    for entry in results["table"]:  # Δ mean is the mean of the per-image differences to greedy
        per_image = results["per_image"][entry["search"]]
        greedy = results["per_image"]["greedy"]
        diffs = [a["insertion_auc"] - b["insertion_auc"] for a, b in zip(per_image, greedy)]
        assert abs(entry["d_insertion"] - sum(diffs) / 2) < 1e-12
        assert abs(entry["d_insertion_se"] - abs(diffs[0] - diffs[1]) / 2) < 1e-12  # two images: s.e. = |d1 − d2| / 2
        assert entry["overhead"] > 0 and 0 <= entry["pointing"] <= 1 and 0 < entry["fill"] <= 1
        assert entry["engine"] >= 1  # wall time includes the time inside the model
    assert (tmp_path / "out" / "cnn-N9-frontier.png").stat().st_size > 0
    assert by_search["random"]["bar"] is False  # the random control loses far more than 0.005


def test_images_for_se_and_the_bar():
    import numpy as np

    # sd 0.02 → (0.02 / 0.002)² = 100 images for a standard error of 0.002
    assert benchmark_search.images_for_se(np.array([0.02, -0.02, 0.02, -0.02]) * np.sqrt(3 / 4)) == 100
    assert benchmark_search.images_for_se(np.array([0.1])) is None
    entry = {"ratio": 0.19, "d_insertion": -0.004, "d_deletion": 0.005}
    assert benchmark_search.meets_bar(entry, regions=49)
    assert not benchmark_search.meets_bar({**entry, "d_deletion": 0.0051}, regions=49)
    assert not benchmark_search.meets_bar({**entry, "d_insertion": -0.0051}, regions=49)
    assert not benchmark_search.meets_bar(entry, regions=100)  # 19 % is over the 10 % bar at N ≈ 100
    assert benchmark_search.meets_bar({**entry, "ratio": 0.1}, regions=100)


def test_the_amortised_search_is_charged_its_rankers_training(tmp_path, trained_shapes):
    """Its ranker is trained first on images of their own, and each image's forwards include
    the training's forwards over 1,000 (what is left is the image's own, a whole number)."""
    from submodular_attribution.search_ranker import Ranker
    argv = ["--models", "cnn", "--regions", "9", "--num-images", "2", "--searches", "greedy,amortised",
            "--device", "cpu", "--ckpt-dir", str(trained_shapes[0].parent), "--data-dir", str(tmp_path / "data"),
            "--output-dir", str(tmp_path / "out")]
    assert benchmark_search.main(argv) == 0
    training = Ranker.load(tmp_path / "out" / "ranker-cnn-N9.pt").meta
    assert training["images"] == benchmark_search.RANKER_IMAGES and training["forwards"] > 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())["cnn-N9"]
    assert f"8 other images, {training['forwards']:,} forwards" in results["title"]
    for row in results["per_image"]["amortised"]:
        own = row["forwards"] - training["forwards"] / benchmark_search.AMORTISED_OVER
        assert abs(own - round(own)) < 1e-9 and own > 2
