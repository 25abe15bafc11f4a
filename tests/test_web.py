"""The web chat without a browser: rendering, the chat handlers, votes, and both APIs on a live server."""

from __future__ import annotations

import html
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from markdown_it import MarkdownIt
from test_concurrency import same_answer
from web_fixtures import live_server  # noqa: F401  (session fixture)

import app
from qa import render
from qa.feedback import FeedbackLog, vote_name

ANSWERED = "How do you strengthen your upper back?"  # a FAQ question, verbatim
OFF_TOPIC = "How do I treat knee pain when climbing stairs?"  # near the topic: declined with suggestions
URGENT = "I have chest pain going into my left arm"  # emergency: the banner alone
URGENT_WITH_ANSWER = "I have a high temperature, how do you strengthen your upper back?"  # urgent: banner + answer
NASTY = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)"> & &amp; &lt;b&gt;',
    "**bold** _it_ `code` ~~gone~~ [link](http://example.com) ![img](x.png)",
    "# heading\n> quote\n- item\n1. item\n---\n    indented code\n```\nfence\n```",
    "a | table |\n|---|---|\n| x | y |",
    "$$x^2$$ \\(x\\) back\\slash <https://example.com> http://example.com",
    "<div style='position:fixed;inset:0;background:red'>cover</div>",
]


# --- rendering ---------------------------------------------------------------------


def _html(markdown: str) -> str:
    """CommonMark + tables + strikethrough, close to what the chat renders."""
    return MarkdownIt("commonmark", {"html": True, "breaks": True}).enable(["table", "strikethrough"]).render(markdown)


@pytest.mark.parametrize("text", NASTY)
def test_escaped_user_text_renders_as_the_same_text(text):
    html_out = _html(render.escape_text(text))
    # One paragraph, every character literal: no tag, link, emphasis, list or code of the user's.
    body = html_out.strip()
    assert body.startswith("<p>") and body.endswith("</p>")
    inner = body[3:-4]
    lines = [ln.removesuffix("<br />") for ln in inner.split("\n")]
    assert lines == [html.escape(ln.lstrip(), quote=False).replace('"', "&quot;") for ln in text.splitlines()]


def test_faq_answer_quirks_become_markdown_lists_and_titles():
    text = (
        "Shoulder blade squeeze\n"
        "  1. Sit or stand up tall with your arms at your sides.\n"
        "  2. Squeeze your shoulder blades together. Hold for 6 seconds.\n"
        "Overhead arm reach\n"
        "  • Sit in a chair, facing forward.\n"
        "  • Return to the starting position. Repeat 5 times.\n"
        "\n"
        "Take it easy for 24 to 72 hours, e.g. 2*3 <days> & rest."
    )
    md = render.faq_markdown(text)
    html_out = _html(md)
    assert "<strong>Shoulder blade squeeze</strong>" in html_out
    assert "<strong>Overhead arm reach</strong>" in html_out
    assert "<ol>\n<li>Sit or stand up tall with your arms at your sides.</li>" in html_out
    assert "<ul>\n<li>Sit in a chair, facing forward.</li>" in html_out
    assert "2*3 &lt;days&gt; &amp; rest." in html_out  # FAQ text is escaped too
    assert html_out.count("<li>") == 4


def test_a_wrapped_paragraph_is_not_taken_for_a_title():
    md = render.faq_markdown("Poor posture and text neck\ncan combine to wreck your upper back.")
    assert "**" not in md


def test_safety_banner_is_escaped_html_block():
    banner = render.safety_banner_html(
        {"category": "x", "level": "emergency", "title": "<b>Call</b>", "message": "line one\nline <two>\n\npara"}
    )
    assert banner.startswith('<div class="qa-banner qa-banner-emergency" role="alert">')
    assert "&lt;b&gt;Call&lt;/b&gt;" in banner and "line one<br>line &lt;two&gt;" in banner
    assert "\n\n" not in banner  # a blank line would end the HTML block early


def test_reply_shows_answer_source_match_and_confidence(bot):
    answer = bot.ask(ANSWERED).to_dict()
    md = render.reply_markdown(answer)
    assert answer["answered"] and answer["matched_question"] == ANSWERED
    assert f"<b>Source:</b> {answer['source']['document']}" in md
    assert f"“{ANSWERED}”" in md
    assert render.CONFIDENCE_WORDS[answer["confidence"]] in md
    assert render.faq_markdown(answer["answer"]) in md


def test_urgent_reply_starts_with_the_banner(bot):
    answer = bot.ask(URGENT).to_dict()
    assert answer["safety"], "the urgent test message no longer pins a safety answer"
    md = render.reply_markdown(answer)
    assert md.startswith('<div class="qa-banner')
    assert html.escape(answer["safety"]["title"]) in md


def test_off_topic_reply_offers_suggestions_as_options(bot):
    answer = bot.ask(OFF_TOPIC).to_dict()
    assert answer["kind"] == "fallback" and answer["suggestions"]
    message = app.assistant_message(answer)
    assert message["options"] == [{"value": s["question"], "label": s["question"]} for s in answer["suggestions"]]


