"""Acquisition sites: where in the caller's code a lease was taken.

Capturing a site walks raw frames and stores (file, line, function) triples. Source
lines are read through linecache only when a site is formatted, so the cost on the
acquire path stays at a few microseconds.
"""

from __future__ import annotations

import linecache
import os
import sys
from types import FrameType
from typing import NamedTuple

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# Frames from these places are machinery between the caller and the pool: the plugin
# itself, pytest, pluggy, pytest-asyncio, pytest-xdist and its execnet channel (whose
# worker bootstrap runs as "<string>"), the stdlib's contextlib, asyncio and runpy,
# and Playwright's greenlet dispatch. Skipping them leaves the user's frames.
_MACHINERY_MARKERS = (
    _PACKAGE_DIR + os.sep,
    os.sep + "_pytest" + os.sep,
    os.sep + "pytest" + os.sep + "__main__.py",
    os.sep + "pluggy" + os.sep,
    os.sep + "pytest_asyncio" + os.sep,
    os.sep + "xdist" + os.sep,
    os.sep + "execnet" + os.sep,
    "<string>",
    os.sep + "runpy.py",
    os.sep + "playwright" + os.sep,
    os.sep + "contextlib.py",
    os.sep + "asyncio" + os.sep,
    os.sep + "threading.py",
    "<frozen ",
)

DEFAULT_DEPTH = 6


class Frame(NamedTuple):
    """One frame of an acquisition site."""

    filename: str
    lineno: int
    function: str
    module: str = ""  # the frame's __name__, for allow rules

    def location(self) -> str:
        """Return ``file:line``, relative to the working directory when inside it."""
        return f"{_relative(self.filename)}:{self.lineno}"

    def source(self) -> str:
        """Return the stripped source line, or an empty string if it is unavailable."""
        return linecache.getline(self.filename, self.lineno).strip()


class Site(NamedTuple):
    """The caller's frames at the moment of an acquire, innermost first."""

    frames: tuple[Frame, ...]

    @property
    def top(self) -> Frame | None:
        """The innermost user frame: the line that called acquire."""
        return self.frames[0] if self.frames else None

    def location(self) -> str:
        """Return ``file:line in function`` of the innermost frame."""
        top = self.top
        if top is None:
            return "<unknown site>"
        return f"{top.location()} in {top.function}"

    def format_stack(self, limit: int = DEFAULT_DEPTH) -> list[str]:
        """Return the frames as lines, innermost first, each followed by its source."""
        lines = []
        for frame in self.frames[:limit]:
            lines.append(f"{frame.location()} in {frame.function}")
            source = frame.source()
            if source:
                lines.append(f"    {source}")
        return lines


UNKNOWN_SITE = Site(())


# The console scripts that pip writes to start pytest, as in .venv/bin/pytest.
_CONSOLE_SCRIPTS = ("pytest", "py.test")


def _is_machinery(filename: str) -> bool:
    if os.path.basename(filename) in _CONSOLE_SCRIPTS:
        return True
    return any(marker in filename for marker in _MACHINERY_MARKERS)


# An installed library's file is named from its package down, as in an import.
_INSTALLED_MARKERS = (
    os.sep + "site-packages" + os.sep,
    os.sep + "dist-packages" + os.sep,
)


def _relative(filename: str) -> str:
    for marker in _INSTALLED_MARKERS:
        _, found, inside = filename.rpartition(marker)
        if found:
            return inside
    try:
        relative = os.path.relpath(filename)
    except ValueError:  # another drive on Windows
        return filename
    return filename if relative.startswith("..") else relative


def capture_site(depth: int = DEFAULT_DEPTH) -> Site:
    """Capture up to ``depth`` frames of user code above the current call.

    Frames of the plugin, pytest, pluggy, Playwright and the stdlib's context-manager
    and event-loop plumbing are skipped wherever they appear in the stack.
    """
    frames: list[Frame] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and len(frames) < depth:
        code = frame.f_code
        if not _is_machinery(code.co_filename):
            module = frame.f_globals.get("__name__", "")
            frames.append(Frame(code.co_filename, frame.f_lineno, code.co_name, module))
        frame = frame.f_back
    return Site(tuple(frames))
