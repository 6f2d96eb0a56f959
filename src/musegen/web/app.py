"""The studio's web app (FastAPI): the page, its assets, and the API the page calls.

Every asset comes from this server (``static/``: our own HTML, JS and CSS; no CDN, font
service or analytics), and the Content-Security-Policy header tells the browser to load
nothing from anywhere else. Requests name takes by id, models and methods by name, corpus
pieces from a fixed list: never a path on the server. Work runs in the bounded
:class:`~musegen.web.jobs.JobPool`; uploads are capped in bytes before they are parsed and in
notes and length after.

API (JSON unless said otherwise; errors are ``{"error": "one line"}`` with a 4xx/5xx status):

- ``GET /api/catalog``: shipped models (what each serves), compose methods, harmonizers
- ``GET /api/corpus``: the corpus pieces to pick from; ``POST /api/corpus {"name"}``
- ``POST /api/upload``: multipart field ``file`` (MIDI, MusicXML, ABC)
- ``POST /api/generate``, ``/api/compose``, ``/api/harmonize``, ``/api/infill``: a new take
- ``GET /api/takes``: the history; ``GET /api/takes/ID``: one take's notes and settings
- ``GET /api/takes/ID/KIND``: its ``mid``, ``json``, ``wav``, ``musicxml`` or ``svg``
  (``?download=1``: as an attachment)
- ``GET /api/health``: the job pool's counts
"""

from __future__ import annotations

import re
import shutil
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from musegen.errors import MusegenError
from musegen.web.jobs import JobError, JobPool
from musegen.web.takes import RENDERED, Take, TakeStore

STATIC = Path(__file__).parent / "static"
UPLOAD_TYPES = (".mid", ".midi", ".kar", ".rmi", ".musicxml", ".xml", ".mxl", ".abc")
CORPUS = (
    "bach/bwv66.6",
    "bach/bwv269",
    "bach/bwv347",
    "bach/bwv153.1",
    "bach/bwv86.6",
    "bach/bwv40.6",
)
"""Corpus pieces the page offers (music21's corpus, read in a worker)."""
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass
class StudioConfig:
    """How the studio runs: where takes go, the pool, and the caps on uploads."""

    data: Path | None = None  # None: a temporary folder, removed at exit
    workers: int = 1
    queue: int = 16
    time_limit: float = 120.0
    max_upload_bytes: int = 2 * 1024 * 1024
    max_notes: int = 20_000
    max_seconds: float = 20 * 60.0
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost")


class GenerateBody(BaseModel):
    model: str = Field(max_length=64)
    bars: int = Field(4, ge=1, le=64)
    temperature: float | None = Field(None, gt=0, le=3)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, lt=2**31)
    key: str | None = Field(None, max_length=24)
    tempo: float | None = Field(None, ge=20, le=300)
    chords: str | None = Field(None, max_length=400)
    density: str | None = Field(None, max_length=400)
    primer: str | None = Field(None, max_length=12, description="a take's id to continue")


class ComposeBody(BaseModel):
    method: str = Field(max_length=32)
    bars: int = Field(4, ge=1, le=32)
    temperature: float | None = Field(None, gt=0, le=3)
    seed: int | None = Field(None, ge=0, lt=2**31)
    key: str | None = Field(None, max_length=24)
    tempo: float | None = Field(None, ge=20, le=300)
    chords: str | None = Field(None, max_length=400)


class HarmonizeBody(BaseModel):
    take: str = Field(max_length=12)
    model: str = Field("coconet", max_length=64)
    voices: str = Field("S", max_length=4)
    seed: int | None = Field(None, ge=0, lt=2**31)
    temperature: float | None = Field(None, gt=0, le=3)


class InfillBody(BaseModel):
    take: str = Field(max_length=12)
    model: str = Field("coconet", max_length=64)
    bars: tuple[int, int]
    voices: str = Field("SATB", max_length=4)
    seed: int | None = Field(None, ge=0, lt=2**31)
    temperature: float | None = Field(None, gt=0, le=3)


class CorpusBody(BaseModel):
    name: str = Field(max_length=64)


