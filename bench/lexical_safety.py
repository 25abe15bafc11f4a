"""An experiment, not part of the bot: would word features make the safety model better than embeddings alone?

The shipped safety model (qa/urgency.py) is a logistic model over the all-MiniLM-L6-v2 vector of a message.
This fits the same kind of model (logistic, C, classes balanced, urgent against everything else) on three
feature sets and prints, per set, how many benign-but-alarming messages reach the probability at which 90%,
95% and 98% of the urgent messages do:

- ``emb``: the message vector (what the bot ships);
- ``both``: the vector and tf-idf word 1-2 grams (lowercased, min_df 2, sublinear tf);
- ``lex``: the tf-idf words alone.

Each set is scored out of fold on the training files (5 folds) and, fitted on all of them, on held-out files
written by other helpers. The model alone, without the rules: session 14 measured the whole bot with the
``both`` model swapped in separately (README, "Session 14").

    .venv/bin/python bench/lexical_safety.py                      # train tune2-30, hold out tune31-34
    .venv/bin/python bench/lexical_safety.py --train A.jsonl ... --held B.jsonl ...
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "corpus" / "eval"


def labelled(files: list[Path]) -> list[dict]:
    """The tuning-part rows of the files (the test part is never used here)."""
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r.get("split") != "test"]


def report(name: str, p: np.ndarray, urgent: np.ndarray, benign: np.ndarray) -> str:
    cells = []
    for recall in (0.90, 0.95, 0.98):
        t = np.quantile(p[urgent], 1 - recall)
        cells.append(f"urgent {recall:.0%}: benign {int((p[benign] >= t).sum())}/{int(benign.sum())}")
    return f"{name:<34} " + " | ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", nargs="+", type=Path,
                        default=[EVAL / "upper_back.jsonl"] + [EVAL / f"upper_back_tune{i}.jsonl" for i in range(2, 31)])
    parser.add_argument("--held", nargs="+", type=Path,
                        default=[EVAL / f"upper_back_tune{i}.jsonl" for i in range(31, 35)])
    parser.add_argument("-C", type=float, default=3.0)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from qa import FAQBot
    from qa.textnorm import clean

    encoder = FAQBot.load().encoder
    train, held = labelled(args.train), labelled(args.held)
    texts = {k: [clean(r["question"]) for r in rows] for k, rows in (("train", train), ("held", held))}
    vectors = {k: np.asarray(encoder.encode(v), np.float32) for k, v in texts.items()}
    urgent = {k: np.array([bool(r["safety"]) for r in rows]) for k, rows in (("train", train), ("held", held))}
    benign = {k: np.array([r["kind"] == "benign_alarming" and not r["safety"] for r in rows])
              for k, rows in (("train", train), ("held", held))}

    def features(kind, words, vecs, txts):
        if kind == "emb":
            return vecs
        lexical = words.transform([t.lower() for t in txts])
        return hstack([csr_matrix(vecs), lexical]).tocsr() if kind == "both" else lexical

    def fit(kind, idx):
        words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        words.fit([texts["train"][i].lower() for i in idx])
        model = LogisticRegression(C=args.C, class_weight="balanced", max_iter=3000)
        model.fit(features(kind, words, vectors["train"][idx], [texts["train"][i] for i in idx]), urgent["train"][idx])
        return words, model

    print(f"train {len(train)} messages ({int(urgent['train'].sum())} urgent), held out {len(held)} "
          f"({int(urgent['held'].sum())} urgent); C={args.C}")
    for kind in ("emb", "both", "lex"):
        oof = np.zeros(len(train))
        folds = StratifiedKFold(5, shuffle=True, random_state=0).split(vectors["train"], urgent["train"])
        for tr, te in folds:
            words, model = fit(kind, tr)
            oof[te] = model.predict_proba(features(kind, words, vectors["train"][te],
                                                   [texts["train"][i] for i in te]))[:, 1]
        print(report(f"{kind}, out of fold on train", oof, urgent["train"], benign["train"]))
        words, model = fit(kind, np.arange(len(train)))
        p = model.predict_proba(features(kind, words, vectors["held"], texts["held"]))[:, 1]
        print(report(f"{kind}, held out", p, urgent["held"], benign["held"]))


if __name__ == "__main__":
    main()
