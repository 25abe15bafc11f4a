"""The corpus: hand-editable YAML files, validated with file and line, fingerprinted, saved and read back."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.corpus import Corpus, Entry, Source, dump_yaml, load_faq, normalize_question, save_faq
from qa.errors import CorpusError, QAError

from conftest import CORPUS

GOOD = """\
# A tiny FAQ
title: Clinic FAQ
out_of_scope:
  - How do I renew my passport?
  - parking fines
entries:
  - id: booking
    question: How do I book?
    answer: |-
      Call the front desk.
        1. Say your name.
        2. Pick a time.

      Bring your card.
    source: {document: clinic.txt, line: 3}
    alternates:
      - book an appointment
      - reserve a slot
  - question: Where do I park?
    answer: In the back lot.
    source: clinic.txt
  - question: "Is it open: today?"
    answer: yes
"""


def write(tmp_path, text: str, name: str = "faq.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_loads_every_field(tmp_path):
    path = write(tmp_path, GOOD)
    corpus = load_faq(path)
    assert corpus.title == "Clinic FAQ"
    assert corpus.files == [path]
    assert corpus.out_of_scope == ("How do I renew my passport?", "parking fines")
    assert corpus.entries == [
        Entry("booking", "How do I book?",
              "Call the front desk.\n  1. Say your name.\n  2. Pick a time.\n\nBring your card.",
              Source("clinic.txt", 3), ("book an appointment", "reserve a slot")),
        Entry("where-do-i-park", "Where do I park?", "In the back lot.", Source("clinic.txt")),
        Entry("is-it-open-today", "Is it open: today?", "yes", Source("faq.yaml")),
    ]
    assert len(corpus) == 3
    assert list(corpus.by_id()) == ["booking", "where-do-i-park", "is-it-open-today"]


def test_a_bare_list_of_entries_is_a_corpus_too(tmp_path):
    corpus = load_faq(write(tmp_path, "- question: How do I book?\n  answer: Call us.\n"))
    assert corpus.title == "FAQ"
    assert corpus.out_of_scope == ()
    assert corpus.entries == [Entry("how-do-i-book", "How do I book?", "Call us.", Source("faq.yaml"))]


# --- errors, each with the exact line -------------------------------------------------------

ERRORS = {
    "yaml syntax error": (
        "title: T\n"
        "entries:\n"
        "  - question: How?\n"
        "    answer: fine\n"
        "   answr: bad indent\n",
        5, "YAML syntax error: expected <block end>, but found '<block mapping start>'"),
    "unclosed bracket": (
        "entries:\n"
        "  - question: How?\n"
        "    answer: [unclosed\n"
        "  - question: Why?\n",
        4, "YAML syntax error: expected ',' or ']', but got ':'"),
    "unclosed quote": (  # PyYAML's problem_mark is the end of the file; the quote opens on line 3
        "entries:\n"
        "  - question: How?\n"
        "    answer: \"Call us, then\n"
        "  - question: Why?\n"
        "    answer: Because.\n",
        3, "YAML syntax error: a quote or bracket opened on this line is not closed "
           "(found unexpected end of stream while scanning a quoted scalar)"),
    "unclosed quote before a document separator": (
        "entries:\n"
        "  - question: How?\n"
        "    answer: 'Call us\n"
        "---\n",
        3, "YAML syntax error: a quote or bracket opened on this line is not closed "
           "(found unexpected document separator while scanning a quoted scalar)"),
    "unclosed bracket at the end": (
        "entries:\n"
        "  - question: How?\n"
        "    answer: fine\n"
        "    alternates: [how so, in what way\n",
        4, "YAML syntax error: a quote or bracket opened on this line is not closed "
           "(expected ',' or ']', but got '<stream end>' while parsing a flow sequence)"),
    "unclosed quote closed by the next quote": (  # the error surfaces on line 6, the quote opens on line 3
        "entries:\n"
        "  - question: How?\n"
        "    answer: \"Call us\n"
        "\n"
        "  - question: Why?\n"
        "    answer: \"Because.\"\n",
        3, "YAML syntax error: expected <block end>, but found '<scalar>' on line 6, where the quoted text that "
           "starts on this line ends: is its closing quote missing?"),
    "entry without answer": (
        "title: T\n"
        "entries:\n"
        "  - question: How?\n"
        "    answer: Like this.\n"
        "\n"
        "  - id: why\n"
        "    question: Why?\n",
        6, "entry 'Why?' has no answer (add one or remove the entry)"),
    "blank answer": (
        "entries:\n"
        "  - question: How?\n"
        "    answer: '   '\n",
        2, "entry 'How?' has no answer (add one or remove the entry)"),
    "entry without question": (
        "entries:\n"
        "  - question: How?\n"
        "    answer: Like this.\n"
        "  - answer: An orphan.\n",
        4, "entry has no question"),
    "duplicate id": (
        "entries:\n"
        "  - id: how\n"
        "    question: How?\n"
        "    answer: Like this.\n"
        "  - id: how\n"
        "    question: How so?\n"
        "    answer: Like that.\n",
        5, "duplicate id 'how' (first at {path}:2)"),
    "duplicate question": (
        "entries:\n"
        "  - id: one\n"
        "    question: How do I book?\n"
        "    answer: Call.\n"
        "  - id: two\n"
        "    question: how do I  BOOK\n"
        "    answer: Online.\n",
        5, "duplicate question 'how do I  BOOK' (first at {path}:2)"),
    "unknown key": (
        "entries:\n"
        "  - question: How?\n"
        "    answer: Like this.\n"
        "    alternatives:\n"
        "      - how so\n",
        4, "unknown key 'alternatives' (known: alternates, answer, id, question, source)"),
    "unknown top-level key": (
        "title: T\n"
        "entry:\n"
        "  - question: How?\n"
        "    answer: Like this.\n",
        2, "unknown top-level key 'entry' (known: title, entries, out_of_scope, synonyms)"),
    "bad id": (
        "entries:\n"
        "  - question: How?\n"
        "    id: how to\n"
        "    answer: Like this.\n",
        3, "id 'how to' may only hold letters, digits, '-', '_' and '.'"),
    "answer is a list": (
        "entries:\n"
        "  - question: How?\n"
        "    answer:\n"
        "      - Like this.\n",
        4, "'answer' must be text"),
    "alternates not a list": (
        "entries:\n"
        "  - question: How?\n"
        "    answer: Like this.\n"
        "    alternates: how so\n",
        4, "'alternates' must be a list of questions"),
    "entries not a list": (
        "title: T\n"
        "entries: none\n",
        1, "expected a list under 'entries:'"),
}


@pytest.mark.parametrize("text, line, message", ERRORS.values(), ids=ERRORS.keys())
def test_errors_name_the_file_and_exact_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(CorpusError) as err:
        load_faq(path)
    message = message.format(path=path)
    assert (err.value.path, err.value.line, err.value.message) == (str(path), line, message)
    assert str(err.value) == f"{path}:{line}: {message}"
    assert isinstance(err.value, QAError)


def test_missing_file_is_an_error_that_says_the_fix(tmp_path):
    with pytest.raises(CorpusError) as err:
        load_faq(tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: no such corpus file or folder (run `qa ingest FILE` to create one)"
    assert err.value.line is None


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(CorpusError) as err:
        load_faq(tmp_path)
    assert str(err.value) == f"{tmp_path}: the corpus folder has no FAQ files (*.yaml, or .txt/.md/.csv/.jsonl)"


@pytest.mark.parametrize("text, message", [("", "the file is empty"), ("# only a comment\n", "the file is empty"),
                                           ("entries: []\n", "the corpus has no entries")])
def test_a_file_without_entries_is_an_error(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(CorpusError) as err:
        load_faq(path)
    assert str(err.value) == f"{path}: {message}"


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "faq.yaml"
    path.write_bytes(b"entries:\n  - question: How?\n    answer: caf\xe9\n")
    with pytest.raises(CorpusError) as err:
        load_faq(path)
    assert (err.value.line, err.value.message) == (3, "not valid UTF-8 (byte 43); save the file as UTF-8")


# --- fingerprint -------------------------------------------------------------------------

RELAID = """\
title: Clinic FAQ   # comments and layout are not content

