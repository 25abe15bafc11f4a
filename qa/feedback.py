"""Thumbs up / down from the web chat, saved as JSON lines for the FAQ owner to review.

One file, ``feedback.jsonl``, in a folder outside git (``data/feedback/`` of the
project by default, ``QA_FEEDBACK_DIR`` to move it). Each vote is one line::

    {"time": "2025-01-01T12:00:00+00:00", "vote": "down", "question": "...",
     "kind": "answer", "entry_id": "...", "matched_question": "...", "score": 0.71,
     "confidence": "medium"}
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from .config import project_root

logger = logging.getLogger(__name__)

FEEDBACK_FILE = "feedback.jsonl"
#: The answer fields a vote keeps: enough to find the entry and judge the match.
_KEPT = ("question", "kind", "entry_id", "matched_question", "score", "confidence")


def default_feedback_dir() -> Path:
    """``QA_FEEDBACK_DIR``, else ``data/feedback/`` under the project root."""
    if folder := os.environ.get("QA_FEEDBACK_DIR"):
        return Path(folder).expanduser()
    return project_root() / "data" / "feedback"


def vote_name(liked: bool | str | None) -> str:
    """Gradio's like value as a word: True -> "up", False -> "down", None -> "cleared"."""
    if liked is True:
        return "up"
    if liked is False:
        return "down"
    if liked is None:
        return "cleared"
    return str(liked).lower()


class FeedbackLog:
    """Appends votes to ``<folder>/feedback.jsonl``; safe to share between threads.

    Each vote is a single ``write`` of one line on a file opened in append mode,
    under a lock, so concurrent votes never interleave within a line.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / FEEDBACK_FILE
        self._lock = threading.Lock()

    def record(self, answer: dict, vote: str) -> dict:
        """Save one vote on an answer.

        Args:
            answer: ``Answer.to_dict()`` of the answer voted on.
            vote: "up", "down" or "cleared" (see :func:`vote_name`).

        Returns:
            The record written.
        """
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "vote": vote}
        record.update({key: answer.get(key) for key in _KEPT})
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
        logger.info("feedback %s on %r -> %s", vote, record["entry_id"], self.path)
        return record

    def read(self) -> list[dict]:
        """All votes saved so far (an empty list before the first)."""
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
