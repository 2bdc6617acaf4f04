"""A login inside a URL option is a secret: keyed, never printed."""

from __future__ import annotations

import pytest

from pytest_ctxleak.signature import make_signature, without_userinfo

SERVER = "http://bob:hunter2@127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://bob:hunter2@127.0.0.1:9", "http://(hidden)@127.0.0.1:9"),
        ("socks5://bob@127.0.0.1:1080", "socks5://(hidden)@127.0.0.1:1080"),
        ("http://127.0.0.1:9/a@b", "http://127.0.0.1:9/a@b"),
        ("http://127.0.0.1:9", "http://127.0.0.1:9"),
        ("de-DE", "de-DE"),
    ],
)
def test_without_userinfo_hides_only_logins(text: str, shown: str) -> None:
    assert without_userinfo(text) == shown


def test_proxy_url_password_not_in_label() -> None:
    signature = make_signature({"proxy": {"server": SERVER}})
    assert "hunter2" not in signature.label
    assert "bob" not in signature.label
    assert signature.label == "proxy=http://(hidden)@127.0.0.1:9"


def test_proxy_url_passwords_never_share_key() -> None:
    other = SERVER.replace("hunter2", "swordfish")
    first = make_signature({"proxy": {"server": SERVER}})
    second = make_signature({"proxy": {"server": other}})
    assert first.key != second.key


def test_base_url_password_not_in_label() -> None:
    signature = make_signature({"base_url": SERVER})
    assert "hunter2" not in signature.label
    assert signature.key != make_signature({"base_url": "http://127.0.0.1:9"}).key


def test_invalid_base_url_hides_url_login() -> None:
    with pytest.raises(TypeError) as caught:
        make_signature({"base_url": [SERVER]})
    assert "invalid context option base_url=" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_proxy_url_password_never_printed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_proxy=f"""
        import pytest
        from pytest_ctxleak import ContextPool, PoolExhaustedError

        PROXY = {{"server": "{SERVER}"}}

        def test_leaked_lease(context_pool):
            context_pool.acquire(proxy=PROXY)

        def test_exhausted_and_repr(ctxleak_browser):
            pool = ContextPool(ctxleak_browser, max_contexts=1)
            with pool.acquire(proxy=PROXY) as lease:
                print(repr(lease), repr(pool))
                with pytest.raises(PoolExhaustedError) as caught:
                    pool.acquire(locale="de-DE")
                print(caught.value)
            pool.close()
        """
    )
    result = pytester.runpytest_subprocess("-p", "ctxleak", "-s", "-v")
    assert result.ret == 1
    result.assert_outcomes(passed=2, errors=1)
    output = result.stdout.str() + result.stderr.str()
    assert "(hidden)@127.0.0.1:9" in output
    assert "hunter2" not in output


@pytest.mark.parametrize(
    "options",
    [
        {"http_credentials": {"username": "alice", "password": 12345678}},
        {"http_credentials": {"username": None, "password": "pw"}},
        {"http_credentials": {"username": "a", "password": "pw", "send": "never"}},
        {"http_credentials": {"username": "a", "password": "pw", "realm": "x"}},
        {"proxy": {"server": "http://127.0.0.1:9", "password": 1234}},
        {"proxy": {"server": "http://127.0.0.1:9", "bypass": ["a"]}},
    ],
    ids=[
        "password number",
        "username none",
        "send unknown",
        "credentials key unknown",
        "proxy password number",
        "proxy bypass list",
    ],
)
def test_credential_of_wrong_type_rejected_hidden(options: dict[str, object]) -> None:
    with pytest.raises(TypeError, match=r"^invalid context option") as caught:
        make_signature(options)
    message = str(caught.value)
    assert "hidden" in message
    assert "1234" not in message
    assert "pw" not in message
