"""The FAQ bot's web chat and HTTP API, on one local server.

    python app.py [--host 127.0.0.1] [--port 7860] [--feedback-dir DIR | --no-feedback]

Serves, on http://127.0.0.1:7860 by default:

- ``/``            the chat page (Gradio);
- ``/ask``         a Gradio API endpoint: ``Client(url).predict("question", api_name="/ask")``;
- ``POST /api/ask`` plain JSON ``{"question": "..."}`` -> the answer object, schema at ``/openapi.json``.

Both APIs return ``Answer.to_dict()``, the JSON of ``qa ask --json``. A thin layer:
answering is ``qa.FAQBot``, the look of a reply is ``qa.render``, votes are ``qa.feedback``.
"""

from __future__ import annotations

import os

# Before gradio is imported: it reads these at import time. Nothing may phone home.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Literal  # noqa: E402

import gradio as gr  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from qa import FAQBot, render  # noqa: E402
from qa.config import MAX_SAFETY_CHARS  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.feedback import FeedbackLog, default_feedback_dir, vote_name  # noqa: E402

logger = logging.getLogger("app")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
#: Events run at once in Gradio's queue. bot.ask is thread-safe and takes ~10 ms on
#: CPU; with 16 clients on two cores, throughput was flat from 4 to 16 (the queue's own
#: overhead dominates), so 8 keeps waits short without piling threads onto the cores.
CONCURRENCY_LIMIT = 8
#: Longest question the HTTP API accepts (longer ones are refused with 413). Up to the
#: engine's own limit the bot answers, and it still scans this much for urgent text.
MAX_REQUEST_CHARS = MAX_SAFETY_CHARS
EXAMPLE_COUNT = 4
SHUTDOWN_GRACE_SECONDS = 3

# System fonts only: the page loads no web font, local or remote.
THEME = gr.themes.Soft(
    primary_hue="teal",
    font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)

CSS = """
#qa-header h2 { margin-bottom: 0.1em; }
#qa-note { font-size: 0.9em; opacity: 0.85; }
#qa-note p { margin: 0; }
.qa-banner {
  border: 1px solid #b91c1c; border-left: 8px solid #b91c1c; border-radius: 8px;
  background: #fef2f2; color: #7f1d1d; padding: 0.6em 0.9em; margin: 0 0 0.8em 0;
}
.qa-banner p { margin: 0.2em 0 !important; color: inherit !important; }
.qa-banner .qa-banner-title { font-weight: 700; font-size: 1.05em; }
.qa-banner-urgent { border-color: #b45309; background: #fffbeb; color: #78350f; }
.qa-banner-crisis { border-color: #6d28d9; background: #f5f3ff; color: #3b0764; }
.dark .qa-banner { background: #450a0a; color: #fee2e2; }
.dark .qa-banner-urgent { background: #451a03; color: #fef3c7; }
.dark .qa-banner-crisis { background: #2e1065; color: #ede9fe; }
.qa-meta {
  font-size: 0.85em; opacity: 0.85; margin-top: 0.6em; padding-top: 0.4em;
  border-top: 1px solid var(--border-color-primary);
}
"""

# Gradio scrolls the chat to the end of each reply. A reply taller than the chat would
# then hide its start, and with it a pinned safety banner: once Gradio has scrolled
# (it waits ~300 ms), bring the start of the latest reply back into view.
SHOW_REPLY_START_JS = """
() => {
  clearTimeout(window.qaShowStart);
  window.qaShowStart = setTimeout(() => {
    const box = document.querySelector('#chat .bubble-wrap');
    const rows = document.querySelectorAll('#chat .message-row.bot-row');
    if (!box || !rows.length) return;
    const top = rows[rows.length - 1].getBoundingClientRect().top - box.getBoundingClientRect().top;
    if (top < 0) box.scrollTop += top - 8;
  }, 600);
}
"""
# ...and when a new question goes in, back to the end, so Gradio follows the new turn. A
# pending scroll to the previous reply is cancelled: a question asked within those 600 ms
# would otherwise be scrolled away from, and Gradio only follows a chat left at its end.
SCROLL_TO_END_JS = """
() => {
  clearTimeout(window.qaShowStart);
  const box = document.querySelector('#chat .bubble-wrap');
  if (box) box.scrollTop = box.scrollHeight;
}
"""

