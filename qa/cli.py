"""The ``qa`` command: ingest FAQ documents, build the index, ask, chat, evaluate.

Only this module (and app.py) prints; errors become one clean line and exit code
1 (2 for a usage mistake).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import QAError

logger = logging.getLogger("qa")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Offline FAQ question answering.")
    p.add_argument("--version", action="version", version=f"qa {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    sub = p.add_subparsers(metavar="COMMAND")

    def with_paths(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--corpus", help="FAQ folder or file (env QA_CORPUS; default corpus/faq)")
        sp.add_argument("--index", dest="index_dir", help="index folder (env QA_INDEX; default index/)")
        sp.add_argument("--model", help="local sentence-transformers folder (env QA_MODEL)")
        sp.add_argument("--safety", help="safety rules file (env QA_SAFETY; default corpus/safety.yaml)")
        sp.add_argument("--settings", help="retrieval settings file (env QA_SETTINGS; default corpus/settings.json)")
        sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return sp

    sp = sub.add_parser("ingest", help="turn FAQ documents (.txt, .md, .csv, .jsonl) into a corpus YAML file")
    sp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    sp.add_argument("-o", "--output", type=Path,
                    help="corpus file to write (default corpus/faq/<name of the first file>.yaml)")
    sp.add_argument("--title", help="title of the FAQ (shown in replies)")
    sp.set_defaults(func=cmd_ingest)

    sp = with_paths(sub.add_parser("build", help="embed the corpus and write the index"))
    sp.add_argument("--if-needed", action="store_true", help="only when the index is missing, stale or damaged")
    sp.set_defaults(func=cmd_build)

    sp = with_paths(sub.add_parser("ask", help="answer a question (or '-' for one question per line on stdin)"))
    sp.add_argument("question", nargs="+", help="the question, or '-' to read stdin")
    sp.add_argument("--json", action="store_true", help="print JSON (one object per question)")
    sp.set_defaults(func=cmd_ask)

    sp = with_paths(sub.add_parser("chat", help="ask questions at an interactive prompt"))
    sp.set_defaults(func=cmd_chat)

    sp = with_paths(sub.add_parser("status", help="show the index manifest and whether it is current"))
    sp.set_defaults(func=cmd_status)

    from .evaluate import add_commands

    add_commands(sub, with_paths)
    return p


def load_bot(args, rebuild: str = "auto"):
    from .bot import FAQBot

    return FAQBot.load(corpus=args.corpus, index_dir=args.index_dir, model=args.model, safety=args.safety,
                       settings=args.settings, rebuild=rebuild, show_progress=sys.stderr.isatty())


def cmd_ingest(args) -> int:
    from .config import project_root
    from .corpus import load_faq, save_faq
    from .ingest import ingest_files

    result = ingest_files(args.files)
    for skip in result.skipped:
        print(skip, file=sys.stderr)
    for note in result.notes:
        print(f"{note}", file=sys.stderr)
    if not result.entries:
        raise QAError(f"no entries found in {', '.join(map(str, args.files))}")
    out = args.output or project_root() / "corpus" / "faq" / f"{args.files[0].stem}.yaml"
    entries, out_of_scope, synonyms, title = result.entries, (), {}, args.title or result.title
    if out.exists():
        # Re-ingesting an updated document keeps what was written by hand: alternates, out_of_scope,
        # synonyms, title.
        # So a corpus file that does not load is left alone rather than overwritten without them.
        try:
            old_corpus = load_faq(out)
        except QAError as exc:
            raise QAError(f"{exc} (the existing corpus file was not overwritten: fix it, or delete it to "
                          "start afresh, then ingest again)") from None
        old = old_corpus.by_id()
        entries = [e if e.alternates or e.id not in old else
                   type(e)(e.id, e.question, e.answer, e.source, old[e.id].alternates) for e in entries]
        out_of_scope, title = old_corpus.out_of_scope, title or old_corpus.title
        synonyms = old_corpus.synonyms
    save_faq(out, entries, title=title, out_of_scope=out_of_scope, synonyms=synonyms)
    print(f"wrote {len(entries)} entries to {out} ({len(result.skipped)} skipped)")
    return 0


def cmd_build(args) -> int:
    from . import index as index_mod
    from .bot import FAQBot

    if args.if_needed:
        bot = load_bot(args, rebuild="auto")
    else:
        bot = FAQBot.load(corpus=args.corpus, index_dir=args.index_dir, model=args.model, safety=args.safety,
                          settings=args.settings, rebuild="always", show_progress=True)
    m = index_mod.read_manifest(bot.paths.index) or {}
    print(f"index {bot.paths.index}: {m.get('entries')} entries, {m.get('vectors')} vectors "
          f"({m.get('index_type')}, model {m.get('model_name')}), built {m.get('built_at')}")
    return 0


def cmd_status(args) -> int:
    from . import index as index_mod
    from .config import resolve_paths
    from .corpus import load_faq

    paths = resolve_paths(args.corpus, args.index_dir, args.safety, args.settings)
    corpus = load_faq(paths.corpus)
    manifest = index_mod.read_manifest(paths.index)
    print(f"corpus  {paths.corpus}: {len(corpus)} entries, fingerprint {corpus.fingerprint()[:12]}")
    if not manifest:
        if (paths.index / index_mod.MANIFEST).exists():
            print(f"index   {paths.index}: damaged ({index_mod.MANIFEST} cannot be read; it is rebuilt on next "
                  "use, or run `qa build`)")
        else:
            print(f"index   {paths.index}: not built (run `qa build`)")
        return 0
    current = manifest.get("corpus_fingerprint") == corpus.fingerprint()
    print(f"index   {paths.index}: {manifest.get('entries')} entries, {manifest.get('vectors')} vectors, "
          f"{manifest.get('index_type')}, built {manifest.get('built_at')}, "
          f"{'current' if current else 'STALE (the corpus changed; it is rebuilt on next use)'}")
    print(f"model   {manifest.get('model_name')} ({manifest.get('dimension')} dimensions)")
    return 0


def cmd_ask(args) -> int:
    bot = load_bot(args)
    if args.question == ["-"]:
        for raw in sys.stdin.buffer:
            line = raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", errors="replace")
            answer = bot.ask(line)
            print(json.dumps(answer.to_dict(), ensure_ascii=False) if args.json else format_answer(answer.to_dict()),
                  flush=True)
        return 0
    answer = bot.ask(" ".join(args.question)).to_dict()
    print(json.dumps(answer, ensure_ascii=False, indent=2) if args.json else format_answer(answer))
    return 0


def cmd_chat(args) -> int:
    bot = load_bot(args)
    print(f"Ask about the {bot.corpus.title} (empty line or Ctrl-D to quit).")
    while True:
        try:
            line = input("> ")
        except EOFError:
            print()
            return 0
        if not line.strip():
            return 0
        print(format_answer(bot.ask(line).to_dict()) + "\n")


def format_answer(a: dict) -> str:
    """A readable reply for the terminal."""
    out: list[str] = []
    if a["safety"]:
        s = a["safety"]
        out += [f"!! {s['title'].upper()} !!", s["message"].strip(), ""]
    if a["answered"]:
        out.append(f"Q: {a['matched_question']}   [match: {a['confidence']}, score {a['score']:.2f}]")
        out.append(a["answer"])
        src = a["source"]
        out.append(f"Source: {src['document']}" + (f", line {src['line']}" if src.get("line") else ""))
        if a["suggestions"]:
            out.append("Also close: " + " | ".join(s["question"] for s in a["suggestions"]))
    elif a["answer"]:
        out.append(a["answer"])
        if a["suggestions"]:
            out += [f"  - {s['question']}" for s in a["suggestions"]]
    return "\n".join(out).rstrip()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
