"""Headless Chromium for the report: open ``index.html`` from ``file://``, read the console, take
screenshots. Needs selenium (``pip install selenium``) and a Chromium with its chromedriver
(Debian: ``apt-get install chromium chromium-driver``); nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def missing() -> str | None:
    """Why no browser can be driven here (what to install), or None when one can."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium)"
    if not any(shutil.which(name) for name in CHROMIUM_NAMES):
        return "no Chromium on PATH (apt-get install chromium)"
    if not shutil.which("chromedriver"):
        return "no chromedriver on PATH (apt-get install chromium-driver)"
    return None


def chromium(width: int = 1280, height: int = 1000):
    """A headless Chromium WebDriver with the browser log kept (``driver.get_log("browser")``).
    The caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name))
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))


def page_url(index: str | Path, image: str | None = None) -> str:
    """The ``file://`` URL of a report page, opened on ``image``'s detail when given."""
    from urllib.parse import quote

    url = Path(index).resolve().as_uri()
    return url + (f"#img={quote(image, safe='')}" if image else "")


def severe_messages(driver) -> list[str]:
    """Console messages of level SEVERE (errors) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
