"""Concurrent load on the running web server: N clients for D seconds on each API.

Starts ``python app.py --port <free> --no-feedback`` (the committed index and
settings), waits for its first answer, then runs, one after the other:

- ``POST /api/ask`` from N threads, each with its own ``httpx.Client`` (keep-alive);
- the Gradio endpoint ``/ask`` from N threads, each with its own ``gradio_client.Client``;
- the same endpoint through Gradio's plain HTTP API (``POST /gradio_api/call/ask``, then its
  event stream) with httpx: ``gradio_client`` costs the client far more CPU than the server
  spends answering, so on one 2-core box it measures mostly itself.

Every loop is bounded in time and in count and talks to 127.0.0.1 only. An error
is a transport failure, a status other than 200, or a body that is not an answer.
The clients share the machine's cores with the server; the CPU seconds each side used
are reported (``client_cpu_s``, ``server_cpu_s``) so that a client-bound figure shows as such.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx

from common import CHILD_ENV, ROOT, free_port, ms, peak_rss_mb, percentile, questions

ANSWER_KEYS = {"question", "answered", "kind", "matched_question", "entry_id", "answer", "source", "score",
               "confidence", "suggestions", "safety"}
MAX_REQUESTS_PER_CLIENT = 20_000  # a bound on top of the time limit


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str | None) -> None:
        with self.lock:
            if error:
                self.errors.append(error)
            else:
                self.latencies.append(seconds)


class Server:
    """``app.py`` in a child process on a free loopback port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port), "--no-feedback"],
                                     cwd=ROOT, env=CHILD_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.post(self.url + "api/ask", json={"question": "hello"}, timeout=60).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("app.py did not answer within 180 s")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        return peak_rss_mb(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


def _check(body) -> str | None:
    if not isinstance(body, dict) or set(body) != ANSWER_KEYS:
        return f"not an answer object: {str(body)[:200]}"
    return None


def _run_clients(server: Server, make_client, ask, clients: int, duration: float, qs: list[str]) -> dict:
    """``clients`` threads asking in a loop for ``duration`` seconds; answers/s, latency, errors, CPU used."""
    tally = Tally()
    own_cpu, server_cpu = sum(os.times()[:2]), server.cpu_seconds()
    began, stop_at = [0.0], [0.0]

    def go() -> None:  # run by the last thread to reach the barrier, before any is released
        began[0] = time.perf_counter()
        stop_at[0] = began[0] + duration

    start = threading.Barrier(clients + 1, action=go)

    def worker(n: int) -> None:
        try:
            client = make_client()
        except Exception as exc:  # a client that cannot connect is an error, not a crash of the run
            tally.add(0, f"client setup: {type(exc).__name__}: {exc}")
            start.wait()
            return
        start.wait()
        i = n * 7
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.perf_counter() >= stop_at[0]:
                break
            q = qs[i % len(qs)]
            i += 1
            t = time.perf_counter()
            try:
                error = _check(ask(client, q))
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            tally.add(time.perf_counter() - t, error)
        close = getattr(client, "close", None)
        if close:
            close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join(timeout=duration + 120)
    elapsed = time.perf_counter() - began[0]
    lat = tally.latencies
    return {
        "client_cpu_s": round(sum(os.times()[:2]) - own_cpu, 1),
        "server_cpu_s": round(server.cpu_seconds() - server_cpu, 1),
        "clients": clients,
        "seconds": round(elapsed, 1),
        "answers": len(lat),
        "answers_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": ms(percentile(lat, 50)),
        "p99_ms": ms(percentile(lat, 99)),
        "max_ms": ms(max(lat)) if lat else None,
        "errors": len(tally.errors),
        "error_samples": sorted(set(tally.errors))[:5],
    }


def _rest_client(url: str):
    return lambda: httpx.Client(base_url=url, timeout=60)


def _rest_ask(client: httpx.Client, q: str):
    r = client.post("api/ask", json={"question": q})
    if r.status_code != 200:
        return f"HTTP {r.status_code}"
    return r.json()


def _gradio_client(url: str):
    from gradio_client import Client

    return lambda: Client(url, analytics_enabled=False, verbose=False)


def _gradio_ask(client, q: str):
    return client.predict(q, api_name="/ask")


def _gradio_http_ask(client: httpx.Client, q: str):
    """One call of Gradio's HTTP API: queue the event, then read its stream to the result."""
    r = client.post("gradio_api/call/ask", json={"data": [q]})
    if r.status_code != 200:
        return f"HTTP {r.status_code}"
    event = None
    with client.stream("GET", f"gradio_api/call/ask/{r.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "complete":
                return json.loads(line[5:])[0]
            elif line.startswith("data:") and event == "error":
                return f"Gradio error event: {line[5:].strip()[:200]}"
    return "the event stream ended without a result"


def run(clients: int = 16, duration: float = 30.0, gradio: bool = True) -> dict:
    """Start the server, load it, stop it; the figures of each endpoint."""
    qs = questions()
    server = Server()
    try:
        out: dict = {}
        # One client first: the cost of HTTP itself, without queueing.
        out["rest_1_client"] = _run_clients(server, _rest_client(server.url), _rest_ask, 1, min(5.0, duration), qs)
        out["rest"] = _run_clients(server, _rest_client(server.url), _rest_ask, clients, duration, qs)
        if gradio:
            out["gradio"] = _run_clients(server, _gradio_client(server.url), _gradio_ask, clients, duration, qs)
            out["gradio_http"] = _run_clients(server, _rest_client(server.url), _gradio_http_ask, clients, duration, qs)
        out["server_peak_rss_mb"] = server.peak_rss_mb()
        return out
    finally:
        server.stop()
