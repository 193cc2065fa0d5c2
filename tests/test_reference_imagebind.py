"""ImageBind's vision input against ImageBind's own ``load_and_transform_vision_data``.

The fixture (``tests/fixtures/reference/imagebind_vision.npz``, made by
``tests/fixtures/reference/make_imagebind_vision.py`` from ImageBind's ``imagebind/data.py``) holds,
for deterministic PNG images, ImageBind's output on the file itself (``ref``) and on the file
squashed to 224×224 by ``cv2.resize`` as the original SMDL-Attribution script does (``squash``).
Our path (the ``imagenet_imagebind`` task's ``read_input``, ``image_tensor``, then what the scorer
hands the model) must equal ``squash`` for every image, and ``ref`` where both pipelines coincide
(an image already 224×224). The documented deviation from ``ref`` elsewhere (aspect ratio and
crop, bilinear vs bicubic) is measured in the adapter's docstring, not asserted here.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fixtures.reference.make_imagebind_vision import OUT as FIXTURE, reference_images
from submodular_attribution.adapters.imagebind import ImageBindScorer
from submodular_attribution.common.images import image_tensor
from submodular_attribution.tasks import get_model_task

ATOL = 1e-6  # float32 rounding of (x − mean) / std; the pipelines are otherwise the same arithmetic


class Recorder(nn.Module):
    """Stands in for ImageBind: keeps the vision input it is given."""

    def forward(self, inputs):
        self.seen = inputs["vision"].detach().clone()
        return {"vision": torch.ones(len(self.seen), 4)}


@pytest.mark.reference
def test_reference_imagebind_vision(tmp_path):
    fixture = np.load(FIXTURE)
    task = get_model_task("imagenet_imagebind")
    assert task.input_size == (224, 224)
    model = Recorder()
    scorer = ImageBindScorer(model, SimpleNamespace(VISION="vision"), "vision", torch.eye(2), "cpu", 100.0)
    images = reference_images()
    assert len(images) == 4
    for name, image in images.items():
        assert tuple(fixture[f"{name}/size"]) == image.shape[:2], name
        path = tmp_path / f"{name}.png"
        Image.fromarray(image).save(path)
        with torch.no_grad():
            scorer.embed(image_tensor(task.read_input(path, task.input_size))[None])
        seen = model.seen[0].numpy()
        assert seen.shape == (3, 224, 224)
        got = seen.reshape(-1)[fixture[f"{name}/positions"]]
        kinds = ["squash", "ref"] if image.shape[:2] == (224, 224) else ["squash"]
        means = seen.astype(np.float64).mean(axis=(1, 2))
        for kind in kinds:
            where = f"{name} {kind}"
            np.testing.assert_allclose(got, fixture[f"{name}/{kind}/values"], rtol=0, atol=ATOL, err_msg=where)
            np.testing.assert_allclose(means, fixture[f"{name}/{kind}/channel_means"], rtol=0, atol=ATOL, err_msg=where)
