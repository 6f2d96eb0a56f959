"""The blind listening test's page (``musegen listen-test --a DIR --b DIR``).

Before serving, every piece of both sets is rendered to WAV (or a WAV is taken as it is)
under an opaque name; the page asks for ``/api/listen/audio/PAIR/SLOT`` and never learns a
file's name or set. Which slot holds A is drawn per pair (:func:`musegen.evaluate.listening
.plan_pairs`). Each answer is mapped to ``a`` or ``b`` on the server and all answers are
written again, atomically, as JSON and CSV after every answer
(:func:`musegen.evaluate.listening.save_answers`); answering a pair's question again
replaces the earlier answer.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from musegen.errors import MusegenError
from musegen.evaluate.listening import QUESTIONS, Pair, plan_pairs, save_answers
from musegen.web.app import Guard, mount_assets

AUDIO = (".wav",)


@dataclass
class ListenTest:
    """A planned test: its pairs, where each piece's audio is, where answers go."""

    pairs: list[Pair]
    audio: dict[str, Path]  # piece (as planned) -> its WAV
    out: Path
    questions: tuple[str, ...]
    setup: dict[str, Any]
    answers: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, listener: str, pair: int, question: str, slot: int) -> None:
        if not 0 <= pair < len(self.pairs):
            raise MusegenError(f"no pair {pair}")
        if question not in self.questions:
            raise MusegenError(f"no question {question!r}")
        p = self.pairs[pair]
        row = {
            "listener": listener,
            "pair": pair,
            "question": question,
            "choice": p.side(slot),
            "a": p.a,
            "b": p.b,
            "b_first": p.b_first,
            "time": round(time.time(), 3),
        }
        with self.lock:
            key = (listener, pair, question)
            self.answers = [
                r for r in self.answers if (r["listener"], r["pair"], r["question"]) != key
            ]
            self.answers.append(row)
            save_answers(self.out, self.setup, self.answers)


def pieces(folder: str | Path) -> list[Path]:
    """The music files (MIDI, MusicXML, ABC) and WAVs of a folder, sorted."""
    from musegen.io import SUPPORTED_READ

    root = Path(folder)
    if not root.is_dir():
        raise MusegenError(f"{root}: not a folder")
    kinds = (*SUPPORTED_READ, *AUDIO)
    found = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in kinds)
    if not found:
        raise MusegenError(f"{root}: no MIDI, MusicXML, ABC or WAV files")
    return found


def prepare(
    a: str | Path,
    b: str | Path,
    n_pairs: int,
    seed: int,
    out: str | Path,
    stimuli: str | Path,
    questions: tuple[str, ...] = ("musical",),
) -> ListenTest:
    """Plan the pairs and render every piece they use to ``stimuli/NNNN.wav``."""
    from musegen.io import load
    from musegen.render import render_wav
    from musegen.utils import progress

    bad = [q for q in questions if q not in QUESTIONS]
    if bad or not questions:
        raise MusegenError(f"questions are {', '.join(QUESTIONS)}; got {', '.join(questions)}")
    set_a = {f"A/{p.name}": p for p in pieces(a)}
    set_b = {f"B/{p.name}": p for p in pieces(b)}
    pairs = plan_pairs(list(set_a), list(set_b), n_pairs, seed)
    used = sorted({p.a for p in pairs} | {p.b for p in pairs})
    folder = Path(stimuli)
    folder.mkdir(parents=True, exist_ok=True)
    audio: dict[str, Path] = {}
    for i, name in enumerate(progress(used, desc="rendering", unit="piece")):
        source = {**set_a, **set_b}[name]
        target = folder / f"{i:04d}.wav"
        if source.suffix.lower() in AUDIO:
            shutil.copyfile(source, target)
        else:
            render_wav(load(source), target)
        audio[name] = target
    setup = {
        "a": str(a),
        "b": str(b),
        "pairs": n_pairs,
        "seed": seed,
        "questions": {q: QUESTIONS[q] for q in questions},
        "plan": [vars(p) for p in pairs],
    }
    return ListenTest(pairs, audio, Path(out), tuple(questions), setup)


class AnswerBody(BaseModel):
    listener: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    pair: int = Field(ge=0)
    question: str = Field(max_length=32)
    choice: int = Field(ge=1, le=2)


def create_listen_app(
    test: ListenTest, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> FastAPI:
    """The page and API of one listening test."""
    app = FastAPI(title="musegen listening test", docs_url=None, redoc_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))

    app.add_middleware(Guard, max_bytes=65536)

    @app.exception_handler(MusegenError)
    async def musegen_error(request: Request, exc: MusegenError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, 422)

    mount_assets(app, "listen.html")

    @app.get("/api/listen/test")
    async def describe() -> dict[str, Any]:
        questions = [{"key": q, "text": QUESTIONS[q]} for q in test.questions]
        return {"pairs": len(test.pairs), "questions": questions}

    @app.get("/api/listen/audio/{pair}/{slot}")
    async def audio(pair: int, slot: int) -> FileResponse:
        if not 0 <= pair < len(test.pairs) or slot not in (1, 2):
            raise MusegenError("no such pair or slot")
        return FileResponse(test.audio[test.pairs[pair].piece(slot)], media_type="audio/wav")

    @app.post("/api/listen/answer")
    async def answer(body: AnswerBody) -> dict[str, Any]:
        test.answer(body.listener, body.pair, body.question, body.choice)
        return {"ok": True, "answers": len(test.answers)}

    return app
