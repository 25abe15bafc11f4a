"""Many threads asking at once get the answers one thread gets.

``FAQBot.ask`` is documented thread-safe: the web server calls it from a pool of
threads. The questions are the labelled set (answers, fallbacks, safety pins,
small talk, typos), plus hostile ones, so every path of ``ask`` runs concurrently.

Requests that meet in the encoder's queue are embedded in one batch, and a vector
embedded in a batch differs from the one embedded alone by float rounding (< 1e-6):
answers must be the same, their 4-decimal scores the same to one unit in the last place.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus" / "faq"
SAFETY = ROOT / "corpus" / "safety.yaml"
SETTINGS = ROOT / "corpus" / "settings.json"
LABELLED = ROOT / "corpus" / "eval" / "upper_back.jsonl"

THREADS = 8
PER_THREAD = 40
EXTRA = ["", "hello", "thanks!", "<b>upper back</b>", "💪", "x" * 5000, "كيف أقوي ظهري",
         "I have crushing chest pain going into my left arm", "how do i strenghten my uper back"]


#: Scores are rounded to 4 decimals: a rounding difference of 1e-7 can move the last one.
SCORE_TOLERANCE = 1.5e-4


def same_answer(a: dict, b: dict) -> bool:
    """Equal answer objects, scores equal within :data:`SCORE_TOLERANCE`."""
    def scores(d: dict) -> list:
        return [d["score"]] + [s["score"] for s in d["suggestions"]]

    def without_scores(d: dict) -> dict:
        return {**d, "score": None, "suggestions": [{**s, "score": None} for s in d["suggestions"]]}

    return without_scores(a) == without_scores(b) and all(
        x == y or (x is not None and y is not None and abs(x - y) <= SCORE_TOLERANCE)
        for x, y in zip(scores(a), scores(b)))


@pytest.fixture(scope="module")
def concurrency_bot(tmp_path_factory):
    from qa import FAQBot

    return FAQBot.load(corpus=CORPUS, index_dir=tmp_path_factory.mktemp("concurrency-index"), safety=SAFETY,
                       settings=SETTINGS)


@pytest.fixture(scope="module")
def questions() -> list[str]:
    labelled = [json.loads(line)["question"] for line in LABELLED.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    pool = EXTRA + labelled
    # Each thread gets its own slice, so every thread asks different questions at the same moment.
    return [pool[i % len(pool)] for i in range(THREADS * PER_THREAD)]


@pytest.mark.slow
def test_threads_get_the_same_answers_as_one_thread(concurrency_bot, questions):
    sequential = [concurrency_bot.ask(q).to_dict() for q in questions]
    start = threading.Barrier(THREADS)

    def worker(n: int) -> list[dict]:
        start.wait()  # all threads begin together
        return [concurrency_bot.ask(q).to_dict() for q in questions[n * PER_THREAD:(n + 1) * PER_THREAD]]

    with ThreadPoolExecutor(THREADS) as pool:
        concurrent = [a for chunk in pool.map(worker, range(THREADS)) for a in chunk]
    assert len(concurrent) == len(sequential)
    differ = [(q, s, c) for q, s, c in zip(questions, sequential, concurrent) if not same_answer(s, c)]
    assert not differ, differ[:3]


@pytest.mark.slow
def test_interleaved_questions_from_many_threads(concurrency_bot, questions):
    """Threads taking questions from one shared queue, in any order: same answers, nothing lost."""
    expected = {q: concurrency_bot.ask(q).to_dict() for q in set(questions)}
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda q: (q, concurrency_bot.ask(q).to_dict()), questions))
    assert [q for q, _ in got] == questions
    assert all(same_answer(answer, expected[q]) for q, answer in got)


def test_same_answer_allows_only_a_last_digit_score_difference():
    a = {"kind": "answer", "score": 0.6123, "suggestions": [{"id": "x", "score": 0.6001}]}
    assert same_answer(a, {**a, "score": 0.6124})
    assert not same_answer(a, {**a, "score": 0.6126})
    assert not same_answer(a, {**a, "kind": "fallback"})
    assert not same_answer(a, {**a, "suggestions": [{"id": "y", "score": 0.6001}]})


# --- the encoder: one model thread, concurrent requests batched -------------------------


@pytest.fixture(scope="module")
def encoder():
    from qa.config import default_model
    from qa.embed import Encoder

    return Encoder.load(default_model())


def _hold_model_thread(encoder) -> threading.Event:
    """Keep the model thread busy until the returned event is set, so requests queue up."""
    release, busy = threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        release.wait(30)

    threading.Thread(target=encoder.on_model_thread, args=(hold,), daemon=True).start()
    busy.wait(30)
    return release


def _wait_for_queue(encoder, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(encoder._queue) < n:
        assert time.monotonic() < deadline, "requests did not queue"
        time.sleep(0.005)


def test_queued_requests_are_embedded_in_one_batch_like_one_at_a_time(encoder, questions, monkeypatch):
    texts = list(dict.fromkeys(questions))[:24]
    alone = np.vstack([encoder.encode([t]) for t in texts])
    calls = []
    model_encode = encoder.model.encode

    def counted(texts, **kwargs):
        calls.append(len(texts))
        return model_encode(texts, **kwargs)

    monkeypatch.setattr(encoder.model, "encode", counted)
    release = _hold_model_thread(encoder)
    with ThreadPoolExecutor(len(texts)) as pool:
        futures = [pool.submit(encoder.encode, [t]) for t in texts]
        _wait_for_queue(encoder, len(texts))
        release.set()
        together = np.vstack([f.result(timeout=60) for f in futures])
    # Batched: a few forward passes (one per group of similar length), not one per request.
    assert sum(calls) == len(texts) and len(calls) <= len(texts) // 3, calls
    assert together.shape == alone.shape and np.abs(together - alone).max() < 1e-5


def test_a_bad_text_in_a_batch_fails_only_its_own_request(encoder):
    texts = ["how do I fix my posture", "bad \ud800 surrogate", "upper back stretches", "stiff neck"]
    release = _hold_model_thread(encoder)
    with ThreadPoolExecutor(len(texts)) as pool:
        futures = [pool.submit(encoder.encode, [t]) for t in texts]
        _wait_for_queue(encoder, len(texts))
        release.set()
        with pytest.raises(TypeError):  # the tokenizer refuses lone surrogates
            futures[1].result(timeout=60)
        good = [futures[i].result(timeout=60) for i in (0, 2, 3)]
    assert all(v.shape == (1, encoder.dimension) for v in good)
    assert np.abs(good[0] - encoder.encode([texts[0]])).max() < 1e-5


def test_bulk_and_empty_encodes(encoder):
    assert encoder.encode([]).shape == (0, encoder.dimension)
    texts = [f"question number {i} about the upper back" for i in range(70)]  # more than one batch: a bulk job
    bulk = encoder.encode(texts, batch_size=32)
    assert bulk.shape == (70, encoder.dimension) and bulk.dtype == np.float32
    assert np.abs(bulk[5] - encoder.encode([texts[5]])[0]).max() < 1e-5


def test_the_model_is_loaded_once_whatever_the_threads():
    from qa.config import default_model
    from qa.embed import Encoder

    with ThreadPoolExecutor(8) as pool:
        encoders = list(pool.map(lambda _: Encoder.load(default_model()), range(8)))
    assert len({id(e) for e in encoders}) == 1


BULK_THEN_CTRL_C = """
import signal
# A shell that starts a job in the background without job control ("make test &") makes it ignore Ctrl+C, and
# children inherit that: put back what a terminal gives.
signal.signal(signal.SIGINT, signal.default_int_handler)
from qa.config import default_model
from qa.embed import Encoder
encoder = Encoder.load(default_model())
print("embedding", flush=True)
try:
    encoder.encode([f"question {i} about stretching the upper back after work" for i in range(20000)])
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.slow
def test_ctrl_c_stops_a_bulk_encode_within_a_chunk():
    """The model thread cannot be interrupted, and the interpreter waits for it at exit: a bulk encode
    (an index build) goes to it a chunk at a time, so Ctrl+C ends the process in about a second."""
    proc = subprocess.Popen([sys.executable, "-c", BULK_THEN_CTRL_C], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        assert proc.stdout.readline().strip() == "embedding"
        time.sleep(2)  # well into the job, which takes about a minute on 2 cores
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        proc.wait(timeout=60)
        assert time.monotonic() - started < 15
        assert proc.stdout.read().strip() == "interrupted"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
