"""Units of process measurement and soak mode that need no browser: sizes, slopes,
redaction, process types and the soak verdict."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_ctxleak.procs import (
    SIZE_FORM,
    format_size,
    looks_like_browser,
    parse_size,
    process_type,
    redact_argument,
    redact_command,
)
from pytest_ctxleak.settings import Soak
from pytest_ctxleak.sites import Site
from pytest_ctxleak.soak import SoakRun, fit_line, fit_slope, soak_findings

MIB = 1024**2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300 MB", 300_000_000),
        ("300MB", 300_000_000),
        ("300mb", 300_000_000),
        ("1 kB", 1000),
        ("2 GB", 2_000_000_000),
        ("1 TB", 1000**4),
        ("512MiB", 512 * MIB),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("4 KiB", 4096),
        ("1 TiB", 1024**4),
        ("300M", 300 * MIB),
        ("300m", 300 * MIB),
        ("2G", 2 * 1024**3),
        ("8K", 8192),
        ("1T", 1024**4),
        ("1024", 1024),
        ("1024 B", 1024),
        (" 12 MiB ", 12 * MIB),
        (".5 MiB", MIB // 2),
        (4096, 4096),
    ],
)
def test_parse_size_accepts(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "lots",
        "MB",
        "300 XB",
        "-1 MB",
        "0",
        "0 MB",
        "1e3 MB",
        "3 00 MB",
        "nan",
        "0.1",
    ],
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a size such as"):
        parse_size(text)


@pytest.mark.parametrize("value", [True, None, 1.5, [300], 0, -5])
def test_parse_size_rejects_types(value: object) -> None:
    with pytest.raises(ValueError) as raised:
        parse_size(value)
    assert str(raised.value) == SIZE_FORM


@given(
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from(["B", "kB", "MB", "GB", "KiB", "MiB", "GiB", "K", "M", "G"]),
)
def test_parse_size_scales_whole_numbers(number: int, unit: str) -> None:
    factor = parse_size(f"1 {unit}")
    assert parse_size(f"{number} {unit}") == number * factor
    assert parse_size(f"{number}{unit}") == number * factor


def test_size_units_decimal_and_binary() -> None:
    assert parse_size("1 MB") == 1000**2
    assert parse_size("1 MiB") == 1024**2
    assert parse_size("1 M") == 1024**2


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (MIB * 3 // 2, "1.5 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (-2 * MIB, "-2.0 MiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_fit_slope_of_line() -> None:
    assert fit_slope([3, 5, 7, 9]) == pytest.approx(2.0)


def test_fit_slope_of_flat_series() -> None:
    assert fit_slope([4, 4, 4, 4, 4]) == 0.0


def test_fit_slope_of_short_series() -> None:
    assert fit_slope([]) == 0.0
    assert fit_slope([7]) == 0.0


def test_fit_slope_of_noise_around_level() -> None:
    assert fit_slope([5, 6, 5, 6, 5, 6, 5]) == pytest.approx(0.0)


@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    st.integers(min_value=2, max_value=60),
)
def test_fit_slope_recovers_linear_rate(start: float, rate: float, count: int) -> None:
    values = [start + rate * index for index in range(count)]
    assert fit_slope(values) == pytest.approx(rate, abs=1e-6 * (1 + abs(start)))


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=2, max_size=40))
def test_fit_slope_ignores_offset(values: list[float]) -> None:
    shifted = [value + 1000.0 for value in values]
    assert fit_slope(shifted) == pytest.approx(fit_slope(values), abs=1e-6)


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (
            "--proxy-server=user:pass@127.0.0.1:3128",
            "--proxy-server=***@127.0.0.1:3128",
        ),
        (
            "--proxy-server=http://user:hunter2@proxy.local:8080",
            "--proxy-server=http://***@proxy.local:8080",
        ),
        ("https://me:secret@example.test/path", "https://***@example.test/path"),
        (
            "http://127.0.0.1:8000/page?token=abc123&lang=en",
            "http://127.0.0.1:8000/page?token=***&lang=en",
        ),
        (
            "http://127.0.0.1/?access_token=zz&api_key=yy",
            "http://127.0.0.1/?access_token=***&api_key=***",
        ),
        ("--api-key=abc", "--api-key=***"),
        ("password=hunter2", "password=***"),
        ("--db-password=hunter2", "--db-password=***"),
        ("PASSWORD=hunter2", "PASSWORD=***"),
        ("key=value", "key=***"),
        ("--auth-token=t0k3n", "--auth-token=***"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
        (
            "--header=Authorization: Basic dXNlcjpwYXNz",
            "--header=Authorization: Basic ***",
        ),
        ("--session-id=1234", "--session-id=***"),
        ("--headless", "--headless"),
        ("--user-data-dir=/tmp/profile-x", "--user-data-dir=/tmp/profile-x"),
        ("--type=renderer", "--type=renderer"),
        ("about:blank", "about:blank"),
        ("http://127.0.0.1:8000/index.html", "http://127.0.0.1:8000/index.html"),
    ],
)
def test_redact_argument(argument: str, expected: str) -> None:
    assert redact_argument(argument) == expected


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1))
def test_redact_hides_password_value(secret: str) -> None:
    value = secret.replace("&", "x").replace(";", "x").replace(",", "x")
    redacted = redact_argument(f"--password={value}")
    assert redacted.startswith("--password=***")
    assert value not in redacted or value in "--password=***"


def test_redact_command_joins_arguments() -> None:
    command = ["chromium", "--headless", "--proxy-server=a:b@127.0.0.1:1", "x?token=1"]
    assert redact_command(command) == (
        "chromium --headless --proxy-server=***@127.0.0.1:1 x?token=***"
    )


@pytest.mark.parametrize(
    ("cmdline", "is_root", "expected"),
    [
        (["/usr/lib/chromium/chromium", "--headless"], True, "browser"),
        (["chromium", "--type=renderer", "--x"], False, "renderer"),
        (["chromium", "--type=gpu-process"], False, "gpu"),
        (["chromium", "--type=utility", "--utility-sub-type=x"], False, "utility"),
        (["chromium", "--type=zygote"], False, "other"),
        (["chrome_crashpad_handler"], False, "other"),
    ],
)
def test_process_type(cmdline: list[str], is_root: bool, expected: str) -> None:
    assert process_type(cmdline, is_root) == expected


def test_looks_like_browser() -> None:
    assert looks_like_browser(["/usr/lib/chromium/chromium", "--headless"], "chromium")
    assert not looks_like_browser(
        ["/usr/lib/chromium/chromium", "--type=renderer"], "chromium"
    )
    assert not looks_like_browser(["/usr/bin/python3", "x.py"], "python3")


def _run(series: dict[str, list[float]], repeat: int, warmup: int) -> SoakRun:
    run = SoakRun(Soak(repeat, warmup, 0.5, 2 * MIB))
    for index in range(repeat):
        run.record({name: values[index] for name, values in series.items()})
    return run


def test_fit_line_exact_series_has_no_error() -> None:
    fit = fit_line([2, 4, 6, 8])
    assert fit.slope == pytest.approx(2.0)
    assert fit.stderr == pytest.approx(0.0)
    assert fit.grows(0.5)


def test_fit_line_scatter_is_not_growth() -> None:
    # Summed PSS of a correct function, in MiB, from a real soak run.
    scatter = [206.9, 208.5, 272.5, 204.7, 195.7, 253.8, 222.1, 213.7, 213.8, 212.2]
    fit = fit_line(scatter)
    assert fit.stderr > 0
    assert not fit.grows(0.5)


def test_fit_line_steady_growth_with_scatter_grows() -> None:
    noise = [3.0, -4.0, 5.0, -2.0, 0.0, 4.0, -5.0, 2.0, -3.0, 1.0]
    values = [100 + 11 * index + jitter for index, jitter in enumerate(noise)]
    fit = fit_line(values)
    assert fit.slope == pytest.approx(11, abs=1.5)
    assert fit.grows(2.0)


def test_soak_flags_page_per_repetition() -> None:
    run = _run({"pages": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, repeat=9, warmup=3)
    findings = soak_findings(run, Site(()))
    assert len(findings) == 1
    assert findings[0].headline.startswith(
        "soak: open pages grew by 1.00 per repetition over repetitions 4 to 9, "
        "above the limit of 0.50; warm-up level 3 after 3 repetitions"
    )


def test_soak_passes_cache_filled_in_warmup() -> None:
    run = _run({"contexts": [1, 1, 1, 1, 1, 1], "pages": [0, 0, 0, 0, 0, 0]}, 6, 2)
    assert soak_findings(run, Site(())) == []


def test_soak_warmup_hides_early_growth() -> None:
    # A cache that grows by 20 MiB per call for six calls, then stays full.
    pss = [(100 + 20 * min(index, 5)) * MIB for index in range(12)]
    assert soak_findings(_run({"pss": pss}, 12, 6), Site(())) == []
    assert soak_findings(_run({"pss": pss}, 12, 0), Site(())) != []


def test_soak_memory_slope_in_bytes() -> None:
    pss = [100 * MIB + index * 3 * MIB for index in range(9)]
    findings = soak_findings(_run({"pss": pss}, 9, 3), Site(()))
    assert "browser memory (PSS) grew by 3.0 MiB per repetition" in findings[0].headline
    assert "above the limit of 2.0 MiB" in findings[0].headline


def test_soak_not_judged_after_failed_repetition() -> None:
    run = SoakRun(Soak(9, 3, 0.5, MIB))
    for pages in [1, 2, 3, 4]:
        run.record({"pages": pages})
    run.failed_at = 5
    assert soak_findings(run, Site(())) == []


def test_soak_drops_series_with_gap() -> None:
    run = SoakRun(Soak(4, 0, 0.5, MIB))
    run.record({"pages": 1, "renderers": None})
    run.record({"pages": 2, "renderers": 3})
    assert "renderers" not in run.series
    assert run.series["pages"] == [1, 2]


def test_soak_figures_are_plain_data() -> None:
    run = _run({"pages": [1, 2, 3, 4]}, 4, 1)
    figures = run.figures()
    assert figures["series"] == {"pages": [1, 2, 3, 4]}
    assert figures["slopes"] == {"pages": pytest.approx(1.0)}
    assert figures["slope_errors"] == {"pages": pytest.approx(0.0)}
    assert figures["warmup"] == 1
