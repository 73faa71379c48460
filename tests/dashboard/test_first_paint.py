"""Where the page finds Plotly's code to load during the headline's hold."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streamlit_app import first_paint


@pytest.fixture
def static_js(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(first_paint, "_STATIC_JS", tmp_path)
    first_paint.plotly_code_url.cache_clear()
    yield tmp_path
    first_paint.plotly_code_url.cache_clear()


def test_the_pinned_streamlit_has_one_plotly_code_file_and_the_page_names_it():
    """An upgrade of Streamlit that renames or splits the file fails here, instead of the
    page silently losing the early load."""
    first_paint.plotly_code_url.cache_clear()
    url = first_paint.plotly_code_url()
    assert url is not None
    assert url.startswith("./static/js/PlotlyChart.")
    assert (first_paint._STATIC_JS / url.removeprefix("./static/js/")).stat().st_size > 1_000_000


@pytest.mark.parametrize(
    "files",
    [[], ["PlotlyChart.a1.js", "PlotlyChart.b2.js"], ['PlotlyChart.x"onload=1.js']],
    ids=["none", "two", "a name with a quote"],
)
def test_without_one_plotly_code_file_the_page_skips_the_early_load(
    static_js: Path, files: list[str], caplog: pytest.LogCaptureFixture
):
    for name in files:
        (static_js / name).write_text("export default 1")
    with caplog.at_level(logging.WARNING, logger=first_paint.__name__):
        assert first_paint.plotly_code_url() is None
    assert "will load when they arrive" in caplog.text


def test_the_loader_script_carries_the_url_as_a_string_literal(static_js: Path):
    (static_js / "PlotlyChart.Ab_9-x.js").write_text("export default 1")
    url = first_paint.plotly_code_url()
    assert url == "./static/js/PlotlyChart.Ab_9-x.js"
    assert 'import("./static/js/PlotlyChart.Ab_9-x.js")' in first_paint._loader_script(url)


def test_the_loader_is_the_pages_only_html_that_runs_javascript():
    """Every other HTML on the page carries data (names, symbols) escaped as text; only the
    loader, built from a fixed script and a file name the pattern checked, may run."""
    app = Path(first_paint.__file__).parent
    runs = [
        f"{path.name}:{n}"
        for path in sorted(app.glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "unsafe_allow_javascript=True" in line or "unsafe_allow_html=True" in line
    ]
    assert runs == [f"first_paint.py:{_line_of('unsafe_allow_javascript=True')}"]


def _line_of(text: str) -> int:
    lines = Path(first_paint.__file__).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)
