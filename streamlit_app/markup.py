"""Text from the warehouse made safe for the three markups the page renders.

Coin names and symbols come from the data source through Kafka, so they are untrusted input:
a name such as ``<iframe srcdoc="<script>…">`` must show as those characters, never become an
element. Each renderer needs its own escaping, so every database value passes one of these
functions before it reaches HTML or SVG (:func:`html_text`), Streamlit Markdown (:func:`md_text`,
for labels, captions and help texts) or a Plotly label (:func:`plotly_text`).
"""

from __future__ import annotations

import base64
import html
import re
import string

# Streamlit Markdown reads these: emphasis, links and images (``![](http://…)`` would fetch an
# attacker's URL), headings, tables, ``:red[…]``/``:material/…:`` directives and ``$`` LaTeX.
# CommonMark turns a backslash before any ASCII punctuation into that character, literally.
_MD_SPECIAL = re.compile("([" + re.escape(string.punctuation) + "])")
_HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


def html_text(value: object) -> str:
    """``value`` as HTML/SVG text or attribute content: ``<>&"'`` become entities."""
    return html.escape(str(value), quote=True)


def md_text(value: object) -> str:
    """``value`` as literal text inside Streamlit Markdown: every punctuation character is
    backslash-escaped and newlines become spaces (a newline could start a heading or list)."""
    flat = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def plotly_text(value: object) -> str:
    """``value`` as a Plotly label, legend entry or hover text. Plotly reads a subset of HTML
    (``<a href>``, ``<b>``, ``<br>``, …) in these; with ``<`` and ``&`` escaped no tag can form.
    Quotes stay as they are: Plotly decodes ``&lt;``, ``&gt;`` and ``&amp;`` but would show
    ``&quot;`` literally."""
    return html.escape(str(value), quote=False)


def css_color(value: str) -> str:
    """A ``#RRGGBB`` colour for a style attribute; anything else is refused (our palette
    only ever produces this form, so another value is a bug, not input to pass on)."""
    if not _HEX_COLOR.match(value):
        raise ValueError(f"not a #RRGGBB colour: {value!r}")
    return value


def headline_html(color: str, label: str, name: str, detail: str, sparkline: str = "") -> str:
    """The title line of a coin's headline card: a dot in the coin's colour, its label in bold,
    its name and ``detail`` (rank), then the ``sparkline`` image (from :func:`svg_image`).
    Every text argument is escaped here; render the result with ``st.html``, which adds no
    Markdown of its own."""
    return (
        f'<div style="font-size:1.05rem"><span style="color:{css_color(color)};'
        f'font-size:1.3em">●</span> <strong>{html_text(label)}</strong> {html_text(name)}'
        f"{html_text(detail)}{sparkline}</div>"
    )


def svg_image(svg: str, alt: str) -> str:
    """``svg`` as an ``<img>`` with a data URI, for ``st.html``: its sanitiser drops inline
    ``<svg>``, and an SVG drawn as an image can run no script whatever it holds."""
    if not svg:
        return ""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return (
        f'<img src="data:image/svg+xml;base64,{data}" alt="{html_text(alt)}" '
        'style="vertical-align:middle;margin-left:0.6em">'
    )
