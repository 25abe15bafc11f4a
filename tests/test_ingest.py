"""FAQ documents -> corpus entries: tiny inline FAQs in every format, then the real source document.

Nothing may be invented: answers are the document's text (only surrounding blank
lines trimmed and runs of blank lines folded), and everything left out is reported
with file, line and reason.
"""

from __future__ import annotations

import json
import re

import pytest

from qa.corpus import Entry, Source, load_faq, save_faq, slugify
from qa.errors import CorpusError
from qa.ingest import Skip, ingest_file, ingest_files

from conftest import CORPUS, SOURCE


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def skips(result) -> list[tuple[int | None, str]]:
    return [(s.line, s.reason) for s in result.skipped]


# --- plain text ------------------------------------------------------------------------

TXT = """\
Welcome to the FAQ of the clinic.

How do I book?

Call the front desk.
  1. Say your name.
  2. Pick a time.



Bring your card.


What should I wear?

Where do I park?
In the back lot.

How do I book?
Online too.
"""


def test_text_entries_keep_answers_verbatim(tmp_path):
    path = write(tmp_path, "clinic.txt", TXT)
    result = ingest_file(path)
    assert result.entries == [
        Entry("how-do-i-book", "How do I book?",
              "Call the front desk.\n  1. Say your name.\n  2. Pick a time.\n\nBring your card.",
              Source("clinic.txt", 3)),
        Entry("where-do-i-park", "Where do I park?", "In the back lot.", Source("clinic.txt", 16)),
    ]
    assert result.title is None


def test_text_skips_are_reported_with_file_line_and_reason(tmp_path):
    path = write(tmp_path, "clinic.txt", TXT)
    result = ingest_file(path)
    assert [str(s) for s in result.skipped] == [
        f"{path}:1: skipped: text before the first question (a question is a line ending in '?')",
        f"{path}:14: skipped: question with no answer: 'What should I wear?'",
        f"{path}:19: skipped: duplicate question 'How do I book?' (first at line 3)",
    ]
    assert result.skipped[0] == Skip(str(path), 1, "text before the first question "
                                                    "(a question is a line ending in '?')")


def test_text_without_questions_has_no_entries_and_says_why(tmp_path):
    path = write(tmp_path, "notes.txt", "Just some notes.\nNo questions here.\n")
    result = ingest_file(path)
    assert result.entries == []
    assert skips(result) == [
        (1, "text before the first question (a question is a line ending in '?')"),
        (2, "text before the first question (a question is a line ending in '?')"),
        (None, "no questions found (a question is a line ending in '?')"),
    ]


def test_text_question_repeated_at_the_start_of_its_answer_is_removed(tmp_path):
    path = write(tmp_path, "faq.txt", "When should I worry?\n\nWhen should I worry? Call your doctor.\n")
    result = ingest_file(path)
    assert [(e.question, e.answer) for e in result.entries] == [("When should I worry?", "Call your doctor.")]
    assert result.notes == [f"{path}:1: removed the question repeated at the start of its answer"]


def test_an_answer_that_only_starts_with_the_question_words_is_kept_verbatim(tmp_path):
    path = write(tmp_path, "faq.csv", 'question,answer\nIce,"Ice packs help, for 20 minutes."\n'
                                      "How do I book?,How do I book? Call us.\n"
                                      "Can I park,Can I park here? Yes.\n"
                                      "Is it open?,Is it open? -er hours: 9 to 5.\n"
                                      "Is it far?,Is it far?\n"
                                      "Where is it?,Where is it in the building? Floor 2.\n")
    result = ingest_file(path)
    assert [(e.question, e.answer) for e in result.entries] == [
        ("Ice", "Ice packs help, for 20 minutes."), ("How do I book?", "Call us."),
        ("Can I park", "Can I park here? Yes."), ("Is it open?", "-er hours: 9 to 5."),
        ("Where is it?", "Where is it in the building? Floor 2.")]
    assert result.notes == [f"{path}:{line}: removed the question repeated at the start of its answer"
                            for line in (3, 5, 6)]
    assert skips(result) == [(6, "question with no answer: 'Is it far?'")]


