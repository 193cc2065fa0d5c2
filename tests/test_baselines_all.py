"""Every registered method on the default model (ShapesCNN) and on a tiny ViT: finite maps of the
image's size, or — where a method does not apply to the architecture — one clear error."""
import pytest
import timm
import torch

from baseline_attribution import REGISTRY, attribute, attribution_model
from submodular_attribution.common.errors import InputError
from submodular_attribution.models import ClassifierScorer
from submodular_attribution.shapes import ShapesCNN, build_scorer

# Lighter settings than the published defaults, to keep the sweep fast; defaults are tested per module.
CHEAP = {"rise": {"N": 64}, "rise-u": {"N": 64}, "lime": {"num_samples": 64}, "hsic": {"nb_design": 64},
         "sobol": {"nb_design": 8}, "scorecam": {"max_channels": 8}, "agi": {"n_classes": 2, "max_iter": 3},
         "ig2": {"steps": 8}, "lpi": {"num_centres": 2, "n_alphas": 3}, "eg": {"n_samples": 8},
         "smoothgrad": {"n_samples": 4}, "smoothgradcam++": {"n_samples": 2}, "ig": {"steps": 8},
         "ig-uniform": {"n_refs": 2, "steps": 4}, "ig-sg": {"n_refs": 2, "steps": 4}, "ig-sq": {"n_refs": 2, "steps": 4}}
ATTENTION_ONLY = {"rollout", "transformer-attribution", "chefer-lrp"}
# a model's own explanation: refused for every other architecture (tests/test_baselines_intrinsic.py runs them)
OWN_ARCHITECTURE_ONLY = {"bcos": "B-cos network", "bagnet": "BagNet"}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    cnn = attribution_model(build_scorer(ShapesCNN()), batch_size=32)
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, num_classes=4)
    vit_model = attribution_model(ClassifierScorer(vit, num_classes=4), batch_size=32)
    return {"cnn": (cnn, torch.rand(2, 3, 112, 112)), "vit": (vit_model, torch.rand(2, 3, 32, 32))}


@pytest.mark.parametrize("arch", ["cnn", "vit"])
@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_method_runs(models, arch, method):
    model, images = models[arch]
    targets = [1, 2]
    if method in OWN_ARCHITECTURE_ONLY:
        with pytest.raises(InputError, match=f"{method}: needs a {OWN_ARCHITECTURE_ONLY[method]}"):
            attribute(method, model, images, targets)
        return
    if arch == "cnn" and method in ATTENTION_ONLY:
        with pytest.raises(TypeError, match="supports timm VisionTransformer-style models only"):
            attribute(method, model, images, targets)
        return
    maps = attribute(method, model, images, targets, **CHEAP.get(method, {}))
    assert maps.shape == (2, *images.shape[2:])
    assert torch.isfinite(maps).all()
