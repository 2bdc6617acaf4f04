"""The processes and memory of the browsers that Playwright launched on this machine.

A leaked context shows on the machine as renderer processes and memory that never go
away. This module finds each launched browser's process tree, counts its processes
by type and sums their memory as PSS. It also finds browsers and defunct processes
left at the end of a run, and redacts secrets from command lines before they are
shown.

It uses psutil only. Summed RSS is never the figure: every Chromium process maps the
same binary and shared memory, so RSS counts those pages once per process. PSS
divides each shared page among the processes that map it.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import psutil

if TYPE_CHECKING:
    from pytest_ctxleak.watch import Watched

logger = logging.getLogger("pytest_ctxleak")

# Process types, in report order. Chromium names a child process's role in its
# --type= argument; the process without one is the browser itself.
PROCESS_TYPES = ("browser", "renderer", "gpu", "utility", "other")
_TYPE_FLAGS = {"renderer": "renderer", "gpu-process": "gpu", "utility": "utility"}

# Executable names of browsers that a run may start without Playwright, such as
# through subprocess.
BROWSER_NAMES = frozenset(
    {
        "chrome",
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "headless_shell",
        "chrome-headless-shell",
        "msedge",
        "firefox",
        "firefox-bin",
    }
)

# Arguments Playwright passes to every browser it launches: Chromium's pipe or
# port, and Firefox's juggler pipe.
_CONTROL_FLAGS = ("--remote-debugging-pipe", "--remote-debugging-port", "-juggler")

_ERRORS = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)


def process_type(cmdline: list[str], is_root: bool) -> str:
    """Classify a browser process from its command line.

    NOTE: only Chromium's --type= values are known; the content processes of
    Firefox and WebKit count as "other".
    """
    if is_root:
        return "browser"
    flag = _type_flag(cmdline)
    if flag is None:
        return "other"
    return _TYPE_FLAGS.get(flag, "other")


def _type_flag(cmdline: list[str]) -> str | None:
    for argument in cmdline:
        if argument.startswith("--type="):
            return argument[len("--type=") :]
    return None


# Size units. Decimal prefixes (kB, MB, GB, TB) are powers of 1000, binary ones
# (KiB, MiB, GiB, TiB) powers of 1024, and a single letter (K, M, G, T) is binary,
# as in `docker run --memory` and GNU coreutils.
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")

SIZE_FORM = (
    "expected a size such as '300 MB', '512MiB', '1.5GiB' or '300M' "
    "(kB, MB, GB are powers of 1000; KiB, MiB, GiB and K, M, G powers of 1024)"
)


def parse_size(value: object) -> int:
    """Parse a size in bytes from a string such as "300 MB" or a whole number.

    Raise ValueError for anything else, for a unit this module does not know, and
    for sizes that are not positive.
    """
    if isinstance(value, bool):
        raise ValueError(SIZE_FORM)
    if isinstance(value, int):
        number: float = value
        unit = ""
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match is None:
            raise ValueError(SIZE_FORM)
        number = float(match.group(1))
        unit = match.group(2).lower()
    else:
        raise ValueError(SIZE_FORM)
    if unit not in _UNITS:
        raise ValueError(SIZE_FORM)
    size = number * _UNITS[unit]
    if not math.isfinite(size) or size < 1:
        raise ValueError(SIZE_FORM)
    return int(size)


def format_size(size: float) -> str:
    """Format bytes for messages in binary units, such as ``412.0 MiB``."""
    magnitude = abs(size)
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if magnitude >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size:.0f} B"


# Secrets in command lines. A parameter whose name contains one of these words has
# its value hidden; so has the user information of any URL or proxy address.
_SECRET_NAME = (
    r"[\w.-]*(?:pass|pwd|token|secret|key|auth|credential|sig|session|cookie)[\w.-]*"
)
_SECRET_PARAMETER = re.compile(rf"(?i)({_SECRET_NAME})([=:])([^&\s;,]+)")
_USER_INFO = re.compile(r"([/=])([^\s/@=]+)@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+")
REDACTED = "***"


def redact_argument(argument: str) -> str:
    """Hide credentials in one command-line argument.

    ``--proxy-server=user:pass@host`` keeps only the host, ``token=...`` in a URL's
    query keeps only the name, and so does any ``name=value`` whose name contains
    pass, pwd, token, secret, key, auth, credential, sig, session or cookie.
    """
    redacted = _USER_INFO.sub(rf"\1{REDACTED}@", argument)
    redacted = _BEARER.sub(rf"\1 {REDACTED}", redacted)
    return _SECRET_PARAMETER.sub(rf"\1\2{REDACTED}", redacted)


def redact_command(cmdline: Iterable[str]) -> str:
    """Join a command line for display, every argument redacted."""
    return " ".join(redact_argument(argument) for argument in cmdline)


def short_command(cmdline: list[str], limit: int = 600) -> str:
    """Redact a command line and cut it at ``limit`` characters."""
    text = redact_command(cmdline)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class BrowserTree:
    """The main process of one launched browser; its children form the tree."""

    key: int  # the watch id of the browser, or of a persistent context
    pid: int
    # Tells the process apart from a later one that gets the same pid.
    create_time: float
    command: str  # redacted

    def root(self) -> psutil.Process | None:
        """Return the main process, or None once it has exited."""
        try:
            process = psutil.Process(self.pid)
            if process.create_time() != self.create_time:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
        except _ERRORS:
            return None
        return process


class Sample(NamedTuple):
    """The processes and memory of the local browsers at one moment."""

    counts: dict[str, int]  # process type -> number of processes
    pss: int | None  # bytes; None when memory was not measured
    # Processes whose PSS the kernel did not report and whose USS was used instead.
    uss_used: int = 0


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(PROCESS_TYPES, 0)


@dataclass
class ProcessTracker:
    """The browser process trees of this run, found at each launch.

    It is the watch's launch observer: before a launch it notes the processes that
    already exist, and after it, the new browser process among this process's
    descendants is the one just launched. Playwright starts a driver process,
    which starts the browser, so both are descendants.
    """

    # watch id -> tree, for browsers launched on this machine whose main process
    # was running when last looked at.
    trees: dict[int, BrowserTree] = field(default_factory=dict)
    # watch id -> method, for browsers reached through connect or
    # connect_over_cdp; they run elsewhere and have no local tree.
    remote: dict[int, str] = field(default_factory=dict)
    # Called with each new tree, such as to take its baseline; may be None.
    on_launch: Callable[[BrowserTree], None] | None = None
    # (pid, create time) -> process type, so a command line is read once.
    _types: dict[tuple[int, float], str] = field(default_factory=dict)

    def before_launch(self) -> object:
        return descendant_pids()

    def after_launch(
        self, method: str, watched: Watched, before: object, user_data_dir: Any
    ) -> None:
        try:
            self._note_launch(method, watched, before, user_data_dir)
        except Exception:  # the user's launch succeeded; measuring is secondary
            logger.exception(
                "finding the processes of the browser from %s failed", method
            )

    def _note_launch(
        self, method: str, watched: Watched, before: object, user_data_dir: Any
    ) -> None:
        if method in ("connect", "connect_over_cdp"):
            if not self.remote:
                logger.info(
                    "the browser reached through %s runs elsewhere; its processes "
                    "and memory are not measured",
                    method,
                )
            self.remote[watched.watch_id] = method
            return
        known = before if isinstance(before, set) else set()
        claimed = {tree.pid for tree in self.trees.values()}
        folder = os.path.abspath(str(user_data_dir)) if user_data_dir else None
        try:
            process = find_launched_browser(known, claimed, folder)
        except psutil.Error as error:
            logger.warning("finding the launched browser's process failed: %s", error)
            return
        if process is None:
            logger.warning(
                "no new browser process found after %s; its processes and memory "
                "are not measured",
                method,
            )
            return
        try:
            tree = BrowserTree(
                watched.watch_id,
                process.pid,
                process.create_time(),
                short_command(process.cmdline()),
            )
        except _ERRORS:
            return
        self.trees[watched.watch_id] = tree
        logger.debug("browser process %d launched by %s", tree.pid, method)
        if self.on_launch is not None:
            self.on_launch(tree)

    def live_trees(self) -> list[BrowserTree]:
        """Return the trees whose main process still runs, and forget the others.

        A main process that exited cannot come back, because a new process with
        its pid has another start time.
        """
        live = []
        for key, tree in list(self.trees.items()):
            if tree.root() is None:
                del self.trees[key]
            else:
                live.append(tree)
        return live

    def sample(self, trees: list[BrowserTree], memory: bool) -> Sample:
        """Count the processes of ``trees`` by type and, if asked, sum their PSS."""
        counts = empty_counts()
        pss_total = 0
        uss_used = 0
        for tree in trees:
            root = tree.root()
            if root is None:
                continue
            try:
                members = [root, *root.children(recursive=True)]
            except _ERRORS:
                continue
            for process in members:
                kind = self._type_of(process, process is root)
                if kind is None:
                    continue
                if memory:
                    try:
                        info = process.memory_full_info()
                    except _ERRORS:
                        continue  # it exited between the listing and now
                    pss = getattr(info, "pss", None)
                    if pss is None:
                        uss_used += 1
                        pss = info.uss
                    pss_total += pss
                counts[kind] += 1
        return Sample(counts, pss_total if memory else None, uss_used)

    def _type_of(self, process: psutil.Process, is_root: bool) -> str | None:
        try:
            key = (process.pid, process.create_time())
            kind = self._types.get(key)
            if kind is None:
                if process.status() == psutil.STATUS_ZOMBIE:
                    return None
                kind = process_type(process.cmdline(), is_root)
                self._types[key] = kind
        except _ERRORS:
            return None
        return kind


def descendant_pids() -> set[int]:
    """Return the pids of every descendant of this process."""
    try:
        return {child.pid for child in psutil.Process().children(recursive=True)}
    except _ERRORS:
        return set()


def find_launched_browser(
    before: set[int], claimed: set[int], user_data_dir: str | None
) -> psutil.Process | None:
    """Find the main process of a browser launched since ``before`` was taken.

    Of the new descendants, the candidates are those whose parent is not new and
    that carry no --type= argument: the roots of new trees. Among them, a process
    with Playwright's control flags comes first, and with ``user_data_dir`` one
    started on that profile folder. Two browsers launched at once from async code
    may be matched to each other's launch; their counts and sums are unaffected.
    """
    new = {}
    for process in psutil.Process().children(recursive=True):
        if process.pid not in before and process.pid not in claimed:
            new[process.pid] = process
    candidates = []
    for process in new.values():
        try:
            cmdline = process.cmdline()
            if process.ppid() in new or _type_flag(cmdline) is not None:
                continue
            candidates.append((process.create_time(), process, cmdline))
        except _ERRORS:
            continue
    candidates.sort(key=lambda candidate: candidate[0])

    def rank(cmdline: list[str]) -> int:
        controlled = any(arg.startswith(_CONTROL_FLAGS) for arg in cmdline)
        on_profile = user_data_dir is not None and any(
            arg == f"--user-data-dir={user_data_dir}" or arg == user_data_dir
            for arg in cmdline
        )
        return (0 if on_profile else 1) * 2 + (0 if controlled else 1)

    if not candidates:
        return None
    best = min(candidates, key=lambda candidate: rank(candidate[2]))
    return best[1]


class Leftover(NamedTuple):
    """A process left at the end of the run: a browser still running, or a
    defunct child that nobody reaped."""

    pid: int
    state: str  # "running" or "defunct"
    command: str  # redacted


def looks_like_browser(cmdline: list[str], name: str) -> bool:
    """Tell whether a process is a browser's main process, by name and arguments."""
    if _type_flag(cmdline) is not None:
        return False
    executable = os.path.basename(cmdline[0]) if cmdline else name
    return executable in BROWSER_NAMES or name in BROWSER_NAMES


