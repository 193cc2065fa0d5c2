"""The HTML report in a real headless Chromium, opened from ``file://``: no console errors,
sorting reorders the table, the slider recomposites the first k regions and updates the
scores, a screenshot has content. Skipped (with what to install) where no browser is at hand.
"""
from __future__ import annotations

import base64
import io
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.test_report import make_run
from tests.test_visualization import CLASS, block_photo
from visualization.report import browser
from visualization.report.build import build_report, read_data, read_detail

pytestmark = pytest.mark.skipif(browser.missing() is not None, reason=f"no headless browser: {browser.missing()}")

STEMS = [f"img_{k}" for k in range(5)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    make_run(root / "greedy", root / "data", STEMS, seed=0)
    make_run(root / "fast", root / "data", STEMS, seed=1)
    build_report([root / "greedy", root / "fast"], root / "out", verbose=False)
    return root


@pytest.fixture(scope="module")
def driver():
    chromium = browser.chromium(1200, 1000)
    yield chromium
    chromium.quit()


def wait_for(driver, script: str, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not (value := driver.execute_script(script)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.05)
    return value


def row_keys(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#table tbody tr')].map(r => r.dataset.key)")


def canvas_pixels(driver, index: int) -> np.ndarray:
    """The RGB pixels of the index-th canvas of the detail (3 per run: ordering, insertion, deletion)."""
    flat = driver.execute_script(
        "const c = document.querySelectorAll('#detail canvas')[arguments[0]];"
        "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);", index)
    return np.asarray(flat, dtype=np.int64).reshape(32, 32, 4)[..., :3]


def test_page_loads_sorts_and_the_slider_recomposites(report, driver):
    driver.get(browser.page_url(report / "out" / "index.html"))
    wait_for(driver, "return document.querySelectorAll('#table tbody tr').length === 5")
    assert browser.severe_messages(driver) == []

    # Sorting: the table opens sorted by the first run's insertion AUC; a click on a header sorts by it.
    rows = read_data(report / "out")["rows"]
    by = {col: [r["key"] for r in sorted(rows, key=lambda r: r["runs"][0][col])] for col in ("ins", "del")}
    assert by["ins"] != by["del"]  # the fixture's orders differ, so the click is seen
    assert row_keys(driver) == by["ins"]
    driver.find_element("css selector", "th[data-col='del0']").click()
    assert row_keys(driver) == by["del"]
    driver.find_element("css selector", "th[data-col='del0']").click()  # again: descending
    assert row_keys(driver) == by["del"][::-1]
    differences = [r["key"] for r in sorted(rows, key=lambda r: r["d"][0]["ins"])]
    driver.find_element("css selector", "th[data-col='dins0']").click()  # where does run 2 lose most
    assert row_keys(driver) == differences

    # One image's detail: the slider over k.
    key = f"{CLASS}/img_3"
    driver.find_element("css selector", f"tr[data-key='{key}']").click()
    wait_for(driver, "return document.querySelectorAll('#detail .score').length === 2 && "
                     "[...document.querySelectorAll('#detail .score')].every(s => s.textContent.startsWith('k = '))")
    page = read_detail(report / "out", key)
    detail = page["runs"]
    jpeg = np.frombuffer(base64.b64decode(page["photo"].split(",", 1)[1]), np.uint8)
    photo = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1].astype(np.int64)  # what the page composites
    assert np.abs(photo - block_photo(3)).mean() < 12  # this image's photo, up to JPEG
    slider = driver.find_elements("css selector", "#detail input[type=range]")[0]
    before = driver.execute_script("return document.querySelectorAll('#detail canvas')[1].toDataURL()")

    slider.send_keys("\ue011")  # Home: k = 0, nothing inserted, nothing deleted
    scores = [s.text for s in driver.find_elements("css selector", "#detail .score")]
    assert scores[0].startswith("k = 0 of 16 regions") and f"insertion p = {detail[0]['yi'][0]:.3f}" in scores[0]
    assert scores[1].startswith("k = 0 of 16")  # the other run's panel follows
    assert canvas_pixels(driver, 1).max() == 0  # insertion image: all black
    assert np.abs(canvas_pixels(driver, 2) - photo).mean() < 2  # deletion image: the whole photo
    assert driver.execute_script("return document.querySelectorAll('#detail canvas')[1].toDataURL()") != before

    for _ in range(5):
        slider.send_keys("\ue014")  # arrow right: k = 5
    score = driver.find_elements("css selector", "#detail .score")[0].text
    assert score.startswith("k = 5 of 16") and f"insertion p = {detail[0]['yi'][5]:.3f}" in score
    assert f"deletion p = {detail[0]['yd'][5]:.3f}" in score
    kept = np.isin(np.arange(16), detail[0]["order"][:5])[(np.arange(32)[:, None] // 8) * 4 + np.arange(32) // 8]
    inserted = canvas_pixels(driver, 1)
    assert inserted[~kept].max() == 0 and np.abs(inserted[kept] - photo[kept]).mean() < 2
    assert canvas_pixels(driver, 2)[kept].max() == 0  # deletion: those regions removed
    assert browser.severe_messages(driver) == []

    png = driver.get_screenshot_as_png()
    with Image.open(io.BytesIO(png)) as shot:
        pixels = np.asarray(shot.convert("RGB"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 10


def test_screenshot_command_writes_a_small_png(report, tmp_path):
    from visualization.report.screenshot import main

    out = tmp_path / "report.png"
    assert main([str(report / "greedy"), str(report / "fast"), "--out", str(out), "--image", f"{CLASS}/img_1"]) == 0
    with Image.open(out) as shot:
        assert shot.size[0] > 500 and np.asarray(shot.convert("RGB")).std() > 10
    assert 0 < out.stat().st_size < 300_000