# --- the chat ----------------------------------------------------------------------


def user_message(text: str) -> dict:
    """The user's turn as shown: escaped, so HTML or Markdown in it stays text."""
    return {"role": "user", "content": render.user_markdown(text)}


def assistant_message(answer: dict) -> dict:
    """The bot's turn: the rendered reply, and suggested questions as clickable options."""
    message: dict[str, Any] = {"role": "assistant", "content": render.reply_markdown(answer)}
    if options := render.suggestion_options(answer):
        message["options"] = options
    return message


class Chat:
    """The page's event handlers around one bot (and, optionally, a feedback log).

    Each answer shown is remembered per session (``answers``: message index ->
    ``Answer.to_dict()``) so a vote can be saved with its question, entry and score.
    """

    def __init__(self, bot: FAQBot, feedback: FeedbackLog | None = None):
        self.bot = bot
        self.feedback = feedback

    def add_question(self, message: str, history: list[dict]) -> tuple[Any, list[dict], str | None]:
        """Show the user's question at once (textbox cleared and locked until the reply).

        Returns:
            (textbox update, history with the question, the question for :meth:`respond`
            or None when there is nothing to ask).
        """
        if not message or not message.strip():
            return gr.update(value=""), history, None
        return gr.update(value="", interactive=False), [*history, user_message(message)], message

    def add_picked(self, history: list[dict], evt: gr.SelectData) -> tuple[list[dict], str | None]:
        """An example or a suggested question was clicked: ask it as if typed."""
        value = evt.value
        question = value.get("text", "") if isinstance(value, dict) else str(value or "")
        if not question.strip():
            return history, None
        return [*history, user_message(question)], question

    def respond(
        self, question: str | None, history: list[dict], answers: dict[int, dict]
    ) -> tuple[list[dict], dict[int, dict]]:
        """Append the bot's reply to ``question`` and remember the answer for votes.

        Args:
            question: what :meth:`add_question` or :meth:`add_picked` passed on (None: nothing).
            history: the chat as Gradio hands it, in either shape: the browser's messages
                (``content`` a list of ``{"type": "text", ...}`` parts) or plain
                ``{"role", "content": str}`` dicts. Kept as it is; the bot is stateless.
            answers: message index -> answer, for this session.
        """
        if question is None:
            return history, answers
        answer = self.bot.ask(question).to_dict()
        answers = {**answers, len(history): answer}
        return [*history, assistant_message(answer)], answers

    def vote(self, answers: dict[int, dict], evt: gr.LikeData) -> None:
        """Save a thumbs up/down with the answer it was given on."""
        if self.feedback is None:
            return
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        answer = answers.get(index)
        if answer is None:  # a message from before a reload or a clear: nothing to tie it to
            logger.warning("vote on unknown message %s ignored", index)
            return
        self.feedback.record(answer, vote_name(evt.liked))

    def ask(self, question: str) -> dict:
        """Answer one question; returns the same JSON object as ``qa ask --json``."""
        return self.bot.ask(question).to_dict()


