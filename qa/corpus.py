"""The corpus: FAQ entries read from hand-editable YAML files (or raw FAQ documents).

A corpus file looks like::

    title: Upper back FAQ
    entries:
      - id: how-do-you-strengthen-your-upper-back
        question: How do you strengthen your upper back?
        answer: |-
          Strengthening exercises for the upper back muscles
            1. Infraspinatus exercise I.
        source: {document: upper_back_faq.txt, line: 1}
        alternates:
          - upper back strengthening exercises

``load_faq`` validates every entry and reports problems with file and line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import CorpusError
from .io import atomic_write_text

logger = logging.getLogger(__name__)

CORPUS_SUFFIXES = (".yaml", ".yml")
RAW_SUFFIXES = (".txt", ".md", ".markdown", ".csv", ".jsonl")
_ENTRY_KEYS = {"id", "question", "answer", "source", "alternates"}
#: What an entry id may hold (it names the entry in URLs, labels and logs).
ID_PATTERN = re.compile(r"[\w.-]+")
#: Characters a YAML reader turns into (or treats as) line breaks, and other control characters: a string
#: holding one is written double-quoted, where they are escaped, so it reads back exactly.
_NEEDS_ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


@dataclass(frozen=True)
class Source:
    """Where an entry came from: the document and the line its question stands on."""

    document: str
    line: int | None = None

    def to_dict(self, question: str) -> dict:
        return {"document": self.document, "line": self.line, "question": question}


@dataclass(frozen=True)
class Entry:
    id: str
    question: str
    answer: str
    source: Source
    alternates: tuple[str, ...] = field(default_factory=tuple)

    def to_yaml_dict(self) -> dict:
        data = {"id": self.id, "question": self.question, "answer": self.answer,
                "source": {"document": self.source.document, "line": self.source.line}}
        if self.source.line is None:
            del data["source"]["line"]
        if self.alternates:
            data["alternates"] = list(self.alternates)
        return data


@dataclass
class Corpus:
    entries: list[Entry]
    title: str = "FAQ"
    files: list[Path] = field(default_factory=list)
    #: Questions the FAQ does NOT answer, close to its topic ("lower back pain" for an upper-back FAQ):
    #: a question nearer to one of these than to any entry is declined.
    out_of_scope: tuple[str, ...] = ()
    #: The FAQ's own words for what users call otherwise: ``{"shoulder blade": ("scapula", ...)}``.
    #: Questions are rewritten to the canonical words before matching.
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def fingerprint(self) -> str:
        """Content hash of the entries: cosmetic edits (comments, layout) keep it, any text change moves it."""
        canon = [[e.id, e.question, e.answer, list(e.alternates), e.source.document] for e in self.entries]
        canon.append(list(self.out_of_scope))
        if self.synonyms:  # absent from older fingerprints: adding none keeps an index current
            canon.append(sorted((k, list(v)) for k, v in self.synonyms.items()))
        return hashlib.sha256(json.dumps(canon, ensure_ascii=False).encode("utf-8")).hexdigest()

    def by_id(self) -> dict[str, Entry]:
        return {e.id: e for e in self.entries}


def slugify(text: str, max_len: int = 80) -> str:
    """A stable id from a question: lowercase words joined by '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len].rsplit("-", 1)[0]
    return slug or "entry"


def read_text(path: Path) -> str:
    """Read a UTF-8 file; invalid bytes are a CorpusError naming the line."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CorpusError(path, "file not found") from None
    except OSError as exc:
        raise CorpusError(path, f"cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(path, f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8", line) from None


def corpus_files(path: Path) -> list[Path]:
    """The FAQ files of a corpus: the file itself, or the YAML (and raw FAQ) files in a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise CorpusError(path, "no such corpus file or folder (run `qa ingest FILE` to create one)")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES + RAW_SUFFIXES)
    if not files:
        raise CorpusError(path, "the corpus folder has no FAQ files (*.yaml, or .txt/.md/.csv/.jsonl)")
    return files


