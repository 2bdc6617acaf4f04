"""Allow rules: matching by module and qualified name, validation, and objects made
by functions nested in fixtures. Unit tests need no browser; pytester runs use real
Chromium."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from pytest_ctxleak.allow import AllowRule, validate_allow_rule
from pytest_ctxleak.sites import Frame, Site, capture_site, guess_qualname

# Python 3.10 has no code.co_qualname, so a frame of a function nested in another
# is known by its own name only, and a rule or a fixture cannot claim it there.
NEEDS_QUALNAME = pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="qualified names of nested functions need Python 3.11's co_qualname",
)

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "ctxleak", "-p", "no:asyncio", *args)


def site(module: str, qualname: str) -> Site:
    function = qualname.rsplit(".", 1)[-1]
    return Site((Frame("x.py", 1, function, module, qualname),))


# --- matching, without a browser -------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "module", "qualname", "expected"),
    [
        (("sessions", "KeepAlive.open"), "sessions", "KeepAlive.open", True),
        (("sessions", "KeepAlive.open"), "sessions", "Scrape.open", False),
        (("sessions", "KeepAlive.open"), "sessions", "open", False),
        (("sessions", "KeepAlive"), "sessions", "KeepAlive.open", True),
        (("sessions", "KeepAlive"), "sessions", "KeepAlive", True),
        (("sessions", "Keep"), "sessions", "KeepAlive.open", False),
        (("sessions", "KeepAlive"), "other", "KeepAlive.open", False),
        (("sessions", "KeepAlive"), "sessions.sub", "KeepAlive.open", False),
        (("tests", "factory"), "tests", "factory.<locals>.get", True),
        (("tests", "factory"), "tests", "factory_two.<locals>.get", False),
        (("sessions", None), "sessions", "anything", True),
        (("sessions", None), "sessions.sub", "anything", True),
        (("sessions", None), "sessions_two", "anything", False),
    ],
)
def test_rule_matches_qualified_name(
    rule: tuple[str, str | None], module: str, qualname: str, expected: bool
) -> None:
    allow = AllowRule(rule[0], rule[1], "test")
    assert allow.matches(site(module, qualname)) is expected


def test_rule_falls_back_to_function_name() -> None:
    # Frames recorded without a qualified name still match a plain function rule.
    frame = Frame("x.py", 1, "keep_open", "helpers")
    assert AllowRule("helpers", "keep_open", "test").matches(Site((frame,)))


class Session:
    def open(self) -> Site:
        return capture_site()

    def nested(self) -> Site:
        def inner() -> Site:
            return capture_site()

        return inner()


@NEEDS_QUALNAME
def test_capture_site_records_qualified_names() -> None:
    assert Session().open().frames[0].qualname.endswith("Session.open")
    nested = Session().nested().frames[0].qualname
    assert nested.endswith("Session.nested.<locals>.inner")


class Base:
    def method(self) -> str:
        return guess_qualname(sys._getframe())

    @classmethod
    def build(cls) -> str:
        return guess_qualname(sys._getframe())


class Child(Base):
    def own(self) -> str:
        return guess_qualname(sys._getframe())


def plain() -> str:
    return guess_qualname(sys._getframe())


def test_guess_qualname_for_methods() -> None:
    # The fallback for Python 3.10, whose code objects have no co_qualname.
    assert Child().own() == "Child.own"
    assert Child().method() == "Base.method"
    assert Child.build() == "Base.build"
    assert plain() == "plain"


@pytest.mark.parametrize(
    ("qualname", "expected"),
    [
        ("helper", None),
        ("Session.open", None),
        ("factory.<locals>.get", "factory"),
        ("factory.<locals>.get.<locals>.inner", "factory"),
        ("Suite.fixture.<locals>.make", "Suite.fixture"),
        ("test_x.<locals>.<listcomp>", None),
        ("test_x.<locals>.<genexpr>", None),
        ("factory.<locals>.get.<locals>.<listcomp>", "factory"),
        ("test_x.<locals>.<lambda>", "test_x"),
    ],
)
def test_frame_enclosing_function(qualname: str, expected: str | None) -> None:
    assert Frame("x.py", 1, "f", "m", qualname).enclosing_function() == expected


# --- validation, without a browser -----------------------------------------------


@pytest.fixture
def helpers_module() -> Iterator[types.ModuleType]:
    """A module ``allow_helpers`` with a class, an alias, an import and a fixture."""
    module = types.ModuleType("allow_helpers")
    source = """
import pytest
from json import dumps


class KeepAlive:
    def open(self):
        pass


Alias = KeepAlive
LIMIT = 3


@pytest.fixture(scope="module")
def shared_factory():
    def get():
        pass

    yield get
