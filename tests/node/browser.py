"""A real browser for the tests: Debian's Chromium, headless, rendering a page with its JavaScript run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from infrastructure.local.service import ServiceError, install_debian_package

PACKAGE = "chromium"
#: Milliseconds of page time Chromium lets pass (timers, network answers) before it dumps or shoots the page.
BUDGET_MS = 30000


class BrowserUnavailable(RuntimeError):
    """No Chromium here, and it cannot be installed; the message says why and how."""


def chromium() -> Path:
    """Chromium's command, installed from Debian's packages first when missing (root on Debian only)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return Path(found)
    try:
        found = install_debian_package("chromium", PACKAGE, lambda line: None, ("--no-install-recommends",))
    except ServiceError as exc:
        raise BrowserUnavailable(str(exc)) from None
    return Path(found)


def _headless(url: str, *flags: str, timeout: float) -> subprocess.CompletedProcess:
    command = [
        str(chromium()),
        "--headless",
        "--no-sandbox",  # root has no user namespace sandbox to give it; the page is our own
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1600,1100",
        f"--virtual-time-budget={BUDGET_MS}",
        *flags,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def rendered_text(url: str, timeout: float = 120) -> str:
    """The page's DOM after its scripts ran (`--dump-dom`), as HTML."""
    done = _headless(url, "--dump-dom", timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"chromium could not render {url}: {done.stderr[-2000:]}")
    return done.stdout


def screenshot(url: str, path: Path, timeout: float = 120) -> Path:
    """A PNG of the page as Chromium draws it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _headless(url, f"--screenshot={path}", timeout=timeout)
    if done.returncode or not path.is_file():
        raise RuntimeError(f"chromium could not take a screenshot of {url}: {done.stderr[-2000:]}")
    return path
