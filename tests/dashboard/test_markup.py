"""Unit tests of the escaping of warehouse text for HTML, SVG, Markdown and Plotly."""

from __future__ import annotations

import base64
import html
import re

import pytest

from streamlit_app import charts, markup

IFRAME = '<iframe srcdoc="<script>window.__pwned=1</script>">'
IMG = '"><img src=x onerror=window.__pwned=2>'
MARKDOWN = "![x](http://attacker.example/t.png) [y](javascript:alert(1)) :red[z] $x$ **b**"


def tags(markup_text: str) -> list[str]:
    return re.findall(r"<\s*([a-zA-Z]+)", markup_text)


def test_headline_html_shows_a_hostile_name_and_symbol_as_text():
    title = f"{IMG}: closes"
    svg = charts.sparkline_svg([1.0, 2.0], "#F7931A", title=title)
    line = markup.headline_html("#F7931A", IMG, IFRAME, " · rank #1", markup.svg_image(svg, title))
    # Only the builder's own elements exist; the hostile text is all entities.
    assert tags(line) == ["div", "span", "strong", "img"]
    assert html.unescape(line).count(IFRAME) == 1
    assert "&lt;iframe srcdoc=&quot;&lt;script&gt;" in line
    assert 'alt="&quot;&gt;&lt;img src=x onerror' in line
    # The sparkline travels as an image (no script runs in one), and escapes its title too.
    data = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', line).group(1)
    drawn = base64.b64decode(data).decode()
    assert tags(drawn) == ["svg", "title", "polygon", "polyline"]
    assert 'aria-label="&quot;&gt;&lt;img src=x onerror' in drawn


def test_headline_html_refuses_a_colour_that_is_not_a_colour():
    with pytest.raises(ValueError, match="RRGGBB"):
        markup.headline_html('red;background:url(http://x)"', "BTC", "Bitcoin", "")


def test_md_text_leaves_no_markdown_syntax_active():
    escaped = markup.md_text(MARKDOWN + "\n# heading")
    # Every punctuation character is escaped; no line can start a block element.
    assert "\n" not in escaped
    assert re.search(r"(?<!\\)[!\[\]():$*#<>]", escaped) is None
    assert markup.md_text("BTC") == "BTC"


def test_plotly_text_escapes_plotly_pseudo_html():
    escaped = markup.plotly_text('<a href="javascript:x">&')
    assert escaped == '&lt;a href="javascript:x"&gt;&amp;'
