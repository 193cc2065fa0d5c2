"""Detection targets: IoU × score matching, target lists, the search on a hand-built detector,
the torchvision adapter, the front ends (tiny models, 2 default images)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from submodular_attribution.common.errors import InputError
from submodular_attribution.detection.matching import Detections, box_iou, match_scores
from submodular_attribution.detection.scorer import DetectionScorer
from submodular_attribution.detection.targets import (check_boxes, read_detection_list, read_grounding_list,
                                                      resolve_class, scale_box)
from submodular_attribution.objective import Weights
from submodular_attribution.search import explain_many

torch.set_num_threads(1)


# -- matching ------------------------------------------------------------------------------------

def test_box_iou_known_values():
    a = torch.tensor([[[0.0, 0, 10, 10], [5, 5, 15, 15], [20, 20, 20, 30]]])  # 1×3×4, the last one empty
    b = torch.tensor([[0.0, 0, 10, 10], [0, 0, 5, 10]])
    iou = box_iou(a, b)[0]
    assert iou.shape == (3, 2)
    assert iou[0, 0] == 1.0 and iou[0, 1] == pytest.approx(0.5)
    assert iou[1, 0] == pytest.approx(25 / 175)  # 5×5 overlap, 100 + 100 − 25 union
    assert iou[1, 1] == 0.0 and iou[2].abs().sum() == 0.0


def test_match_scores_takes_the_best_iou_times_class_score():
    # image 0: two detections; image 1: none (all-zero padding)
    boxes = torch.tensor([[[0.0, 0, 10, 10], [0, 0, 5, 10]], [[0.0, 0, 0, 0], [0, 0, 0, 0]]])
    scores = torch.zeros(2, 2, 3)
    scores[0, 0, 1] = 0.6  # box A is class 1 at 0.6
    scores[0, 1, 1] = 0.9  # box B (half of A) is class 1 at 0.9
    scores[0, 1, 2] = 0.4  # and class 2 at 0.4
    targets = torch.tensor([[0.0, 0, 10, 10], [0, 0, 5, 10], [0, 0, 10, 10]])
    queries = torch.tensor([1, 1, 2])
    out = match_scores(Detections(boxes, scores), targets, queries)
    # target 0 (A, class 1): max(1·0.6, 0.5·0.9) = 0.6; target 1 (B, class 1): max(0.5·0.6, 1·0.9) = 0.9;
    # target 2 (A, class 2): 0.5·0.4 = 0.2; image 1: no detections → 0
    assert out[0].tolist() == pytest.approx([0.6, 0.9, 0.2])
    assert out[1].tolist() == [0.0, 0.0, 0.0]


def test_from_labels_scores_only_the_assigned_class():
    det = Detections.from_labels([torch.tensor([[0.0, 0, 4, 4]]), torch.zeros(0, 4)],
                                 [torch.tensor([2]), torch.zeros(0, dtype=torch.long)],
                                 [torch.tensor([0.7]), torch.zeros(0)], num_queries=3)
    assert det.boxes.shape == (2, 1, 4) and det.scores[0, 0].tolist() == pytest.approx([0, 0, 0.7])
    assert det.scores[1].abs().sum() == 0
    out = match_scores(det, torch.tensor([[0.0, 0, 4, 4], [0.0, 0, 4, 4]]), torch.tensor([2, 1]))
    assert out.tolist() == [pytest.approx([0.7, 0.0]), [0.0, 0.0]]


# -- a hand-built detector whose detection depends on one region ------------------------------------

class KeyRegionDetector:
    """Target t's detection (its exact box, class t) scores the share of key region t's pixels
    that are not black; nothing else is ever detected."""

    def __init__(self, labels: torch.Tensor, keys: list[int], boxes: list[list[float]]) -> None:
        self.device = torch.device("cpu")
        self.masks = torch.stack([labels == k for k in keys]).float()  # T×H×W
        self.boxes = torch.tensor(boxes)

    def __call__(self, images: torch.Tensor) -> Detections:
        present = (images.abs().sum(1) > 0).float()  # B×H×W
        share = torch.einsum("bhw,thw->bt", present, self.masks) / self.masks.sum((1, 2))
        t = len(self.boxes)
        scores = torch.zeros(images.shape[0], t, t)
        scores[:, torch.arange(t), torch.arange(t)] = share
        return Detections(self.boxes.expand(images.shape[0], -1, -1), scores)


@pytest.mark.parametrize("search", ["greedy", "bidirectional", "fast"])
def test_search_picks_the_region_the_detection_needs_first(search):
    labels = torch.from_numpy(
        np.kron(np.arange(16).reshape(4, 4), np.ones((8, 8), dtype=np.int64)))
    keys, boxes = [5, 10], [[8.0, 8, 16, 16], [16.0, 16, 24, 24]]
    scorer = DetectionScorer(KeyRegionDetector(labels, keys, boxes)).bind([(boxes[0], 0), (boxes[1], 1)])
    image = torch.full((3, 32, 32), 0.8)
    traces = explain_many(scorer, [(image, labels, 0, 0), (image, labels, 1, 0)], Weights(0, 0, 1, 1),
                          search=search, batch_size=16)
    assert [t.order[0] for t in traces] == keys
    for trace in traces:
        assert trace.org_score == 1.0 and trace.baseline_score == 0.0
        assert trace.consistency[0] == 1.0  # the key region alone already gives the detection


# -- target lists ----------------------------------------------------------------------------------

def _png(path: Path, w: int, h: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h)).save(path)


def test_detection_list_reads_and_checks_each_line(tmp_path):
    _png(tmp_path / "my images" / "a.png", 40, 30)
    good = tmp_path / "list.txt"
    good.write_text("# comment\nmy images/a.png 1 2 11.5 12 red_disk\nmy images/a.png 0 0 40 30 3\n")
    items = read_detection_list(good)
    assert [(i.path, i.box, i.query, i.line) for i in items] == [
        ("my images/a.png", (1.0, 2.0, 11.5, 12.0), "red_disk", 2), ("my images/a.png", (0.0, 0.0, 40.0, 30.0), "3", 3)]
    check_boxes(items, tmp_path, good)
    assert items[0].stem == "a_1_2_12_12" and items[0].folder == "red_disk"
    names = ["red_disk", "red_star", "green_square", "green_ring"]
    assert [resolve_class(i, names, 4, good) for i in items] == [0, 3]

    cases = {
        "my images/a.png 0 0 41 30 red_disk\n": "box 0 0 41 30 lies outside the 40×30 image",
        "my images/a.png 5 5 5 9 red_disk\n": "empty box",
        "my images/a.png 1 2 x 4 red_disk\n": "four numbers",
        "my images/a.png 1 2 3\n": "expected '<relative path> <x1> <y1> <x2> <y2> <class>'",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.txt"
        bad.write_text("my images/a.png 0 0 4 4 0\n" + text)
        with pytest.raises(InputError) as err:
            check_boxes(read_detection_list(bad), tmp_path, bad)
        assert str(err.value).startswith(f"{bad}:2: ") and message in str(err.value) and "\n" not in str(err.value)
    bad.write_text("my images/a.png 0 0 4 4 blue_disk\nmy images/a.png 0 0 4 4 7\n")
    for item in read_detection_list(bad):
        with pytest.raises(InputError, match=rf"^{bad}:{item.line}: (unknown class 'blue_disk'|class index 7 is outside 0..3)"):
            resolve_class(item, names, 4, bad)


def test_grounding_list_takes_phrases_with_spaces_and_tabs(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("img dir/cat 1.jpg 1 2 30 40 a black cat\nx.jpg\t0 0 5 5\tthe 2 dogs\n")
    items = read_grounding_list(path)
    assert [(i.path, i.box, i.query) for i in items] == [("img dir/cat 1.jpg", (1.0, 2.0, 30.0, 40.0), "a black cat"),
                                                          ("x.jpg", (0.0, 0.0, 5.0, 5.0), "the 2 dogs")]
    assert items[0].folder == "a_black_cat"
    path.write_text("x.jpg 1 2 3\n")
    with pytest.raises(InputError, match=rf"^{path}:1: expected"):
        read_grounding_list(path)


def test_scale_box_follows_the_resize():
    assert scale_box((10, 20, 30, 40), (100, 200), (50, 50)) == (5.0, 5.0, 15.0, 10.0)


# -- torchvision adapter ---------------------------------------------------------------------------

def test_torchvision_detector_saved_and_reloaded(tmp_path):
    from submodular_attribution.detection.torchvision_detector import (build_torchvision_detector,
                                                                        load_torchvision_detector)

    torch.manual_seed(0)
    net = build_torchvision_detector("ssdlite320_mobilenet_v3_large", 3)
    torch.save({"model": net.state_dict()}, tmp_path / "det.pth")
    detector = load_torchvision_detector("ssdlite320_mobilenet_v3_large", tmp_path / "det.pth", 3)
    images = torch.rand(2, 3, 64, 48)
    with torch.inference_mode():
        net.eval()
        reference = net(list(images))
        det = detector(images)
    for i, ref in enumerate(reference):
        n = len(ref["boxes"])
        assert n > 0 and torch.allclose(det.boxes[i, :n], ref["boxes"])
        assert torch.equal(det.scores[i, :n].argmax(1), ref["labels"]) or n == 0
        # boxes come back in the pixels of the 64×48 input
        assert det.boxes[i, :n, [0, 2]].max() <= 48 and det.boxes[i, :n, [1, 3]].max() <= 64
    # a target equal to detection 0 of image 0 matches with the best IoU × score of its class (brute force)
    box, label = reference[0]["boxes"][0], int(reference[0]["labels"][0])
    scorer = DetectionScorer(detector).bind([(box.tolist(), label)])
    with torch.inference_mode():
        got = scorer(images).probs[:, 0]
    for i, ref in enumerate(reference):
        same = ref["labels"] == label
        expected = (box_iou(ref["boxes"][None], box[None])[0, :, 0] * ref["scores"] * same).max() if same.any() else 0.0
        assert float(got[i]) == pytest.approx(float(expected), abs=1e-6)
    assert float(got[0]) >= float(reference[0]["scores"][0]) - 1e-6
    with pytest.raises(InputError, match="weights do not fit"):
        load_torchvision_detector("ssdlite320_mobilenet_v3_large", tmp_path / "det.pth", 5)
    with pytest.raises(InputError, match="not a torchvision detection architecture"):
        load_torchvision_detector("resnet18", tmp_path / "det.pth", 3)
