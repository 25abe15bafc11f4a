"""Benchmarks: speed against the model's own floor, a 100,000-entry FAQ, concurrent users.

    make bench                                   # everything, about 15 minutes on 2 cores
    .venv/bin/python bench/run.py --quick        # a smoke run of every section, about 3 minutes
    .venv/bin/python bench/run.py --skip-scale --skip-load --out bench/results/latest.json

Prints a Markdown table (figure, target, verdict) and writes every figure as JSON
(``--out``, default ``bench/results/latest.json``) with the table beside it (``.md``).
These are measurements, not tests: a missed target is reported, and the exit code
stays 0 unless a section fails to run (``--strict`` makes a missed target exit 1).

Sections (each can be skipped):
  per-question  ``bot.ask`` against a bare ``model.encode([q])`` (latency.py)
  cold start    a fresh process to its first answer, against loading the model (latency.py)
  load          16 clients for 30 s on ``POST /api/ask`` and Gradio's ``/ask`` (load.py)
  scale         a generated FAQ of 100,000 entries, in a process of its own (scale.py)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the bench modules sit beside it

from common import BENCH, CHILD_ENV, ROOT, machine  # noqa: E402

os.environ.update({k: v for k, v in CHILD_ENV.items() if k not in os.environ})

TARGETS = {
    "ask_over_encode_p50": 1.2,
    "cold_start_ratio": 1.3,
    "scale_query_ratio_p50": 2.0,
    "rest_p99_ms": 500.0,
    "rest_share_of_in_process": 0.70,
}


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _section(name: str, results: dict, fn, *args, **kwargs) -> None:
    print(f"\n== {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    before = _load_average()
    try:
        results[name] = fn(*args, **kwargs)
    except Exception as exc:  # a section that fails is reported, the others still run
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"!! {name} failed: {exc}", file=sys.stderr)
    else:
        results[name]["load_average_before"] = before
    results[name]["section_seconds"] = round(time.perf_counter() - started, 1)
    print(f"== {name} done in {results[name]['section_seconds']} s", file=sys.stderr, flush=True)


def _scale(entries: int, rounds: int) -> dict:
    """scale.py in a child process, so its peak memory is its own; its progress bar shows on stderr."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    try:
        subprocess.run([sys.executable, str(BENCH / "scale.py"), "--entries", str(entries), "--rounds", str(rounds),
                        "--out", str(out)], cwd=ROOT, env=CHILD_ENV, check=True)
        return json.loads(out.read_text(encoding="utf-8"))
    finally:
        out.unlink(missing_ok=True)


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "**missed**")


