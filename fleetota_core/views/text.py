"""Untrusted strings shown where Streamlit renders Markdown: campaign names, reasons, operator names,
telemetry values, error messages that echo them.

Streamlit's Markdown (``st.markdown``, captions, titles, alert bodies, metric labels and values, widget
labels and help) renders links and images, HTML entities, ``:red[...]`` colour and ``:material/...:``
icon directives, ``$...$`` LaTeX and bare URLs or e-mail addresses as links. :func:`plain` makes a
string read as its literal characters there. Tables (``st.dataframe``), ``st.text``, ``st.code`` and
widget options are plain text already: pass them the raw string, never :func:`plain`'s result.
"""

from __future__ import annotations

import re

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