def create_app(config: StudioConfig | None = None) -> FastAPI:
    """The studio app; its job pool starts and stops with the app (lifespan)."""
    config = config or StudioConfig()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        scratch = None
        if config.data is None:
            scratch = tempfile.mkdtemp(prefix="musegen-studio-")
        store = TakeStore(config.data or scratch)
        pool = JobPool(config.workers, config.queue, config.time_limit)
        catalog = await pool.start(warm=("catalog", {}))  # every worker loads the models
        state.update(store=store, pool=pool, catalog=catalog)
        app.state.pool = pool
        try:
            yield
        finally:
            pool.close()
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)

    app = FastAPI(title="musegen studio", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.hosts))

    app.add_middleware(Guard, max_bytes=config.max_upload_bytes + 65536)

    @app.exception_handler(MusegenError)
    async def musegen_error(request: Request, exc: MusegenError) -> JSONResponse:
        status = exc.status if isinstance(exc, JobError) else 400
        return _error(status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return _error(422, f"{where}: {first.get('msg', 'invalid')}")

    def store() -> TakeStore:
        return state["store"]

    def pool() -> JobPool:
        return state["pool"]

    def model_entry(name: str, op: str) -> dict[str, Any]:
        for entry in state["catalog"]["models"]:
            if entry["name"] == name:
                if op not in entry["serves"]:
                    raise MusegenError(
                        f"{name} does not {op}; it serves {', '.join(entry['serves'])}"
                    )
                return entry
        raise MusegenError(f"no model {name!r}")

    async def new_take(task: str, params: dict[str, Any], label: str, parent: str | None) -> Take:
        take_id, folder = store().new_folder()
        try:
            view = await pool().run(task, {**params, "take_dir": str(folder)})
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return store().add(Take(take_id, folder, parent, label, view))

    mount_assets(app, "index.html")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "pool": pool().stats(), "takes": len(store().all())}

    @app.get("/api/catalog")
    async def catalog() -> dict[str, Any]:
        return state["catalog"]

    @app.get("/api/corpus")
    async def corpus_list() -> dict[str, Any]:
        return {"pieces": list(CORPUS)}

    @app.post("/api/corpus")
    async def corpus_pick(body: CorpusBody) -> dict[str, Any]:
        if body.name not in CORPUS:
            raise MusegenError(f"no corpus piece {body.name!r} here; pick one of the list")
        params = {"source": f"corpus:{body.name}", "title": body.name, "op": "corpus"}
        return (await new_take("load", params, body.name, None)).public()

    @app.post("/api/upload")
    async def upload(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        title = _clean_name(file.filename or "")
        ext = Path(title).suffix.lower()
        if ext not in UPLOAD_TYPES:
            raise MusegenError(
                f"{title or 'the file'}: not a MIDI, MusicXML or ABC file "
                f"(names ending {', '.join(UPLOAD_TYPES)})"
            )
        data = await file.read(config.max_upload_bytes + 1)
        if len(data) > config.max_upload_bytes:
            raise JobErrorStatus(413, f"{title}: over {_mb(config.max_upload_bytes)}")
        take_id, folder = store().new_folder()
        source = folder / f"upload{ext}"
        source.write_bytes(data)
        params = {
            "source": str(source),
            "title": title,
            "take_dir": str(folder),
            "max_bytes": config.max_upload_bytes,
            "max_notes": config.max_notes,
            "max_seconds": config.max_seconds,
        }
        try:
            view = await pool().run("load", params)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return store().add(Take(take_id, folder, None, title, view)).public()

    @app.post("/api/generate")
    async def generate(body: GenerateBody) -> dict[str, Any]:
        entry = model_entry(body.model, "generate")
        params = body.model_dump(exclude={"primer"})
        params["chords"] = _items(body.chords)
        params["density"] = _items(body.density)
        parent = None
        if body.primer:
            if not entry["primer"]:
                raise MusegenError(f"{body.model} writes from scratch; continue with bach or folk")
            parent = store().get(body.primer)
            params["primer"] = str(parent.folder / "take.mid")
        label = f"{body.model} {'continue' if parent else 'generate'}"
        return (await new_take("generate", params, label, parent and parent.id)).public()

    @app.post("/api/compose")
    async def compose(body: ComposeBody) -> dict[str, Any]:
        names = [m["name"] for m in state["catalog"]["methods"]]
        if body.method not in names:
            raise MusegenError(
                f"no compose method {body.method!r}; choose one of {', '.join(names)}"
            )
        params = body.model_dump() | {"chords": _items(body.chords)}
        return (await new_take("compose", params, body.method, None)).public()

    @app.post("/api/harmonize")
    async def harmonize(body: HarmonizeBody) -> dict[str, Any]:
        model_entry(body.model, "harmonize")
        source = store().get(body.take)
        params = body.model_dump(exclude={"take"}) | {"source": str(source.folder / "take.mid")}
        label = f"{body.model} harmonize"
        return (await new_take("harmonize", params, label, source.id)).public()

    @app.post("/api/infill")
    async def infill(body: InfillBody) -> dict[str, Any]:
        model_entry(body.model, "infill")
        source = store().get(body.take)
        params = body.model_dump(exclude={"take"}) | {"source": str(source.folder / "take.mid")}
        label = f"{body.model} infill bars {body.bars[0]}-{body.bars[1]} {body.voices.upper()}"
        return (await new_take("infill", params, label, source.id)).public()

    @app.get("/api/takes")
    async def takes() -> dict[str, Any]:
        return {
            "takes": [
                {"id": t.id, "parent": t.parent, "label": t.label,
                 "settings": t.view.get("settings", {}), "n_notes": t.view.get("n_notes")}
                for t in store().all()
            ]
        }  # fmt: skip

    @app.get("/api/takes/{take_id}")
    async def take(take_id: str) -> dict[str, Any]:
        return store().get(take_id).public()

    @app.get("/api/takes/{take_id}/{kind}")
    async def take_file(take_id: str, kind: str, download: int = 0) -> Response:
        path, media = store().file(take_id, kind)
        if kind == "svg":
            path = await _engraved(path, take_id)
        elif not path.exists() and kind in RENDERED:
            await pool().run("render", {"take_dir": str(path.parent), "kind": RENDERED[kind]})
        if not path.exists():
            raise MusegenError(f"the take has no {kind} file")
        name = f"musegen-{take_id}{path.suffix}" if download else None
        if path.stat().st_size > SMALL_FILE:  # audio, engraved pages: streamed from disk
            return FileResponse(path, media_type=media, filename=name)
        headers = {"Content-Disposition": f'attachment; filename="{name}"'} if name else None
        return Response(path.read_bytes(), media_type=media, headers=headers)

    async def _engraved(path: Path, take_id: str) -> Path:
        """The take's engraved SVG (its first page where there are several)."""
        first = path.with_name("take-1.svg")
        if not path.exists() and not first.exists():
            title = store().get(take_id).label
            await pool().run(
                "render", {"take_dir": str(path.parent), "kind": "svg", "title": title}
            )
        return path if path.exists() else first

    return app


SMALL_FILE = 256 * 1024
"""A take's file up to this size is answered from memory, a larger one streamed."""
ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def mount_assets(app: FastAPI, page: str) -> None:
    """``/`` answers ``page`` and ``/static/NAME`` each asset of :data:`STATIC`, read once
    into memory when the app is made: a fixed set of names, no file lookup per request."""
    assets = {
        p.name: (p.read_bytes(), ASSET_TYPES[p.suffix])
        for p in sorted(STATIC.iterdir())
        if p.suffix in ASSET_TYPES
    }
    index_page, index_type = assets[page]

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(index_page, media_type=index_type)

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            raise MusegenError(f"no asset {name!r}")
        content, media = assets[name]
        return Response(content, media_type=media, headers={"Cache-Control": "no-cache"})


class Guard:
    """ASGI middleware: refuses a body over ``max_bytes`` (413: announced, or counted as it
    arrives) and adds the security headers (:data:`CSP`, no sniffing, no referrer) to every answer."""

    HEADERS = (
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    )

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            message = f"the request is over {_mb(self.max_bytes - 65536)}"
            await _error(413, message)(scope, receive, send)
            return

        received = 0

        async def counted(  # a body sent without its length (chunked) is counted as it comes
        ) -> dict[str, Any]:
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > self.max_bytes:
                raise JobErrorStatus(413, f"the request is over {_mb(self.max_bytes - 65536)}")
            return event

        async def with_headers(event: dict[str, Any]) -> None:
            if event["type"] == "http.response.start":
                event["headers"] = [*event.get("headers", []), *self.HEADERS]
            await send(event)

        await self.app(scope, counted, with_headers)


class JobErrorStatus(JobError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _items(text: str | None) -> list[str]:
    return (text or "").replace(",", " ").split()


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB"


def _clean_name(name: str) -> str:
    """A file name from a client, for display only: its last part, plain characters."""
    base = re.split(r"[\\/]", name)[-1]
    return re.sub(r"[^\w.\- ]", "_", base)[:80]
