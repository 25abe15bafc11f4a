"""Turn an answer (the dict of ``Answer.to_dict()``) into what the web chat shows.

Pure functions, no Gradio: the chat's Markdown, the pinned safety banner, the
source line and the clickable suggestions. The chat renders Markdown and lets
some HTML through, so every piece of text that is not ours (the user's message,
and to be safe the FAQ and safety texts too) goes through :func:`escape_text`
or :func:`html.escape` before it is placed in markup.
"""

from __future__ import annotations

import html
import re
import string

#: How sure the match is, in words for people (keys are ``Answer.confidence``).
CONFIDENCE_WORDS = {
    "high": "High: this FAQ entry closely matches your question",
    "medium": "Medium: probably what you asked; check the matched question",
    "low": "Low: this may not be what you asked",
}

# Markdown's ASCII punctuation can all be backslash-escaped (CommonMark 2.4); '&', '<'
# and '>' become entities instead, so nothing downstream can read them as a tag.
_ESCAPES = {c: "\\" + c for c in string.punctuation}
_ESCAPES.update({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ESCAPE_TABLE = str.maketrans(_ESCAPES)
# FAQ text is ours, so it keeps its commas and full stops readable (and copyable):
# only what can open emphasis, code, links, tables, LaTeX or a tag is escaped inline,
# plus what would open a block at the start of a line.
_FAQ_ESCAPE_TABLE = str.maketrans({c: _ESCAPES[c] for c in "\\`*_[]~|$&<>"})
_BLOCK_START = re.compile(r"^([#>+=-]|\d+(?=[.)]))")

_NUMBERED = re.compile(r"^\s*(\d{1,3})[.)]\s+(.*)$")
_BULLET = re.compile(r"^\s*[•\-*+·–▪◦]\s+(.*)$")
_URL = re.compile(r"https?://[^\s<>\"']+")
_HEADING_MAX_CHARS = 60
_HEADING_MAX_WORDS = 8


def escape_text(text: str) -> str:
    """Text that Gradio's Markdown shows literally: no tag, link, emphasis or list survives.

    Line breaks are kept; leading spaces are dropped so that no line turns into a
    code block (inside one, the escapes themselves would show).

    Args:
        text: any text, typically what the user typed.

    Returns:
        Markdown source that renders as exactly ``text`` (modulo leading spaces).
    """
    return "\n".join(line.lstrip().translate(_ESCAPE_TABLE) for line in text.splitlines())


def _inline(text: str) -> str:
    """Escape one line of FAQ text, keeping web addresses clickable as autolinks."""
    out, pos = [], 0
    text = text.strip()
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")
        out.append(text[pos : match.start()].translate(_FAQ_ESCAPE_TABLE))
        out.append(f"<{url}>")
        pos = match.start() + len(url)
    out.append(text[pos:].translate(_FAQ_ESCAPE_TABLE))
    line = "".join(out)
    if m := _BLOCK_START.match(line):  # "# x", "> x", "- x", "2020. x": text, not a block
        line = line[: m.end()] + "\\" + line[m.end() :] if m.group(1)[0].isdigit() else "\\" + line
    return line


def _is_subheading(line: str, following: str | None, next_line: str | None) -> bool:
    """A short title line ('Shoulder blade squeeze') that heads the text after it.

    It must stand alone: followed by a blank line or a list, so the first line of a
    hard-wrapped paragraph is not mistaken for a title.
    """
    text = line.strip()
    return (
        following is not None
        and (not (next_line or "").strip() or bool(_NUMBERED.match(next_line) or _BULLET.match(next_line)))
        and len(text) <= _HEADING_MAX_CHARS
        and len(text.split()) <= _HEADING_MAX_WORDS
        and text[-1] not in ".!?:;,…\"”'’)"
        and not _NUMBERED.match(line)
        and not _BULLET.match(line)
    )


def faq_markdown(text: str) -> str:
    """FAQ answer text (plain, with its quirks) as Markdown.

    "  1. Sit ..." lines become a numbered list, "  • Sit ..." lines a bullet list,
    a short title line followed by more text becomes bold; everything else is
    escaped text, line breaks kept.

    Args:
        text: an answer as stored in the FAQ.

    Returns:
        Markdown with blank lines around lists and titles so they never merge
        into the paragraph next to them.
    """
    lines = text.strip("\n").splitlines()
    blocks: list[list[str]] = []  # runs of lines of one kind, joined by blank lines
    kind = None
    for i, line in enumerate(lines):
        if not line.strip():
            kind = None
            continue
        following = next((ln for ln in lines[i + 1 :] if ln.strip()), None)
        if m := _NUMBERED.match(line):
            item, this = f"{m.group(1)}. {_inline(m.group(2))}", "numbered"
        elif m := _BULLET.match(line):
            item, this = f"- {_inline(m.group(1))}", "bullets"
        elif kind != "text" and _is_subheading(line, following, lines[i + 1] if i + 1 < len(lines) else None):
            blocks.append([f"**{_inline(line.strip())}**"])
            kind = None
            continue
        else:
            item, this = _inline(line), "text"
        if this != kind:
            blocks.append([])
            kind = this
        blocks[-1].append(item)
    return "\n\n".join("\n".join(block) for block in blocks)


def safety_banner_html(safety: dict) -> str:
    """The pinned safety message as a banner (an HTML block with no blank line inside).

    Args:
        safety: ``answer["safety"]``: category, level, title, message.

    Returns:
        ``<div class="qa-banner qa-banner-LEVEL" role="alert">...</div>``; the page's
        CSS colours it by level.
    """
    level = safety.get("level") or "urgent"
    level_class = level if level in ("emergency", "crisis", "urgent") else "urgent"
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", safety.get("message") or "") if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    title = html.escape(safety.get("title") or "Please read this first")
    return (
        f'<div class="qa-banner qa-banner-{level_class}" role="alert">'
        f'<p class="qa-banner-title">⚠ {title}</p>{body}</div>'
    )


def confidence_words(confidence: str | None) -> str | None:
    """``"high"`` -> a phrase a person understands; None stays None."""
    if confidence is None:
        return None
    return CONFIDENCE_WORDS.get(confidence, confidence)


def source_html(answer: dict) -> str | None:
    """The line under an answer: source document and line, matched question, confidence.

    Returns:
        An HTML block (``<div class="qa-meta">``), or None when no FAQ entry was used.
    """
    if not answer.get("answered"):
        return None
    parts = []
    source = answer.get("source") or {}
    if source.get("document"):
        where = html.escape(source["document"])
        if source.get("line"):
            where += f", line {int(source['line'])}"
        parts.append(f"<span><b>Source:</b> {where}</span>")
    matched = answer.get("matched_question") or source.get("question")
    if matched:
        parts.append(f"<span><b>Matched FAQ question:</b> “{html.escape(matched)}”</span>")
    if words := confidence_words(answer.get("confidence")):
        score = answer.get("score")
        score_text = f" (score {score:.2f})" if isinstance(score, (int, float)) else ""
        parts.append(f"<span><b>Confidence:</b> {html.escape(words)}{score_text}</span>")
    if not parts:
        return None
    return '<div class="qa-meta">' + "<br>".join(parts) + "</div>"


def suggestion_options(answer: dict) -> list[dict]:
    """Suggested FAQ questions as chat options: clicking one asks it.

    Returns:
        ``[{"value": question, "label": question}, ...]`` (empty when there are none).
    """
    return [
        {"value": s["question"], "label": s["question"]}
        for s in answer.get("suggestions") or []
        if s.get("question")
    ]


def reply_markdown(answer: dict) -> str:
    """The whole chat reply: safety banner first, then the answer and its source.

    Suggestions are not part of the text: the chat shows them as buttons under the
    latest reply (see :func:`suggestion_options`).

    Args:
        answer: ``Answer.to_dict()``.

    Returns:
        Markdown (with a few HTML blocks of our own) for the assistant's message.
    """
    parts = []
    if answer.get("safety"):
        parts.append(safety_banner_html(answer["safety"]))
    if answer.get("answer"):
        parts.append(faq_markdown(answer["answer"]))
    if meta := source_html(answer):
        parts.append(meta)
    if not parts:  # never an empty bubble
        parts.append("Sorry, I have no answer for that.")
    return "\n\n".join(parts)


def user_markdown(text: str) -> str:
    """What the user typed, as Markdown that shows it verbatim."""
    return escape_text(text)
