"""Face adapter: IR-ResNet backbone, prototype / linear / evidential heads, checkpoint errors.

A one-block-per-stage IR-ResNet (the same class as iresnet18..100) keeps the forward passes
cheap; iresnet18 itself is run once for the embedding shape and the insightface key names.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from submodular_attribution.adapters import face
from submodular_attribution.adapters.face import (
    DEFAULT_SCALE, IRESNETS, EvidentialHead, IResNet, build_face_scorer, iresnet,
)
from submodular_attribution.common.errors import InputError
from submodular_attribution.objective import edl_confidence

TINY = "iresnet_tiny"


def _randomise_buffers(model: nn.Module, seed: int) -> None:
    """Non-trivial BatchNorm statistics and PReLU slopes, so eval mode is really exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(0.25 * torch.rand(m.weight.shape, generator=g))


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Tiny registered arch, its checkpoints (plain and DataParallel-wrapped), 4 images and
    their reference embeddings, prototypes from the first 3 of them."""
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(face.IRESNETS, TINY, (1, 1, 1, 1))
        d = tmp_path_factory.mktemp("face")
        model = IResNet((1, 1, 1, 1))
        _randomise_buffers(model, seed=1)
        model.eval()
        state = model.state_dict()
        torch.save(state, d / "backbone.pth")
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, d / "wrapped.pth")
        images = torch.rand(4, 3, 112, 112, generator=torch.Generator().manual_seed(2))
        with torch.inference_mode():
            embeddings = model((images - 0.5) / 0.5)
        torch.save(embeddings[:3].clone(), d / "protos.pt")
        torch.save({"prototypes": embeddings[:3].clone()}, d / "protos_dict.pt")
        yield {"dir": d, "images": images, "embeddings": embeddings}


def _run(scorer, images):
    with torch.inference_mode():
        return scorer(images)


def test_iresnet18_embeds_112_faces_with_insightface_key_names():
    torch.manual_seed(0)
    model = iresnet("iresnet18").eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 3, 112, 112) * 2 - 1)
    assert out.shape == (2, 512) and torch.isfinite(out).all()
    keys = set(model.state_dict())
    for key in ("conv1.weight", "bn1.running_var", "prelu.weight", "layer1.0.bn1.weight", "layer1.0.conv1.weight",
                "layer1.0.bn2.weight", "layer1.0.prelu.weight", "layer1.0.conv2.weight", "layer1.0.bn3.weight",
                "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_mean", "layer4.1.bn3.bias",
                "bn2.weight", "fc.weight", "fc.bias", "features.weight", "features.running_mean"):
        assert key in keys, key
    assert "layer1.1.downsample.0.weight" not in keys  # identity shortcut inside a stage
    assert model.fc.in_features == 512 * 7 * 7
    assert {a: IRESNETS[a] for a in ("iresnet18", "iresnet34", "iresnet50", "iresnet100")} == {
        "iresnet18": (2, 2, 2, 2), "iresnet34": (3, 4, 6, 3), "iresnet50": (3, 4, 14, 3), "iresnet100": (3, 13, 30, 3)}


@pytest.mark.parametrize("checkpoint", ["backbone.pth", "wrapped.pth"])
def test_reloaded_checkpoint_gives_identical_embeddings(case, checkpoint):
    d = case["dir"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(face.IRESNETS, TINY, (1, 1, 1, 1))
        scorer = build_face_scorer(TINY, d / checkpoint, prototypes=d / "protos.pt")
    out = _run(scorer, case["images"])
    assert scorer.num_classes == 3 and scorer.device == torch.device("cpu")
    assert out.embeddings.shape == (4, 512)
    torch.testing.assert_close(out.embeddings, case["embeddings"], rtol=0, atol=0)
    assert out.evidence_logits is None
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(4))


@pytest.mark.parametrize("scale", [DEFAULT_SCALE, 10.0])
def test_prototype_probs_are_softmax_of_scaled_cosine(case, scale):
    d = case["dir"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(face.IRESNETS, TINY, (1, 1, 1, 1))
        scorer = build_face_scorer(TINY, d / "backbone.pth", prototypes=d / "protos_dict.pt", scale=scale)
    out = _run(scorer, case["images"])
    e = case["embeddings"]
    cos = F.normalize(e, dim=-1) @ F.normalize(e[:3], dim=-1).T
    torch.testing.assert_close(out.probs, (scale * cos).softmax(-1), rtol=1e-5, atol=1e-6)
    # each of the first three images is its own prototype: highest probability on it
    assert out.probs[:3].argmax(-1).tolist() == [0, 1, 2]


def test_linear_and_evidential_heads(case):
    d = case["dir"]
    torch.manual_seed(3)
    linear, edl = nn.Linear(512, 5), EvidentialHead(5)
    torch.save(linear.state_dict(), d / "head.pt")
    torch.save({f"module.{k}": v for k, v in edl.state_dict().items()}, d / "edl.pt")
    torch.save(EvidentialHead(4, hidden=32).state_dict(), d / "edl4.pt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(face.IRESNETS, TINY, (1, 1, 1, 1))
        scorer = build_face_scorer(TINY, d / "backbone.pth", head=d / "head.pt", uncertainty_head=d / "edl.pt")
        with pytest.raises(InputError, match=r"edl4\.pt: evidential head has 4 classes but .*head\.pt has 5"):
            build_face_scorer(TINY, d / "backbone.pth", head=d / "head.pt", uncertainty_head=d / "edl4.pt")
        with pytest.raises(InputError, match=r"edl\.pt: evidential head has 5 classes but .*protos\.pt has 3"):
            build_face_scorer(TINY, d / "backbone.pth", prototypes=d / "protos.pt", uncertainty_head=d / "edl.pt")
    out = _run(scorer, case["images"][:2])
    e = case["embeddings"][:2]
    with torch.no_grad():
        torch.testing.assert_close(out.probs, linear(e).softmax(-1), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out.evidence_logits, edl(e), rtol=1e-5, atol=1e-6)
    assert scorer.num_classes == 5 and out.evidence_logits.shape == (2, 5)
    conf = edl_confidence(out.evidence_logits)
    assert conf.shape == (2,) and ((conf >= 0) & (conf <= 1)).all()


def test_bgr_flag_and_resizing(case):
    d = case["dir"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(face.IRESNETS, TINY, (1, 1, 1, 1))
        rgb = build_face_scorer(TINY, d / "backbone.pth", prototypes=d / "protos.pt")
    bgr = face.FaceScorer(rgb.backbone, rgb.head, bgr=True)
    x = case["images"][:1]
    # batch of 1 vs 4: same maths, possibly another kernel, hence a float tolerance
    torch.testing.assert_close(_run(bgr, x.flip(1)).embeddings, case["embeddings"][:1], rtol=1e-4, atol=1e-5)
    small = F.interpolate(x, size=(56, 56), mode="bilinear", antialias=True, align_corners=False)
    assert _run(rgb, small.double()).embeddings.shape == (1, 512)  # resized to 112, cast to float32


def test_errors_are_one_line_and_name_the_culprit(case, tmp_path):
    d = case["dir"]
    torch.save(torch.randn(3, 256), tmp_path / "narrow.pt")
    torch.save({"a": torch.randn(3, 512), "b": torch.randn(3, 512)}, tmp_path / "two.pt")
    torch.save({"w": torch.randn(3, 512)}, tmp_path / "nolinear.pt")
    cases = [
        (dict(arch="iresnet51", checkpoint=d / "backbone.pth", prototypes=d / "protos.pt"),
         r"unknown face architecture 'iresnet51' .*did you mean iresnet50"),
        (dict(arch="iresnet18", checkpoint=tmp_path / "missing.pth", prototypes=d / "protos.pt"),
         r"missing\.pth: checkpoint not found"),
        (dict(arch="iresnet18", checkpoint=d / "backbone.pth", prototypes=d / "protos.pt"),  # depth mismatch
         r"backbone\.pth: weights do not fit IResNet \(missing keys: layer1\.1\."),
        (dict(arch=TINY, checkpoint=d / "backbone.pth", prototypes=tmp_path / "narrow.pt"),
         r"narrow\.pt: prototypes must be a float C×512 tensor, got torch.float32 \(3, 256\)"),
        (dict(arch=TINY, checkpoint=d / "backbone.pth", prototypes=tmp_path / "two.pt"),
         r"two\.pt: expected a tensor or \{'prototypes': tensor\}"),
        (dict(arch=TINY, checkpoint=d / "backbone.pth", prototypes=tmp_path / "nope.pt"),
         r"nope\.pt: prototypes file not found"),
        (dict(arch=TINY, checkpoint=d / "backbone.pth", head=tmp_path / "nolinear.pt"),
         r"nolinear\.pt: expected the state dict of nn\.Linear\(512, C\)"),
        (dict(arch=TINY, checkpoint=d / "backbone.pth", uncertainty_head=tmp_path / "nolinear.pt",
              prototypes=d / "protos.pt"), r"nolinear\.pt: weights do not fit EvidentialHead"),
        (dict(arch=TINY, checkpoint=d / "backbone.pth"), r"exactly one of prototypes or head \(got neither\)"),
        (dict(arch=TINY, checkpoint=d / "backbone.pth", prototypes=d / "protos.pt", head=d / "protos.pt"),
         r"exactly one of prototypes or head \(got both\)"),
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(face.IRESNETS, TINY, (1, 1, 1, 1))
        for kwargs, message in cases:
            with pytest.raises(InputError, match=message) as err:
                build_face_scorer(**kwargs)
            assert "\n" not in str(err.value)
