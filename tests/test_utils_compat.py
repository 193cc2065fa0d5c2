"""The original utils.py helpers users call from notebooks: element images, load_image, norm_image, gen_cam."""
import cv2
import numpy as np
import pytest
import skimage.data

import utils
from submodular_attribution.common.errors import InputError


def test_as_elements_is_the_original_list_of_element_images():
    image = cv2.resize(skimage.data.astronaut(), (64, 64))
    labels = utils.SubRegionDivision(image, "slico", 16)
    elements = utils.SubRegionDivision(image, "slico", 16, as_elements=True)
    assert len(elements) == labels.max() + 1 and all(e.dtype == np.uint8 for e in elements)
    np.testing.assert_array_equal(np.sum(elements, axis=0), image)  # disjoint masks covering the image
    for i in (0, len(elements) - 1):
        np.testing.assert_array_equal(elements[i], image * (labels == i)[..., None])


def test_load_image_is_rgb_float_at_size(tmp_path):
    photo = skimage.data.coffee()
    cv2.imwrite(str(tmp_path / "a.png"), photo[..., ::-1])
    image = utils.load_image(str(tmp_path / "a.png"), 32)
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, cv2.resize(photo, (32, 32)).astype(np.float32), atol=1)
    with pytest.raises(InputError, match="gone.png: image not found"):
        utils.load_image(str(tmp_path / "gone.png"))


def test_norm_image_and_gen_cam_known_values():
    np.testing.assert_array_equal(utils.norm_image(np.array([[2.0, 4.0], [6.0, 10.0]])), [[0, 63], [127, 255]])
    assert not utils.norm_image(np.full((2, 2), 3.0)).any()
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = 200
    mask = np.array([[0.0, 1.0], [0.0, 0.0]])
    cam, heatmap = utils.gen_cam(image, mask)
    np.testing.assert_array_equal(heatmap[0, 1], [0, 0, 128])   # JET at 1: dark red, BGR
    np.testing.assert_array_equal(heatmap[1, 1], [128, 0, 0])   # JET at 0: dark blue, BGR
    mixed = 0.5 * heatmap + 0.5 * image
    np.testing.assert_array_equal(cam, np.uint8((mixed - mixed.min()) / (mixed - mixed.min()).max() * 255))
    with pytest.raises(ValueError, match="does not match"):
        utils.gen_cam(image, np.zeros((3, 3)))