def test_a_repeated_question_matches_whatever_its_case_and_spacing_and_keeps_the_next_lines_indent(tmp_path):
    path = write(tmp_path, "faq.txt", "Wie  geht   es？\n\nwie geht\nES？\n\n  1. Gut.\n  2. Danke.\n")
    result = ingest_file(path)
    assert [(e.question, e.answer) for e in result.entries] == [("Wie geht es？", "  1. Gut.\n  2. Danke.")]
    assert result.notes == [f"{path}:1: removed the question repeated at the start of its answer"]


def test_a_numbered_or_bulleted_line_ending_in_a_question_mark_stays_in_the_answer(tmp_path):
    path = write(tmp_path, "faq.txt", "What can I ask?\n\n1. Is it open?\n\n- Can I park?\n")
    result = ingest_file(path)
    assert [(e.question, e.answer) for e in result.entries] == [
        ("What can I ask?", "1. Is it open?\n\n- Can I park?")]
    assert result.skipped == []


# --- Markdown --------------------------------------------------------------------------

MD = """\
# Clinic FAQ

Read this first.

## How do I book?

Call the **front desk**.

### Steps
1. Say your name.
2. Pick a time.



More at the desk.

## What should I wear? ##

## Where do I park?
In the back lot.

## how do I BOOK
Online too.

## How do I book?
Online too.
"""


def test_markdown_entries_title_and_verbatim_answers(tmp_path):
    path = write(tmp_path, "clinic.md", MD)
    result = ingest_file(path)
    assert result.title == "Clinic FAQ"
    assert result.entries == [
        Entry("how-do-i-book", "How do I book?",
              "Call the **front desk**.\n\n### Steps\n1. Say your name.\n2. Pick a time.\n\nMore at the desk.",
              Source("clinic.md", 5)),
        Entry("where-do-i-park", "Where do I park?",
              "In the back lot.\n\n## how do I BOOK\nOnline too.", Source("clinic.md", 19)),
    ]
    assert skips(result) == [
        (3, "text before the first question heading"),
        (17, "question with no answer: 'What should I wear?'"),
        (25, "duplicate question 'How do I book?' (first at line 5)"),
    ]


def test_markdown_without_question_headings_is_read_as_plain_text(tmp_path):
    path = write(tmp_path, "plain.md", "# Notes\n\nHow do I book?\n\n- Call us.\n- Or come by.\n")
    result = ingest_file(path)
    assert [(e.id, e.question, e.answer, e.source) for e in result.entries] == [
        ("how-do-i-book", "How do I book?", "- Call us.\n- Or come by.", Source("plain.md", 3))]
    assert skips(result) == [(1, "text before the first question (a question is a line ending in '?')")]


# --- CSV -------------------------------------------------------------------------------

CSV = (
    "Question,Answer,id,alternates\n"             # 1
    'How do I book?,"Call us.\n'                  # 2
    "\n"                                          # 3
    "\n"                                          # 4
    "  1. Say your name.\n"                       # 5
    '  2. Pick a time.",booking,book online|reserve a slot\n'  # 6
    "just a note\n"                               # 7
    "Where do I park?,In the back lot.,,\n"       # 8
    ",an answer without a question,,\n"           # 9
    "What should I wear?,,,\n"                    # 10
    "where do I park,Again.,,\n"                  # 11
    "\n"                                          # 12
    "Can I eat before?,Yes.,,\n"                  # 13
)