def table(results: dict) -> tuple[str, list[str]]:
    """The Markdown table of the figures, and the list of targets missed."""
    rows: list[tuple[str, str, str, bool | None]] = []
    missed: list[str] = []

    def row(what: str, figure: str, target: str = "", ok: bool | None = None) -> None:
        rows.append((what, figure, target, ok))
        if ok is False:
            missed.append(what)

    pq = results.get("per_question", {})
    if "ask_p50_ms" in pq:
        row(f"Per question, in-process ({pq['questions']} questions x {pq['rounds']}): bot.ask p50 / p95",
            f"{pq['ask_p50_ms']} / {pq['ask_p95_ms']} ms")
        row("Bare model.encode([q]) p50 / p95 (the floor)", f"{pq['encode_p50_ms']} / {pq['encode_p95_ms']} ms")
        row("bot.ask / encode at p50 (at p95)", f"{pq['ratio_p50']}x ({pq['ratio_p95']}x)",
            f"<= {TARGETS['ask_over_encode_p50']}x", pq["ratio_p50"] <= TARGETS["ask_over_encode_p50"])
        row("Single-thread in-process throughput", f"{pq['single_thread_answers_per_s']} answers/s")
    cs = results.get("cold_start", {})
    if "model_only_s" in cs:
        row(f"Cold start: import sentence-transformers + load the model (median of {cs['runs']})",
            f"{cs['model_only_s']} s")
        row("Cold start: process start to the bot's first answer",
            f"{cs['bot_first_answer_s']} s ({cs['ratio']}x)", f"<= {TARGETS['cold_start_ratio']}x",
            cs["ratio"] <= TARGETS["cold_start_ratio"])
        if "web_first_answer_s" in cs:
            row("import gradio", f"{cs['gradio_import_s']} s")
            row("Web chat: `python app.py` to its first REST answer (page served)",
                f"{cs['web_first_answer_s']} s ({cs['web_page_s']} s)",
                f"<= 1.3 x model + gradio = {cs['web_bound_s']} s", cs["web_first_answer_s"] <= cs["web_bound_s"])
    ld = results.get("load", {})
    single = pq.get("single_thread_answers_per_s")
    if "rest" in ld:
        one = ld["rest_1_client"]
        row("REST POST /api/ask, 1 client: answers/s, p50", f"{one['answers_per_s']}/s, {one['p50_ms']} ms")
        r = ld["rest"]
        share = round(r["answers_per_s"] / single, 2) if single else None
        row(f"REST POST /api/ask, {r['clients']} clients x {r['seconds']} s: answers/s (share of in-process)",
            f"{r['answers_per_s']}/s ({share if share is not None else '?'})",
            f">= {TARGETS['rest_share_of_in_process']:.0%} of in-process",
            None if share is None else share >= TARGETS["rest_share_of_in_process"])
        row("REST p50 / p99", f"{r['p50_ms']} / {r['p99_ms']} ms", f"p99 < {TARGETS['rest_p99_ms']:.0f} ms",
            r["p99_ms"] < TARGETS["rest_p99_ms"])
        row("REST errors", f"{r['errors']} of {r['answers'] + r['errors']}", "0", r["errors"] == 0)
    if "gradio" in ld:
        g = ld["gradio"]
        row(f"Gradio /ask via gradio_client, {g['clients']} clients x {g['seconds']} s: answers/s, p50 / p99",
            f"{g['answers_per_s']}/s, {g['p50_ms']} / {g['p99_ms']} ms")
        row("Gradio errors", f"{g['errors']} of {g['answers'] + g['errors']}", "0", g["errors"] == 0)
    if "gradio_http" in ld:
        g = ld["gradio_http"]
        row(f"Gradio /ask via its HTTP API (httpx), {g['clients']} clients: answers/s, p50 / p99, errors",
            f"{g['answers_per_s']}/s, {g['p50_ms']} / {g['p99_ms']} ms, {g['errors']} errors", "0 errors",
            g["errors"] == 0)
    for key, label in (("rest", "REST"), ("gradio", "gradio_client"), ("gradio_http", "Gradio HTTP")):
        if key in ld:
            row(f"CPU used during the {label} run: clients / server",
                f"{ld[key]['client_cpu_s']} / {ld[key]['server_cpu_s']} s in {ld[key]['seconds']} s")
    if ld.get("server_peak_rss_mb"):
        row("Server peak memory (RSS)", f"{ld['server_peak_rss_mb']} MiB")
    sc = results.get("scale", {})
    if "build_s" in sc:
        n = sc["entries"]
        row(f"Scale: generated FAQ of {n:,} entries, questions embedded",
            f"{sc['vectors']:,} vectors, {sc['index_type']}"
            + (f" (nlist {sc['nlist']}, nprobe {sc['nprobe']})" if sc.get("nlist") else ""))
        row("Index build (embed + FAISS + BM25 + write)", f"{sc['build_s']} s, {sc['build_entries_per_s']} entries/s")
        row(f"Bot load over the built index at {n:,}", f"{sc['bot_load_s']} s")
        row(f"bot.ask p50 at 16 entries / at {n:,}",
            f"{sc['query_p50_small_ms']} / {sc['query_p50_big_ms']} ms ({sc['query_ratio_p50']}x)",
            f"<= {TARGETS['scale_query_ratio_p50']}x", sc["query_ratio_p50"] <= TARGETS["scale_query_ratio_p50"])
        if "stages_big_ms" in sc:
            a, b = sc["stages_small_ms"], sc["stages_big_ms"]
            row(f"Stages p50 at 16 / {n:,}: encode, safety check, retrieval",
                f"{a['encode']} / {b['encode']}, {a['safety']} / {b['safety']}, {a['search']} / {b['search']} ms")
        for rec in sc.get("recall", []):
            if rec["nprobe"] == sc.get("nprobe"):
                row(f"IVF recall@1 / @10 against exact search (nprobe {rec['nprobe']})",
                    f"{rec['recall_at_1']} / {rec['recall_at_10']}")
        if "bot_top1_same_as_exact" in sc:
            row("Bot's first entry, IVF vs exact (1,000 paraphrases)", f"{sc['bot_top1_same_as_exact']:.1%} the same")
        row(f"Peak memory (RSS) of the {n:,}-entry run", f"{sc['peak_rss_mb']} MiB")
    for name in ("per_question", "cold_start", "load", "scale"):
        if "error" in results.get(name, {}):
            row(f"{name}: failed", results[name]["error"][:120], "", False)

    lines = ["| What | Measured | Target | |", "| --- | --- | --- | --- |"]
    lines += [f"| {w} | {f} | {t} | {_verdict(ok)} |" for w, f, t, ok in rows]
    return "\n".join(lines), missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks; print a table and write JSON.")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: fewer rounds, 5 s of load, 10,000 scale entries (figures not comparable)")
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold-start section")
    parser.add_argument("--skip-load", action="store_true", help="skip the load test of the web server")
    parser.add_argument("--skip-scale", action="store_true", help="skip the generated large FAQ")
    parser.add_argument("--entries", type=int, help="entries of the generated FAQ (default 100,000; quick 10,000)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of the load test")
    parser.add_argument("--duration", type=float, help="seconds of load per endpoint (default 30; quick 5)")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json", help="JSON file to write")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    entries = args.entries or (10_000 if args.quick else 100_000)
    duration = args.duration or (5.0 if args.quick else 30.0)
    started = time.time()
    results: dict = {
        "command": " ".join(["bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine(),
        "quick": args.quick,
    }

    import latency

    _section("per_question", results, latency.per_question, rounds=1 if args.quick else 3)
    if not args.skip_cold:
        _section("cold_start", results, latency.cold_start, runs=1 if args.quick else 3,
                 web=(ROOT / "app.py").exists())
    if not args.skip_load:
        if (ROOT / "app.py").exists():
            import load

            _section("load", results, load.run, clients=args.clients, duration=duration)
        else:
            results["load"] = {"skipped": "no app.py"}
    if not args.skip_scale:
        _section("scale", results, _scale, entries, 1 if args.quick else 3)
    results["total_seconds"] = round(time.time() - started, 1)

    text, missed = table(results)
    results["missed_targets"] = missed
    m = results["machine"]
    header = (f"`{results['command']}` on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
              f"Python {m['python']}, torch {m.get('torch')}, faiss {m.get('faiss-cpu')}, "
              f"gradio {m.get('gradio')} ({results['started']}, {results['total_seconds']} s)")
    print(f"\n{header}\n\n{text}\n")
    if missed:
        print("Missed targets: " + "; ".join(missed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(f"{header}\n\n{text}\n", encoding="utf-8")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    failed = [name for name in ("per_question", "cold_start", "load", "scale") if "error" in results.get(name, {})]
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
