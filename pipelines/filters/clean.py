"""Caption cleaning: the one normalisation every text check and the shards see.

`normalize_caption` (pure; DeCLIP appendix A / FILIP §3.1 clean text before filtering):
 1. `ftfy.fix_text` (mojibake, broken HTML entities when no tag is present, curly quotes
    kept, NFC normalisation), skipped for printable ASCII without `&`: every ftfy fix needs
    a non-ASCII character, a control character (terminal escapes, carriage returns) or an
    entity, so such text is already ftfy's fixed point (pinned by a test); ftfy was ~90% of
    cleaning's cost on real captions;
 2. HTML: `<script>`/`<style>` elements and comments dropped with their content, other
    tags of a known HTML tag name (`<b>`, `<br/>`, `<a href=...>` ...) removed, then
    entities unescaped (`&amp;` -> `&`). Text like `a <3 heart`, `x<y` or `<person>` is
    not a known tag and stays;
 3. control and format characters removed (Unicode categories Cc, Cf, Co, Cs: NUL, escape
    sequences, zero-width spaces, BOM, bidi marks); tab/newline become spaces;
 4. whitespace collapsed to single spaces and stripped;
 5. captions longer than `max_chars` are cut at the last space before the limit (or hard at
    the limit when the first word is longer) — a caption that long is a page of text, not
    a caption, and a bounded length keeps spaCy and the tokenizer cheap.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

import ftfy

DEFAULT_MAX_CHARS = 1000

_HTML_TAGS = (
    "a abbr address area article aside audio b base bdi bdo big blockquote body br button canvas caption "
    "center cite code col colgroup data dd del details dfn dialog div dl dt em embed fieldset figcaption "
    "figure font footer form h1 h2 h3 h4 h5 h6 head header hr html i iframe img input ins kbd label legend "
    "li link main mark meta meter nav noscript object ol optgroup option output p param picture pre "
    "progress q rp rt ruby s samp section select small source span strike strong sub summary sup table "
    "tbody td template textarea tfoot th thead time title tr track tt u ul var video wbr"
).split()
_DROP_ELEMENTS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(
    r"</?(?:" + "|".join(sorted(_HTML_TAGS, key=len, reverse=True)) + r")(?:\s+[^<>]*)?\s*/?>",
    re.IGNORECASE,
)
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs"})
_SPACE_CONTROLS = "\t\n\r\x0b\x0c\x85"


def _strip_controls(text: str) -> str:
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _SPACE_CONTROLS:
            out.append(" ")
        elif unicodedata.category(ch) not in _DROP_CATEGORIES:
            out.append(ch)
    return "".join(out)


def truncate(text: str, max_chars: int) -> str:
    """Cut `text` to at most `max_chars`, at the last space before the limit when there is one."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip()


def normalize_caption(text: object, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The cleaned caption (see the module docstring); `""` for None/NaN/blank input."""
    if text is None or (isinstance(text, float) and text != text):
        return ""
    if not isinstance(text, str):
        text = str(text)
    if not text:
        return ""
    if not (text.isascii() and "&" not in text and text.isprintable()):
        text = ftfy.fix_text(text)
    if "<" in text:
        text = _TAG.sub(" ", _DROP_ELEMENTS.sub(" ", text))
    if "&" in text:
        text = html.unescape(text)
    text = _strip_controls(text)
    text = " ".join(text.split())
    return truncate(text, max_chars)


def caption_repeat_key(text: object, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Key of the repeated-caption count (FILIP §3.1): sha1 of the lower-cased normalised caption.

    A hash, so the global count can be shuffled through Ray without carrying raw captions
    (which may hold person names) around.
    """
    return hashlib.sha1(normalize_caption(text, max_chars).lower().encode("utf-8")).hexdigest()
