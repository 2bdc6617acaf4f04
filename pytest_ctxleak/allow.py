"""Allow rules: code that may leave browsers, contexts and pages open.

A rule names a module (``package.module``), or a function, class or method defined
in it by its qualified name (``package.module:Class.method``). It matches a creation
stack by the module and qualified name of each frame, so ``sessions:Client.open``
matches ``Client.open`` and not ``Server.open``, ``sessions:Client`` matches every
method of ``Client``, and ``tests.conftest:browser_factory`` matches the functions
nested in that fixture (``browser_factory.<locals>.make``).

Every rule is checked when it is read: a rule that names nothing importable would
match nothing and silently switch the check off for the code it meant to cover.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import re
import sys
from typing import NamedTuple

import pytest

from pytest_ctxleak.sites import LOCALS, Frame, Site


class AllowRule(NamedTuple):
    """Code allowed to leave browsers, contexts and pages open."""

    module: str
    # The qualified name inside ``module``, as in ``Class.method``; None allows the
    # whole module and its submodules.
    name: str | None
    source: str  # where the rule was written, for messages

    def matches(self, site: Site) -> bool:
        """Tell whether any frame of ``site`` runs in the allowed code."""
        return any(self.matches_frame(frame) for frame in site.frames)

    def matches_frame(self, frame: Frame) -> bool:
        """Tell whether ``frame`` runs in the allowed code."""
        if self.name is None:
            return frame.module == self.module or frame.module.startswith(
                self.module + "."
            )
        if frame.module != self.module:
            return False
        qualname = frame.qualname or frame.function
        return qualname == self.name or qualname.startswith(self.name + ".")

    def __str__(self) -> str:
        return self.module if self.name is None else f"{self.module}:{self.name}"


_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def validate_allow_rule(value: object, source: str) -> AllowRule:
    """Parse one rule; raise UsageError if it names nothing that can be imported."""
    expected = (
        "expected 'module' or 'module:name', where name is a function, class or "
        "Class.method defined in the module"
    )
    if not isinstance(value, str) or not value.strip():
        raise _invalid(value, source, expected)
    module, colon, name = value.strip().partition(":")
    if not _DOTTED_NAME.fullmatch(module) or (
        colon and not _DOTTED_NAME.fullmatch(name)
    ):
        raise _invalid(value, source, expected)
    if not colon:
        _check_module_exists(value, module, source)
        return AllowRule(module, None, source)
    target = _resolve(value, module, name, source)
    return _defined_at(target, AllowRule(module, name, source))


def _check_module_exists(value: str, module: str, source: str) -> None:
    if module in sys.modules:
        return
    try:
        found = importlib.util.find_spec(module) is not None
    except Exception:  # a parent package that fails to import
        found = False
    if not found:
        raise _invalid(
            value,
            source,
            f"no module named {module!r} can be imported; check the spelling, or "
            "add its directory to the pythonpath ini setting",
        )


def _resolve(value: str, module: str, name: str, source: str) -> object:
    """Import ``module`` and walk ``name`` through it, one dotted part at a time."""
    _check_module_exists(value, module, source)
    try:
        target: object = importlib.import_module(module)
    except Exception as error:
        failed = (
            f"importing {module!r} failed: {type(error).__name__}: {error}; fix the "
            "import, or allow the whole module by its name without ':'"
        )
        raise _invalid(value, source, failed) from None
    walked = module
    for part in name.split("."):
        owner = target
        try:
            target = getattr(owner, part, _MISSING)
        except Exception:  # a module __getattr__ or descriptor that fails
            target = _MISSING
        if target is _MISSING:
            raise _invalid(value, source, _missing(owner, walked, part))
        walked = f"{walked}{'.' if ':' in walked else ':'}{part}"
    if not callable(target):
        raise _invalid(
            value,
            source,
            f"{walked} is not a function or class; name the function, class or "
            "method whose code creates the objects",
        )
    return target


_MISSING = object()


def _missing(owner: object, walked: str, part: str) -> str:
    if inspect.ismodule(owner):
        what = f"module {walked!r}"
    elif inspect.isclass(owner):
        what = f"class {walked!r}"
    else:
        what = repr(walked)
    text = f"{what} has no {part!r}"
    names = [n for n in dir(owner) if not n.startswith("__")]
    close = difflib.get_close_matches(part, names, n=1)
    if close:
        separator = "." if ":" in walked else ":"
        text += f"; did you mean '{walked}{separator}{close[0]}'?"
    return text


def _defined_at(target: object, rule: AllowRule) -> AllowRule:
    """Point a rule for an imported or re-exported name at where its code is defined.

    Frames carry the module and qualified name of the code that runs, so a rule for
    ``package:Client``, where the package imports ``Client`` from ``package.client``,
    would otherwise never match.
    """
    code: object = target.__func__ if inspect.ismethod(target) else target
    try:
        # Through functools.wraps chains, and pytest's fixture wrapper since 8.4.
        code = inspect.unwrap(code) if callable(code) else code
    except ValueError:  # a cycle of __wrapped__
        return rule
    if not (inspect.isfunction(code) or inspect.isclass(code)):
        return rule  # a callable object or builtin: keep the name as written
    module = getattr(code, "__module__", None)
    qualname = getattr(code, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return rule
    if LOCALS in qualname:
        # Made by a decorator without functools.wraps: the decorated function's
        # own frames still carry the name as written.
        return rule
    return rule._replace(module=module, name=qualname)


def _invalid(value: object, source: str, reason: str) -> pytest.UsageError:
    return pytest.UsageError(f"invalid allow rule {value!r} from {source}: {reason}")
