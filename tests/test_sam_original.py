"""The original SMDL-Attribution's SAM mask folders (N×H×W×3 BGR element images, the last the
remainder, at ``<dir>/<relative path>.npy``): read into divisions, written by
``SAM_mask_generate.py --format original``, and driving an SMDL run."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

import SAM_mask_generate
from submodular_attribution.common.errors import InputError
from submodular_attribution.common.lists import ListItem
from submodular_attribution.common.results import find_result_files, load_result
from submodular_attribution.regions.sam import SAM_MODEL_TYPES
from submodular_attribution.regions.sam_original import (
    elements_to_label_map,
    label_map_to_elements,
    original_mask_path,
    read_sam_division,
)
from test_cli import _run, _task, tiny_list  # noqa: F401 (a fixture)
from test_sam_regions import canonical


def _three_regions():
    labels = np.zeros((12, 16), dtype=np.int32)
    labels[:, 8:] = 1
    labels[6:, 4:12] = 2
    return labels


def _photo(shape, seed=0):
    return np.random.default_rng(seed).integers(1, 256, size=(*shape, 3), dtype=np.uint8)  # no black pixel


def _elements_as_the_original_wrote(image_bgr, labels):
    """Element images built as the original code built them: photo × mask, then photo − sum."""
    elements = [image_bgr * (labels == k)[..., None].astype(np.uint8) for k in range(labels.max())]
    return np.array(elements + [image_bgr - np.array(elements).sum(0).astype(np.uint8)])


def test_elements_give_back_the_partition():
    labels = _three_regions()
    elements = _elements_as_the_original_wrote(_photo(labels.shape), labels)
    assert elements.shape == (3, 12, 16, 3) and elements.dtype == np.uint8
    np.testing.assert_array_equal(canonical(elements_to_label_map(elements)), canonical(labels))
    np.testing.assert_array_equal(label_map_to_elements(_photo(labels.shape), labels),
                                  _elements_as_the_original_wrote(_photo(labels.shape), labels))


def test_black_pixels_inside_an_element_join_it():
    labels = _three_regions()
    photo = _photo(labels.shape)
    photo[2:4, 1:3] = 0      # black inside region 0 (its element shows nothing there)
    photo[9, 6] = 0          # black inside region 2
    got = elements_to_label_map(_elements_as_the_original_wrote(photo, labels))
    np.testing.assert_array_equal(canonical(got), canonical(labels))


def test_an_empty_remainder_adds_no_region_and_resizing_is_nearest():
    labels = _three_regions()
    elements = _elements_as_the_original_wrote(_photo(labels.shape), labels)
    elements = np.concatenate([elements, np.zeros_like(elements[:1])])  # all covered: the remainder is black
    assert elements_to_label_map(elements).max() == 2
    resized = elements_to_label_map(elements, (24, 32))
    expected = cv2.resize(labels, (32, 24), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(canonical(resized), canonical(expected))


@pytest.mark.parametrize("array, message", [
    (np.zeros((1, 2, 12, 16, 3), np.uint8), "N×H×W×3"),
    (np.zeros((2, 12, 16, 5), np.uint8), "N×H×W×3"),
    (np.zeros((0, 12, 16, 3), np.uint8), "N×H×W×3"),
])
def test_wrong_arrays_are_one_line_errors_naming_the_file(tmp_path, array, message):
    item = ListItem("birds/a.jpg", 3, 1)
    path = original_mask_path(tmp_path, item.path)
    path.parent.mkdir(parents=True)
    np.save(path, array)
    with pytest.raises(InputError, match=rf"a\.npy: .*{message}.*original SAM_mask_generate"):
        read_sam_division(tmp_path, item, (12, 16))
    with pytest.raises(InputError, match=r"3/b\.npy: SAM masks not found \(nor .*birds/b\.npy"):
        read_sam_division(tmp_path, ListItem("birds/b.jpg", 3, 2), (12, 16))


def test_our_label_maps_are_still_read_first(tmp_path):
    item = ListItem("birds/a.jpg", 3, 1)
    ours = tmp_path / "3" / "a.npy"
    ours.parent.mkdir()
    np.save(ours, _three_regions().astype(np.int16))
    np.save(original_mask_path(tmp_path, "a.jpg"), np.zeros((2, 12, 16, 3), np.uint8))  # ignored
    np.testing.assert_array_equal(read_sam_division(tmp_path, item, (12, 16)), _three_regions())


def test_generator_writes_the_original_format_and_it_drives_a_run(tmp_path, tiny_list, monkeypatch, capsys):
    """SAM_mask_generate.py --format original (the original's flag names) → element images at each image's
    own resolution; an SMDL run with --sam-mask-dir on that folder explains from those regions."""
    torch.manual_seed(0)
    torch.save(SAM_MODEL_TYPES["vit_tiny"]().state_dict(), tmp_path / "tiny.pth")
    masks = tmp_path / "SAM_mask" / "tiny"
    argv = ["--image-file", str(tiny_list), "--image-dir", str(tiny_list.parent), "--save-dir", str(masks),
            "--format", "original", "--model-type", "vit_tiny", "--checkpoint", str(tmp_path / "tiny.pth"),
            "--points-per-side", "4", "--stability-score-thresh", "0", "--device", "cpu", "--end", "2"]
    assert SAM_mask_generate.main(argv) == 0
    assert "2 label maps written" in capsys.readouterr().out
    written = np.load(original_mask_path(masks, "imgs/photo 0.png"))
    photo = cv2.imread(str(tiny_list.parent / "imgs" / "photo 0.png"))  # BGR, 30×40 as saved
    assert written.dtype == np.uint8 and written.ndim == 4 and written.shape[1:] == photo.shape
    np.testing.assert_array_equal(written.sum(0), photo.astype(np.int64))  # elements + remainder = the photo

    task = _task(tmp_path)
    assert _run(task, tiny_list, "--end", "2", "--division", "sam", "--sam-mask-dir", str(masks)) == 0
    records = [load_result(f).record for f in find_result_files(tmp_path / "results" / "sam-0.0-0.05-1.0-1.0")]
    expected = read_sam_division(masks, ListItem("imgs/photo 0.png", 0, 1), (32, 32))
    assert len(records) == 2 and records[0]["num_regions"] == expected.max() + 1
    assert records[0]["division"]["label_maps"] == str(masks)