def _examples(bot: FAQBot, count: int = EXAMPLE_COUNT) -> list[str]:
    """Example questions for the empty chat: FAQ questions spread over the corpus."""
    entries = bot.corpus.entries
    step = max(1, len(entries) // count)
    return [e.question for e in entries[::step][:count]]


def build_demo(bot: FAQBot, feedback: FeedbackLog | None = None) -> gr.Blocks:
    """The chat page and the ``/ask`` API endpoint, for one bot."""
    chat = Chat(bot, feedback)
    title = bot.corpus.title or "FAQ"
    title = title[:1].upper() + title[1:]  # "upper back FAQ" heads the page as "Upper back FAQ"
    note = (
        f"Answers come from a fixed FAQ ({len(bot.corpus.entries)} questions), each with its source. "
        "Not medical advice: if pain worries you, see a doctor; in an emergency, call your local emergency number."
    )
    with gr.Blocks(title=title, fill_height=True, analytics_enabled=False) as demo:
        gr.Markdown(f"## {render.escape_text(title)}", elem_id="qa-header")
        gr.Markdown(note, elem_id="qa-note")
        chatbot = gr.Chatbot(
            show_label=False,
            elem_id="chat",
            scale=1,
            height="60vh",
            min_height=320,
            examples=[{"text": q} for q in _examples(bot)],
            placeholder="Ask a question, or pick one of these:",
            feedback_options=("Like", "Dislike") if feedback else None,
            latex_delimiters=[],
            buttons=["copy"],
            layout="bubble",
        )
        textbox = gr.Textbox(
            show_label=False,
            elem_id="question",
            placeholder="Type your question and press Enter",
            submit_btn="Ask",
            autofocus=True,
            max_length=MAX_REQUEST_CHARS,
        )
        pending = gr.State(None)  # the question being answered, as typed
        answers = gr.State({})  # message index -> Answer.to_dict(), for votes

        reply_kwargs = {"fn": chat.respond, "inputs": [pending, chatbot, answers], "outputs": [chatbot, answers],
                        "api_visibility": "private", "show_progress": "minimal"}
        unlock = {"fn": lambda: gr.update(interactive=True), "outputs": [textbox], "queue": False,
                  "api_visibility": "private"}
        show_start = {"fn": None, "js": SHOW_REPLY_START_JS, "api_visibility": "private"}
        textbox.submit(
            chat.add_question, [textbox, chatbot], [textbox, chatbot, pending], queue=False, api_visibility="private"
        ).then(**reply_kwargs).then(**unlock).then(**show_start)
        chatbot.example_select(
            chat.add_picked, [chatbot], [chatbot, pending], queue=False, api_visibility="private"
        ).then(**reply_kwargs).then(**show_start)
        chatbot.option_select(
            chat.add_picked, [chatbot], [chatbot, pending], queue=False, api_visibility="private"
        ).then(**reply_kwargs).then(**show_start)
        gr.on([textbox.submit, chatbot.option_select], None, js=SCROLL_TO_END_JS, api_visibility="private")
        chatbot.clear(lambda: {}, None, [answers], queue=False, api_visibility="private")
        if feedback:
            chatbot.like(chat.vote, [answers], None, queue=False, api_visibility="private")
        gr.api(chat.ask, api_name="ask", api_description="Answer a question from the FAQ; returns the answer object.")
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT)
    return demo


# --- the REST API ------------------------------------------------------------------


class AskRequest(BaseModel):
    question: str = Field(max_length=MAX_REQUEST_CHARS, description="The question, as a person would type it.")


class SourceOut(BaseModel):
    document: str
    line: int | None
    question: str


class SuggestionOut(BaseModel):
    id: str
    question: str
    score: float


class SafetyOut(BaseModel):
    category: str
    level: Literal["emergency", "crisis", "urgent"]
    title: str
    message: str


class AnswerOut(BaseModel):
    """The answer object, as ``qa ask --json`` prints it."""

    question: str
    answered: bool
    kind: Literal["answer", "fallback", "smalltalk", "safety", "invalid"]
    matched_question: str | None
    entry_id: str | None
    answer: str | None
    source: SourceOut | None
    score: float | None
    confidence: Literal["high", "medium", "low"] | None
    suggestions: list[SuggestionOut]
    safety: SafetyOut | None


class ErrorOut(BaseModel):
    error: str
    detail: list[dict] = []


