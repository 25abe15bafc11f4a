"""Many threads asking at once get exactly the answers one thread gets.

``FAQBot.ask`` is documented thread-safe: the web server calls it from a pool of
threads. The questions are the labelled set (answers, fallbacks, safety pins,
small talk, typos), plus hostile ones, so every path of ``ask`` runs concurrently.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
    differ = [(q, s, c) for q, s, c in zip(questions, sequential, concurrent) if s != c]
    assert not differ, differ[:3]


@pytest.mark.slow
def test_interleaved_questions_from_many_threads(concurrency_bot, questions):
    """Threads taking questions from one shared queue, in any order: same answers, nothing lost."""
    expected = {q: concurrency_bot.ask(q).to_dict() for q in set(questions)}
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda q: (q, concurrency_bot.ask(q).to_dict()), questions))
    assert [q for q, _ in got] == questions
    assert all(answer == expected[q] for q, answer in got)


def test_the_model_is_loaded_once_whatever_the_threads():
    from qa.config import default_model
    from qa.embed import Encoder

    with ThreadPoolExecutor(8) as pool:
        encoders = list(pool.map(lambda _: Encoder.load(default_model()), range(8)))
    assert len({id(e) for e in encoders}) == 1
