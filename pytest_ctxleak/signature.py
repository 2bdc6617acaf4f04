"""Context options to signatures: the pool's key for "the same kind of context".

Only the options in ``_OPTION_KINDS`` are accepted: the keyword arguments of
Playwright's ``Browser.new_context``. An unknown name raises TypeError at once instead
of reaching Playwright, because a misspelt option would otherwise silently create an
unintended kind of context.

Normalisation makes equal options give equal keys: ``None`` and documented default
values are dropped, permissions are sorted, header names are lowercased, and a
``storage_state`` file is keyed by its content. Secrets (proxy and HTTP credentials,
client certificates, header values and storage state) are mixed into the key through
an HMAC with a random per-process key, and never appear in the label, in ``repr`` or in
any message.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A key per process: a signature never leaves the process, and a fresh key means a
# printed digest cannot be used to guess a short password offline.
_HMAC_KEY = secrets.token_bytes(32)

_BOOL = "bool"
_STR = "str"
_NUMBER = "number"
_SIZE = "size"  # {"width": int, "height": int}
_HEADERS = "headers"
_LIST_STR = "list of str"
_PATH = "path"
_SECRET = "secret"  # hashed, never printed
_ANY = "any"

_OPTION_KINDS: dict[str, str] = {
    "accept_downloads": _BOOL,
    "base_url": _STR,
    "bypass_csp": _BOOL,
    "client_certificates": _SECRET,
    "color_scheme": _STR,
    "contrast": _STR,
    "default_browser_type": _STR,
    "device_scale_factor": _NUMBER,
    "extra_http_headers": _HEADERS,
    "forced_colors": _STR,
    "geolocation": _ANY,
    "has_touch": _BOOL,
    "http_credentials": _SECRET,
    "ignore_https_errors": _BOOL,
    "is_mobile": _BOOL,
    "java_script_enabled": _BOOL,
    "locale": _STR,
    "no_viewport": _BOOL,
    "offline": _BOOL,
    "permissions": _LIST_STR,
    "proxy": _ANY,
    "record_har_content": _STR,
    "record_har_mode": _STR,
    "record_har_omit_content": _BOOL,
    "record_har_path": _PATH,
    "record_har_url_filter": _ANY,
    "record_video_dir": _PATH,
    "record_video_fps": _NUMBER,
    "record_video_size": _SIZE,
    "reduced_motion": _STR,
    "screen": _SIZE,
    "service_workers": _STR,
    "storage_state": _SECRET,
    "strict_selectors": _BOOL,
    "timezone_id": _STR,
    "user_agent": _STR,
    "viewport": _SIZE,
}

CONTEXT_OPTIONS = frozenset(_OPTION_KINDS)

# Playwright's defaults for boolean options: passing the default is the same context
# as passing nothing, so it must give the same key.
_BOOL_DEFAULTS = {
    "accept_downloads": True,
    "bypass_csp": False,
    "has_touch": False,
    "ignore_https_errors": False,
    "is_mobile": False,
    "java_script_enabled": True,
    "no_viewport": False,
    "offline": False,
    "record_har_omit_content": False,
    "strict_selectors": False,
}

# Recording writes one HAR file or video per context lifetime, so a recording context
# is never reused by a second lease: it is closed when its last lease is released.
_RECORDING = frozenset({"record_har_path", "record_video_dir"})

_SECRET_HEADERS_NOTE = "values hashed"


@dataclass(frozen=True)
class Signature:
    """The pool's key for a set of context options.

    ``options`` are the keyword arguments for ``Browser.new_context`` and may contain
    secrets, so they are left out of ``repr``. ``label`` is safe to print.
    """

    key: str
    label: str
    reusable: bool
    options: Mapping[str, Any] = field(repr=False, compare=False)


def _invalid(name: str, value: object, expected: str) -> TypeError:
    return TypeError(
        f"invalid context option {name}={_safe_repr(name, value)}: expected {expected}"
    )


def _safe_repr(name: str, value: object) -> str:
    """Return a printable form of an option value, with anything secret left out."""
    kind = _OPTION_KINDS.get(name)
    if kind == _SECRET or name == "proxy":
        return f"<{type(value).__name__}, hidden>"
    if kind == _HEADERS and isinstance(value, Mapping):
        names = [f"{key!r}: <{type(item).__name__}>" for key, item in value.items()]
        return "{" + ", ".join(names) + "}"
    if kind == _HEADERS:
        return f"<{type(value).__name__}, hidden>"
    text = without_userinfo(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _unknown_option(name: str) -> TypeError:
    close = difflib.get_close_matches(name, sorted(CONTEXT_OPTIONS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return TypeError(
        f"unknown context option '{name}'{hint} The pool accepts the keyword "
        "arguments of Playwright's Browser.new_context."
    )


def _normalise_size(name: str, value: object) -> list[int]:
    __tracebackhide__ = True  # errors point at the caller's acquire()
    if not isinstance(value, Mapping) or set(value) != {"width", "height"}:
        raise _invalid(name, value, 'a dict {"width": int, "height": int}')
    width, height = value["width"], value["height"]
    for number in (width, height):
        if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
            raise _invalid(name, value, "positive int width and height")
    return [width, height]


def _normalise_geolocation(value: object) -> list[float]:
    __tracebackhide__ = True  # errors point at the caller's acquire()
    if not isinstance(value, Mapping) or not {"latitude", "longitude"} <= set(value):
        raise _invalid(
            "geolocation", value, 'a dict {"latitude": float, "longitude": float}'
        )
    unknown = set(value) - {"latitude", "longitude", "accuracy"}
    if unknown:
        raise _invalid("geolocation", value, "only latitude, longitude and accuracy")
    numbers = [value["latitude"], value["longitude"], value.get("accuracy", 0)]
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise _invalid("geolocation", value, "numbers")
    return [float(number) for number in numbers]


def _normalise_proxy(value: object, secret_parts: list[object]) -> tuple[Any, str]:
    __tracebackhide__ = True  # errors point at the caller's acquire()
    if not isinstance(value, Mapping) or not isinstance(value.get("server"), str):
        raise _invalid("proxy", value, 'a dict with a "server" string')
    unknown = set(value) - {"server", "bypass", "username", "password"}
    if unknown:
        raise _invalid("proxy", value, "only server, bypass, username and password")
    optional = [value.get("bypass"), value.get("username"), value.get("password")]
    if not all(item is None or isinstance(item, str) for item in optional):
        raise _invalid("proxy", value, "bypass, username and password as strings")
    server = without_userinfo(value["server"])
    secret_parts.append([value.get("username"), value.get("password"), value["server"]])
    public = [server, value.get("bypass")]
    label = server
    if value.get("username") is not None or value.get("password") is not None:
        label += " with credentials"
    return public, label


# The user and password part of a URL, as in http://user:password@host:port.
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]*@")


def without_userinfo(text: str) -> str:
    """Return ``text`` with the credentials of every URL in it hidden.

    A proxy server or a base URL may carry a login in the URL itself, which must
    never reach a message, a report or a log.
    """
    return _USERINFO.sub("(hidden)@", text)


def _storage_state_content(value: object) -> object:
    __tracebackhide__ = True  # errors point at the caller's acquire()
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(
                f"storage_state file not found: {str(path)!r}; pass an existing "
                "file saved by context.storage_state(path=...), or a dict"
            ) from None
        except (OSError, ValueError) as error:
            raise ValueError(
                f"storage_state file {str(path)!r} is not readable JSON ({error}); "
                "pass a file saved by context.storage_state(path=...)"
            ) from None
    if isinstance(value, Mapping):
        return value
    raise _invalid("storage_state", value, "a path or a dict")


def _check_secret_shape(name: str, value: object) -> None:
    __tracebackhide__ = True  # errors point at the caller's acquire()
    if name == "http_credentials":
        expected = (
            'a dict with "username" and "password" strings, and optionally "origin" '
            '(a string) and "send" ("always" or "unauthorized")'
        )
        if not isinstance(value, Mapping) or not {"username", "password"} <= set(value):
            raise _invalid(name, value, expected)
        if set(value) - {"username", "password", "origin", "send"}:
            raise _invalid(name, value, expected)
        strings = [value["username"], value["password"], value.get("origin", "")]
        if not all(isinstance(item, str) for item in strings):
            raise _invalid(name, value, expected)
        if value.get("send", "always") not in ("always", "unauthorized"):
            raise _invalid(name, value, expected)
    elif name == "client_certificates" and (
        isinstance(value, (str, bytes, Mapping))
        or not all(isinstance(item, Mapping) for item in value)  # type: ignore[attr-defined]
    ):
        raise _invalid(name, value, "a list of dicts")


def make_signature(options: Mapping[str, Any]) -> Signature:
    """Validate ``options`` and return their signature.

    Raises TypeError for an unknown option or a value of the wrong type, and
    ValueError for a storage_state file that cannot be read.
    """
    __tracebackhide__ = True  # errors point at the caller's acquire()
    public: dict[str, object] = {}
    secret_parts: list[object] = []
    labels: list[str] = []
    for name in sorted(options):
        value = options[name]
        kind = _OPTION_KINDS.get(name)
        if kind is None:
            raise _unknown_option(name)
        if value is None:
            continue
        if kind == _BOOL:
            if not isinstance(value, bool):
                raise _invalid(name, value, "True or False")
            if _BOOL_DEFAULTS.get(name) == value:
                continue
            public[name] = value
            labels.append(f"{name}={value}")
        elif kind == _STR:
            if not isinstance(value, str):
                raise _invalid(name, value, "a string")
            shown = without_userinfo(value)
            public[name] = shown
            if shown != value:
                secret_parts.append([name, value])
            labels.append(f"{name}={shown}")
        elif kind == _NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _invalid(name, value, "a number")
            public[name] = float(value)
            labels.append(f"{name}={value:g}")
        elif kind == _SIZE:
            width, height = _normalise_size(name, value)
            public[name] = [width, height]
            labels.append(f"{name}={width}x{height}")
        elif kind == _LIST_STR:
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise _invalid(name, value, "a list of strings")
            items = sorted(set(value))
            public[name] = items
            labels.append(f"{name}={','.join(items)}")
        elif kind == _HEADERS:
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise _invalid(name, value, "a dict of header names to strings")
            headers = {k.lower(): v for k, v in value.items()}
            public[name] = sorted(headers)
            secret_parts.append(sorted(headers.items()))
            labels.append(
                f"{name}={','.join(sorted(headers))} ({_SECRET_HEADERS_NOTE})"
            )
        elif kind == _PATH:
            if not isinstance(value, (str, os.PathLike)):
                raise _invalid(name, value, "a path")
            public[name] = os.fspath(value)
            labels.append(f"{name}={os.fspath(value)}")
        elif name == "geolocation":
            latitude, longitude, accuracy = _normalise_geolocation(value)
            public[name] = [latitude, longitude, accuracy]
            labels.append(f"geolocation={latitude:g},{longitude:g}")
        elif name == "proxy":
            public[name], label = _normalise_proxy(value, secret_parts)
            labels.append(f"proxy={label}")
        elif name == "record_har_url_filter":
            pattern = getattr(value, "pattern", value)
            if not isinstance(pattern, str):
                raise _invalid(name, value, "a string or a compiled regex")
            public[name] = [type(value).__name__, pattern]
            labels.append(f"{name}={pattern}")
        elif name == "storage_state":
            secret_parts.append(["storage_state", _storage_state_content(value)])
            labels.append("storage_state=(hashed)")
        else:
            assert kind == _SECRET, name
            _check_secret_shape(name, value)
            secret_parts.append([name, value])
            labels.append(f"{name}=(hashed)")
    canonical = json.dumps(
        [public, secret_parts], sort_keys=True, separators=(",", ":"), default=str
    )
    digest = hmac.new(_HMAC_KEY, canonical.encode(), hashlib.sha256).hexdigest()
    return Signature(
        key=digest[:32],
        label=", ".join(labels) or "default options",
        reusable=not (_RECORDING & public.keys()),
        options={k: v for k, v in options.items() if v is not None},
    )
