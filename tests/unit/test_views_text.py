"""plain(): untrusted strings read literally where Streamlit renders Markdown."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from fleetota_core.views.text import WORD_JOINER, plain

HOSTILE = [
    "![x](http://127.0.0.1:9/x.png) [y](javascript:alert(1))",
    "<img src=http://127.0.0.1:9/n.png onerror=alert(1)><b>bold</b>",
    "**bold** _it_ `code` ~~gone~~ # not a heading",
    "&lt;b&gt; &amp; &#60;",
    "<http://127.0.0.1:9/auto> www.example.com a@b.co",
    "[ref]: http://127.0.0.1:9/ref\n[ref]",
    "- item\n1. item\n> quote\n---",
    "trailing backslash \\",
]
# What Streamlit adds to Markdown: directives (:red[...], :material/...:, :blue-background[...]) and LaTeX.
STREAMLIT_SYNTAX = [":red[HW4]", ":material/warning:", ":blue-background[x]", "$x^2$", "$$\\int$$"]


def rendered_text(markdown: str) -> tuple[str, str]:
    """(HTML, its text) as CommonMark renders ``markdown``."""
    out = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)
    return out, html.unescape(re.sub(r"<[^>]+>", "", out))


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_shows_the_string_character_for_character_and_makes_no_element(text):
    out, shown = rendered_text(plain(text))
    assert re.fullmatch(r"<p>.*</p>\n", out, re.DOTALL), out  # one paragraph, nothing else
    assert "<a" not in out and "<img" not in out and "<code" not in out and "<em" not in out
    assert shown.replace(WORD_JOINER, "").strip() == text.strip()


@pytest.mark.parametrize("text", STREAMLIT_SYNTAX)
def test_streamlit_directives_and_latex_cannot_open(text):
    escaped = plain(text)
    # A directive needs an unescaped ":" before its name, LaTeX an unescaped "$".
    assert not re.search(r"(?<!\\):[A-Za-z]", escaped), escaped
    assert not re.search(r"(?<!\\)\$", escaped), escaped
    assert rendered_text(escaped)[1].strip() == text


@pytest.mark.parametrize(
    "text", ["see http://127.0.0.1:9/x and HTTPS://h.example/p", "www.example.com", "ops@example.com"]
)
def test_bare_urls_and_e_mail_addresses_cannot_become_links(text):
    escaped = plain(text)
    # remark-gfm's own patterns, run over the decoded text of a Markdown text node.
    decoded = re.sub(r"\\(.)", r"\1", escaped)
    assert not re.search(r"(https?://|www(?=\.))([-.\w]+)", decoded, re.IGNORECASE), decoded
    assert not re.search(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", decoded, re.ASCII), decoded
    assert decoded.replace(WORD_JOINER, "") == text


def test_ordinary_names_come_back_unchanged_and_any_value_is_accepted():
    assert plain("Spring rollout 7") == "Spring rollout 7"
    assert plain("Model Y · Über") == "Model Y · Über"
    assert plain(2023) == "2023"
    assert plain("2.1.0") == "2\\.1\\.0"
