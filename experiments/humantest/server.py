"""The web page of a real-or-colorized test and the few requests it makes (FastAPI).

Safe to share on a network: every request carries the test's random token (`?t=...`; without it,
403); only the prepared images are served, looked up by their random id (never a path built from
the request); every input is validated and bounded (request bodies over 4 KiB are refused); the
pages send no referrer, so the token does not leave in a link.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from experiments.humantest.protocol import Protocol
from experiments.humantest.store import AnswerStore, Refused

IMAGE_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_BODY = 4096
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}
PARTICIPANT = r"^[0-9a-f]{32}$"


class Start(BaseModel):
    colour_vision: Literal["normal", "deficient", "unsure"]
    expertise: Literal["", "none", "hobby", "professional"] = ""


class Answer(BaseModel):
    participant: str = Field(pattern=PARTICIPANT)
    position: int = Field(ge=0, le=10_000)
    answer: Literal["left", "right"]
    ms: int = Field(ge=0, le=3_600_000)  # time to answer, as the page measured it


def _asset(name: str) -> bytes:
    return (files("experiments.humantest") / "page" / name).read_bytes()


def make_app(
    store: AnswerStore,
    image_folder: Path,
    protocol: Protocol,
    on_finished: Callable[[], None] | None = None,
) -> FastAPI:
    """The test's web app over `store` (answers) and `image_folder` (the prepared images)."""
    token = store.token()
    image_files = store.image_files()  # id -> file name: nothing else is ever served
    assets = {
        "page.js": ("text/javascript", _asset("page.js")),
        "page.css": ("text/css", _asset("page.css")),
    }
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        given = request.query_params.get("t", "")
        if not secrets.compare_digest(given.encode(), token.encode()):
            return _error(403, "this test's link carries a token; ask for the link")
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY:
            return _error(413, f"request bodies are at most {MAX_BODY} bytes")
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused):
        return _error(error.status, str(error))

    @app.get("/")
    def page() -> HTMLResponse:
        return HTMLResponse(_asset("index.html").decode().replace("{{TOKEN}}", token))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in assets:
            return _error(404, "not found")
        kind, content = assets[name]
        return Response(content, media_type=kind)

    @app.get("/img/{image_id}.png")
    def image(image_id: str) -> Response:
        if not IMAGE_ID.match(image_id) or image_id not in image_files:
            return _error(404, "not found")
        return Response(
            (image_folder / image_files[image_id]).read_bytes(), media_type="image/png"
        )

    @app.get("/api/protocol")
    def protocol_info() -> dict:
        return {"practice": protocol.practice, "time_limit": protocol.time_limit}

    @app.post("/api/start")
    def start(body: Start) -> dict:
        participant, total = store.start(
            body.colour_vision, body.expertise, protocol.max_participants
        )
        return {"participant": participant, "total": total}

    @app.get("/api/next")
    def next_pair(participant: str = Query(pattern=PARTICIPANT)) -> dict:
        step = store.next_step(participant)
        if step is None:
            return {"done": True}
        return {
            "done": False,
            "position": step.position,
            "total": step.total,
            "practice": step.practice,
            "left": step.left,
            "right": step.right,
            "time_limit": protocol.time_limit,
        }

    @app.post("/api/answer")
    def answer(body: Answer) -> dict:
        result = store.answer(body.participant, body.position, body.answer, body.ms)
        if result["done"] and on_finished is not None:
            on_finished()
        return result

    return app


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status, headers=HEADERS)