# --- the chat handlers -------------------------------------------------------------

# What Gradio hands the handlers: the browser's Chatbot sends normalized messages
# (content is a list of typed parts); API callers and our own events send plain strings.
BROWSER_HISTORY = [
    {"role": "user", "content": [{"type": "text", "text": "hi"}], "metadata": None, "options": None},
    {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}], "metadata": None, "options": None},
]
API_HISTORY = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]


@pytest.fixture
def chat(bot, tmp_path):
    return app.Chat(bot, FeedbackLog(tmp_path / "feedback"))


@pytest.mark.parametrize("history", [BROWSER_HISTORY, API_HISTORY], ids=["browser", "api"])
def test_the_reply_does_not_depend_on_the_history(chat, history):
    alone, _ = chat.respond(ANSWERED, [], {})
    after, answers = chat.respond(ANSWERED, history, {})
    assert after[-1] == alone[-1] and after[:-1] == history
    assert after[-1]["role"] == "assistant" and "<b>Source:</b>" in after[-1]["content"]
    assert list(answers) == [len(history)]


@pytest.mark.parametrize("history", [BROWSER_HISTORY, API_HISTORY], ids=["browser", "api"])
def test_a_turn_appends_question_and_reply_and_remembers_the_answer(chat, history):
    box, shown, pending = chat.add_question("<b>" + ANSWERED + "</b>", list(history))
    assert box["interactive"] is False and box["value"] == ""
    assert shown[:2] == history and shown[2] == app.user_message("<b>" + ANSWERED + "</b>")
    assert "<b>" not in shown[2]["content"]
    new_history, answers = chat.respond(pending, shown, {})
    assert new_history[:3] == shown and new_history[3]["role"] == "assistant"
    assert set(answers) == {3} and answers[3]["matched_question"] == ANSWERED


def test_blank_input_asks_nothing(chat):
    box, shown, pending = chat.add_question("   \n", API_HISTORY)
    assert pending is None and shown == API_HISTORY and box.get("interactive") is None
    assert chat.respond(None, API_HISTORY, {1: {}}) == (API_HISTORY, {1: {}})


def test_clicked_example_or_option_is_asked_as_typed(chat):
    example = SimpleNamespace(value={"text": ANSWERED})
    option = SimpleNamespace(value=ANSWERED)
    for evt in (example, option):
        shown, pending = chat.add_picked([], evt)
        assert pending == ANSWERED and shown == [app.user_message(ANSWERED)]


def test_vote_is_saved_with_question_entry_and_score(chat):
    history, answers = chat.respond(ANSWERED, [app.user_message(ANSWERED)], {})
    chat.vote(answers, SimpleNamespace(index=1, value=history[1]["content"], liked=False))
    chat.vote(answers, SimpleNamespace(index=[1, 0], value=None, liked=True))
    chat.vote(answers, SimpleNamespace(index=7, value=None, liked=True))  # unknown message: ignored
    records = chat.feedback.read()
    assert [r["vote"] for r in records] == ["down", "up"]
    assert records[0]["question"] == ANSWERED
    assert records[0]["entry_id"] == answers[1]["entry_id"] and records[0]["score"] == answers[1]["score"]


def test_votes_are_not_saved_when_feedback_is_off(bot, tmp_path):
    chat = app.Chat(bot, None)
    _, answers = chat.respond(ANSWERED, [], {})
    chat.vote(answers, SimpleNamespace(index=0, value=None, liked=True))
    assert not list(tmp_path.iterdir())