entries:
- question: How do I book?
  id: booking
  source:
    line: 3
    document: clinic.txt
  alternates: [book an appointment, reserve a slot]
  answer: "Call the front desk.\\n  1. Say your name.\\n  2. Pick a time.\\n\\nBring your card."
# a comment between entries
- {question: 'Where do I park?', answer: In the back lot., source: clinic.txt}
- question: 'Is it open: today?'
  answer: |
    yes
out_of_scope: ["How do I renew my passport?", parking fines]
"""


def test_fingerprint_is_stable_under_comments_and_layout(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = load_faq(write(tmp_path / "a", GOOD))
    b = load_faq(write(tmp_path / "b", RELAID))
    assert b.entries == a.entries
    assert b.out_of_scope == a.out_of_scope
    assert b.fingerprint() == a.fingerprint()
    assert len(a.fingerprint()) == 64
    spaced = "# new comment\n" + GOOD.replace("  - question: Where", "\n  # why\n  - question: Where")
    assert load_faq(write(tmp_path / "b", spaced)).fingerprint() == a.fingerprint()


@pytest.mark.parametrize("old, new", [
    ("In the back lot.", "In the front lot."),             # an answer
    ("    question: How do I book?", "    question: How can I book?"),  # a question
    ("      - reserve a slot", "      - reserve a time"),    # an alternate
    ("  - parking fines", "  - speeding fines"),             # out of scope
    ("  - id: booking", "  - id: book"),                      # an id
])
def test_fingerprint_changes_with_any_text(tmp_path, old, new):
    before = load_faq(write(tmp_path, GOOD)).fingerprint()
    assert old in GOOD
    after = load_faq(write(tmp_path, GOOD.replace(old, new))).fingerprint()
    assert after != before


def test_fingerprint_changes_when_one_character_of_an_answer_changes():
    corpus = load_faq(CORPUS)
    entries = list(corpus.entries)
    e = entries[0]
    entries[0] = Entry(e.id, e.question, e.answer.replace("6. Shoulder pull.", "6. Shoulder pull!"), e.source,
                       e.alternates)
    assert entries[0].answer != e.answer
    extras = dict(out_of_scope=corpus.out_of_scope, synonyms=corpus.synonyms)
    assert Corpus(entries, corpus.title, **extras).fingerprint() != corpus.fingerprint()
    assert Corpus(list(corpus.entries), "another title", **extras).fingerprint() == corpus.fingerprint()
    assert Corpus(list(corpus.entries), corpus.title, out_of_scope=corpus.out_of_scope).fingerprint() != \
        corpus.fingerprint()  # synonyms change what is matched, so they are part of it


# --- save and load ------------------------------------------------------------------------

TRICKY = [
    Entry("booking", "How do I book?", "Call the front desk.\n  1. Say your name.\n  2. Pick a time.\n\nBring your card.",
          Source("clinic.txt", 3), ("book an appointment", "- a dash: and a colon", "#hash")),
    Entry("indented", "What: is # this?", "  • starts indented\n  • second\n\n\nend", Source("clinic.txt", 9)),
    Entry("scalars", "Yes?", "yes", Source("clinic.txt")),
    Entry("number", "How many?", "123", Source("other.md", 1)),
    Entry("quotes", "“Quoted”?", "tab\there, trailing space \nand “curly” quotes — ok", Source("clinic.txt", 12)),
    Entry("null", "Null?", "null", Source("clinic.txt", 20)),
]


def test_save_and_load_round_trip(tmp_path):
    path = tmp_path / "sub" / "faq.yaml"
    save_faq(path, TRICKY, title="Clinic FAQ", out_of_scope=("How do I renew my passport?", "no: colons"))
    corpus = load_faq(path)
    assert corpus.entries == TRICKY
    assert corpus.title == "Clinic FAQ"
    assert corpus.out_of_scope == ("How do I renew my passport?", "no: colons")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# FAQ corpus: one entry per question.")
    assert "  answer: |-\n    Call the front desk.\n      1. Say your name.\n" in text  # readable literal blocks
    assert "• starts indented" in text and "“curly”" in text  # not escaped
    assert [p.name for p in path.parent.iterdir()] == ["faq.yaml"]  # no temporary file left behind


def test_the_committed_corpus_round_trips(tmp_path):
    corpus = load_faq(CORPUS / "upper_back.yaml")
    path = tmp_path / "copy.yaml"
    save_faq(path, corpus.entries, title=corpus.title, out_of_scope=corpus.out_of_scope, synonyms=corpus.synonyms)
    again = load_faq(path)
    assert again.entries == corpus.entries
    assert again.out_of_scope == corpus.out_of_scope
    assert again.synonyms == corpus.synonyms and "scapula" in again.synonyms["shoulder blade"]
    assert again.title == corpus.title == "upper back FAQ"
    assert again.fingerprint() == corpus.fingerprint()
    assert dump_yaml(again.entries, again.title, out_of_scope=again.out_of_scope, synonyms=again.synonyms) == \
        path.read_text(encoding="utf-8").split("(shoulder blade: [scapula]).\n", 1)[1]


def test_save_without_title_or_out_of_scope(tmp_path):
    path = tmp_path / "faq.yaml"
    save_faq(path, TRICKY[2:3])
    assert path.read_text(encoding="utf-8").endswith(
        "entries:\n- id: scalars\n  question: Yes?\n  answer: 'yes'\n  source:\n    document: clinic.txt\n")
    corpus = load_faq(path)
    assert (corpus.title, corpus.out_of_scope, corpus.entries) == ("FAQ", (), TRICKY[2:3])


@pytest.mark.parametrize("text", ["Wait\x85it is done.", "one\u2028two\u2029three", "cr\rlf\r\nend",
                                  "form\ffeed\vtab\x1cfile\x1dgroup\x1erecord", "bell\x07 del\x7f c1\x9b",
                                  "line\nthen\x85nel", "\ufeffbom", "  lead\x85", "trail\x85 "])
def test_characters_yaml_reads_as_line_breaks_survive_the_round_trip(tmp_path, text):
    # U+0085 is what "…" becomes when Windows-1252 text is read as Latin-1: it occurs in real documents
    entry = Entry("q", f"Why {text}?", text, Source(f"doc{text}.txt", 1), (f"alt {text}?",))
    path = tmp_path / "faq.yaml"
    save_faq(path, [entry], title=text, out_of_scope=(f"oos {text}?",))
    corpus = load_faq(path)
    assert (corpus.entries, corpus.title, corpus.out_of_scope) == ([entry], text, (f"oos {text}?",))


def _stripped(text: str) -> str:
    return text.strip()


_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
# What the reader keeps: questions and alternates are stripped, answers lose surrounding newlines only.
_entry = st.builds(
    Entry,
    id=st.from_regex(r"[\w.-]{1,20}", fullmatch=True),
    question=_text.map(_stripped).filter(bool),
    answer=_text.map(lambda t: t.strip("\n")).filter(str.strip),
    source=st.builds(Source, document=_text, line=st.none() | st.integers(1, 10**6)),
    alternates=st.lists(_text.map(_stripped).filter(bool), max_size=3).map(tuple),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(_entry, min_size=1, max_size=4,
                        unique_by=(lambda e: e.id, lambda e: normalize_question(e.question))),
       title=st.none() | _text, out_of_scope=st.lists(_text.map(_stripped).filter(bool), max_size=3).map(tuple))
def test_save_then_load_gives_back_the_same_entries_whatever_the_text(tmp_path, entries, title, out_of_scope):
    path = tmp_path / "faq.yaml"
    save_faq(path, entries, title=title, out_of_scope=out_of_scope)
    corpus = load_faq(path)
    assert corpus.entries == entries
    assert corpus.out_of_scope == out_of_scope
    assert corpus.title == (title or "FAQ")


# --- a folder of several files ------------------------------------------------------------

def test_folder_with_several_files(tmp_path):
    save_faq(tmp_path / "b.yaml", TRICKY[:2], title="B", out_of_scope=("knees",))
    save_faq(tmp_path / "a.yml", TRICKY[2:4], out_of_scope=("elbows",))
    (tmp_path / "c.txt").write_text("Where do I park?\n\nIn the back lot.\n", encoding="utf-8")
    (tmp_path / "README.pdf").write_bytes(b"%PDF")
    (tmp_path / "sub").mkdir()
    save_faq(tmp_path / "sub" / "ignored.yaml", TRICKY[4:])
    corpus = load_faq(tmp_path)
    assert [p.name for p in corpus.files] == ["a.yml", "b.yaml", "c.txt"]
    assert [e.id for e in corpus.entries] == ["scalars", "number", "booking", "indented", "where-do-i-park"]
    assert corpus.entries[-1] == Entry("where-do-i-park", "Where do I park?", "In the back lot.", Source("c.txt", 1))
    assert corpus.out_of_scope == ("elbows", "knees")
    assert corpus.title == "B"


def test_folder_with_a_duplicate_across_files_names_both(tmp_path):
    save_faq(tmp_path / "a.yaml", TRICKY[:2])
    shutil.copy(tmp_path / "a.yaml", tmp_path / "b.yaml")
    with pytest.raises(CorpusError) as err:
        load_faq(tmp_path)
    line = 8  # the first entry of b.yaml: 6 header lines, "entries:", then "- id: booking"
    assert str(err.value) == f"{tmp_path / 'b.yaml'}:{line}: duplicate id 'booking' (first at {tmp_path / 'a.yaml'}:{line})"


def test_the_committed_corpus_folder_loads():
    corpus = load_faq(CORPUS)
    assert len(corpus) == 15
    assert corpus.title == "upper back FAQ"
    assert [p.name for p in corpus.files] == ["upper_back.yaml"]
    assert "How do I fix lower back pain?" in corpus.out_of_scope


# --- synonyms ---------------------------------------------------------------------------


def test_synonyms_load_and_errors_name_the_line(tmp_path):
    path = tmp_path / "faq.yaml"
    path.write_text("synonyms:\n  shoulder blade: [scapula, Scapula bone]\nentries:\n- question: A?\n  answer: a\n",
                    encoding="utf-8")
    assert load_faq(path).synonyms == {"shoulder blade": ("scapula", "Scapula bone")}
    path.write_text("synonyms:\n  a: [x]\n  b: [X]\nentries:\n- question: A?\n  answer: a\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"faq.yaml:3: synonym 'X' is listed for both 'a' and 'b'"):
        load_faq(path)
    path.write_text("synonyms: [scapula]\nentries:\n- question: A?\n  answer: a\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"faq.yaml:1: 'synonyms' must map"):
        load_faq(path)


def test_synonyms_rewrite_whole_words_longest_first():
    from qa.textnorm import Synonyms

    s = Synonyms({"upper back muscles": ["traps", "mid traps"], "shoulder blade": ["scapula"]})
    assert s.apply("Mid traps and SCAPULA, not straps or scapulae") == \
        "upper back muscles and shoulder blade, not straps or scapulae"
    assert not Synonyms({}) and Synonyms({}).apply("traps") == "traps"