def load_faq(path: str | Path) -> Corpus:
    """Load and validate a corpus from a YAML file, a raw FAQ document, or a folder of them.

    Raises:
        CorpusError: with file and line, for anything malformed.
    """
    files = corpus_files(Path(path))
    entries: list[Entry] = []
    titles: list[str] = []
    seen_ids: dict[str, str] = {}
    seen_questions: dict[str, str] = {}
    out_of_scope: list[str] = []
    synonyms: dict[str, tuple[str, ...]] = {}
    for file in files:
        if file.suffix.lower() in CORPUS_SUFFIXES:
            title, located, decoys, more = _load_yaml_entries(file)
            out_of_scope.extend(decoys)
            for canon, variants in more.items():
                synonyms[canon] = tuple(dict.fromkeys(synonyms.get(canon, ()) + variants))
        else:
            from .ingest import ingest_file

            result = ingest_file(file)
            for skip in result.skipped:
                logger.warning("%s", skip)
            title, located = result.title, [(e, e.source.line) for e in result.entries]
        if title:
            titles.append(title)
        for entry, line in located:
            where = f"{file}:{line}" if line else str(file)
            if entry.id in seen_ids:
                raise CorpusError(file, f"duplicate id {entry.id!r} (first at {seen_ids[entry.id]})", line)
            key = normalize_question(entry.question)
            if key in seen_questions:
                raise CorpusError(file, f"duplicate question {entry.question!r} (first at {seen_questions[key]})", line)
            seen_ids[entry.id] = where
            seen_questions[key] = where
            entries.append(entry)
    if not entries:
        raise CorpusError(path, "the corpus has no entries")
    return Corpus(entries=entries, title=titles[0] if len(titles) == 1 else "FAQ", files=files,
                  out_of_scope=tuple(out_of_scope), synonyms=synonyms)


