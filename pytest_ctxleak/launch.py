"""Finding and launching a Chromium that works on CI machines and in containers."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from playwright.sync_api import Browser, Playwright
from playwright.sync_api import Error as PlaywrightError

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
    """The Chromium to launch; an executable of None means Playwright's own."""

    executable: str | None
    how: str


def find_chromium(bundled: str, explicit: str | None) -> BrowserChoice:
    """Pick the explicit path, else Playwright's Chromium at ``bundled``, else one
    on PATH."""
    if explicit:
        return BrowserChoice(explicit, "the configured browser path")
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


def launch_options(
    bundled: str, explicit: str | None = None, *, headed: bool = False
) -> dict[str, Any]:
    """Return ``BrowserType.launch`` arguments for the Chromium to use.

    The flags work as root, in containers and with no network.
    """
    choice = find_chromium(bundled, explicit)
    return {
        "executable_path": choice.executable,
        "headless": not headed,
        "args": list(LAUNCH_ARGS),
    }


@contextlib.contextmanager
def launch_errors_explained(options: dict[str, Any]) -> Iterator[None]:
    """Turn a failed launch into one test failure that names the browser and a fix."""
    try:
        yield
    except PlaywrightError as error:
        executable = options.get("executable_path") or "Playwright's Chromium"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        first_line = first_line.rstrip(".")
        if not options.get("headless", True) and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            advice = "Headed mode needs a display: $DISPLAY is not set."
        elif options.get("executable_path") and os.access(executable, os.X_OK):
            # The file is there and runs, so installing a browser is not the fix.
            advice = (
                f"{executable} exists and is executable but did not start as "
                "Chromium. Check that it is a Chromium or Chrome executable, for "
                f"example by running '{executable} --version'."
            )
        else:
            advice = INSTALL_HINT
        pytest.fail(
            f"ctxleak: launching {executable} failed: {first_line}. {advice}",
            pytrace=False,
        )


def launch_chromium(
    playwright: Playwright, explicit: str | None = None, *, headed: bool = False
) -> Browser:
    """Launch Chromium through Playwright's sync API; see ``launch_options``."""
    options = launch_options(
        playwright.chromium.executable_path, explicit, headed=headed
    )
    return playwright.chromium.launch(**options)
