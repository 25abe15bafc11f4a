"""Damaged, stale or missing files are detected: the index is rebuilt, or a clear error names the file.

Each case damages a real bundle built from a tiny corpus in ``tmp_path`` (real
packaged model): a truncated FAISS file, a manifest that does not match, a corpus
edited after the build, a deleted index folder, a corpus file with a broken line.
A build killed halfway (SIGKILL in a child process, at three points) leaves the
previous index in use.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from qa import index as index_mod
from qa.corpus import load_faq
from qa.errors import CorpusError, IndexBundleError
from qa.safety import SAFETY_CACHE

ROOT = Path(__file__).resolve().parent.parent
SAFETY = ROOT / "corpus" / "safety.yaml"
FIELDS = ("question", "alternates", "answer")
QUESTION = "How do I stretch my upper back?"

FAQ = textwrap.dedent("""\
    title: tiny test FAQ
    entries:
      - id: stretch
        question: How do I stretch my upper back?
        answer: Clasp your hands in front of you and round your back for 20 seconds.
        alternates: [upper back stretches]
      - id: posture
        question: How can I improve my posture at a desk?
        answer: Raise the screen to eye level and keep your feet flat on the floor.
      - id: ice-or-heat
        question: Should I use ice or heat for a sore upper back?
        answer: Ice for the first two days after a strain, then heat.
      - id: sleep
        question: What is the best sleeping position for upper back pain?
        answer: On your back or side, with a pillow that keeps your neck level.
    """)


@pytest.fixture(scope="module")
def encoder():
    from qa.config import default_model
    from qa.embed import Encoder

    return Encoder.load(default_model())


@pytest.fixture
def faq(tmp_path) -> Path:
    path = tmp_path / "faq.yaml"
    path.write_text(FAQ, encoding="utf-8")
    return path


@pytest.fixture
def built(faq, tmp_path, encoder):
    """A freshly built bundle: (corpus file, index folder, manifest dict)."""
    index_dir = tmp_path / "index"
    index_mod.build(load_faq(faq), encoder, index_dir, FIELDS)
    return faq, index_dir, json.loads((index_dir / "manifest.json").read_text())


def bundle_dir(index_dir: Path) -> Path:
    return index_dir / json.loads((index_dir / "manifest.json").read_text())["bundle"]


def load_bot(faq: Path, index_dir: Path, rebuild: str = "auto"):
    from qa import FAQBot

    settings = faq.parent / "settings.json"
    if not settings.exists():
        settings.write_text(json.dumps({"embed_fields": list(FIELDS)}), encoding="utf-8")
    return FAQBot.load(corpus=faq, index_dir=index_dir, safety=SAFETY, settings=settings, rebuild=rebuild)


def assert_answers(bot) -> None:
    answer = bot.ask(QUESTION)
    assert answer.answered and answer.entry_id == "stretch", answer.to_dict()


# --- a damaged FAISS file ------------------------------------------------------------


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("keep", [0.5, 0.0], ids=["half", "empty"])
def test_truncated_faiss_file_is_detected_by_checksum(built, encoder, keep):
    faq, index_dir, _ = built
    faiss_file = bundle_dir(index_dir) / "vectors.faiss"
    _truncate(faiss_file, keep)
    with pytest.raises(IndexBundleError, match="vectors.faiss: damaged"):
        index_mod.load(load_faq(faq), encoder, index_dir, FIELDS)


def test_truncated_faiss_file_with_a_matching_checksum_is_still_refused(built, encoder):
    """Even when someone 'fixed' the checksum, FAISS cannot read half a file: damaged, not a crash."""
    faq, index_dir, manifest = built
    faiss_file = bundle_dir(index_dir) / "vectors.faiss"
    _truncate(faiss_file)
    from qa.io import sha256_file

    manifest["files"]["vectors.faiss"] = sha256_file(faiss_file)
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexBundleError, match="damaged"):
        index_mod.load(load_faq(faq), encoder, index_dir, FIELDS)


@pytest.mark.parametrize("name", ["vectors.npy", "bm25/params.index.json", "bm25/vocab.index.json"])
def test_any_damaged_bundle_file_is_detected(built, encoder, name):
    faq, index_dir, _ = built
    path = bundle_dir(index_dir) / name
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    with pytest.raises(IndexBundleError, match=f"{name}: damaged"):
        index_mod.load(load_faq(faq), encoder, index_dir, FIELDS)


@pytest.mark.slow
def test_bot_rebuilds_a_truncated_index_and_answers(built):
    faq, index_dir, manifest = built
    _truncate(bundle_dir(index_dir) / "vectors.faiss")
    with pytest.raises(IndexBundleError, match="vectors.faiss"):
        load_bot(faq, index_dir, rebuild="never")
    bot = load_bot(faq, index_dir)
    assert_answers(bot)
    assert bot.bundle.manifest["bundle"] != manifest["bundle"]
    index_mod.load(bot.corpus, bot.encoder, index_dir, FIELDS)  # the new bundle is whole


# --- a manifest that does not match --------------------------------------------------


def _set(key, value):
    def mutate(m: dict) -> str:
        m[key] = value
        return json.dumps(m)

    return mutate


MANIFEST_DAMAGE = {
    "not_json": (lambda m: "{", "manifest.json: damaged"),
    "truncated": (lambda m: json.dumps(m)[: len(json.dumps(m)) // 2], "manifest.json: damaged"),
    "a_list": (lambda m: "[1, 2]", "not a JSON object"),
    "vector_count": (lambda m: json.dumps({**m, "vectors": m["vectors"] + 1}), "sizes do not match"),
    "dimension": (_set("dimension", 768), "stale"),
    "model": (_set("model", "/elsewhere/another-model"), "stale"),
    "fields": (_set("fields", ["question"]), "embedded fields"),
    "format": (_set("format", 99), "format 99"),
    "fingerprint": (_set("corpus_fingerprint", "0" * 64), "the corpus changed"),
    "bundle_name": (_set("bundle", "bundle-that-does-not-exist"), "missing"),
    "no_files": (_set("files", {}), "no file list"),
    "wrong_checksum": (lambda m: json.dumps({**m, "files": {**m["files"], "vectors.npy": "0" * 64}}),
                       "vectors.npy: damaged"),
}


@pytest.mark.parametrize("name", list(MANIFEST_DAMAGE))
def test_manifest_that_does_not_match_is_detected(built, encoder, name):
    faq, index_dir, manifest = built
    mutate, message = MANIFEST_DAMAGE[name]
    (index_dir / "manifest.json").write_text(mutate(dict(manifest)), encoding="utf-8")
    with pytest.raises(IndexBundleError, match=message) as info:
        index_mod.load(load_faq(faq), encoder, index_dir, FIELDS)
    assert str(index_dir) in str(info.value)  # the error says which index


@pytest.mark.slow
@pytest.mark.parametrize("name", ["not_json", "a_list", "vector_count", "bundle_name", "fingerprint"])
def test_bot_rebuilds_over_a_bad_manifest(built, name):
    faq, index_dir, manifest = built
    mutate, _ = MANIFEST_DAMAGE[name]
    (index_dir / "manifest.json").write_text(mutate(dict(manifest)), encoding="utf-8")
    bot = load_bot(faq, index_dir)
    assert_answers(bot)
    assert json.loads((index_dir / "manifest.json").read_text())["vectors"] == manifest["vectors"]


# --- the corpus edited after the build ------------------------------------------------


def test_corpus_edited_after_the_build_makes_the_index_stale(built, encoder):
    faq, index_dir, _ = built
    faq.write_text(FAQ.replace("for 20 seconds", "for 30 seconds"), encoding="utf-8")
    with pytest.raises(IndexBundleError, match="stale.*the corpus changed"):
        index_mod.load(load_faq(faq), encoder, index_dir, FIELDS)


def test_cosmetic_corpus_edit_keeps_the_index(built, encoder):
    faq, index_dir, manifest = built
    faq.write_text("# a comment\n" + FAQ.replace("entries:", "entries:   # the list"), encoding="utf-8")
    bundle = index_mod.load(load_faq(faq), encoder, index_dir, FIELDS)
    assert bundle.manifest["bundle"] == manifest["bundle"]


@pytest.mark.slow
def test_bot_serves_the_edited_corpus_after_a_rebuild(built):
    faq, index_dir, manifest = built
    faq.write_text(FAQ.replace("for 20 seconds", "for 30 seconds") + textwrap.indent(textwrap.dedent("""\
        - id: desk-stretch
          question: Which stretch can I do at my desk?
          answer: Roll your shoulders backwards ten times, every hour.
        """), "  "), encoding="utf-8")
    with pytest.raises(IndexBundleError, match="the corpus changed"):
        load_bot(faq, index_dir, rebuild="never")
    bot = load_bot(faq, index_dir)
    assert "30 seconds" in bot.ask(QUESTION).answer
    assert bot.ask("Which stretch can I do at my desk?").entry_id == "desk-stretch"
    assert bot.bundle.manifest["entries"] == manifest["entries"] + 1
    assert not (index_dir / manifest["bundle"]).exists()  # the replaced bundle is cleaned up


# --- deleted files -------------------------------------------------------------------


@pytest.mark.parametrize("what", ["index_folder", "bundle_folder", "manifest", "one_file"])
def test_deleted_index_parts_are_detected(built, encoder, what):
    faq, index_dir, _ = built
    bundle = bundle_dir(index_dir)
    if what == "index_folder":
        shutil.rmtree(index_dir)
        message = "no index built yet"
    elif what == "bundle_folder":
        shutil.rmtree(bundle)
        message = "missing"
    elif what == "manifest":
        (index_dir / "manifest.json").unlink()
        message = "no index built yet"
    else:
        (bundle / "bm25" / "vocab.index.json").unlink()
        message = "vocab.index.json: missing"
    with pytest.raises(IndexBundleError, match=message):
        index_mod.load(load_faq(faq), encoder, index_dir, FIELDS)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["index_folder", "bundle_folder"])
def test_bot_rebuilds_a_deleted_index(built, what):
    faq, index_dir, _ = built
    shutil.rmtree(index_dir if what == "index_folder" else bundle_dir(index_dir))
    with pytest.raises(IndexBundleError):
        load_bot(faq, index_dir, rebuild="never")
    assert_answers(load_bot(faq, index_dir))
    assert (index_dir / "manifest.json").exists()


# --- a corpus file with a broken line ------------------------------------------------

BROKEN_YAML = {
    # name: (text, line the error must name, words the message must contain)
    "bad_indent": ("title: t\nentries:\n  - question: A?\n    answer: a\n   - question: B?\n    answer: b\n", 5, ""),
    "unclosed_quote": ('entries:\n  - question: "A?\n    answer: a\n', 2, "YAML syntax error"),
    "tab": ("entries:\n  - question: A?\n\tanswer: a\n", 3, "YAML syntax error"),
    "no_answer": ("entries:\n  - question: A?\n    answer: a\n  - question: B?\n", 4, "no answer"),
    "unknown_key": ("entries:\n  - question: A?\n    answer: a\n    anwser: typo\n", 4, "unknown key 'anwser'"),
    "duplicate": ("entries:\n  - question: A b?\n    answer: a\n  - question: a B\n    answer: b\n", 4,
                  "duplicate"),
    "bad_id": ("entries:\n  - id: a b/c\n    question: A?\n    answer: a\n", 2, "may only hold"),
    "not_a_mapping": ("entries:\n  - question: A?\n    answer: a\n  - just text\n", 4, "must be a mapping"),
}


@pytest.mark.parametrize("name", list(BROKEN_YAML))
def test_broken_yaml_line_is_named_with_file_and_line(tmp_path, name):
    text, line, words = BROKEN_YAML[name]
    path = tmp_path / "faq.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        load_faq(path)
    assert (info.value.path, info.value.line) == (str(path), line), str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert words in str(info.value)


def test_invalid_utf8_names_its_line(tmp_path):
    path = tmp_path / "faq.yaml"
    path.write_bytes(b"entries:\n  - question: A?\n    answer: caf\xe9\n")
    with pytest.raises(CorpusError, match=r"faq.yaml:3: not valid UTF-8"):
        load_faq(path)


@pytest.mark.parametrize("suffix, text, line", [
    (".jsonl", '{"question": "A?", "answer": "a"}\n{"question": "B?", "answer": \n{"question": "C?", "answer": "c"}\n', 2),
    (".csv", "question,answer\nA?,a\nB?\nC?,c\n", 3),
])
def test_broken_line_of_a_raw_faq_is_skipped_and_reported(tmp_path, caplog, suffix, text, line):
    """Raw FAQ documents are read leniently: the broken line is left out and logged with file and line."""
    path = tmp_path / f"faq{suffix}"
    path.write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="qa"):
        corpus = load_faq(path)
    assert [e.question for e in corpus.entries] == ["A?", "C?"]
    assert any(f"{path}:{line}: skipped" in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.slow
def test_cli_reports_a_broken_corpus_in_one_line(tmp_path):
    text, line, _ = BROKEN_YAML["no_answer"]
    path = tmp_path / "faq.yaml"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "qa.cli", "build", "--corpus", str(path), "--index",
                           str(tmp_path / "index")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"qa: error: {path}:{line}: entry 'B?' has no answer "
                                                "(add one or remove the entry)"]
    assert not (tmp_path / "index").exists()


# --- a build killed halfway ----------------------------------------------------------

# The child builds with a stand-in encoder (the real model's identity, random unit
# vectors, no model load) and stops dead at a chosen point, where the parent kills it.
KILLED_BUILD = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    import numpy as np
    import qa.index as index_mod
    from qa.corpus import load_faq

    corpus, index_dir, point, model_path, model_name, dim = sys.argv[1:7]

    def hang():
        print("HANG", flush=True)
        time.sleep(600)

    class StandIn:
        path, name, dimension = model_path, model_name, int(dim)
        def encode(self, texts, batch_size=64, show_progress=False):
            if point == "embedding":
                hang()
            v = np.random.default_rng(0).standard_normal((len(texts), self.dimension)).astype("float32")
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    if point == "writing":  # after the FAISS file, before the rest of the bundle
        import faiss
        write = faiss.write_index
        def write_then_hang(index, path):
            write(index, path)
            hang()
        faiss.write_index = write_then_hang
    elif point == "switching":  # the bundle is complete, the manifest not yet switched
        index_mod.atomic_write_text = lambda *args, **kwargs: hang()
    index_mod.build(load_faq(corpus), StandIn(), Path(index_dir), tuple(sys.argv[7:]))
    print("FINISHED", flush=True)
    """)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["embedding", "writing", "switching"])
