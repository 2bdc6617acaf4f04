"""Acquisition sites: where in the caller's code a lease was taken.

Capturing a site walks raw frames and stores each one's file, line, function, module
and qualified name. Source lines are read through linecache only when a site is
formatted, so the cost on the acquire path stays at a few microseconds.
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
    # Plugins that run a test's protocol themselves, as reruns and timeouts do.
    os.sep + "pytest_rerunfailures.py",
    os.sep + "pytest_timeout.py",
    os.sep + "pytest_randomly" + os.sep,
    "<string>",
    os.sep + "runpy.py",
    os.sep + "playwright" + os.sep,
    os.sep + "contextlib.py",
    os.sep + "asyncio" + os.sep,
    os.sep + "threading.py",
    "<frozen ",
)

DEFAULT_DEPTH = 6

# The part of a qualified name that marks a function defined inside another, as in
# ``factory.<locals>.make``.
LOCALS = "<locals>"
_NESTED = f".{LOCALS}."
_COMPREHENSIONS = ("<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>")


class Frame(NamedTuple):
    """One frame of an acquisition site."""

    filename: str
    lineno: int
    function: str
    module: str = ""  # the frame's __name__, for allow rules
    # The code's qualified name, as in ``Session.open`` or ``factory.<locals>.make``;
    # empty where unknown. Allow rules and fixture ownership match on it.
    qualname: str = ""

    def location(self) -> str:
        """Return ``file:line``, relative to the working directory when inside it."""
        return f"{_relative(self.filename)}:{self.lineno}"

    def source(self) -> str:
        """Return the stripped source line, or an empty string if it is unavailable."""
        return linecache.getline(self.filename, self.lineno).strip()

    def enclosing_function(self) -> str | None:
        """Return the qualified name of the outermost function this frame's code is
        nested in, or None for code not nested in a function.

        A comprehension or generator expression runs as a code object of its own
        (``test_x.<locals>.<listcomp>`` before Python 3.12) but is part of the
        function it is written in, so it does not count as nested.
        """
        qualname = self.qualname
        head, found, tail = qualname.rpartition(_NESTED)
        while found and tail in _COMPREHENSIONS:
            qualname = head
            head, found, tail = qualname.rpartition(_NESTED)
        outer, found, _ = qualname.partition(_NESTED)
        return outer if found else None


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
            if sys.version_info >= (3, 11):
                qualname = code.co_qualname
            else:
                qualname = guess_qualname(frame)
            frames.append(
                Frame(code.co_filename, frame.f_lineno, code.co_name, module, qualname)
            )
        frame = frame.f_back
    return Site(tuple(frames))


def guess_qualname(frame: FrameType) -> str:
    """Return a frame's qualified name where the code object does not store it.

    A method is found by its first argument, ``self`` or ``cls``: the class in its
    MRO whose attribute runs this very code object names it.

    NOTE: Python 3.10 code objects have no co_qualname, so there a function nested
    in another is named by its own name alone (``make``, not
    ``factory.<locals>.make``): a rule naming the outer function does not cover it,
    and objects it creates are not given to the fixture it is nested in.
    """
    code = frame.f_code
    name = code.co_name
    if code.co_argcount == 0 or code.co_varnames[0] not in ("self", "cls"):
        return name
    first = frame.f_locals.get(code.co_varnames[0])
    cls = first if isinstance(first, type) else type(first)
    for klass in cls.__mro__:
        attribute = klass.__dict__.get(name)
        function = getattr(attribute, "__func__", attribute)
        if getattr(function, "__code__", None) is code:
            return f"{klass.__qualname__}.{name}"
    return name
