"""``chefer-lrp`` against the authors' own code (Chefer, Gur & Wolf, CVPR 2021;
github.com/hila-chefer/Transformer-Explainability, commit c3e578f): the relevance maps their
``LRP.generate_LRP(method="transformer_attribution")`` produced on a small seeded ViT, stored in
``fixtures/reference/chefer_lrp.npz`` by ``fixtures/reference/make_chefer_lrp.py`` (its docstring
has the npz layout and how to regenerate it).

Our side: timm's ``VisionTransformer`` of the same architecture, filled with the same seeded
weights by state-dict key, called the way users call it (``attribution_model(ClassifierScorer(…))``,
``attribute("chefer-lrp", …)``). Tolerances are relative to each array's largest magnitude:

* float32 (as the authors run it) and float64: 1e-5. Their ``safe_divide`` divides by
  ``b + 1e-9``; ours divides exactly, which moves the maps by ~1e-6 relative (seen: ≤ 1e-6 in
  float64, ≤ 2e-6 in float32, where rounding adds to it);
* float64 with the reference's ``safe_divide`` made exact (variant ``f64_exact``): 1e-10 (seen:
  ~3e-13), i.e. every rule, the rollout and the gradients agree to rounding.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from baseline_attribution import attribute, attribution_model
from baseline_attribution.lrp import lrp_relevances, rollout_lrp
from fixtures.reference.seeded import fill_torch_state
from submodular_attribution.models import ClassifierScorer

pytestmark = pytest.mark.reference

REF = np.load(Path(__file__).parent / "fixtures" / "reference" / "chefer_lrp.npz")
LAYOUT = json.loads(str(REF["layout"]))
VARIANTS = {"f32": (torch.float32, 1e-5), "f64": (torch.float64, 1e-5), "f64_exact": (torch.float64, 1e-10)}


def our_vit(dtype):
    """timm's ViT with the reference's architecture and seeded weights, wrapped as users wrap it."""
    vit = timm.models.vision_transformer.VisionTransformer(**LAYOUT["config"])
    vit.norm.eps = LAYOUT["final_norm_eps"]  # the reference's final LayerNorm keeps torch's default 1e-5
    fill_torch_state(vit, LAYOUT["seed"])
    scorer = ClassifierScorer(vit.to(dtype), mean=LAYOUT["mean"], std=LAYOUT["std"],
                              num_classes=LAYOUT["config"]["num_classes"])
    return attribution_model(scorer, batch_size=4)


def assert_close(ours, ref, rtol, what):
    ours = ours.detach().cpu().numpy() if torch.is_tensor(ours) else ours
    assert ours.shape == ref.shape, what
    dev = np.abs(ours - ref).max() / np.abs(ref).max()
    assert dev <= rtol, f"{what}: max |ours − reference| = {dev:.3g} × max |reference| > {rtol:g}"


def test_reference_chefer_lrp_same_architecture():
    """The seeded weights land on the same tensors: timm's key names and shapes are the reference's."""
    state = our_vit(torch.float32).module.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == LAYOUT["state"]
    assert REF["case_target"].tolist() == [LAYOUT["fixed_class"], int(REF["f32_logits"][0].argmax()),
                                           LAYOUT["fixed_class"], int(REF["f32_logits"][1].argmax())]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_reference_chefer_lrp_matches(variant):
    """Logits, per-block attention relevance and gradient, token relevance (start_layer 0 and 1),
    and the map (raw and min-max) against the reference."""
    dtype, rtol = VARIANTS[variant]
    model = our_vit(dtype)
    images = torch.from_numpy(REF["images"]).to(dtype)
    x, targets = images[torch.from_numpy(REF["case_image"])], torch.from_numpy(REF["case_target"])
    # the reference ran each case alone; ours runs them as one batch
    _, attn_relevance, grads, logits = lrp_relevances(model, x, targets)
    assert_close(model.logits(images), REF[f"{variant}_logits"], rtol, "logits")
    assert_close(logits, REF[f"{variant}_logits"][REF["case_image"]], rtol, "logits in the LRP pass")
    for start, key in ((0, "tokens"), (1, "tokens_start1")):
        assert_close(rollout_lrp(attn_relevance, grads, start)[:, 0, 1:], REF[f"{variant}_{key}"], rtol,
                     f"token relevance, start_layer={start}")
    if variant != "f32":
        return
    for layer in range(len(attn_relevance)):
        assert_close(attn_relevance[layer], REF["f32_attn_relevance"][:, layer], rtol,
                     f"attention relevance of block {layer}")
        assert_close(grads[layer], REF["f32_attn_grad"][:, layer], rtol, f"attention gradient of block {layer}")
    # the authors' map: tokens on the 4×4 grid, bilinear ×8, then (notebook) min-max
    assert_close(attribute("chefer-lrp", model, x, targets), REF["f32_map_raw"], rtol, "map")
    assert_close(attribute("chefer-lrp", model, x, targets, normalize=True), REF["f32_map"], rtol,
                 "min-max map")
