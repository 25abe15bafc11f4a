"""Per-question latency in-process, and cold start in fresh processes, each against the model's own floor.

- Per question: ``bot.ask(q)`` against a bare ``model.encode([q])`` with the same
  model object on the same (model) thread, timed alternately question by question so
  that both see the same machine state.
- Cold start: a fresh ``python -c`` that loads the bot and answers one question,
  against one that imports sentence-transformers and loads the model only; the web
  chat (``app.py``) from start to its first REST answer, against the same floor plus
  ``import gradio``. Runs alternate, after one untimed warm-up of each (file cache).
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from common import CHILD_ENV, ROOT, free_port, ms, percentile, questions

FIRST_QUESTION = "How do you strengthen your upper back?"


def per_question(rounds: int = 3) -> dict:
    """p50/p95 of bot.ask and of a bare model.encode over the labelled questions."""
    from qa import FAQBot

    bot = FAQBot.load()
    qs = questions()
    for q in qs[:20]:  # warm up: first calls allocate
        _bare_encode(bot.encoder, q)
        bot.ask(q)
    encode_t: list[float] = []
    ask_t: list[float] = []
    kinds: dict[str, int] = {}
    for _ in range(rounds):
        for q in qs:
            encode_t.append(_bare_encode(bot.encoder, q))
            t = time.perf_counter()
            answer = bot.ask(q)
            ask_t.append(time.perf_counter() - t)
            kinds[answer.kind] = kinds.get(answer.kind, 0) + 1
    encode_p50 = percentile(encode_t, 50)
    ask_p50 = percentile(ask_t, 50)
    return {
        "questions": len(qs),
        "rounds": rounds,
        "encode_p50_ms": ms(encode_p50),
        "encode_p95_ms": ms(percentile(encode_t, 95)),
        "ask_p50_ms": ms(ask_p50),
        "ask_p95_ms": ms(percentile(ask_t, 95)),
        "ask_p99_ms": ms(percentile(ask_t, 99)),
        "ask_max_ms": ms(max(ask_t)),
        "ratio_p50": round(ask_p50 / encode_p50, 3),
        "ratio_p95": round(percentile(ask_t, 95) / percentile(encode_t, 95), 3),
        # What one thread answers per second in-process: the yardstick of the load test.
        "single_thread_answers_per_s": round(len(ask_t) / sum(ask_t), 1),
        "answer_kinds": kinds,
        "entries": len(bot.corpus),
        "vectors": bot.bundle.ntotal,
    }


def _bare_encode(encoder, question: str) -> float:
    """Seconds of one bare ``model.encode([question])``, timed on the model's own thread.

    That is where the bot's own calls run: called from this thread instead, torch would keep a
    second thread pool whose idle spinning slows both (the encoder's docstring says more).
    """
    def timed() -> float:
        t = time.perf_counter()
        encoder.model.encode([question])
        return time.perf_counter() - t

    return encoder.on_model_thread(timed)


_MODEL_ONLY = """
import sys, time
from sentence_transformers import SentenceTransformer
m = SentenceTransformer(sys.argv[1], device="cpu", local_files_only=True)
print("ready", flush=True)
"""
_BOT = """
from qa import FAQBot
bot = FAQBot.load(rebuild="never")
a = bot.ask(%r)
assert a.answered, a
print("ready", flush=True)
""" % FIRST_QUESTION
_GRADIO = """
import gradio
print("ready", flush=True)
"""


def _time_child(code: str, *args: str) -> float:
    """Seconds from starting ``python -c code`` to its line "ready"."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=CHILD_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - t
        if line.strip() != "ready":
            proc.wait(timeout=60)
            raise RuntimeError(f"child failed: {proc.stderr.read()[-2000:]}")
        return elapsed
    finally:
        proc.stdout.close()
        proc.wait(timeout=60)
        proc.stderr.close()


def _time_web() -> tuple[float, float]:
    """Seconds from starting ``app.py`` to its first REST answer, and to the chat page served."""
    port = free_port()
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--no-feedback"], cwd=ROOT,
                            env=CHILD_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:  # app.py listens before it loads, so a request waits rather than fails; poll anyway
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                r = httpx.post(url + "/api/ask", json={"question": FIRST_QUESTION}, timeout=120)
                if r.status_code == 200 and r.json()["answered"]:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("app.py did not answer within 120 s")
            time.sleep(0.05)
        first_answer = time.perf_counter() - t
        page = httpx.get(url + "/", timeout=60)
        page.raise_for_status()
        return first_answer, time.perf_counter() - t
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def cold_start(runs: int = 3, web: bool = True) -> dict:
    """Median cold-start times (seconds) of the bot, the bare model, gradio's import and the web chat."""
    from qa.config import default_model

    model = default_model()
    _time_child(_MODEL_ONLY, model)  # warm-up: the file cache, .pyc files
    _time_child(_BOT)
    timings: dict[str, list[float]] = {"model_only": [], "bot_first_answer": [], "gradio_import": []}
    if web:
        _time_web()
        timings.update(web_first_answer=[], web_page=[])
    for _ in range(runs):
        timings["model_only"].append(_time_child(_MODEL_ONLY, model))
        timings["bot_first_answer"].append(_time_child(_BOT))
        if web:
            timings["gradio_import"].append(_time_child(_GRADIO))
            answer, page = _time_web()
            timings["web_first_answer"].append(answer)
            timings["web_page"].append(page)
    out = {f"{k}_s": round(percentile(v, 50), 3) for k, v in timings.items() if v}
    out["runs"] = runs
    out["ratio"] = round(out["bot_first_answer_s"] / out["model_only_s"], 3)
    if web:
        # The bound for the web chat: 1.3x the model floor, plus gradio's own import.
        out["web_bound_s"] = round(1.3 * out["model_only_s"] + out["gradio_import_s"], 3)
    return out