"""
    exec(compile(source, "allow_helpers.py", "exec"), module.__dict__)
    sys.modules["allow_helpers"] = module
    yield module
    del sys.modules["allow_helpers"]


@pytest.mark.usefixtures("helpers_module")
@pytest.mark.parametrize(
    ("value", "module", "name"),
    [
        ("allow_helpers", "allow_helpers", None),
        ("allow_helpers:KeepAlive", "allow_helpers", "KeepAlive"),
        ("allow_helpers:KeepAlive.open", "allow_helpers", "KeepAlive.open"),
        ("allow_helpers:shared_factory", "allow_helpers", "shared_factory"),
        # An alias or an import names code defined elsewhere: the rule follows it.
        ("allow_helpers:Alias.open", "allow_helpers", "KeepAlive.open"),
        ("allow_helpers:dumps", "json", "dumps"),
    ],
)
def test_rule_validates(value: str, module: str, name: str | None) -> None:
    rule = validate_allow_rule(value, "the test")
    assert rule.module == module
    assert rule.name == name


@pytest.mark.usefixtures("helpers_module")
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "allow_helpers:KeepAlive.opn",
            "class 'allow_helpers:KeepAlive' has no 'opn'; "
            "did you mean 'allow_helpers:KeepAlive.open'?",
        ),
        (
            "allow_helpers:KeepAliv",
            "module 'allow_helpers' has no 'KeepAliv'; "
            "did you mean 'allow_helpers:KeepAlive'?",
        ),
        (
            "allow_helpers:LIMIT",
            "allow_helpers:LIMIT is not a function or class",
        ),
        ("allow_helpers:KeepAlive.", "expected 'module' or 'module:name'"),
        ("allow_helpers:", "expected 'module' or 'module:name'"),
        ("no_such_allow_module:f", "no module named 'no_such_allow_module'"),
    ],
)
def test_rule_rejected(value: str, message: str) -> None:
    with pytest.raises(pytest.UsageError) as error:
        validate_allow_rule(value, "ini setting ctxleak_allow in tox.ini")
    text = str(error.value)
    assert text.startswith(
        f"invalid allow rule {value!r} from ini setting ctxleak_allow in tox.ini: "
    )
    assert message in text


# --- real runs on Chromium -------------------------------------------------------

SESSIONS = """
class KeepAliveSession:
    def open(self, browser):
        return browser.new_context()  # allowed to stay open


class ScrapeSession:
    def open(self, browser):
        return browser.new_context()  # a leak: no rule allows it
"""


def test_method_rule_allows_only_its_class(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(sessions=SESSIONS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    pytester.makepyfile(
        test_method_rule="""
        import pytest

        from sessions import KeepAliveSession, ScrapeSession


        @pytest.mark.ctxleak(allow=["sessions:KeepAliveSession.open"])
        def test_method_rule(ctxleak_browser):
            KeepAliveSession().open(ctxleak_browser)


        @pytest.mark.ctxleak(allow=["sessions:KeepAliveSession.open"])
        def test_other_class_same_name(ctxleak_browser):
            ScrapeSession().open(ctxleak_browser)


        @pytest.mark.ctxleak(allow=["sessions:KeepAliveSession"])
        def test_class_rule(ctxleak_browser):
            KeepAliveSession().open(ctxleak_browser)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_other_class_same_name*",
            "ctxleak: a context was left open; created at sessions.py:8 in open",
        ]
    )
    output = result.stdout.str()
    assert "ERROR at teardown of test_method_rule" not in output
    assert "ERROR at teardown of test_class_rule" not in output


MODULE_FACTORY = """
import pytest


@pytest.fixture(scope="module")
def shared_context(ctxleak_browser):
    cache = {}

    def get_context():
        if "context" not in cache:
            cache["context"] = ctxleak_browser.new_context()
        return cache["context"]

    yield get_context
    if "context" in cache:
        cache["context"].close()


def test_first_use(shared_context):
    page = shared_context().new_page()
    page.set_content("<p>one</p>")
    page.close()


def test_second_use(shared_context):
    page = shared_context().new_page()
    page.set_content("<p>two</p>")
    page.close()
"""


@NEEDS_QUALNAME
def test_module_factory_context_belongs_to_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_factory=MODULE_FACTORY)
    result = run(pytester)
    result.assert_outcomes(passed=2)
    assert "ctxleak:" not in result.stdout.str()


@NEEDS_QUALNAME
def test_module_factory_leak_judged_at_finalization(
    pytester: pytest.Pytester,
) -> None:
    # The fixture owns what its factory creates, so it is to blame when it never
    # closes it, at its finalization after the module's last test.
    pytester.makepyfile(
        test_factory_leak="""
        import pytest


        @pytest.fixture(scope="module")
        def shared_context(ctxleak_browser):
            def get_context():
                return ctxleak_browser.new_context()

            yield get_context


        def test_first_use(shared_context):
            shared_context()


        def test_second_use(shared_context):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_second_use*",
            "ctxleak: a context was left open by module-scoped fixture "
            "'shared_context'; created at test_factory_leak.py:7 in get_context",
        ]
    )
    output = result.stdout.str()
    assert "ERROR at teardown of test_first_use" not in output
    assert "allow rule" not in output


FUNCTION_FACTORY = """
import pytest


@pytest.fixture
def make_context(ctxleak_browser):
    def get_context():
        return ctxleak_browser.new_context()

    yield get_context


def test_uses_factory(make_context):
    make_context()
"""


@NEEDS_QUALNAME
def test_function_fixture_factory_leak_caught(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_function_factory=FUNCTION_FACTORY)
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "ctxleak: a context was left open; "
            "created at test_function_factory.py:7 in get_context",
            "*held by test test_function_factory.py::test_uses_factory",
            "*created in a function nested in make_context; if it stays open on "
            "purpose, allow it with the allow rule 'test_function_factory:make_context'",
        ]
    )


@NEEDS_QUALNAME
def test_rule_naming_fixture_allows_its_factory(pytester: pytest.Pytester) -> None:
    # The hint's rule works: pytest wraps fixture functions since 8.4, and the
    # rule still validates and covers the functions nested in the fixture.
    pytester.makepyfile(
        test_function_factory=FUNCTION_FACTORY + "\n\npytestmark = pytest.mark.ctxleak("
        "allow=['test_function_factory:make_context'])\n"
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "ctxleak:" not in result.stdout.str()


def test_rule_for_missing_method_is_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(sessions=SESSIONS)
    pytester.makeini(
        "[pytest]\npythonpath = .\nctxleak_allow = sessions:KeepAliveSession.close\n"
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: invalid allow rule 'sessions:KeepAliveSession.close' from ini "
            "setting ctxleak_allow in *: class 'sessions:KeepAliveSession' has no "
            "'close'*"
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
