"""Turn FAQ documents (plain text, Markdown, CSV, JSONL) into corpus entries.

Nothing is invented: a question without an answer is skipped and reported, and
answers are kept verbatim (only surrounding blank lines are trimmed, runs of blank
lines folded to one, and an answer that opens by repeating its question loses
that repetition).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import ID_PATTERN, Entry, Source, normalize_question, read_text, slugify
from .errors import CorpusError

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
#: The line ends an editor shows; str.splitlines() also breaks on form feed, U+2028 and others.
_LINE_END = re.compile(r"\r\n|\r|\n")
MAX_QUESTION_LEN = 300


@dataclass(frozen=True)
class Skip:
    """Something the ingester left out, and why."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: skipped: {self.reason}"


@dataclass
class IngestResult:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    title: str | None = None


@dataclass
class _Raw:
    question: str
    answer: str
    line: int
    id: str | None = None
    alternates: tuple[str, ...] = ()


def ingest_files(paths: list[Path]) -> IngestResult:
    """Ingest several documents at once; duplicates across them are skipped and reported."""
    total = IngestResult()
    seen_q: dict[str, str] = {}
    seen_ids: set[str] = set()
    for path in paths:
        result = ingest_file(Path(path))
        skipped = list(result.skipped)
        total.notes.extend(result.notes)
        total.title = total.title or result.title
        for entry in result.entries:
            key = normalize_question(entry.question)
            where = f"{entry.source.document}:{entry.source.line}"
            if key in seen_q:
                skipped.append(Skip(str(path), entry.source.line, f"duplicate question {entry.question!r} (first at {seen_q[key]})"))
                continue
            seen_q[key] = where
            entry_id = _unique_id(entry.id, seen_ids)
            if entry_id != entry.id:
                entry = Entry(entry_id, entry.question, entry.answer, entry.source, entry.alternates)
            total.entries.append(entry)
        total.skipped.extend(_by_line(skipped))
    return total


def ingest_file(path: Path) -> IngestResult:
    """Parse one FAQ document by its suffix (.txt, .md, .csv, .jsonl)."""
    path = Path(path)
    suffix = path.suffix.lower()
    text = read_text(path)
    if suffix in (".md", ".markdown"):
        raws, skipped, title = _parse_markdown(path, text)
    elif suffix == ".csv":
        raws, skipped, title = _parse_csv(path, text)
    elif suffix == ".jsonl":
        raws, skipped, title = _parse_jsonl(path, text)
    elif suffix in (".txt", ""):
        raws, skipped, title = _parse_text(path, text)
    else:
        raise CorpusError(path, f"unknown FAQ format {suffix!r}: use .txt, .md, .csv or .jsonl")
    return _to_entries(path, raws, skipped, title)


def _to_entries(path: Path, raws: list[_Raw], skipped: list[Skip], title: str | None) -> IngestResult:
    result = IngestResult(skipped=list(skipped), title=title)
    seen_q: dict[str, int] = {}
    seen_ids: set[str] = set()
    for raw in raws:
        question = " ".join(raw.question.split())
        answer = _tidy_answer(raw.answer)
        repeated = _strip_repeated_question(question, answer)
        if repeated != answer:
            result.notes.append(f"{path}:{raw.line}: removed the question repeated at the start of its answer")
            answer = repeated
        if not answer.strip():
            result.skipped.append(Skip(str(path), raw.line, f"question with no answer: {question!r}"))
            continue
        if raw.id is not None and not ID_PATTERN.fullmatch(raw.id):
            result.skipped.append(Skip(str(path), raw.line, f"id {raw.id!r} may only hold letters, digits, '-', "
                                                            "'_' and '.' (fix it, or leave it out to use one made "
                                                            "from the question)"))
            continue
        key = normalize_question(question)
        if key in seen_q:
            result.skipped.append(Skip(str(path), raw.line, f"duplicate question {question!r} (first at line {seen_q[key]})"))
            continue
        seen_q[key] = raw.line
        entry_id = _unique_id(raw.id or slugify(question), seen_ids)
        result.entries.append(Entry(entry_id, question, answer, Source(path.name, raw.line), raw.alternates))
    result.skipped = _by_line(result.skipped)
    return result


def _by_line(skipped: list[Skip]) -> list[Skip]:
    """Skips in the order of the document; those of the whole file (no line) last."""
    return sorted(skipped, key=lambda s: (s.line is None, s.line or 0))


def _split_lines(text: str) -> list[str]:
    """The lines of a document as an editor numbers them (unlike str.splitlines, see _LINE_END)."""
    lines = _LINE_END.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


def _unique_id(base: str, seen: set[str]) -> str:
    entry_id, n = base, 2
    while entry_id in seen:
        entry_id, n = f"{base}-{n}", n + 1
    seen.add(entry_id)
    return entry_id


