"""A screenshot of the report, for the docs (``docs/figures/report.png``):

    python -m visualization.report.screenshot RUN [RUN2 ...] --out docs/figures/report.png [--image CLASS/STEM]

Builds the report of the run folders in a temporary folder, opens it in headless Chromium on
one image's detail (default: the worst by the first run's insertion AUC) and saves the window
as PNG. Needs selenium and Chromium with chromedriver (see :mod:`.browser`).
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from submodular_attribution.common.atomic import atomic_write
from submodular_attribution.common.errors import InputError, run_reporting_input_errors

from .browser import chromium, missing, page_url, severe_messages
from .build import build_report, read_data


def screenshot(run_dirs: Sequence[str | Path], out: str | Path, image: str | None = None,
               size: tuple[int, int] = (1280, 1400), datasets: str | Path | None = None) -> Path:
    """Build, open and capture the report (window ``size`` = width, height); returns ``out``.
    A console error on the page is a RuntimeError."""
    why = missing()
    if why:
        raise InputError(f"no browser for the screenshot: {why}")
    with tempfile.TemporaryDirectory() as folder:
        build_report(run_dirs, folder, datasets=datasets, verbose=False)
        rows = read_data(folder)["rows"]
        image = image or min(rows, key=lambda row: row["runs"][0]["ins"])["key"]
        if image not in {row["key"] for row in rows}:
            raise InputError(f"--image {image}: not in the report (expected CLASS/STEM)")
        driver = chromium(*size)
        try:
            driver.get(page_url(Path(folder) / "index.html", image))
            deadline = time.monotonic() + 10
            while not driver.execute_script("return /k = /.test(document.querySelector('.score')?.textContent)"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the image's detail did not show within 10 s")
                time.sleep(0.1)
            driver.execute_script("window.scrollTo(0, 0)")
            errors = severe_messages(driver)
            if errors:
                raise RuntimeError(f"the page logged errors: {errors[0]}")
            png = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    atomic_write(out, lambda handle: _small_png(png, handle))
    return Path(out)


def _small_png(png: bytes, handle) -> None:
    """The screenshot in 256 colours: a third of the size, still crisp for text and plots."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as picture:
        picture.convert("RGB").quantize(colors=256).save(handle, format="PNG", optimize=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visualization.report.screenshot",
                                     description="a PNG of the HTML report of run folders, for the docs")
    parser.add_argument("runs", nargs="+", help="SMDL run folders, as --explanation-dir")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--image", default=None, help="CLASS/STEM whose detail is open (default: the worst)")
    parser.add_argument("--datasets", default=None, help="photos' root (default: from runs.jsonl)")
    args = parser.parse_args(argv)

    def run() -> None:
        print(screenshot(args.runs, args.out, args.image, datasets=args.datasets))

    return run_reporting_input_errors(run)


if __name__ == "__main__":
    sys.exit(main())
