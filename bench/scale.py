"""Scale: a generated FAQ of 100,000 entries against one of 16, in a process of its own.

    python bench/scale.py [--entries 100000] [--out FILE.json]

Builds the index with a progress bar (throughput in entries/s), loads the bot,
times ``bot.ask`` at both sizes on the same questions, checks the approximate
(IVF) FAISS index against exact search over the same vectors, and reports the
peak memory of this process. Only questions are embedded (``embed_fields:
["question"]``): embedding answers too would take about 2.5x as long on 2 cores.
Run by ``bench/run.py``; a process of its own so that peak memory is this run's.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import ROOT, ms, peak_rss_mb, percentile, rss_mb
from synth import generate, write_jsonl

SMALL = 16
OFF_TOPIC = ["What is the capital of France?", "how do I bake sourdough bread", "best hiking trails near me",
             "who won the world cup in 1998", "how do I file my taxes", "recommend a good novel"]


def _log(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


def _settings_file(folder: Path) -> Path:
    """The shipped retrieval settings, embedding questions only."""
    data = json.loads((ROOT / "corpus" / "settings.json").read_text(encoding="utf-8"))
    data["embed_fields"] = ["question"]
    path = folder / "settings.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def _time_asks(bot, queries: list[str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            bot.ask(q)
            times.append(time.perf_counter() - t)
    return times


def _stages(bot, queries: list[str], rounds: int) -> dict:
    """Median milliseconds of each stage of ``ask``: where the time goes as the FAQ grows."""
    times: dict[str, list[float]] = {"encode": [], "safety": [], "search": []}
    encode = bot.encoder.encode
    for _ in range(rounds):
        for q in queries:
            query = bot.prepare_query(q)
            t0 = time.perf_counter()
            vector = encode([query])[0]
            t1 = time.perf_counter()
            bot.rules.check(q, encode=encode, text_vector=vector)
            t2 = time.perf_counter()
            bot.retriever.search(query, vector, k=bot.settings.max_suggestions + 1)
            t3 = time.perf_counter()
            times["encode"].append(t1 - t0)
            times["safety"].append(t2 - t1)
            times["search"].append(t3 - t2)
    return {k: ms(percentile(v, 50)) for k, v in times.items()}


def _recall(index, vectors: np.ndarray, queries: np.ndarray, nprobes: list[int]) -> list[dict]:
    """Recall@1 and @10 of the IVF index against exact inner product over the same vectors, per nprobe."""
    import faiss

    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    t = time.perf_counter()
    _, truth = exact.search(queries, 10)
    exact_ms = (time.perf_counter() - t) / len(queries) * 1000
    rows = [{"nprobe": "exact", "recall_at_1": 1.0, "recall_at_10": 1.0, "ms_per_query": round(exact_ms, 3)}]
    saved = index.nprobe
    for nprobe in nprobes:
        index.nprobe = nprobe
        t = time.perf_counter()
        _, found = index.search(queries, 10)
        per_query = (time.perf_counter() - t) / len(queries) * 1000
        at1 = float(np.mean(found[:, 0] == truth[:, 0]))
        at10 = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, truth)]))
        rows.append({"nprobe": nprobe, "recall_at_1": round(at1, 4), "recall_at_10": round(at10, 4),
                     "ms_per_query": round(per_query, 3)})
    index.nprobe = saved
    return rows


def run(entries: int, rounds: int = 3, work: Path | None = None) -> dict:
    import faiss

    from qa import FAQBot
    from qa import index as index_mod
    from qa.config import RetrievalSettings, default_model
    from qa.corpus import load_faq
    from qa.embed import Encoder

    out: dict = {"entries": entries, "embed_fields": ["question"]}
    work = Path(work or tempfile.mkdtemp(prefix="qa-scale-"))
    t = time.perf_counter()
    synth = generate(entries)
    big_file = write_jsonl(synth, work / "big" / "faq.jsonl")
    small_file = write_jsonl(synth[:SMALL], work / "small" / "faq.jsonl")
    settings = _settings_file(work)
    out["generate_s"] = round(time.perf_counter() - t, 2)
    _log(f"generated {entries:,} entries in {out['generate_s']} s under {work}")

    encoder = Encoder.load(default_model())
    fields = RetrievalSettings.load(settings).embed_fields
    rss_before = rss_mb()

    t = time.perf_counter()
    corpus = load_faq(big_file)
    out["corpus_load_s"] = round(time.perf_counter() - t, 2)
    _log(f"building the index of {len(corpus):,} entries")
    t = time.perf_counter()
    bundle = index_mod.build(corpus, encoder, work / "big.index", fields, show_progress=True)
    build_s = time.perf_counter() - t
    out.update(build_s=round(build_s, 1), build_entries_per_s=round(len(corpus) / build_s, 1),
               index_type=bundle.manifest["index_type"], vectors=bundle.ntotal,
               nlist=int(getattr(bundle.index, "nlist", 0)) or None,
               nprobe=int(getattr(bundle.index, "nprobe", 0)) or None)
    _log(f"built {out['index_type']} in {out['build_s']} s ({out['build_entries_per_s']} entries/s)")
    del bundle

    _log("loading the bot over the built index")
    t = time.perf_counter()
    big = FAQBot.load(corpus=big_file, index_dir=work / "big.index", settings=settings, rebuild="never")
    out["bot_load_s"] = round(time.perf_counter() - t, 1)
    out["rss_after_load_mb"] = rss_mb()
    out["rss_model_only_mb"] = rss_before
    _log(f"loaded in {out['bot_load_s']} s")
    small = FAQBot.load(corpus=small_file, index_dir=work / "small.index", settings=settings)

    # The same questions at both sizes: paraphrases of the 16 shared entries, and off-topic ones.
    queries = [e.paraphrase for e in synth[:SMALL]] + OFF_TOPIC
    for q in queries:
        small.ask(q)
        big.ask(q)
    small_t = _time_asks(small, queries, rounds)
    big_t = _time_asks(big, queries, rounds)
    out.update(
        query_p50_small_ms=ms(percentile(small_t, 50)), query_p95_small_ms=ms(percentile(small_t, 95)),
        query_p50_big_ms=ms(percentile(big_t, 50)), query_p95_big_ms=ms(percentile(big_t, 95)),
        query_ratio_p50=round(percentile(big_t, 50) / percentile(small_t, 50), 3),
    )
    _log(f"ask p50: {out['query_p50_small_ms']} ms at {SMALL} entries, {out['query_p50_big_ms']} ms at {entries:,}")
    out["stages_small_ms"] = _stages(small, queries, rounds)
    out["stages_big_ms"] = _stages(big, queries, rounds)
    out["safety_benign_vectors"] = int(len(big.rules._benign_vecs))

    # Approximate against exact over the same vectors, on paraphrases of random entries.
    rng = random.Random(11)
    sample = rng.sample(range(entries), min(1000, entries))
    pvecs = encoder.encode([big.prepare_query(synth[i].paraphrase) for i in sample])
    index = big.bundle.index
    if hasattr(index, "nprobe"):
        index.make_direct_map()
        vectors = index.reconstruct_n(0, index.ntotal)
        out["recall"] = _recall(index, vectors, pvecs, [8, 16, 32, 64, 128])
        # What a user sees: the bot's first entry with the IVF index in place, and with exact search.
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
        ivf_top = [_top_entry(big, synth[i].paraphrase, v) for i, v in zip(sample, pvecs)]
        big.retriever.bundle.index = flat
        flat_top = [_top_entry(big, synth[i].paraphrase, v) for i, v in zip(sample, pvecs)]
        big.retriever.bundle.index = index
        out["bot_top1_same_as_exact"] = round(float(np.mean([a == b for a, b in zip(ivf_top, flat_top)])), 4)
        out["paraphrase_top1_ivf"] = round(float(np.mean([e == synth[i].id for i, e in zip(sample, ivf_top)])), 4)
        out["paraphrase_top1_exact"] = round(float(np.mean([e == synth[i].id for i, e in zip(sample, flat_top)])), 4)
    out["peak_rss_mb"] = peak_rss_mb()
    _log(f"peak memory {out['peak_rss_mb']} MiB")
    return out


def _top_entry(bot, text: str, vector: np.ndarray) -> str:
    return bot.retriever.search(bot.prepare_query(text), vector, k=1).hits[0].entry.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the timed questions")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON (default: print)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qa-scale-") as work:
        result = run(args.entries, args.rounds, Path(work))
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
