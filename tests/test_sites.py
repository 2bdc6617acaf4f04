"""How creation and acquisition sites name files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_ctxleak.sites import Frame


def test_installed_library_named_from_its_package() -> None:
    path = os.sep.join(
        ["", "venv", "lib", "python3.11", "site-packages", "crawler", "handler.py"]
    )
    frame = Frame(path, 12, "open_page")
    assert frame.location() == os.path.join("crawler", "handler.py") + ":12"


def test_debian_dist_packages_named_from_its_package() -> None:
    path = os.sep.join(["", "usr", "lib", "python3", "dist-packages", "lib", "a.py"])
    assert Frame(path, 3, "f").location() == os.path.join("lib", "a.py") + ":3"


def test_file_in_working_directory_is_relative() -> None:
    path = os.path.join(os.getcwd(), "tests", "test_shop.py")
    assert (
        Frame(path, 7, "test_shop").location()
        == os.path.join("tests", "test_shop.py") + ":7"
    )


def test_file_outside_working_directory_keeps_absolute_path() -> None:
    path = os.path.join(os.path.dirname(os.getcwd()), "elsewhere", "shop.py")
    assert Frame(path, 1, "f").location() == path + ":1"


def test_console_script_frame_skipped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_script="""
        def test_leaks(ctxleak_browser):
            ctxleak_browser.new_context()
        """
    )
    script = Path(sys.executable).parent / "pytest"
    result = pytester.run(str(script), "-p", "ctxleak", "-v")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_script.py:2 in test_leaks*"])
    assert "<module>" not in result.stdout.str()
