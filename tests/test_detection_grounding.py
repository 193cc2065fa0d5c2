"""The Grounding DINO adapter on a random-initialised tiny configuration saved with
``save_pretrained`` and reloaded from its folder (no download)."""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from submodular_attribution.common.errors import InputError  # noqa: E402
from submodular_attribution.detection.grounding import GroundingDinoDetector, caption_of  # noqa: E402
from submodular_attribution.detection.matching import box_iou  # noqa: E402
from submodular_attribution.detection.scorer import DetectionScorer  # noqa: E402

torch.set_num_threads(1)
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "black", "cat", "dog", "the", "red", "ball"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    from transformers import (BertConfig, BertTokenizerFast, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    folder = tmp_path_factory.mktemp("grounding-dino-tiny")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4, image_size=64,
                          out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=1,
                      intermediate_size=32, max_position_embeddings=64)
    config = GroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1,
                                 decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
                                 encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=8, num_feature_levels=3,
                                 encoder_n_points=1, decoder_n_points=1, max_text_len=32)
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).eval().save_pretrained(folder)
    GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_caption_spans():
    caption, spans = caption_of(["A black cat", "the dog."])
    assert caption == "a black cat. the dog."
    assert [caption[a:b] for a, b in spans] == ["a black cat", "the dog"]


def test_reloaded_tiny_grounding_dino_scores_phrases(tiny_folder):
    detector = GroundingDinoDetector(tiny_folder)
    detector.set_phrases(["a black cat", "the red ball"])
    # tokens: [CLS] a black cat . the red ball . [SEP] → phrase 0 owns tokens 1–3, phrase 1 tokens 5–7
    assert detector.token_phrase[:, 0].nonzero().flatten().tolist() == [1, 2, 3]
    assert detector.token_phrase[:, 1].nonzero().flatten().tolist() == [5, 6, 7]
    images = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        det = detector(images)
        raw = detector.model(pixel_values=(images - detector.mean) / detector.std,
                             pixel_mask=torch.ones(2, 64, 64, dtype=torch.long),
                             **{k: v.expand(2, -1) for k, v in detector.text.items()})
    assert det.boxes.shape == (2, 8, 4) and det.scores.shape == (2, 8, 2)
    probs = raw.logits.sigmoid()
    assert torch.allclose(det.scores[..., 0], probs[..., 1:4].max(-1).values)
    assert torch.allclose(det.scores[..., 1], probs[..., 5:8].max(-1).values)
    cx, cy, w, h = raw.pred_boxes[0, 0].tolist()
    assert det.boxes[0, 0].tolist() == pytest.approx([64 * (cx - w / 2), 64 * (cy - h / 2), 64 * (cx + w / 2),
                                                      64 * (cy + h / 2)], abs=1e-4)
    # the scorer binds phrases: column t = max_k IoU(box_k, target box) × score_k(phrase of t)
    target = det.boxes[1, 3].tolist()
    scorer = DetectionScorer(GroundingDinoDetector(tiny_folder)).bind([(target, "the red ball"), (target, "a black cat")])
    with torch.inference_mode():
        got = scorer(images).probs
    iou = box_iou(det.boxes, torch.tensor([target]))[..., 0]
    assert got[:, 0].tolist() == pytest.approx((iou * det.scores[..., 1]).amax(1).tolist(), abs=1e-5)
    assert got[:, 1].tolist() == pytest.approx((iou * det.scores[..., 0]).amax(1).tolist(), abs=1e-5)


def test_missing_folder_and_unknown_words(tiny_folder, tmp_path):
    with pytest.raises(InputError, match="not a model folder"):
        GroundingDinoDetector(tmp_path)
    detector = GroundingDinoDetector(tiny_folder)
    with pytest.raises(InputError, match="gives no text tokens"):
        detector.set_phrases(["a cat", "..."])


def test_grounding_script_end_to_end(tiny_folder, tmp_path, capsys):
    import json

    from submodular_attribution import smdl_explanation_grounding
    from submodular_attribution.detection.shapes_data import write_detection_eval_set

    list_path = write_detection_eval_set(tmp_path / "data", n=1)
    lines = list_path.read_text().splitlines()
    phrases = tmp_path / "data" / "phrases.txt"
    phrases.write_text("".join(f"{' '.join(line.split()[:5])} a {line.split()[5].replace('_', ' ')}\n" for line in lines))
    argv = ["--eval-list", str(phrases), "--checkpoint", str(tiny_folder), "--save-dir", str(tmp_path / "out"),
            "--device", "cpu", "--input-size", "64", "--region-size", "16", "--search", "fast", "--batch-size", "16"]
    assert smdl_explanation_grounding.main(argv) == 0
    files = sorted((tmp_path / "out" / "slico-0.0-0.0-1.0-1.0-fast" / "json").glob("*/*.json"))
    assert len(files) == len(lines)
    record = json.loads(files[0].read_text())
    assert record["target_phrase"].startswith("a ") and record["task"] == "grounding"
    x1, y1, x2, y2 = record["target_box"]
    assert record["target_box_input"] == pytest.approx([x1 * 64 / 112, y1 * 64 / 112, x2 * 64 / 112, y2 * 64 / 112],
                                                       abs=1e-3)
    capsys.readouterr()
    assert smdl_explanation_grounding.main([*argv[:2], "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "not a model folder" in capsys.readouterr().err
