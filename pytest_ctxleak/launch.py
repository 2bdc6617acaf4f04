"""Finding and launching a Chromium that works on CI machines and in containers."""

from __future__ import annotations

import os
import shutil
from typing import NamedTuple

from playwright.sync_api import Browser, Playwright

from pytest_ctxleak.errors import CtxleakError

# Names of system Chromium builds on PATH, in order of preference.
SYSTEM_CHROMIUM_NAMES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)

# Flags for machines with no network beyond a package mirror, a small /dev/shm and
# often root. Playwright already passes --no-sandbox unless the sandbox is asked for.
LAUNCH_ARGS = (
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
)

INSTALL_HINT = (
    "Install one with 'python -m playwright install chromium', or with your system's "
    "package manager (Debian: 'apt-get install chromium'), or point "
    "--ctxleak-browser-path, ini ctxleak_browser_path or $CTXLEAK_BROWSER_PATH at a "
    "Chromium executable."
)


class BrowserNotFoundError(CtxleakError):
    """No Chromium executable could be found."""


class BrowserChoice(NamedTuple):
    """Which Chromium to launch: None means Playwright's own download."""

    executable: str | None
    how: str


def find_chromium(playwright: Playwright, explicit: str | None) -> BrowserChoice:
    """Pick the explicit path, else Playwright's Chromium, else one on PATH."""
    if explicit:
        return BrowserChoice(explicit, "the configured browser path")
    bundled = playwright.chromium.executable_path
    if bundled and os.path.isfile(bundled):
        return BrowserChoice(None, "Playwright's Chromium")
    for name in SYSTEM_CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return BrowserChoice(found, f"'{name}' on PATH")
    raise BrowserNotFoundError(
        f"no Chromium found: Playwright's own is not installed ({bundled} is "
        f"missing) and none of {', '.join(SYSTEM_CHROMIUM_NAMES)} is on PATH. "
        + INSTALL_HINT
    )


def launch_chromium(
    playwright: Playwright, explicit: str | None = None, *, headed: bool = False
) -> Browser:
    """Launch Chromium with flags that work as root, in containers, offline."""
    choice = find_chromium(playwright, explicit)
    return playwright.chromium.launch(
        executable_path=choice.executable,
        headless=not headed,
        args=list(LAUNCH_ARGS),
    )
