"""Offline FAQ question answering.

Pipeline: FAQ files -> corpus (:mod:`qa.corpus`, :mod:`qa.ingest`) -> index (:mod:`qa.index`)
-> retrieval (:mod:`qa.retrieve`) + safety (:mod:`qa.safety`) -> answer (:mod:`qa.bot`)
-> interfaces (:mod:`qa.cli`, ``app.py``).

    from qa import FAQBot
    bot = FAQBot.load()
    print(bot.ask("how do I strengthen my upper back?").to_dict())
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from .bot import Answer, FAQBot, Suggestion  # noqa: E402
from .errors import ConfigError, CorpusError, IndexBundleError, QAError  # noqa: E402

__all__ = ["Answer", "ConfigError", "CorpusError", "FAQBot", "IndexBundleError", "QAError", "Suggestion", "__version__"]
