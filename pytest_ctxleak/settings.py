"""Command-line options, ini settings, the marker, and their validation.

Every setting is resolved in one place, in this order: the marker on a test, then the
command line, then the ini file, then the environment (browser path only), then the
default. Each setting has one validator, and its error names the value and where it
came from, so a typo in CI configuration fails the run instead of switching a check off.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import pytest

from pytest_ctxleak.allow import AllowRule as AllowRule
from pytest_ctxleak.allow import validate_allow_rule
from pytest_ctxleak.pool import (
    DEFAULT_ACQUIRE_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_CONTEXTS,
)
from pytest_ctxleak.procs import SIZE_FORM, parse_size
from pytest_ctxleak.signature import make_signature

MODES = ("fail", "warn", "off")
MEASURES = ("off", "processes", "memory")
# Soak defaults: a count (contexts, pages, renderers) may grow by at most this much
# per repetition after the warm-up, and PSS by at most DEFAULT_SOAK_MEMORY_SLOPE.
DEFAULT_SOAK_SLOPE = 0.5
DEFAULT_SOAK_MEMORY_SLOPE = 2 * 1024**2
# Repetitions a soak needs after its warm-up to fit a slope worth failing on.
MIN_SOAK_POINTS = 3
ALLOW_INI = "ctxleak_allow"
BROWSER_PATH_ENV = "CTXLEAK_BROWSER_PATH"
MARKER = "ctxleak"

MARKER_HELP = (
    "ctxleak(max_contexts=N, check=True, mode='fail', context_options={...}, "
    "allow=[...], max_memory='300 MB', max_memory_growth='50 MB', max_renderers=N, "
    "repeat=N, soak_warmup=N, soak_max_slope=0.5, soak_max_memory_slope='2 MiB'): "
    "change the context leak check for one test. max_contexts is the most contexts "
    "the test may hold at once; check=False skips the check; mode is fail, warn or "
    "off; context_options are the new_context options of the pooled_* fixtures; "
    "allow lists code ('module', 'module:function' or 'module:Class.method') that "
    "may leave browsers, contexts and pages open; max_memory, max_memory_growth "
    "and max_renderers limit the browsers' PSS, its growth over the test and their "
    "renderer processes; repeat runs the test function N times and fails when "
    "contexts, pages, renderers or PSS grow per repetition after soak_warmup "
    "repetitions."
)


class Option(NamedTuple):
    """One setting: its command-line flag, ini name, help text and default."""

    dest: str
    flag: str
    ini: str
    help: str
    default: object


OPTIONS = (
    Option(
        "max_contexts",
        "--ctxleak-max-contexts",
        "ctxleak_max_contexts",
        "The most browser contexts a test may hold at once, and the cap of the "
        f"context_pool fixture. A whole number; default {DEFAULT_MAX_CONTEXTS}.",
        DEFAULT_MAX_CONTEXTS,
    ),
    Option(
        "mode",
        "--ctxleak-mode",
        "ctxleak_mode",
        "What a leak does: 'fail' fails the test, 'warn' emits a CtxleakWarning, "
        "'off' skips the check. Default 'fail'.",
        "fail",
    ),
    Option(
        "acquire_timeout",
        "--ctxleak-acquire-timeout",
        "ctxleak_acquire_timeout",
        "Seconds an acquire on the context_pool fixture may wait for a free context. "
        f"Default {DEFAULT_ACQUIRE_TIMEOUT:g}.",
        DEFAULT_ACQUIRE_TIMEOUT,
    ),
    Option(
        "close_timeout",
        "--ctxleak-close-timeout",
        "ctxleak_close_timeout",
        "Seconds a close or reset of a context or page may take before it is "
        f"reported as hung. Default {DEFAULT_CLOSE_TIMEOUT:g}.",
        DEFAULT_CLOSE_TIMEOUT,
    ),
    Option(
        "browser_path",
        "--ctxleak-browser-path",
        "ctxleak_browser_path",
        "Path of the Chromium executable for the ctxleak_browser fixture. Default: "
        f"${BROWSER_PATH_ENV}, else Playwright's Chromium, else chromium on PATH.",
        None,
    ),
    Option(
        "headed",
        "--ctxleak-headed",
        "ctxleak_headed",
        "Show the browser window of the ctxleak_browser fixture (needs a display). "
        "Default: headless.",
        False,
    ),
    Option(
        "settle_attempts",
        "--ctxleak-settle-attempts",
        "ctxleak_settle_attempts",
        "How often to let Playwright deliver pending close events before a browser, "
        "context or page still open after a test is reported. A whole number, 0 "
        "for no wait; default 3.",
        3,
    ),
    Option(
        "settle_timeout",
        "--ctxleak-settle-timeout",
        "ctxleak_settle_timeout",
        "Seconds the settle wait may take in all, per test that looks leaky. "
        "Default 0.5.",
        0.5,
    ),
    Option(
        "measure",
        "--ctxleak-measure",
        "ctxleak_measure",
        "What to measure of the local browsers' processes at the start and end of "
        "each test: 'processes' counts them by type, 'memory' also sums their PSS, "
        "'off' measures nothing. Memory limits and soak measure memory for their "
        "tests whatever this says. Default 'processes'.",
        "processes",
    ),
    Option(
        "max_memory",
        "--ctxleak-max-memory",
        "ctxleak_max_memory",
        "The most memory (summed PSS) the local browsers may use at the end of a "
        "test, such as '1.5GiB' or '800 MB'. Default: no limit.",
        None,
    ),
    Option(
        "max_memory_growth",
        "--ctxleak-max-memory-growth",
        "ctxleak_max_memory_growth",
        "The most the local browsers' summed PSS may grow from the start to the end "
        "of a test, such as '50 MiB'. Default: no limit.",
        None,
    ),
    Option(
        "max_renderers",
        "--ctxleak-max-renderers",
        "ctxleak_max_renderers",
        "The most renderer processes the local browsers may have at the end of a "
        "test. A whole number; default: no limit.",
        None,
    ),
    Option(
        "repeat",
        "--ctxleak-repeat",
        "ctxleak_repeat",
        "Soak mode: run each test function this many times in one browser, with "
        "its fixtures set up once, and fail when open contexts, pages, renderer "
        "processes or PSS grow per repetition. A whole number; default 1 (off).",
        1,
    ),
    Option(
        "soak_warmup",
        "--ctxleak-soak-warmup",
        "ctxleak_soak_warmup",
        "Soak repetitions left out of the slope, so that caches can fill first. "
        "A whole number; default a third of the repetitions, rounded down.",
        None,
    ),
    Option(
        "soak_max_slope",
        "--ctxleak-soak-max-slope",
        "ctxleak_soak_max_slope",
        "The most open contexts, open pages or renderer processes may grow per soak "
        f"repetition after the warm-up. A number; default {DEFAULT_SOAK_SLOPE:g}.",
        DEFAULT_SOAK_SLOPE,
    ),
    Option(
        "soak_max_memory_slope",
        "--ctxleak-soak-max-memory-slope",
        "ctxleak_soak_max_memory_slope",
        "The most the browsers' summed PSS may grow per soak repetition after the "
        "warm-up, such as '2 MiB'. Default 2 MiB.",
        DEFAULT_SOAK_MEMORY_SLOPE,
    ),
)


class Settings(NamedTuple):
    """Settings for the whole run, resolved once at configure time."""

    max_contexts: int
    mode: str
    acquire_timeout: float
    close_timeout: float
    browser_path: str | None
    headed: bool
    settle_attempts: int = 3
    settle_timeout: float = 0.5
    allow: tuple[AllowRule, ...] = ()
    measure: str = "processes"
    limits: ProcessLimits | None = None
    soak: Soak | None = None


class ProcessLimits(NamedTuple):
    """Opt-in limits on the local browsers at the end of a test; None is no limit."""

    max_memory: int | None = None  # bytes of summed PSS
    max_memory_growth: int | None = None  # bytes of summed PSS over the baseline
    max_renderers: int | None = None

    @property
    def need_memory(self) -> bool:
        return self.max_memory is not None or self.max_memory_growth is not None

    @property
    def any(self) -> bool:
        return self.need_memory or self.max_renderers is not None


class Soak(NamedTuple):
    """Soak mode: how often to run the test function, and when growth fails it."""

    repeat: int = 1  # 1 is no soak
    warmup: int = 0  # repetitions left out of the fitted slope
    max_slope: float = DEFAULT_SOAK_SLOPE  # contexts, pages, renderers per repetition
    max_memory_slope: int = DEFAULT_SOAK_MEMORY_SLOPE  # bytes per repetition
    # The warm-up as configured, or None for a third of the repetitions; a marker
    # that changes repeat recomputes the default from its own count.
    configured_warmup: int | None = None


class TestSettings(NamedTuple):
    """Settings for one test: the run's settings with its marker applied."""

    max_contexts: int
    mode: str
    context_options: Mapping[str, Any]
    allow: tuple[AllowRule, ...] = ()
    limits: ProcessLimits = ProcessLimits()
    soak: Soak = Soak()