def find_leftovers(trees: Iterable[BrowserTree], since: float) -> list[Leftover]:
    """Find browsers started since ``since`` that still run, and defunct children.

    A browser counts when Playwright launched it during the run (found through its
    tree, wherever it was re-parented), or when it is a descendant of this process
    started since ``since`` whose name is a browser's.
    """
    found: dict[int, Leftover] = {}
    for tree in trees:
        if tree.root() is not None:
            found[tree.pid] = Leftover(tree.pid, "running", tree.command)
    try:
        descendants = psutil.Process().children(recursive=True)
    except _ERRORS:
        descendants = []
    for process in descendants:
        try:
            status = process.status()
            if status == psutil.STATUS_ZOMBIE:
                found[process.pid] = Leftover(
                    process.pid, "defunct", f"[{process.name()}]"
                )
                continue
            if process.pid in found or process.create_time() < since:
                continue
            cmdline = process.cmdline()
            if looks_like_browser(cmdline, process.name()):
                found[process.pid] = Leftover(
                    process.pid, "running", short_command(cmdline)
                )
        except _ERRORS:
            continue
    return sorted(found.values())


def wait_for_leftovers(
    trees: Iterable[BrowserTree], since: float, grace: float
) -> list[Leftover]:
    """Find leftovers, giving processes that are exiting up to ``grace`` seconds.

    A browser closed at the end of the session may take a moment to exit, and an
    exited child a moment to be reaped; only what remains after that is reported.
    """
    trees = list(trees)
    deadline = time.monotonic() + grace
    found = find_leftovers(trees, since)
    while found and time.monotonic() < deadline:
        time.sleep(0.1)
        found = find_leftovers(trees, since)
    return found
