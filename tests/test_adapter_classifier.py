"""The classifier adapter on real (randomly initialised, small-input) torchvision and timm models:
weights round-trip through a file, probabilities and embeddings match a hand-run forward."""
import pytest
import torch
from torch import nn

from submodular_attribution.adapters import classifier
from submodular_attribution.adapters.classifier import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_classifier,
    build_classifier_scorer,
    find_classifier_layer,
)
from submodular_attribution.common.errors import InputError


def _normalise(x, prep):
    mean = torch.tensor(prep["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(prep["std"]).view(1, 3, 1, 1)
    return (x - mean) / std


def _images(n, size, seed=0):
    return torch.rand(n, 3, *size, generator=torch.Generator().manual_seed(seed))


def _saved(tmp_path_factory, arch, num_classes, input_size=None, name="w.pth"):
    torch.manual_seed(0)
    net, prep = build_classifier(arch, num_classes, input_size)
    net.eval()
    path = tmp_path_factory.mktemp(arch.replace(":", "_")) / name
    torch.save(net.state_dict(), path)
    return net, prep, path


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    return _saved(tmp_path_factory, "resnet18", 5)


@pytest.mark.parametrize("wrapped", [False, True])
def test_resnet18_round_trip_probs_and_embeddings(resnet18, tmp_path, wrapped):
    net, prep, path = resnet18
    assert prep["mean"] == IMAGENET_MEAN and prep["std"] == IMAGENET_STD and prep["input_size"] == (224, 224)
    if wrapped:  # DataParallel-saved checkpoint inside a training container
        path = tmp_path / "wrapped.pth"
        torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    scorer = build_classifier_scorer("resnet18", path, 5, with_embeddings=True)
    assert scorer.num_classes == 5 and scorer.device == torch.device("cpu")
    x = _images(2, (64, 64))
    with torch.no_grad():
        out = scorer(x)
        xn = _normalise(x, prep)
        expected = net(xn).softmax(-1)
        features = nn.Sequential(*list(net.children())[:-1])(xn).flatten(1)  # up to avgpool
    assert out.probs.shape == (2, 5)
    torch.testing.assert_close(out.probs, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones(2), atol=1e-6, rtol=0)
    assert out.embeddings.shape == (2, 512)
    torch.testing.assert_close(out.embeddings, features, atol=1e-5, rtol=1e-5)


def test_resnet18_scores_do_not_depend_on_batch_size(resnet18):
    _, _, path = resnet18
    scorer = build_classifier_scorer("resnet18", path, 5)
    x = _images(4, (64, 64), seed=1)
    with torch.no_grad():
        together = scorer(x)
        alone = [scorer(x[i:i + 1]) for i in range(4)]
    torch.testing.assert_close(torch.cat([o.probs for o in alone]), together.probs, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.cat([o.embeddings for o in alone]), together.embeddings, atol=1e-5, rtol=1e-5)


def test_squeezenet_conv_head_gives_pooled_embeddings(tmp_path_factory):
    net, prep, path = _saved(tmp_path_factory, "squeezenet1_1", 5)
    assert find_classifier_layer(net, 5) is net.classifier[1]  # the 1×1 conv
    scorer = build_classifier_scorer("squeezenet1_1", path, 5, with_embeddings=True)
    x = _images(3, (64, 64), seed=2)
    with torch.no_grad():
        out = scorer(x)
        xn = _normalise(x, prep)
        expected = net(xn).softmax(-1)
        pooled = net.features(xn).mean(dim=(2, 3))
    torch.testing.assert_close(out.probs, expected, atol=1e-5, rtol=0)
    assert out.embeddings.shape == (3, 512)  # independent of the image size
    torch.testing.assert_close(out.embeddings, pooled, atol=1e-5, rtol=1e-5)


def test_googlenet_loads_checkpoint_without_aux_heads(tmp_path_factory):
    net, prep, _ = _saved(tmp_path_factory, "googlenet", 5)
    assert net.transform_input  # as torchvision builds it for its own weights
    state = {k: v for k, v in net.state_dict().items() if not k.startswith(("aux1.", "aux2."))}
    path = tmp_path_factory.mktemp("googlenet_noaux") / "w.pth"
    torch.save(state, path)
    scorer = build_classifier_scorer("googlenet", path, 5, with_embeddings=True)
    x = _images(2, (64, 64), seed=3)
    with torch.no_grad():
        out = scorer(x)
        expected = net(_normalise(x, prep)).softmax(-1)
    torch.testing.assert_close(out.probs, expected, atol=1e-5, rtol=0)
    assert out.embeddings.shape == (2, 1024)


@pytest.fixture(scope="module")
def vit_tiny(tmp_path_factory):
    return _saved(tmp_path_factory, "timm:vit_tiny_patch16_224", 4, input_size=(32, 32))


def test_timm_vit_round_trip_at_small_input(vit_tiny):
    net, prep, path = vit_tiny
    assert prep["mean"] == (0.5, 0.5, 0.5) and prep["std"] == (0.5, 0.5, 0.5)
    assert prep["input_size"] == (32, 32)
    scorer = build_classifier_scorer("timm:vit_tiny_patch16_224", path, 4, with_embeddings=True,
                                     input_size=(32, 32))
    x = _images(2, (32, 32), seed=4)
    with torch.no_grad():
        out = scorer(x)
        xn = _normalise(x, prep)
        expected = net(xn).softmax(-1)
        pre_logits = net.forward_head(net.forward_features(xn), pre_logits=True)
    torch.testing.assert_close(out.probs, expected, atol=1e-6, rtol=0)
    assert out.embeddings.shape == (2, 192)
    torch.testing.assert_close(out.embeddings, pre_logits, atol=1e-5, rtol=1e-5)


def test_timm_swin_round_trip_at_small_input(tmp_path_factory):
    net, prep, path = _saved(tmp_path_factory, "timm:swin_tiny_patch4_window7_224", 3, input_size=(32, 32))
    assert prep["mean"] == IMAGENET_MEAN
    scorer = build_classifier_scorer("timm:swin_tiny_patch4_window7_224", path, 3, with_embeddings=True,
                                     input_size=(32, 32))
    x = _images(2, (32, 32), seed=5)
    with torch.no_grad():
        out = scorer(x)
        expected = net(_normalise(x, prep)).softmax(-1)
    torch.testing.assert_close(out.probs, expected, atol=1e-6, rtol=0)
    assert out.embeddings.shape == (2, 768)


def test_timm_position_embeddings_for_another_size_are_a_shape_mismatch(vit_tiny):
    _, _, path = vit_tiny
    with pytest.raises(InputError, match=r"w\.pth: .*shape mismatch: pos_embed"):
        build_classifier_scorer("timm:vit_tiny_patch16_224", path, 4, input_size=(48, 48))


@pytest.mark.parametrize("arch,suggestion", [
    ("resnt50", "did you mean: resnet50, resnet152"),
    ("timm:vit_tiny_patch16_2244", "did you mean: timm:vit_tiny_patch16_224"),
    ("vit_tiny_patch16_224", "did you mean: timm:vit_tiny_patch16_224"),  # timm name, no prefix
])
def test_unknown_architecture_suggests_names(arch, suggestion):
    with pytest.raises(InputError, match=f"unknown classifier '{arch}'; {suggestion}.*timm:<name>"):
        build_classifier(arch, 5)


def test_bad_build_arguments():
    with pytest.raises(InputError, match="vit_b_16: torchvision ViTs need a square input size"):
        build_classifier("vit_b_16", 5, input_size=(32, 48))
    with pytest.raises(InputError, match="number of classes must be a positive integer"):
        build_classifier("resnet18", 0)
    with pytest.raises(InputError, match="--checkpoint is required for resnet18"):
        build_classifier_scorer("resnet18", None, 5)


def test_checkpoint_errors_name_the_file(resnet18, tmp_path):
    _, _, path = resnet18
    with pytest.raises(InputError, match=r"w\.pth: weights do not fit ResNet \(shape mismatch: fc\.weight"):
        build_classifier_scorer("resnet18", path, 7)
    with pytest.raises(InputError, match=r"nope\.pth: checkpoint not found"):
        build_classifier_scorer("resnet18", tmp_path / "nope.pth", 5)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"bad\.pth: cannot read checkpoint"):
        build_classifier_scorer("resnet18", tmp_path / "bad.pth", 5)


def test_find_classifier_layer_picks_the_last_matching_head():
    net = nn.Sequential(nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 6), nn.Linear(6, 5))
    assert find_classifier_layer(net, 5) is net[3]
    assert find_classifier_layer(net, 6) is net[2]
    assert find_classifier_layer(net, 3) is None
    assert find_classifier_layer(nn.Sequential(nn.Conv2d(4, 5, 3)), 5) is None  # not 1×1


def test_embeddings_required_but_no_head(resnet18, monkeypatch):
    _, _, path = resnet18
    monkeypatch.setattr(classifier, "find_classifier_layer", lambda net, n: None)
    with pytest.raises(InputError, match="resnet18: no final linear layer with 5 outputs"):
        build_classifier_scorer("resnet18", path, 5, with_embeddings=True)
    assert build_classifier_scorer("resnet18", path, 5)(_images(1, (64, 64))).embeddings is None


def test_timm_is_optional(monkeypatch):
    monkeypatch.setattr(classifier, "_timm", lambda: None)
    with pytest.raises(InputError, match="timm:vit_tiny_patch16_224: timm is not installed"):
        build_classifier("timm:vit_tiny_patch16_224", 4)
    with pytest.raises(InputError, match="unknown classifier 'resnt50'; did you mean: resnet50"):
        build_classifier("resnt50", 4)