async def _request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A bad request body as one clear JSON error (413 for an oversized question)."""
    errors = exc.errors()
    too_long = any(e.get("type") == "string_too_long" for e in errors)
    if too_long:
        message = f"'question' is too long: at most {MAX_REQUEST_CHARS} characters"
    else:
        message = 'send a JSON body {"question": "..."} with the question as a string'
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]
    return JSONResponse(status_code=413 if too_long else 422, content={"error": message, "detail": detail})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Other HTTP errors of the API in the same JSON shape (400: a body that is not UTF-8)."""
    if exc.status_code == 400:  # FastAPI could not even decode the body
        message = 'the body is not valid UTF-8: send a JSON body {"question": "..."} encoded as UTF-8'
    else:
        message = str(exc.detail)
    detail = [{"loc": ["body"], "msg": str(exc.detail), "type": f"http_{exc.status_code}"}]
    return JSONResponse(status_code=exc.status_code, content={"error": message, "detail": detail},
                        headers=exc.headers)


def build_app(bot: FAQBot, feedback: FeedbackLog | None = None) -> FastAPI:
    """One FastAPI app: ``POST /api/ask`` and ``/openapi.json``, with the chat mounted at ``/``."""
    app = FastAPI(
        title="FAQ bot",
        summary="Answers questions from a fixed FAQ, offline.",
        version="1",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN; the schema is at /openapi.json
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, _request_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    @app.post(
        "/api/ask",
        response_model=AnswerOut,
        responses={400: {"model": ErrorOut, "description": "Body not valid UTF-8"},
                   413: {"model": ErrorOut, "description": "Question too long"},
                   422: {"model": ErrorOut, "description": "Missing or malformed question"}},
    )
    def api_ask(body: AskRequest) -> dict:
        """Answer one question; the same JSON object as ``qa ask --json``."""
        # A plain def: FastAPI runs it in its threadpool, off the event loop.
        return bot.ask(body.question).to_dict()

    demo = build_demo(bot, feedback)
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        theme=THEME,
        css=CSS,
        footer_links=["api", "settings"],
        run_history=False,
        ssr_mode=False,
        show_error=False,
        mcp_server=False,
    )


# --- the command line --------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the FAQ bot's web chat and HTTP API.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", DEFAULT_HOST),
                        help="address to listen on (env GRADIO_SERVER_NAME; default %(default)s)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", DEFAULT_PORT)),
                        help="port (env GRADIO_SERVER_PORT; default %(default)s)")
    saving = parser.add_mutually_exclusive_group()
    saving.add_argument("--feedback-dir", default=None,
                        help="folder for thumbs up/down votes (env QA_FEEDBACK_DIR; default data/feedback/)")
    saving.add_argument("--no-feedback", action="store_true", help="do not save votes (and hide the thumbs)")
    return parser.parse_args(argv)


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one), to hand to uvicorn.

    Raises:
        OSError: the address is taken or not ours.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio only sets TCP_NODELAY on connections whose socket says so, and
    # without it Nagle's algorithm meets delayed ACKs and a keep-alive reply can stall for 40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets on Linux
        except (AttributeError, OSError):
            pass
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    try:  # before the slow part, so a taken port is reported at once
        sock = listen_socket(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
              "pick another with --port or GRADIO_SERVER_PORT", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        bot = FAQBot.load()
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    feedback = None if args.no_feedback else FeedbackLog(args.feedback_dir or default_feedback_dir())
    app = build_app(bot, feedback)
    logger.info("%d FAQ entries, index %s, ready in %.1fs; votes %s", len(bot.corpus.entries), bot.paths.index,
                time.perf_counter() - started, f"saved to {feedback.path}" if feedback else "not saved")
    url_host = f"[{args.host}]" if ":" in args.host else args.host
    port = sock.getsockname()[1]  # the real one, also for --port 0
    logger.info("chat listening on http://%s:%d/ (REST API: POST /api/ask)", url_host, port)
    # Open pages hold event streams: on Ctrl+C, wait a little for them, not forever.
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
