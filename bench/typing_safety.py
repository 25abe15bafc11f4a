"""Do urgent messages still pin when typed the way people type in a chat?

Takes every urgent message of the tuning files that the shipped bot pins as written, rewrites it in one way
at a time and counts the rewritten ones that are no longer pinned:

- ``no apostrophes``: "can't" -> "cant", "she's" -> "shes";
- ``lower case, no punctuation``: voice typing ("got rearended at the lights 30 mins ago neck ...");
- ``capitals``: all caps;
- ``one typo``: the longest word (six letters or more) with its middle letter left out ("choing", "pased");
- ``u and r``: "you" -> "u", "are" -> "r".

A rewrite that loses a pin is a robustness bug of the rules or their typo fixer, not a matter of taste: the
message says the same. Session 15 found "we couldnt breathe" (the fixer made "couldnt" the rules' word
"couldn") and "choing", "pased", "couhed" this way. About two minutes on two cores.

    .venv/bin/python bench/typing_safety.py              # figures, and up to 10 lost messages per rewrite
    .venv/bin/python bench/typing_safety.py --show 0     # figures only
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "corpus" / "eval"


def _one_typo(text: str) -> str:
    longest = max(re.findall(r"[A-Za-z]{6,}", text), key=len, default=None)
    if longest is None:
        return text
    k = len(longest) // 2
    return text.replace(longest, longest[:k] + longest[k + 1:], 1)


REWRITES = {
    "no apostrophes": lambda t: t.replace("'", "").replace("\u2019", ""),
    "lower case, no punctuation": lambda t: re.sub(r"[^\w\s]", "", t).lower(),
    "capitals": str.upper,
    "one typo": _one_typo,
    "u and r": lambda t: re.sub(r"\byou\b", "u", re.sub(r"\bare\b", "r", t)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", type=int, default=10, help="lost messages to print per rewrite")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.disable(logging.WARNING)
    from qa.bot import FAQBot

    bot = FAQBot.load(rebuild="never")
    urgent = [row["question"] for path in sorted(EVAL.glob("*.jsonl")) for row in map(json.loads, path.open())
              if row["safety"] and row.get("split") != "test"]
    pinned = [t for t in urgent if bot.ask(t).safety is not None]
    print(f"{len(urgent)} urgent tuning messages, {len(pinned)} pinned as written")
    print(f"{'rewrite':<28} {'rewritten':>9} {'no longer pinned':>17}")
    for name, rewrite in REWRITES.items():
        changed = [(t, rewrite(t)) for t in pinned if rewrite(t) != t]
        lost = [new for _, new in changed if bot.ask(new).safety is None]
        print(f"{name:<28} {len(changed):>9} {len(lost):>9} ({len(lost) / max(len(changed), 1):.1%})")
        for text in lost[:args.show]:
            print(f"    {text[:140]}")


if __name__ == "__main__":
    main()