def normalize_question(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _load_yaml_entries(path: Path) -> tuple[str | None, list[tuple[Entry, int]], list[str],
                                            dict[str, tuple[str, ...]]]:
    text = read_text(path)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise _syntax_error(path, text, exc) from None
    if root is None:
        raise CorpusError(path, "the file is empty")
    decoys: list[str] = []
    synonyms: dict[str, tuple[str, ...]] = {}
    if isinstance(root, yaml.SequenceNode):
        title, items = None, root
    elif isinstance(root, yaml.MappingNode):
        top = {k.value: v for k, v in root.value}
        for key_node, _ in root.value:
            if key_node.value not in ("title", "entries", "out_of_scope", "synonyms"):
                raise CorpusError(path, f"unknown top-level key {key_node.value!r} (known: title, entries, "
                                  "out_of_scope, synonyms)", key_node.start_mark.line + 1)
        title_node = top.get("title")
        title = title_node.value if isinstance(title_node, yaml.ScalarNode) else None
        items = top.get("entries")
        if not isinstance(items, yaml.SequenceNode):
            raise CorpusError(path, "expected a list under 'entries:'", root.start_mark.line + 1)
        if "out_of_scope" in top:
            node = top["out_of_scope"]
            if not isinstance(node, yaml.SequenceNode):
                raise CorpusError(path, "'out_of_scope' must be a list of questions", node.start_mark.line + 1)
            decoys = [_scalar(path, n, "out_of_scope").strip() for n in node.value if n.value.strip()]
        if "synonyms" in top:
            synonyms = _synonyms(path, top["synonyms"])
    else:
        raise CorpusError(path, "expected a mapping with 'entries:' or a list of entries", 1)
    return title, [(_entry_from_node(path, node), node.start_mark.line + 1) for node in items.value], decoys, synonyms


def _synonyms(path: Path, node: yaml.Node) -> dict[str, tuple[str, ...]]:
    """``synonyms:`` maps each word or phrase the FAQ uses to a list of words users type instead."""
    if not isinstance(node, yaml.MappingNode):
        raise CorpusError(path, "'synonyms' must map a word to a list of words users say instead "
                          "(shoulder blade: [scapula])", node.start_mark.line + 1)
    out: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        canon = _scalar(path, key, "synonyms").strip()
        if not isinstance(value, yaml.SequenceNode) or not canon:
            raise CorpusError(path, f"synonyms of {canon!r}: expected a list of words or phrases", line)
        variants = tuple(v for v in (_scalar(path, n, "synonyms").strip() for n in value.value) if v)
        for v in variants:
            if v.lower() in seen and seen[v.lower()] != canon:
                raise CorpusError(path, f"synonym {v!r} is listed for both {seen[v.lower()]!r} and {canon!r}", line)
            seen[v.lower()] = canon
        out[canon] = variants
    return out


def _syntax_error(path: Path, text: str, exc: yaml.YAMLError) -> CorpusError:
    """A YAML syntax error at the line to fix, which for an unclosed quote is where the quote opens."""
    problem = getattr(exc, "problem", None) or str(exc)
    mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    if mark is None:
        return CorpusError(path, f"YAML syntax error: {problem}")
    # A quote or bracket left open runs to the end of the file (or to a '---'): PyYAML's problem_mark is
    # then that end, and its context_mark the place where the quote or bracket opened.
    if context is not None and (mark.index >= len(text) or "document separator" in problem):
        return CorpusError(path, f"YAML syntax error: a quote or bracket opened on this line is not closed "
                                 f"({problem} {exc.context})", context.line + 1)
    # A quote left open is closed by the next quote in the file; the error surfaces right after that one.
    opened = _quoted_text_ending_on(text, mark.line)
    if opened is not None:
        return CorpusError(path, f"YAML syntax error: {problem} on line {mark.line + 1}, where the quoted text "
                                 "that starts on this line ends: is its closing quote missing?", opened + 1)
    return CorpusError(path, f"YAML syntax error: {problem}", mark.line + 1)


def _quoted_text_ending_on(text: str, line: int) -> int | None:
    """The (0-based) first line of a quoted scalar spanning several lines and ending on ``line``, if any."""
    found = None
    try:
        for token in yaml.scan(text):
            if (isinstance(token, yaml.ScalarToken) and token.style in ("'", '"')
                    and token.start_mark.line < token.end_mark.line == line):
                found = token.start_mark.line
    except yaml.YAMLError:
        pass
    return found


def _scalar(path: Path, node: yaml.Node, key: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise CorpusError(path, f"'{key}' must be text", node.start_mark.line + 1)
    return node.value


def _entry_from_node(path: Path, node: yaml.Node) -> Entry:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise CorpusError(path, "an entry must be a mapping with question: and answer:", line)
    fields_ = {k.value: v for k, v in node.value}
    for key in fields_:
        if key not in _ENTRY_KEYS:
            raise CorpusError(path, f"unknown key {key!r} (known: {', '.join(sorted(_ENTRY_KEYS))})",
                              next(k.start_mark.line + 1 for k, _ in node.value if k.value == key))
    question = _scalar(path, fields_["question"], "question").strip() if "question" in fields_ else ""
    if not question:
        raise CorpusError(path, "entry has no question", line)
    answer = _scalar(path, fields_["answer"], "answer").strip("\n") if "answer" in fields_ else ""
    if not answer.strip():
        raise CorpusError(path, f"entry {question!r} has no answer (add one or remove the entry)", line)
    entry_id = _scalar(path, fields_["id"], "id").strip() if "id" in fields_ else slugify(question)
    if not ID_PATTERN.fullmatch(entry_id):
        raise CorpusError(path, f"id {entry_id!r} may only hold letters, digits, '-', '_' and '.'",
                          fields_["id"].start_mark.line + 1)
    source = Source(document=path.name, line=None)
    if "source" in fields_:
        src = fields_["source"]
        if isinstance(src, yaml.ScalarNode):
            source = Source(document=src.value)
        elif isinstance(src, yaml.MappingNode):
            s = {k.value: v.value for k, v in src.value if isinstance(v, yaml.ScalarNode)}
            raw_line = s.get("line")
            source = Source(document=s.get("document") or path.name,
                            line=int(raw_line) if raw_line and raw_line.isdigit() else None)
        else:
            raise CorpusError(path, "'source' must be text or a mapping with document: and line:",
                              src.start_mark.line + 1)
    alternates: tuple[str, ...] = ()
    if "alternates" in fields_:
        alt = fields_["alternates"]
        if not isinstance(alt, yaml.SequenceNode):
            raise CorpusError(path, "'alternates' must be a list of questions", alt.start_mark.line + 1)
        alternates = tuple(_scalar(path, a, "alternates").strip() for a in alt.value if a.value.strip())
    return Entry(id=entry_id, question=question, answer=answer, source=source, alternates=alternates)


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str):
    style = '"' if _NEEDS_ESCAPES.search(value) else "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(entries: list[Entry], title: str | None = None, header: str = "",
              out_of_scope: tuple[str, ...] = (), synonyms: dict[str, tuple[str, ...]] | None = None) -> str:
    """Serialise entries to the corpus YAML format (multi-line answers as literal blocks)."""
    data: dict = {}
    if title:
        data["title"] = title
    if out_of_scope:
        data["out_of_scope"] = list(out_of_scope)
    if synonyms:
        data["synonyms"] = {k: list(v) for k, v in synonyms.items()}
    data["entries"] = [e.to_yaml_dict() for e in entries]
    body = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10**6, indent=2)
    return header + body


def save_faq(path: Path, entries: list[Entry], title: str | None = None, out_of_scope: tuple[str, ...] = (),
             synonyms: dict[str, tuple[str, ...]] | None = None) -> None:
    header = (
        "# FAQ corpus: one entry per question. Edit by hand; the index is rebuilt when this changes.\n"
        "# Keys: id (stable), question and answer (verbatim from the source), source, alternates (optional\n"
        "# other ways users ask the same question; they help matching).\n"
        "# out_of_scope: questions close to the topic that this FAQ does NOT answer; a message nearer to\n"
        "# one of them than to any entry is declined.\n"
        "# synonyms: the FAQ's word -> words users type instead (shoulder blade: [scapula]).\n"
    )
    atomic_write_text(path, dump_yaml(entries, title, header, out_of_scope, synonyms))
