"""A headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium.

Where no browser can be had the tests are skipped with the reason. ``FOVEA_SCREENSHOTS=DIR``
also writes the screenshots there (``tests/browser/screenshots`` holds the ones README shows).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image


def _find(*names: str) -> str | None:
    return next((p for n in names if (p := shutil.which(n))), None)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    binary = _find("chromium", "chromium-browser", "google-chrome")
    driver_path = _find("chromedriver", "chromium-driver")
    if binary is None or driver_path is None:
        pytest.skip(
            "no Chromium/chromedriver on PATH: apt-get install -y chromium chromium-driver "
            "(Debian) to run the browser tests"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # running as root in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1000,1150",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as exc:
        pytest.skip(f"Chromium did not start: {exc.msg}")
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser, tmp_path: Path):
    """``screenshot("name")`` saves the page as a test artefact, and to $FOVEA_SCREENSHOTS
    when ``publish`` (the ones README shows)."""

    def save(name: str, publish: bool = True) -> Path:
        path = tmp_path / f"{name}.png"
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(path))
        extra = os.environ.get("FOVEA_SCREENSHOTS")
        if extra and publish:  # 256 dithered colours: about half the bytes, for the repository
            Path(extra).mkdir(parents=True, exist_ok=True)
            rgb = Image.open(path).convert("RGB")
            palette = rgb.quantize(256, method=Image.Quantize.MEDIANCUT)
            small = rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
            small.save(Path(extra) / path.name, optimize=True)
        return path

    return save
