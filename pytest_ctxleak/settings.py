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
from pytest_ctxleak.signature import make_signature

MODES = ("fail", "warn", "off")
ALLOW_INI = "ctxleak_allow"
BROWSER_PATH_ENV = "CTXLEAK_BROWSER_PATH"
MARKER = "ctxleak"

MARKER_HELP = (
    "ctxleak(max_contexts=N, check=True, mode='fail', context_options={...}, "
    "allow=[...]): "
    "change the context leak check for one test. max_contexts is the most contexts "
    "the test may hold at once; check=False skips the check; mode is fail, warn or "
    "off; context_options are the new_context options of the pooled_* fixtures; "
    "allow lists code ('module', 'module:function' or 'module:Class.method') that "
    "may leave browsers, contexts and pages open."
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


class TestSettings(NamedTuple):
    """Settings for one test: the run's settings with its marker applied."""

    max_contexts: int
    mode: str
    context_options: Mapping[str, Any]
    allow: tuple[AllowRule, ...] = ()


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
    )


def _ini_allow_rules(config: pytest.Config) -> tuple[AllowRule, ...]:
    where = config.inipath or "the ini file"
    source = f"ini setting {ALLOW_INI} in {where}"
    lines = config.getini(ALLOW_INI)
    return tuple(validate_allow_rule(line, source) for line in lines)


MARKER_ARGUMENTS = ("max_contexts", "check", "mode", "context_options", "allow")


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
    return TestSettings(max_contexts, mode, options, allow)


SETTINGS_KEY = pytest.StashKey[Settings]()
TEST_SETTINGS_KEY = pytest.StashKey[TestSettings]()


def run_settings(config: pytest.Config) -> Settings:
    """Return the run's settings, resolved at configure time."""
    return config.stash[SETTINGS_KEY]


def settings_for(item: pytest.Item) -> TestSettings:
    """Return the item's settings; items made after collection resolve them now."""
    resolved = item.stash.get(TEST_SETTINGS_KEY, None)
    if resolved is None:
        resolved = resolve_test_settings(item, run_settings(item.config))
        item.stash[TEST_SETTINGS_KEY] = resolved
    return resolved