def _tidy_answer(text: str) -> str:
    """Trim trailing spaces and surrounding blank lines; fold blank-line runs to one."""
    lines = [line.rstrip() for line in _LINE_END.split(text)]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _strip_repeated_question(question: str, answer: str) -> str:
    """'When should I worry? When should I worry? Call...' -> 'Call...'.

    Only the whole question, up to its question mark, counts as a repetition (case and
    spacing aside): an answer that merely opens with the question's words ('Ice' /
    'Ice packs help.') is kept as it is.
    """
    first = question.split()[0].lower() if question.split() else ""
    if not question.endswith(("?", "？")) or not answer.lstrip()[: len(first)].lower() == first:
        return answer  # cheap test first: a pattern per entry is costly on a 100,000-entry FAQ
    repeated = re.match(r"\s*" + r"\s+".join(map(re.escape, question.split())), answer, re.IGNORECASE)
    if not repeated:
        return answer
    # Drop the spaces after the repetition and any blank lines, keeping the next line's indentation.
    return _tidy_answer(answer[repeated.end():].lstrip(" \t"))


def _is_question_line(line: str) -> bool:
    s = line.strip()
    return bool(s) and s[-1] in "?？" and len(s) <= MAX_QUESTION_LEN and not _LIST_ITEM.match(line)


def _parse_text(path: Path, text: str) -> tuple[list[_Raw], list[Skip], str | None]:
    """Questions are lines ending in '?' that start a paragraph; the lines up to the next question are the answer."""
    lines = _split_lines(text)
    raws: list[_Raw] = []
    skipped: list[Skip] = []
    current: _Raw | None = None
    body: list[str] = []
    prelude: list[int] = []
    for number, line in enumerate(lines, 1):
        prev_blank = number == 1 or not lines[number - 2].strip()
        if _is_question_line(line) and prev_blank:
            if current:
                current.answer = "\n".join(body)
                raws.append(current)
            current, body = _Raw(line.strip(), "", number), []
        elif current is None:
            if line.strip():
                prelude.append(number)
        else:
            body.append(line)
    if current:
        current.answer = "\n".join(body)
        raws.append(current)
    for number in prelude:
        skipped.append(Skip(str(path), number, "text before the first question (a question is a line ending in '?')"))
    if not raws:
        skipped.append(Skip(str(path), None, "no questions found (a question is a line ending in '?')"))
    return raws, skipped, None


def _parse_markdown(path: Path, text: str) -> tuple[list[_Raw], list[Skip], str | None]:
    """Headings ending in '?' are questions; a top heading without '?' is the title.

    A Markdown file with no question headings is read like plain text.
    """
    lines = _split_lines(text)
    headings = [(i, m) for i, line in enumerate(lines) if (m := _HEADING.match(line))]
    if not any(m.group(2).endswith("?") for _, m in headings):
        return _parse_text(path, text)
    raws: list[_Raw] = []
    skipped: list[Skip] = []
    title = None
    current: _Raw | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        m = _HEADING.match(line)
        if m and m.group(2).endswith("?"):
            if current:
                current.answer = "\n".join(body)
                raws.append(current)
            current, body = _Raw(m.group(2), "", number), []
        elif m and current is None:
            title = title or m.group(2)
        elif current is None:
            if line.strip():
                skipped.append(Skip(str(path), number, "text before the first question heading"))
        else:
            body.append(line)
    if current:
        current.answer = "\n".join(body)
        raws.append(current)
    return raws, skipped, title


def _split_alternates(value) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split("|") if v.strip())
    return ()


def _parse_csv(path: Path, text: str) -> tuple[list[_Raw], list[Skip], str | None]:
    """Columns question and answer (case-insensitive), optional id and alternates ('|'-separated)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CorpusError(path, "the CSV file is empty", 1) from None
    except csv.Error as exc:
        raise CorpusError(path, f"not valid CSV ({exc})", 1) from None
    if "question" not in header or "answer" not in header:
        raise CorpusError(path, f"the CSV header needs 'question' and 'answer' columns, found {header}", 1)
    col = {name: header.index(name) for name in ("question", "answer", "id", "alternates") if name in header}
    raws: list[_Raw] = []
    skipped: list[Skip] = []
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            skipped.append(Skip(str(path), line, f"unparseable CSV row ({exc})"))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            skipped.append(Skip(str(path), line, f"row has {len(row)} columns, the header has {len(header)}"))
            continue
        question = row[col["question"]].strip()
        if not question:
            skipped.append(Skip(str(path), line, "row with no question"))
            continue
        raws.append(_Raw(question, row[col["answer"]], line,
                         id=row[col["id"]].strip() or None if "id" in col else None,
                         alternates=_split_alternates(row[col["alternates"]]) if "alternates" in col else ()))
    return raws, skipped, None


def _parse_jsonl(path: Path, text: str) -> tuple[list[_Raw], list[Skip], str | None]:
    """One object a line with "question" and "answer" (optional "id", "alternates")."""
    raws: list[_Raw] = []
    skipped: list[Skip] = []
    for number, line in enumerate(_split_lines(text), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            skipped.append(Skip(str(path), number, f"unparseable JSON ({exc.args[0] if exc.args else exc})"))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) or not obj["question"].strip():
            skipped.append(Skip(str(path), number, 'expected an object with a "question" string'))
            continue
        answer = obj.get("answer")
        raws.append(_Raw(obj["question"], answer if isinstance(answer, str) else "", number,
                         id=str(obj["id"]).strip() or None if obj.get("id") else None,
                         alternates=_split_alternates(obj.get("alternates"))))
    return raws, skipped, None