def test_csv_entries_ids_alternates_and_multiline_answers(tmp_path):
    path = write(tmp_path, "clinic.csv", CSV)
    result = ingest_file(path)
    assert result.entries == [
        Entry("booking", "How do I book?", "Call us.\n\n  1. Say your name.\n  2. Pick a time.",
              Source("clinic.csv", 2), ("book online", "reserve a slot")),
        Entry("where-do-i-park", "Where do I park?", "In the back lot.", Source("clinic.csv", 8)),
        Entry("can-i-eat-before", "Can I eat before?", "Yes.", Source("clinic.csv", 13)),
    ]


def test_csv_short_row_and_other_skips_name_their_line(tmp_path):
    path = write(tmp_path, "clinic.csv", CSV)
    result = ingest_file(path)
    assert [str(s) for s in result.skipped] == [
        f"{path}:7: skipped: row has 1 columns, the header has 4",
        f"{path}:9: skipped: row with no question",
        f"{path}:10: skipped: question with no answer: 'What should I wear?'",
        f"{path}:11: skipped: duplicate question 'where do I park' (first at line 8)",
    ]


@pytest.mark.parametrize("header", ["question,reply", "", "\n"])
def test_csv_without_question_and_answer_columns_is_an_error_on_line_1(tmp_path, header):
    path = write(tmp_path, "bad.csv", header + ("\nHow?,Like this.\n" if header.strip() else ""))
    with pytest.raises(CorpusError) as err:
        ingest_file(path)
    assert err.value.path == str(path)
    assert err.value.line == 1


# --- JSONL -----------------------------------------------------------------------------

JSONL_LINES = [
    json.dumps({"question": "How do I book?", "answer": "Call us.\n\n\n\n- by phone\n- in person\n",
                "alternates": ["book online", " "]}),                      # 1
    "{not json",                                                         # 2
    "",                                                                  # 3
    json.dumps({"question": "What should I wear?"}),                     # 4
    json.dumps(["How?", "Like this."]),                                  # 5
    json.dumps({"question": "how do i book", "answer": "Again."}),       # 6
    json.dumps({"question": "Where do I park?", "answer": "In the back lot.", "id": "parking",
                "alternates": "car park|parking lot"}),                  # 7
    json.dumps({"question": "  ", "answer": "No question."}),            # 8
]


