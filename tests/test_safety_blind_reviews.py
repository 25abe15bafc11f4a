"""Messages written blind for the safety layer (sessions 17-19), kept as data in tests/reviews/.

Seven helpers who never saw the rules wrote 140 emergencies and 160 harmless messages each (seizures, heavy
bleeding, allergic reactions, sick children, self-harm with the means at hand, head and neck injuries, others),
in the voices of people typing in a hurry; each file was measured once before any rule was written from it
(README, "Safety answers"), review 7 on the rules as shipped. Another helper read the rules' diff and wrote 251
messages against it (session17_code_review.tsv). Session 18 added eight more (session18_review8-15.tsv: self-harm
at a place or with the means at hand, sick children, bleeding, injuries, others), each written by a helper who saw
neither the rules nor the other files and measured once, before reading, on the build of its round; rules were
then written from it and the next file measured the result. Session 19 added six (session19_review16-21.tsv:
120 emergencies and 240 harmless messages each, a sixth of them questions about the upper back with alarming
words), written the same way to measure false alarms, and a probe of the calm contexts (session19_calm_probe.tsv:
245 emergencies written against them by a helper who read them; 118 were silenced by one, and 101 pinned; since
session 20, when a calm context stopped reaching forward, 201 pin). Session 20 added nine (session20_review22-30.tsv,
360 messages each, written the same way; six of them put a history, an earlier episode, a question, a hedge or
prevention beside the alarming words, where calm contexts act), each measured once before it was read; review 31
(session20_review31.tsv), all self-harm, with the same framing; and a code review of the calm-context change
(session20_code_review.tsv, 240 messages a helper wrote against its regexes). Session 21 added eight
(session21_review32-39.tsv): five all self-harm (32 and 39 framed like 31; 33, 35 and 37 half framed, half plain,
in the indirect words people use), one of falls and injuries with the same framing (34) and two general (36, 38);
35-39 were measured before they were read (README, "Session 21"). Session 22 added nine (session22_review40-48.tsv):
seven general, two all self-harm (43, 44), each measured before it was read; rules were written from 40-42 only
(README, "Session 22"). Session 23 added four (session23_review49-52.tsv: 49-50 general, 51-52 all self-harm),
measured before the reader was refitted and never read. Since session 23 the safety reader also learns from
every review here but 43-52 (corpus/safety.reader.jsonl), so only 43-52 are unseen by every model. Every line is a test: `urgent` must pin, `harmless` must not.
A line marked `miss` is what the shipped build still gets wrong: a strict xfail, so mending it turns the run
red until the mark goes.
"""
from pathlib import Path

import pytest

REVIEWS = sorted((Path(__file__).parent / "reviews").glob("*.tsv"))


def _cases():
    for path in REVIEWS:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            expect, status, kind, text = line.split("\t")
            assert expect in ("urgent", "harmless") and status in ("ok", "miss"), f"{path.name}:{n}"
            marks = [pytest.mark.xfail(strict=True, reason=f"still wrong ({path.name}:{n}, {kind})")] if status == "miss" else []
            yield pytest.param(expect == "urgent", text, id=f"{path.stem}:{n}", marks=marks)


CASES = list(_cases())


def test_the_review_files_are_there():
    assert len(REVIEWS) >= 2 and len(CASES) >= 600


@pytest.mark.parametrize("urgent, text", CASES)
def test_blind_review_messages(bot, urgent, text):
    hit = bot.ask(text).safety
    assert (hit is not None) == urgent, (text, hit)
