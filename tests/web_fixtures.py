"""Session fixture for the web tests: the app, over conftest's real ``bot``, served on a free port.

Imported by tests/test_web.py and tests/test_browser.py (``from web_fixtures import ...``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@dataclass
class LiveServer:
    url: str  # "http://127.0.0.1:PORT/"
    feedback_path: Path  # where votes made through this server land


@pytest.fixture(scope="session")
def live_server(bot, tmp_path_factory) -> LiveServer:
    """``app.build_app`` served by uvicorn in a thread, on a free port of 127.0.0.1."""
    import uvicorn

    from app import SHUTDOWN_GRACE_SECONDS, build_app, listen_socket
    from qa.feedback import FeedbackLog

    feedback = FeedbackLog(tmp_path_factory.mktemp("feedback"))
    sock = listen_socket("127.0.0.1", 0)  # bound here and handed over: no race for the port
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(bot, feedback), log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(url=f"http://127.0.0.1:{port}/", feedback_path=feedback.path)
    server.should_exit = True
    thread.join(timeout=15)
    sock.close()
