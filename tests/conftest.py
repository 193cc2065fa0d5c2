"""Shared fixtures: tiny models whose answers can be computed by hand or brute force."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from submodular_attribution.models import ModelOutput  # noqa: E402


class TinyScorer:
    """A fixed random 2-layer net over the flattened image: probabilities and embeddings.

    Non-linear enough that greedy choices are not trivial, cheap enough for brute force.
    """

    def __init__(self, num_pixels: int, num_classes: int = 4, embed_dim: int = 6, seed: int = 0,
                 with_evidence: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.device = torch.device("cpu")
        self.num_classes = num_classes
        self.w1 = torch.randn(3 * num_pixels, 16, generator=g, dtype=torch.float64)
        self.w2 = torch.randn(16, num_classes, generator=g, dtype=torch.float64)
        self.we = torch.randn(16, embed_dim, generator=g, dtype=torch.float64)
        self.with_evidence = with_evidence
        self.calls = 0

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        self.calls += 1
        hidden = torch.tanh(images.double().reshape(len(images), -1) @ self.w1)
        logits = 3 * hidden @ self.w2
        return ModelOutput(
            probs=logits.softmax(-1),
            embeddings=hidden @ self.we + 0.5,
            evidence_logits=logits if self.with_evidence else None,
        )


class AdditiveScorer:
    """Two classes; logit of class 1 = Σ_regions w_r · (mean of the region's red channel).

    Inserting region r raises p_1 by a monotone function of w_r, so the exact greedy
    order on consistency alone is by decreasing w_r.
    """

    def __init__(self, labels: torch.Tensor, weights: torch.Tensor):
        self.device = torch.device("cpu")
        self.num_classes = 2
        self.one_hot = torch.nn.functional.one_hot(labels.flatten(), len(weights)).double()
        self.one_hot /= self.one_hot.sum(0, keepdim=True)
        self.weights = weights.double()

    def __call__(self, images: torch.Tensor) -> ModelOutput:
        red = images[:, 0].double().reshape(len(images), -1)
        logit = (red @ self.one_hot) @ self.weights
        return ModelOutput(probs=torch.stack([torch.zeros_like(logit), logit], -1).softmax(-1))


def random_labels(h: int, w: int, n: int, seed: int = 0) -> torch.Tensor:
    """An H×W label map with every label 0..n−1 present, in random irregular shapes."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n, (h * w,), generator=g)
    labels[torch.randperm(h * w, generator=g)[:n]] = torch.arange(n)
    return labels.reshape(h, w)


@pytest.fixture
def tiny_case():
    torch.manual_seed(0)
    h, w, n = 4, 5, 6
    labels = random_labels(h, w, n, seed=1)
    image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(2))
    return image, labels, TinyScorer(h * w)


TINY_CLIP = "smdl-test-tiny-clip"
TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def save_tiny_clip(folder: Path, extra_configs: dict | None = None) -> Path:
    """Register the tiny open_clip config (and ``extra_configs``), build it with random weights,
    set its logit scale to 100 as in a trained CLIP, and save its state dict; returns the file."""
    import json
    import warnings

    import open_clip

    from submodular_attribution.adapters.clip import _quiet_logging

    configs = folder / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    for name, cfg in {TINY_CLIP: TINY_CLIP_CFG, **(extra_configs or {})}.items():
        (configs / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(configs)
    torch.manual_seed(0)
    with _quiet_logging(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = open_clip.create_model(TINY_CLIP, pretrained=None).eval()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    checkpoint = folder / "tiny-clip.bin"
    torch.save(model.state_dict(), checkpoint)
    return checkpoint


@pytest.fixture(scope="session")
def trained_shapes(tmp_path_factory):
    """The shipped default shapes CNN (ckpt/embedded/shapes_cnn.pt), copied into a temporary
    folder so tests may write beside it: (path, info, what loading printed)."""
    import contextlib
    import io
    import shutil

    from submodular_attribution.common.paths import EMBEDDED_DIR
    from submodular_attribution.shapes import load_or_train_default

    path = tmp_path_factory.mktemp("shapes_ckpt") / "shapes_cnn.pt"
    shutil.copyfile(EMBEDDED_DIR / "shapes_cnn.pt", path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        _, info = load_or_train_default(path, seed=0, verbose=True)
    return path, info, printed.getvalue()


@pytest.fixture(scope="session")
def random_ranker_file(tmp_path_factory) -> Path:
    """A ranker file of the amortised search with a seeded random network: any ranking will do
    where a test checks what holds for every ranking (honest curves, option plumbing)."""
    import numpy as np

    from submodular_attribution.search_ranker import FEATURES, Ranker, _network

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ranker") / "random.pt"
    Ranker(_network(), np.zeros(len(FEATURES), np.float32), np.ones(len(FEATURES), np.float32), {}).save(path)
    return path
