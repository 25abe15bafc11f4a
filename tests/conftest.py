"""Shared fixtures: the real packaged model and a real index, loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus" / "faq"
SAFETY = ROOT / "corpus" / "safety.yaml"
SETTINGS = ROOT / "corpus" / "settings.json"
LABELS = ROOT / "corpus" / "eval" / "upper_back.jsonl"
SOURCE = ROOT / "corpus" / "source" / "upper_back_faq.txt"  # the FAQ document the corpus was ingested from


@pytest.fixture(scope="session")
def bot(tmp_path_factory):
    """The shipped bot over the committed corpus, with its index built fresh in a temporary folder."""
    from qa import FAQBot

    return FAQBot.load(corpus=CORPUS, index_dir=tmp_path_factory.mktemp("index"), safety=SAFETY, settings=SETTINGS)