def _usage(name: str, value: object, source: str, expected: str) -> pytest.UsageError:
    return pytest.UsageError(f"invalid {name} {value!r} from {source}: {expected}")


def validate_max_contexts(value: object, source: str) -> int:
    text = value.strip() if isinstance(value, str) else value
    try:
        number = int(text) if isinstance(text, str) else text
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise _usage(
            "max_contexts", value, source, "expected a whole number of at least 1"
        )
    return number


def validate_count(name: str, value: object, source: str) -> int:
    text = value.strip() if isinstance(value, str) else value
    try:
        number = int(text) if isinstance(text, str) else text
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise _usage(name, value, source, "expected a whole number of at least 0")
    return number


def validate_mode(value: object, source: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in MODES:
        raise _usage("mode", value, source, "expected one of fail, warn, off")
    return value.strip().lower()


def validate_seconds(name: str, value: object, source: str) -> float:
    try:
        number = float(value) if isinstance(value, (str, int, float)) else math.nan
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not (number > 0 and math.isfinite(number)):
        raise _usage(name, value, source, "expected a positive number of seconds")
    return number


def validate_bool(name: str, value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    raise _usage(name, value, source, "expected true or false")


def validate_measure(value: object, source: str) -> str:
    if not isinstance(value, str) or value.strip().lower() not in MEASURES:
        raise _usage("measure", value, source, "expected one of off, processes, memory")
    return value.strip().lower()


def validate_size(name: str, value: object, source: str) -> int:
    try:
        return parse_size(value)
    except ValueError:
        raise _usage(name, value, source, SIZE_FORM) from None


def validate_repeat(value: object, source: str) -> int:
    text = value.strip() if isinstance(value, str) else value
    try:
        number = int(text) if isinstance(text, str) else text
    except ValueError:
        number = None
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise _usage("repeat", value, source, "expected a whole number of at least 1")
    return number


def validate_slope(name: str, value: object, source: str) -> float:
    try:
        number = float(value) if isinstance(value, (str, int, float)) else math.nan
    except ValueError:
        number = math.nan
    if isinstance(value, bool) or not (number >= 0 and math.isfinite(number)):
        raise _usage(name, value, source, "expected a number of at least 0")
    return number


def validate_soak(
    repeat: int, warmup: int | None, max_slope: float, memory_slope: int, source: str
) -> Soak:
    """Check that a soak leaves enough repetitions after its warm-up to fit."""
    configured = warmup
    if warmup is None:
        warmup = repeat // 3
    if repeat > 1 and repeat - warmup < MIN_SOAK_POINTS:
        raise pytest.UsageError(
            f"invalid soak from {source}: repeat={repeat} with soak_warmup={warmup} "
            f"leaves {max(repeat - warmup, 0)} repetitions to fit a slope on; raise "
            f"repeat or lower soak_warmup so that at least {MIN_SOAK_POINTS} remain"
        )
    return Soak(repeat, warmup, max_slope, memory_slope, configured)


def validate_browser_path(value: object, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _usage("browser path", value, source, "expected a file path")
    path = os.path.expanduser(value.strip())
    if os.path.isdir(path):
        raise _usage(
            "browser path",
            value,
            source,
            "it is a directory; point it at the Chromium executable inside it",
        )
    if not os.path.isfile(path):
        raise _usage(
            "browser path",
            value,
            source,
            "no such file; point it at a Chromium executable such as /usr/bin/chromium",
        )
    if not os.access(path, os.X_OK):
        raise _usage("browser path", value, source, "the file is not executable")
    return path


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("ctxleak", "browser context leak check (pytest-ctxleak)")
    for option in OPTIONS:
        if option.dest == "headed":
            group.addoption(
                option.flag,
                action="store_true",
                default=None,
                dest=f"ctxleak_{option.dest}",
                help=option.help,
            )
        else:
            group.addoption(
                option.flag,
                default=None,
                dest=f"ctxleak_{option.dest}",
                help=option.help,
            )
        parser.addini(option.ini, option.help, default=None)
    parser.addini(
        ALLOW_INI,
        "Code allowed to leave browsers, contexts and pages open, one rule a line: "
        "'package.module', 'package.module:function' or "
        "'package.module:Class.method'. A rule covers the code nested in what it "
        "names. A rule that names no importable module, function or class is an "
        "error.",
        type="linelist",
        default=[],
    )


def _raw(config: pytest.Config, option: Option) -> tuple[object, str]:
    """Return the setting's raw value and a description of where it came from."""
    value = config.getoption(f"ctxleak_{option.dest}")
    if value is not None:
        return value, f"command line option {option.flag}"
    value = config.getini(option.ini)
    if value not in (None, ""):
        where = config.inipath or "the ini file"
        return value, f"ini setting {option.ini} in {where}"
    if option.dest == "browser_path" and os.environ.get(BROWSER_PATH_ENV):
        return os.environ[BROWSER_PATH_ENV], f"environment variable {BROWSER_PATH_ENV}"
    return option.default, "the default"


def resolve_settings(config: pytest.Config) -> Settings:
    """Read and validate every run-wide setting; raise UsageError on a bad one."""
    raw = {option.dest: _raw(config, option) for option in OPTIONS}
    browser_path, source = raw["browser_path"]
    return Settings(
        max_contexts=validate_max_contexts(*raw["max_contexts"]),
        mode=validate_mode(*raw["mode"]),
        acquire_timeout=validate_seconds("acquire_timeout", *raw["acquire_timeout"]),
        close_timeout=validate_seconds("close_timeout", *raw["close_timeout"]),
        browser_path=(
            None
            if browser_path is None
            else validate_browser_path(browser_path, source)
        ),
        headed=validate_bool("headed", *raw["headed"]),
        settle_attempts=validate_count("settle_attempts", *raw["settle_attempts"]),
        settle_timeout=validate_seconds("settle_timeout", *raw["settle_timeout"]),
        allow=_ini_allow_rules(config),
        measure=validate_measure(*raw["measure"]),
        limits=ProcessLimits(
            max_memory=_optional(validate_size, "max_memory", raw["max_memory"]),
            max_memory_growth=_optional(
                validate_size, "max_memory_growth", raw["max_memory_growth"]
            ),
            max_renderers=_optional(
                validate_count, "max_renderers", raw["max_renderers"]
            ),
        ),
        soak=_run_soak(raw),
    )


def _optional(validate: Any, name: str, raw: tuple[object, str]) -> Any:
    """Validate a setting whose default None means no limit."""
    value, source = raw
    return None if value is None else validate(name, value, source)


def _run_soak(raw: dict[str, tuple[object, str]]) -> Soak:
    repeat, repeat_source = raw["repeat"]
    warmup, warmup_source = raw["soak_warmup"]
    soak = validate_soak(
        validate_repeat(repeat, repeat_source),
        None
        if warmup is None
        else validate_count("soak_warmup", warmup, warmup_source),
        validate_slope("soak_max_slope", *raw["soak_max_slope"]),
        validate_size("soak_max_memory_slope", *raw["soak_max_memory_slope"]),
        f"{repeat_source} and {warmup_source}" if warmup is not None else repeat_source,
    )
    return soak


def _ini_allow_rules(config: pytest.Config) -> tuple[AllowRule, ...]:
    where = config.inipath or "the ini file"
    source = f"ini setting {ALLOW_INI} in {where}"
    lines = config.getini(ALLOW_INI)
    return tuple(validate_allow_rule(line, source) for line in lines)


MARKER_ARGUMENTS = (
    "max_contexts",
    "check",
    "mode",
    "context_options",
    "allow",
    "max_memory",
    "max_memory_growth",
    "max_renderers",
    "repeat",
    "soak_warmup",
    "soak_max_slope",
    "soak_max_memory_slope",
)


def resolve_test_settings(item: pytest.Item, settings: Settings) -> TestSettings:
    """Apply the item's ctxleak markers, closest first, over the run's settings."""
    values: dict[str, object] = {}
    for marker in item.iter_markers(MARKER):
        source = f"@pytest.mark.{MARKER} on {item.nodeid}"
        if marker.args:
            raise pytest.UsageError(
                f"invalid arguments {marker.args!r} from {source}: the marker takes "
                f"keyword arguments only ({', '.join(MARKER_ARGUMENTS)})"
            )
        for name, value in marker.kwargs.items():
            if name not in MARKER_ARGUMENTS:
                raise pytest.UsageError(
                    f"unknown argument {name!r} from {source}: expected one of "
                    f"{', '.join(MARKER_ARGUMENTS)}"
                )
            values.setdefault(name, value)
    source = f"@pytest.mark.{MARKER} on {item.nodeid}"
    max_contexts = settings.max_contexts
    if "max_contexts" in values:
        max_contexts = validate_max_contexts(values["max_contexts"], source)
        if isinstance(values["max_contexts"], str):
            raise _usage(
                "max_contexts", values["max_contexts"], source, "expected an int"
            )
    mode = settings.mode
    if "mode" in values:
        mode = validate_mode(values["mode"], source)
    if "check" in values:
        if not isinstance(values["check"], bool):
            raise _usage("check", values["check"], source, "expected True or False")
        if not values["check"]:
            mode = "off"
    options = values.get("context_options", {})
    if not isinstance(options, Mapping):
        raise _usage("context_options", options, source, "expected a dict of options")
    try:
        make_signature(options)
    except (TypeError, ValueError) as error:
        raise pytest.UsageError(
            f"invalid context_options from {source}: {error}"
        ) from None
    allow = settings.allow
    if "allow" in values:
        rules = values["allow"]
        if isinstance(rules, str):
            rules = [rules]
        if not isinstance(rules, (list, tuple)):
            raise _usage("allow", rules, source, "expected a list of rules")
        allow += tuple(validate_allow_rule(rule, source) for rule in rules)
    return TestSettings(
        max_contexts,
        mode,
        options,
        allow,
        _marker_limits(values, settings.limits or ProcessLimits(), source),
        _marker_soak(values, settings.soak or Soak(), source),
    )


def _marker_int(name: str, value: object, source: str) -> object:
    """Reject strings for counts given in the marker, where Python ints belong."""
    if isinstance(value, str):
        raise _usage(name, value, source, "expected an int")
    return value


def _marker_limits(
    values: dict[str, object], run: ProcessLimits, source: str
) -> ProcessLimits:
    limits = run
    for name in ("max_memory", "max_memory_growth"):
        if name in values:
            size = (
                None
                if values[name] is None
                else validate_size(name, values[name], source)
            )
            limits = limits._replace(**{name: size})
    if "max_renderers" in values:
        value = values["max_renderers"]
        count = (
            None
            if value is None
            else validate_count(
                "max_renderers", _marker_int("max_renderers", value, source), source
            )
        )
        limits = limits._replace(max_renderers=count)
    return limits


def _marker_soak(values: dict[str, object], run: Soak, source: str) -> Soak:
    names = ("repeat", "soak_warmup", "soak_max_slope", "soak_max_memory_slope")
    if not any(name in values for name in names):
        return run
    repeat = run.repeat
    if "repeat" in values:
        repeat = validate_repeat(
            _marker_int("repeat", values["repeat"], source), source
        )
    warmup = run.configured_warmup
    if "soak_warmup" in values:
        raw = _marker_int("soak_warmup", values["soak_warmup"], source)
        warmup = validate_count("soak_warmup", raw, source)
    max_slope = run.max_slope
    if "soak_max_slope" in values:
        max_slope = validate_slope("soak_max_slope", values["soak_max_slope"], source)
    memory_slope = run.max_memory_slope
    if "soak_max_memory_slope" in values:
        memory_slope = validate_size(
            "soak_max_memory_slope", values["soak_max_memory_slope"], source
        )
    return validate_soak(repeat, warmup, max_slope, memory_slope, source)


SETTINGS_KEY = pytest.StashKey[Settings]()
TEST_SETTINGS_KEY = pytest.StashKey[TestSettings]()


def run_settings(config: pytest.Config) -> Settings:
    """Return the run's settings, resolved at configure time."""
    return config.stash[SETTINGS_KEY]


def settings_for(item: pytest.Item) -> TestSettings:
    """Return the item's settings; items made after collection resolve them now."""
    if TEST_SETTINGS_KEY in item.stash:
        return item.stash[TEST_SETTINGS_KEY]
    resolved = resolve_test_settings(item, run_settings(item.config))
    item.stash[TEST_SETTINGS_KEY] = resolved
    return resolved