def test_jsonl_entries_and_skips(tmp_path):
    path = write(tmp_path, "clinic.jsonl", "\n".join(JSONL_LINES) + "\n")
    result = ingest_file(path)
    assert result.entries == [
        Entry("how-do-i-book", "How do I book?", "Call us.\n\n- by phone\n- in person",
              Source("clinic.jsonl", 1), ("book online",)),
        Entry("parking", "Where do I park?", "In the back lot.", Source("clinic.jsonl", 7),
              ("car park", "parking lot")),
    ]
    assert skips(result) == [  # in the order of the file
        (2, "unparseable JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        (4, "question with no answer: 'What should I wear?'"),
        (5, 'expected an object with a "question" string'),
        (6, "duplicate question 'how do i book' (first at line 1)"),
        (8, 'expected an object with a "question" string'),
    ]


BAD_ID = "may only hold letters, digits, '-', '_' and '.' (fix it, or leave it out to use one made from the question)"


@pytest.mark.parametrize("name, text", [
    ("faq.jsonl", "\n".join(json.dumps(row) for row in [
        {"question": "How do I book?", "answer": "Call us.", "id": "how to book"},
        {"question": "Where do I park?", "answer": "Behind.", "id": " parking "},
        {"question": "Is it open?", "answer": "Yes.", "id": "open/closed"}]) + "\n"),
    ("faq.csv", "question,answer,id\nHow do I book?,Call us.,how to book\nWhere do I park?,Behind., parking \n"
                "Is it open?,Yes.,open/closed\n"),
])
def test_an_invalid_id_in_a_document_is_skipped_with_its_line_and_the_rest_loads(tmp_path, name, text):
    path = write(tmp_path, name, text)
    result = ingest_file(path)
    first = 1 if name.endswith(".jsonl") else 2
    assert skips(result) == [(first, f"id 'how to book' {BAD_ID}"), (first + 2, f"id 'open/closed' {BAD_ID}")]
    out = tmp_path / "faq.yaml"
    save_faq(out, result.entries)
    corpus = load_faq(out)
    assert [(e.id, e.question) for e in corpus.entries] == [("parking", "Where do I park?")]
    assert all(re.fullmatch(r"[\w.-]+", e.id) for e in corpus.entries)


# --- ids, several files, encoding --------------------------------------------------------

def test_ids_are_slugs_made_unique(tmp_path):
    # three different questions (underscores count as word characters) with the same slug
    path = write(tmp_path, "faq.txt", "What is a b?\n\nOne.\n\nWhat is a_b?\n\nTwo.\n\nWhat is A B_?\n\nThree.\n")
    result = ingest_file(path)
    assert [(e.id, e.question, e.answer) for e in result.entries] == [
        ("what-is-a-b", "What is a b?", "One."), ("what-is-a-b-2", "What is a_b?", "Two."),
        ("what-is-a-b-3", "What is A B_?", "Three.")]
    assert result.skipped == []
    assert slugify("  Héllo, World?? ") == "h-llo-world"
    assert slugify("???") == "entry"
    assert slugify("word " * 40) == "-".join(["word"] * 16)


def test_several_documents_skip_duplicates_across_them_and_keep_ids_unique(tmp_path):
    a = write(tmp_path, "a.txt", "How do I book?\n\nCall us.\n\nWhere do I park?\n\nBehind.\n")
    b = write(tmp_path, "b.jsonl", "\n".join([
        json.dumps({"question": "where do I park", "answer": "Out front."}),
        json.dumps({"question": "How do I book", "answer": "Online.", "id": "x"}),
        json.dumps({"question": "Can I eat?", "answer": "Yes.", "id": "how-do-i-book"}),
    ]) + "\n")
    result = ingest_files([a, b])
    assert [(e.id, e.question, e.source) for e in result.entries] == [
        ("how-do-i-book", "How do I book?", Source("a.txt", 1)),
        ("where-do-i-park", "Where do I park?", Source("a.txt", 5)),
        ("how-do-i-book-2", "Can I eat?", Source("b.jsonl", 3)),
    ]
    assert [str(s) for s in result.skipped] == [
        f"{b}:1: skipped: duplicate question 'where do I park' (first at a.txt:5)",
        f"{b}:2: skipped: duplicate question 'How do I book' (first at a.txt:1)",
    ]


@pytest.mark.parametrize("name, data, line, byte", [
    ("faq.txt", b"How?\n\nfine\n\xe9t\xe9\n", 4, 11),
    ("faq.md", b"## How?\n\nfine\n\xe9t\xe9\n", 4, 14),
    ("faq.csv", b"question,answer\nHow?,fine\nWhy?,caf\xe9 au lait\n", 3, 34),
    ("faq.jsonl", b'{"question": "How?", "answer": "fine"}\n\n{"question": "Why?", "answer": "\xff"}\n', 3, 72),
])
def test_invalid_utf8_is_an_error_naming_file_and_line(tmp_path, name, data, line, byte):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CorpusError) as err:
        ingest_file(path)
    assert (err.value.path, err.value.line) == (str(path), line)
    assert str(err.value) == f"{path}:{line}: not valid UTF-8 (byte {byte}); save the file as UTF-8"


def test_a_utf8_byte_order_mark_and_crlf_line_ends_are_fine(tmp_path):
    path = tmp_path / "faq.txt"
    path.write_bytes("\ufeffHow do I book?\r\n\r\nCall us.\r\n  • by phone\r\n".encode("utf-8"))
    result = ingest_file(path)
    assert result.entries == [Entry("how-do-i-book", "How do I book?", "Call us.\n  • by phone",
                                    Source("faq.txt", 1))]


