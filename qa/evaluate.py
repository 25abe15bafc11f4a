"""Evaluation of retrieval accuracy, off-topic rejection and safety on a labelled set."""

from __future__ import annotations


def add_commands(sub, with_paths) -> None:
    """Register `qa eval` and `qa tune`."""
