"""Signatures: validation, normalisation and secrecy of context options."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from pytest_ctxleak.signature import CONTEXT_OPTIONS, make_signature


def test_whitelist_matches_installed_playwright() -> None:
    parameters = set(inspect.signature(Browser.new_context).parameters) - {"self"}
    assert parameters == CONTEXT_OPTIONS


def test_unknown_option_raises_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="unknown context option 'local'"):
        make_signature({"local": "de-DE"})


def test_unknown_option_suggests_close_match() -> None:
    with pytest.raises(TypeError, match="did you mean 'locale'"):
        make_signature({"local": "de-DE"})


def test_equal_options_give_equal_keys() -> None:
    first = make_signature(
        {"locale": "de-DE", "viewport": {"width": 800, "height": 600}}
    )
    second = make_signature(
        {"viewport": {"height": 600, "width": 800}, "locale": "de-DE"}
    )
    assert first.key == second.key


def test_none_and_defaults_do_not_change_key() -> None:
    plain = make_signature({})
    assert make_signature({"locale": None}).key == plain.key
    assert make_signature({"offline": False}).key == plain.key
    assert make_signature({"java_script_enabled": True}).key == plain.key


def test_non_default_bool_changes_key() -> None:
    assert make_signature({"offline": True}).key != make_signature({}).key


def test_permission_order_does_not_change_key() -> None:
    first = make_signature({"permissions": ["geolocation", "notifications"]})
    second = make_signature({"permissions": ["notifications", "geolocation"]})
    assert first.key == second.key


def test_header_name_case_does_not_change_key() -> None:
    first = make_signature({"extra_http_headers": {"X-Token": "a"}})
    second = make_signature({"extra_http_headers": {"x-token": "a"}})
    assert first.key == second.key


def test_header_values_change_key() -> None:
    first = make_signature({"extra_http_headers": {"Authorization": "Bearer one"}})
    second = make_signature({"extra_http_headers": {"Authorization": "Bearer two"}})
    assert first.key != second.key


def test_different_credentials_never_share_key() -> None:
    first = make_signature({"http_credentials": {"username": "u", "password": "p1"}})
    second = make_signature({"http_credentials": {"username": "u", "password": "p2"}})
    assert first.key != second.key


def test_different_proxy_passwords_never_share_key() -> None:
    server = "http://127.0.0.1:3128"
    first = make_signature({"proxy": {"server": server, "password": "p1"}})
    second = make_signature({"proxy": {"server": server, "password": "p2"}})
    assert first.key != second.key


PROXY = "http://127.0.0.1:3128"
CREDENTIALS = {"username": "u", "password": "p"}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({}, {"http_credentials": CREDENTIALS}),
        (
            {"http_credentials": CREDENTIALS},
            {"http_credentials": {"username": "v", "password": "p"}},
        ),
        (
            {"http_credentials": CREDENTIALS},
            {"http_credentials": {**CREDENTIALS, "origin": "http://127.0.0.1:8000"}},
        ),
        (
            {"http_credentials": CREDENTIALS},
            {"http_credentials": {**CREDENTIALS, "send": "always"}},
        ),
        ({}, {"proxy": {"server": PROXY}}),
        ({"proxy": {"server": PROXY}}, {"proxy": {"server": "http://127.0.0.1:3129"}}),
        ({"proxy": {"server": PROXY}}, {"proxy": {"server": PROXY, "bypass": "*.a"}}),
        ({"proxy": {"server": PROXY}}, {"proxy": {"server": PROXY, **CREDENTIALS}}),
        (
            {"proxy": {"server": PROXY, **CREDENTIALS}},
            {"proxy": {"server": PROXY, "username": "v", "password": "p"}},
        ),
        (
            {"http_credentials": CREDENTIALS},
            {"proxy": {"server": PROXY, **CREDENTIALS}},
        ),
    ],
    ids=[
        "credentials or none",
        "usernames",
        "credential origins",
        "credential send modes",
        "proxy or none",
        "proxy servers",
        "proxy bypass lists",
        "proxy with or without login",
        "proxy usernames",
        "credentials or proxy login",
    ],
)
def test_credentials_and_proxies_never_share_key(
    first: dict[str, object], second: dict[str, object]
) -> None:
    assert make_signature(first).key != make_signature(second).key


@pytest.mark.parametrize(
    "options",
    [
        {
            "proxy": {
                "server": "http://127.0.0.1:3128",
                "username": "u",
                "password": "hunter2",
            }
        },
        {"http_credentials": {"username": "u", "password": "hunter2"}},
        {"extra_http_headers": {"Authorization": "Bearer hunter2"}},
        {
            "storage_state": {
                "cookies": [{"name": "sid", "value": "hunter2"}],
                "origins": [],
            }
        },
        {
            "client_certificates": [
                {"origin": "https://127.0.0.1", "passphrase": "hunter2"}
            ]
        },
    ],
)
def test_secret_never_printed(options: dict[str, object]) -> None:
    signature = make_signature(options)
    assert "hunter2" not in signature.label
    assert "hunter2" not in repr(signature)
    assert "hunter2" not in signature.key


def test_invalid_secret_value_hidden_in_error() -> None:
    with pytest.raises(TypeError) as caught:
        make_signature({"proxy": "http://user:hunter2@127.0.0.1:3128"})
    assert "hunter2" not in str(caught.value)
    assert "proxy" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"offline": "yes"},
            "invalid context option offline='yes': expected True or False",
        ),
        ({"locale": 7}, "invalid context option locale=7: expected a string"),
        ({"viewport": {"width": 0, "height": 600}}, "positive int width and height"),
        ({"viewport": [800, 600]}, 'expected a dict {"width": int, "height": int}'),
        ({"permissions": "geolocation"}, "expected a list of strings"),
        ({"geolocation": {"latitude": 1}}, "latitude"),
        ({"device_scale_factor": "2"}, "expected a number"),
    ],
)
def test_invalid_value_names_option_and_fix(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(message)):
        make_signature(options)


def test_storage_state_file_keyed_by_content(tmp_path: Path) -> None:
    state = {"cookies": [], "origins": []}
    first = tmp_path / "a.json"
    second = tmp_path / "b.json"
    first.write_text(json.dumps(state))
    second.write_text(json.dumps(state))
    assert (
        make_signature({"storage_state": first}).key
        == make_signature({"storage_state": str(second)}).key
    )


def test_missing_storage_state_file_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ValueError, match="storage_state file not found"):
        make_signature({"storage_state": missing})


def test_recording_contexts_are_not_reusable(tmp_path: Path) -> None:
    assert not make_signature({"record_har_path": tmp_path / "a.har"}).reusable
    assert make_signature({"locale": "de-DE"}).reusable


def test_label_lists_public_options() -> None:
    label = make_signature(
        {"locale": "de-DE", "viewport": {"width": 800, "height": 600}}
    )
    assert label.label == "locale=de-DE, viewport=800x600"