def test_build_killed_halfway_leaves_the_previous_index_usable(built, encoder, point):
    faq, index_dir, manifest = built
    before = (index_dir / "manifest.json").read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(faq), str(index_dir), point, encoder.path, encoder.name,
         str(encoder.dimension), *FIELDS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        line = proc.stdout.readline()  # blocks until the child reaches its point
        assert line.strip() == "HANG", proc.stderr.read() if proc.poll() is not None else line
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()

    assert (index_dir / "manifest.json").read_bytes() == before
    leftovers = [p.name for p in index_dir.iterdir() if p.name not in ("manifest.json", manifest["bundle"])]
    assert len(leftovers) == (0 if point == "embedding" else 1), leftovers
    # The previous bundle loads as it was and answers.
    bundle = index_mod.load(load_faq(faq), encoder, index_dir, FIELDS)
    assert bundle.manifest["bundle"] == manifest["bundle"]
    bot = load_bot(faq, index_dir, rebuild="never")
    assert_answers(bot)
    # And the next build, over the leftovers, succeeds.
    bot = load_bot(faq, index_dir, rebuild="always")
    assert_answers(bot)
    assert bot.bundle.manifest["bundle"] != manifest["bundle"]


# --- the safety check's vectors: the FAQ's from the bundle, its own from a cache ----------

