"""Untrusted strings shown where Streamlit renders Markdown: campaign names, reasons, operator names,
telemetry values, error messages that echo them.

Streamlit's Markdown (``st.markdown``, captions, titles, alert bodies, metric labels and values, widget
labels and help) renders links and images, HTML entities, ``:red[...]`` colour and ``:material/...:``
icon directives, ``$...$`` LaTeX and bare URLs or e-mail addresses as links. :func:`plain` makes a
string read as its literal characters there. Tables (``st.dataframe``), ``st.text``, ``st.code`` and
widget options are plain text already: pass them the raw string, never :func:`plain`'s result.

Plotly charts draw labels, legends and hover text through a small HTML subset instead: give them
:func:`chart_text` (or :func:`chart_frame` for a data frame's columns).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

# Every ASCII punctuation character: CommonMark lets a backslash escape any of them, and an escaped
# character never opens a construct (link, image, emphasis, code, HTML, entity, directive ``:``,
# math ``$``), so the rest of the string is read as text too.
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
# GFM's bare-URL and e-mail links are found by a regular expression over the text after escapes are
# decoded (remark-gfm), so an escape cannot stop them; an invisible word joiner inside the pattern does.
_AUTOLINK = re.compile(r"(?<=http)(?=s?://)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """``text`` escaped so that Streamlit's Markdown shows it character for character.

    ``plain("![x](http://h/x.png)")`` renders as ``![x](http://h/x.png)``, not as an image or link;
    ordinary names (letters, digits, spaces) come back unchanged. A URL or an e-mail address gets an
    invisible U+2060 word joiner after ``http``, ``www`` or ``@``.
    """
    joined = _AUTOLINK.sub(WORD_JOINER, str(text))
    return _PUNCTUATION.sub(lambda m: "\\" + m.group(), joined)


# Plotly draws chart text (tick and legend labels, titles, hover) through its own small HTML subset:
# ``<a href>``, ``<b>``, ``<i>``, ``<br>``, ``<span style>``, ``<sup>``/``<sub>`` and entities. Escaping
# ``&``, ``<`` and ``>`` as entities makes it draw the literal characters instead.
_CHART_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def chart_text(text: object) -> str:
    """``text`` escaped so that a Plotly label shows it character for character.

    ``chart_text("<a href='http://h'>x</a>")`` is drawn as those characters, not as a link.
    """
    return str(text).translate(_CHART_ENTITIES)


def chart_frame(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """``frame`` with the text of ``columns`` (those present) passed through :func:`chart_text`."""
    present = [c for c in columns if c in frame.columns]
    return frame.assign(**{c: frame[c].map(chart_text, na_action="ignore") for c in present})