def test_feedback_lines_stay_whole_under_concurrent_votes(tmp_path):
    log = FeedbackLog(tmp_path / "deep" / "folder")
    answer = {"question": "q" * 5000, "kind": "answer", "entry_id": "e", "score": 0.5}

    def vote(i):
        log.record(answer, vote_name(i % 2 == 0))

    threads = [threading.Thread(target=vote, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = log.path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40 and all(json.loads(ln)["question"] == "q" * 5000 for ln in lines)
    assert vote_name(None) == "cleared" and vote_name("Unclear") == "unclear"


def test_command_line_options_and_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8123")
    args = app.parse_args([])
    assert (args.host, args.port, args.no_feedback, args.feedback_dir) == ("127.0.0.1", 8123, False, None)
    args = app.parse_args(["--port", "9000", "--host", "0.0.0.0", "--no-feedback"])
    assert (args.host, args.port, args.no_feedback) == ("0.0.0.0", 9000, True)
    with pytest.raises(SystemExit):
        app.parse_args(["--no-feedback", "--feedback-dir", str(tmp_path)])


def test_main_logs_where_it_listens_and_serves(monkeypatch, bot, tmp_path, caplog):
    import uvicorn

    served = []
    monkeypatch.setattr(app.FAQBot, "load", classmethod(lambda cls: bot))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: served.append((self.config.app, sockets)))
    monkeypatch.setenv("QA_FEEDBACK_DIR", str(tmp_path / "votes"))
    caplog.set_level("INFO", logger="app")
    assert app.main(["--port", "0"]) == 0
    (fastapi_app, [sock]), = served
    port = sock.getsockname()[1]
    sock.close()
    assert any(r.path == "/api/ask" for r in fastapi_app.routes)
    assert f"chat listening on http://127.0.0.1:{port}/" in caplog.text and port != 0
    assert f"votes saved to {tmp_path / 'votes' / 'feedback.jsonl'}" in caplog.text


def test_connections_are_tcp_without_nagle():
    """Accepted sockets say they are TCP, so asyncio turns Nagle off: no 40 ms stall per keep-alive reply."""
    import socket

    listener = app.listen_socket("127.0.0.1", 0)
    try:
        with socket.create_connection(listener.getsockname(), timeout=5):
            conn, _ = listener.accept()
            with conn:
                assert conn.proto == socket.IPPROTO_TCP
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        listener.close()


def test_main_reports_a_taken_port_in_one_line(capsys):
    taken = app.listen_socket("127.0.0.1", 0)
    try:
        assert app.main(["--port", str(taken.getsockname()[1])]) == 2
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert err.startswith("error: cannot listen on 127.0.0.1:") and "--port" in err and err.count("\n") == 1


# --- the APIs on a live server -----------------------------------------------------


@pytest.fixture(scope="module")
def client(live_server):
    from gradio_client import Client

    client = Client(live_server.url, analytics_enabled=False, verbose=False)
    yield client
    client.close()  # an open client holds the server's shutdown


@pytest.mark.parametrize("question", [ANSWERED, OFF_TOPIC, URGENT, "hello", ""])
def test_gradio_api_ask_returns_the_answer_object(client, bot, question):
    assert client.predict(question, api_name="/ask") == bot.ask(question).to_dict()


def test_gradio_api_lists_only_ask(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/ask"]


@pytest.mark.parametrize("question", [ANSWERED, OFF_TOPIC, URGENT, "x" * 3000])
def test_rest_ask_returns_the_answer_object(live_server, bot, question):
    response = httpx.post(live_server.url + "api/ask", json={"question": question}, timeout=30)
    assert response.status_code == 200
    assert response.json() == bot.ask(question).to_dict()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({}, 422, 'send a JSON body {"question": "..."}'),
        ({"question": 42}, 422, 'send a JSON body {"question": "..."}'),
        ({"q": "hello"}, 422, 'send a JSON body {"question": "..."}'),
        ({"question": "x" * (app.MAX_REQUEST_CHARS + 1)}, 413, "'question' is too long"),
    ],
)
def test_rest_ask_rejects_bad_requests_with_a_json_error(live_server, body, status, error):
    response = httpx.post(live_server.url + "api/ask", json=body, timeout=30)
    assert response.status_code == status
    assert response.json()["error"].startswith(error)


def test_rest_ask_rejects_a_body_that_is_not_json(live_server):
    response = httpx.post(live_server.url + "api/ask", content=b"question=hi", timeout=30,
                          headers={"content-type": "application/json"})
    assert response.status_code == 422 and "error" in response.json()


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b'{"question": "\xff\xfe back"}', "application/json", 400),
    (b"\xc3", "application/json", 400),
    (b"\xff", "text/plain", 422),  # not JSON at all: FastAPI's own handler would fail on the raw bytes
])
def test_rest_ask_rejects_a_body_that_is_not_utf8_with_a_json_error(live_server, body, content_type, status):
    response = httpx.post(live_server.url + "api/ask", content=body, timeout=30,
                          headers={"content-type": content_type})
    assert response.status_code == status
    assert set(response.json()) == {"error", "detail"}
    if status == 400:
        assert response.json()["error"].startswith("the body is not valid UTF-8")


def test_openapi_schema_describes_rest_ask(live_server):
    schema = httpx.get(live_server.url + "openapi.json", timeout=30).json()
    operation = schema["paths"]["/api/ask"]["post"]
    assert {"200", "413", "422"} <= set(operation["responses"])
    answer_schema = schema["components"]["schemas"]["AnswerOut"]
    assert set(answer_schema["properties"]) == set(app.AnswerOut.model_fields)
    ask_schema = schema["components"]["schemas"]["AskRequest"]
    assert ask_schema["properties"]["question"]["maxLength"] == app.MAX_REQUEST_CHARS


def test_answer_schema_matches_the_engine(bot):
    for question in (ANSWERED, OFF_TOPIC, URGENT, "hello"):
        data = bot.ask(question).to_dict()
        assert app.AnswerOut.model_validate(data).model_dump() == data


def test_the_page_is_served_at_the_root(live_server):
    response = httpx.get(live_server.url, timeout=30)
    assert response.status_code == 200 and "<html" in response.text.lower()


def test_sixteen_clients_at_once(live_server, bot):
    questions = [ANSWERED, OFF_TOPIC, URGENT, "how do I fix my posture"] * 4

    def ask(question):
        return httpx.post(live_server.url + "api/ask", json={"question": question}, timeout=60).json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(ask, questions))
    # Concurrent requests share encoder batches: scores may differ in their last digit (see test_concurrency).
    assert all(same_answer(r, bot.ask(q).to_dict()) for r, q in zip(results, questions))