MEANING_URGENT = "felt something rip between my shoulder blades"  # pinned by meaning, no rule matches


def test_loading_over_a_built_index_embeds_nothing_again(built, encoder, monkeypatch):
    faq, index_dir, _ = built
    load_bot(faq, index_dir)  # the first load embeds the safety examples and caches them
    embedded: list[str] = []
    real = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts, **kw: embedded.extend(texts) or real(texts, **kw))
    bot = load_bot(faq, index_dir, rebuild="never")
    assert embedded == []  # FAQ questions from the FAISS index, safety examples from the cache
    assert bot.ask(MEANING_URGENT).safety.category == "sudden_severe_pain"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "stale"])
def test_a_damaged_or_stale_safety_cache_is_rebuilt(built, damage, caplog):
    faq, index_dir, _ = built
    bot = load_bot(faq, index_dir)
    cache = index_dir / SAFETY_CACHE
    urgent, benign = bot.rules._urgent_vecs.copy(), bot.rules._benign_vecs.copy()
    good = cache.read_bytes()
    if damage == "garbage":
        cache.write_bytes(b"not a zip file")
    elif damage == "truncated":
        cache.write_bytes(good[: len(good) // 2])
    else:  # the vectors of other texts or another model: another key
        with np.load(cache) as data:
            np.savez(cache, key=np.array("0" * 64), vectors=np.zeros_like(data["vectors"]))
    with caplog.at_level(logging.WARNING, logger="qa.safety"):
        bot = load_bot(faq, index_dir)
    assert np.abs(bot.rules._urgent_vecs - urgent).max() < 1e-5
    assert np.abs(bot.rules._benign_vecs - benign).max() < 1e-5
    assert bot.ask(MEANING_URGENT).safety.category == "sudden_severe_pain"
    assert (str(cache) in caplog.text) == (damage != "stale")  # damage is logged; staleness is routine
    assert cache.read_bytes() == good  # rewritten whole


def _many_entries(n: int) -> str:
    entries = [f"  - id: e{i}\n    question: How do I look after part {i} of my back?\n"
               f"    answer: Rest part {i} for {i + 1} days, then stretch it gently.\n"
               + (f"    alternates: [caring for back part {i}]\n" if i % 3 == 0 else "") for i in range(n)]
    return "title: generated FAQ\nentries:\n" + "".join(entries)


@pytest.mark.parametrize(("fields", "ivf"), [(("question", "alternates", "answer"), False),
                                             (("question", "alternates", "answer"), True),
                                             (("question", "answer"), False)])
def test_faq_question_vectors_are_read_back_from_the_bundle(tmp_path, encoder, monkeypatch, fields, ivf):
    if ivf:  # IVF from a few dozen vectors on: the same code as above 50,000
        monkeypatch.setattr(index_mod, "EXACT_MAX_VECTORS", 16)
    path = tmp_path / "faq.yaml"
    path.write_text(_many_entries(40), encoding="utf-8")
    corpus = load_faq(path)
    index_mod.build(corpus, encoder, tmp_path / "index", fields)
    bundle = index_mod.load(corpus, encoder, tmp_path / "index", fields)
    assert (bundle.manifest["index_type"] == "IndexIVFFlat") == ivf
    got = index_mod.question_vectors(bundle, corpus, encoder)
    if "alternates" in fields:
        texts = [q for e in corpus.entries for q in (e.question, *e.alternates)]
    else:  # alternates not in the index: embedded at load, after the questions
        texts = [e.question for e in corpus.entries] + [a for e in corpus.entries for a in e.alternates]
    want = encoder.encode(texts)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