@pytest.mark.parametrize("name", ["faq.txt", "faq.md"])
@pytest.mark.parametrize("odd", ["\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_only_newlines_end_lines_so_reported_lines_match_the_editor(tmp_path, name, odd):
    # str.splitlines() breaks on these too, which used to shift every line number after them
    heading = "## " if name == "faq.md" else ""
    path = write(tmp_path, name, f"{heading}How?\n\nOne{odd}two.\n\n{heading}Why?\n\nThree.\n\n"
                                 f"{heading}Where?\n\n{heading}When?\n\nNow.\r\n\r\n{heading}Who?\r\rMe.\r")
    result = ingest_file(path)
    assert [(e.question, e.answer, e.source.line) for e in result.entries] == [
        ("How?", f"One{odd}two.", 1), ("Why?", "Three.", 5), ("When?", "Now.", 11), ("Who?", "Me.", 15)]
    assert skips(result) == [(9, "question with no answer: 'Where?'")]


def test_a_jsonl_line_may_hold_characters_that_other_tools_count_as_line_breaks(tmp_path):
    rows = [{"question": "How?", "answer": "A\u2028B\x85C"}, {"question": "Why?", "answer": "D\u2029E"},
            {"question": "When?"}]
    path = write(tmp_path, "faq.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    result = ingest_file(path)
    assert [(e.question, e.answer, e.source.line) for e in result.entries] == [
        ("How?", "A\u2028B\x85C", 1), ("Why?", "D\u2029E", 2)]
    assert skips(result) == [(3, "question with no answer: 'When?'")]


def test_skips_are_listed_in_line_order_within_each_document(tmp_path):
    a = write(tmp_path, "a.txt", "How do I book?\n\nCall us.\n")
    b = write(tmp_path, "b.jsonl", "\n".join([
        json.dumps({"question": "Why?"}),
        json.dumps({"question": "How do I book?", "answer": "Online."}),
        "{oops",
        json.dumps({"question": "When?"}),
    ]) + "\n")
    result = ingest_files([a, b])
    assert [(s.file, s.line) for s in result.skipped] == [(str(b), 1), (str(b), 2), (str(b), 3), (str(b), 4)]


def test_unknown_format_is_an_error(tmp_path):
    path = write(tmp_path, "faq.docx", "How?\n\nLike this.\n")
    with pytest.raises(CorpusError, match=r"unknown FAQ format '\.docx': use \.txt, \.md, \.csv or \.jsonl"):
        ingest_file(path)


# --- the real source document -------------------------------------------------------------

SOURCE_IDS = [
    ("how-do-you-strengthen-your-upper-back", 1),
    ("which-exercise-is-best-for-upper-back-pain", 11),
    ("how-do-i-strengthen-my-upper-back-and-shoulder-blades", 18),
    ("why-is-my-upper-back-so-weak", 26),
    ("what-causes-upper-back-problems", 31),
    ("why-does-my-upper-back-and-shoulder-blades-hurt", 35),
    ("how-do-you-strengthen-a-weak-shoulder-blade", 39),
    ("how-do-you-get-rid-of-upper-back-pain-between-shoulder-blades", 47),
    ("how-i-cured-my-upper-back-pain", 51),
    ("what-causes-pain-in-the-middle-of-your-shoulder-blades", 55),
    ("what-causes-pain-between-shoulder-blades-and-neck", 59),
    ("when-should-i-worry-about-upper-back-pain-between-shoulder-blades", 63),
    ("what-type-of-disorder-can-cause-pain-in-the-back-between-the-shoulder-blades", 67),
    ("why-does-my-back-hurt-under-my-shoulder-blade", 71),
    ("what-is-pain-under-shoulder-blade-called", 75),
]


@pytest.fixture(scope="module")
def source_result():
    return ingest_file(SOURCE)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_source_has_15_entries_with_ids_and_lines(source_result):
    assert [(e.id, e.source.line) for e in source_result.entries] == SOURCE_IDS
    assert {e.source.document for e in source_result.entries} == {"upper_back_faq.txt"}
    assert all(e.alternates == () for e in source_result.entries)


def test_source_skips_only_the_seniors_question_without_answer(source_result):
    assert source_result.skipped == [
        Skip(str(SOURCE), 45, "question with no answer: 'How can seniors strengthen their upper back muscles?'")]
    assert source_result.notes == [f"{SOURCE}:63: removed the question repeated at the start of its answer"]


def test_source_when_should_i_worry_answer_no_longer_repeats_its_question(source_result):
    entry = source_result.entries[11]
    assert entry.question == "When should I worry about upper back pain between shoulder blades?"
    assert entry.answer == (
        "Call your doctor immediately if you are experiencing severe upper back pain between the shoulder "
        "blades, as it may be signs of a serious medical condition, such as lung disease, heart disease, "
        "blood vessel disease, or gallstones.")


def test_source_sub_headings_numbered_steps_and_bullets_are_verbatim(source_result):
    by_id = {e.id: e for e in source_result.entries}
    assert by_id["how-do-i-strengthen-my-upper-back-and-shoulder-blades"].answer == (
        "Shoulder blade squeeze\n"
        "  1. Sit or stand up tall with your arms at your sides.\n"
        "  2. Keep your shoulders relaxed, not shrugged.\n"
        "  3. Squeeze your shoulder blades together. Hold for 6 seconds, then relax.\n"
        "  4. Repeat 8 to 12 times.")
    assert by_id["which-exercise-is-best-for-upper-back-pain"].answer == (
        "Overhead arm reach\n"
        "  • Sit in a chair, facing forward, with your feet on the floor.\n"
        "  • Extend your right arm above your head and reach to the left. Bend your torso until you feel the "
        "stretch in your right lat and shoulder.\n"
        "  • Return to the starting position. Repeat 5 times, then do the same thing with your left arm.")
    assert by_id["how-do-you-strengthen-a-weak-shoulder-blade"].answer.startswith(
        "Shoulder blade squeeze\n\nStand with good posture. ")
    # two blank lines after the question in the source: trimmed, the answer starts with its text
    assert by_id["why-is-my-upper-back-so-weak"].answer.startswith("And for some, weak lats")


def test_source_answers_are_the_source_lines_exactly(source_result):
    lines = SOURCE.read_text(encoding="utf-8").splitlines()
    ends = [line for _, line in SOURCE_IDS[1:]] + [len(lines) + 1]
    for entry, end in zip(source_result.entries, ends):
        if entry.source.line == 39:
            end = 45  # the seniors question (skipped) ends this answer
        body = "\n".join(lines[entry.source.line: end - 1]).strip("\n")
        body = re.sub(r"\n{3,}", "\n\n", body)
        if entry.source.line == 63:
            body = body[len(entry.question) + 1:]
        assert entry.question == lines[entry.source.line - 1]
        assert entry.answer == body, entry.id


def test_committed_corpus_answers_are_the_source_text_never_invented():
    source = SOURCE.read_text(encoding="utf-8")
    corpus = load_faq(CORPUS / "upper_back.yaml")
    assert len(corpus) == 15
    for entry in corpus.entries:
        assert flat(entry.answer) in flat(source), entry.id
        assert entry.question + "\n" in source, entry.id
        assert entry.source.document == "upper_back_faq.txt"
        assert source.splitlines()[entry.source.line - 1] == entry.question


def test_committed_corpus_is_the_ingested_source_plus_hand_written_alternates(source_result):
    corpus = load_faq(CORPUS / "upper_back.yaml")
    assert [(e.id, e.question, e.answer, e.source) for e in corpus.entries] == [
        (e.id, e.question, e.answer, e.source) for e in source_result.entries]
    assert all(len(e.alternates) >= 3 for e in corpus.entries)
    assert len(corpus.out_of_scope) >= 10
