"""Our torchvision detection scorer against torchvision's own eval forward (seeded weights).

The fixture (``tests/fixtures/reference/torchvision_detectors.npz``, made by
``tests/fixtures/reference/make_torchvision_detectors.py``) holds the boxes, scores and labels that
torchvision's Faster R-CNN, RetinaNet and FCOS give two seeded images. Here the same seeded state
dict is saved as a user's ``--checkpoint`` and loaded as the detection CLI loads it
(``--model ARCH --checkpoint F --num-classes 5 --min-size 128``); the scorer's raw detections
(before IoU × score targeting) must be the stored ones: same count, each stored detection matched
by one of ours with its label, its box within 1e-3 px and its score within 1e-6 + 1e-4·score. A
change of threshold, resizing or box scaling in our wrapper fails here.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from fixtures.reference.make_torchvision_detectors import (MIN_SIZE, NUM_CLASSES, OUT as FIXTURE, SEED, images,
                                                           sharpen)
from fixtures.reference.seeded import fill_torch_state
from submodular_attribution.detection.scorer import DetectionScorer
from submodular_attribution.detection_cli import DETECTION, build_detector, get_args_parser

torch.set_num_threads(1)
BOX_ATOL = 1e-3  # pixels of the 96×120 input
SCORE_ATOL, SCORE_RTOL = 1e-6, 1e-4


def our_detections(arch: str, tmp_path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(boxes, scores, labels) per image from our scorer, the checkpoint loaded as the CLI does."""
    with torch.device("meta"):  # no random init: every parameter and buffer is filled below
        net = torchvision.models.get_model(arch, weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    net = net.to_empty(device="cpu")
    fill_torch_state(net, SEED)
    sharpen(net, arch)
    checkpoint = tmp_path / f"{arch}.pth"
    torch.save(net.state_dict(), checkpoint)
    del net
    argv = ["--model", arch, "--checkpoint", str(checkpoint), "--num-classes", str(NUM_CLASSES),
            "--min-size", str(MIN_SIZE)]
    args = get_args_parser(DETECTION, argv).parse_args(argv)
    detector, _, num_classes = build_detector(DETECTION, args, torch.device("cpu"))
    assert num_classes == NUM_CLASSES
    with torch.inference_mode():
        found = DetectionScorer(detector).detect(torch.stack(images()))
    out = []
    for boxes, scores in zip(found.boxes, found.scores):
        real = scores.amax(-1) > 0  # padding rows score 0 for every class
        out.append((boxes[real].numpy(), scores[real].amax(-1).numpy(), scores[real].argmax(-1).numpy()))
    return out


def check(arch: str, tmp_path) -> None:
    fixture = np.load(FIXTURE)
    np.testing.assert_allclose([float(x.double().sum()) for x in images()], fixture["images/sums"], rtol=0, atol=1e-9)
    for i, (boxes, scores, labels) in enumerate(our_detections(arch, tmp_path)):
        ref_boxes, ref_scores, ref_labels = (fixture[f"{arch}/{i}/{k}"] for k in ("boxes", "scores", "labels"))
        assert len(ref_scores) >= 3 and len(scores) == len(ref_scores), (arch, i, len(scores), len(ref_scores))
        unused = np.ones(len(scores), bool)
        for box, score, label in zip(ref_boxes, ref_scores, ref_labels):
            # Order-free: the stored detection's nearest unused one of ours with its label.
            distance = np.abs(boxes - box).max(1) + np.where(unused & (labels == label), 0, np.inf)
            k = int(distance.argmin())
            assert distance[k] <= BOX_ATOL, (arch, i, box, label, distance[k])
            assert abs(scores[k] - score) <= SCORE_ATOL + SCORE_RTOL * score, (arch, i, scores[k], score)
            unused[k] = False


@pytest.mark.reference
def test_reference_fasterrcnn(tmp_path):
    check("fasterrcnn_resnet50_fpn", tmp_path)


@pytest.mark.reference
def test_reference_retinanet(tmp_path):
    check("retinanet_resnet50_fpn", tmp_path)


@pytest.mark.reference
def test_reference_fcos(tmp_path):
    check("fcos_resnet50_fpn", tmp_path)
