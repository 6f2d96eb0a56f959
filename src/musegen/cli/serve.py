"""``musegen serve``: the web studio on this machine (see :mod:`musegen.web.app`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="the web studio: generate, upload, harmonize, infill and listen in a browser",
        description="Serve the studio page and its API. It binds 127.0.0.1 (this machine "
        "only) unless --host says otherwise; every asset comes from this server. Work runs in "
        "a bounded pool of worker processes, each job under a time limit. Needs the web "
        "extra (pip install 'musegen[web]').",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="keep takes in DIR (default: a temporary folder removed at exit)",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--queue", type=int, default=16, help="jobs that may wait for a worker (default 16)"
    )
    p.add_argument(
        "--time-limit", type=float, default=120.0, metavar="S", help="seconds a job may run"
    )
    p.add_argument("--max-upload-mb", type=float, default=2.0, metavar="MB", help="upload size cap")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from musegen.errors import MusegenError

    try:
        import uvicorn

        from musegen.web.app import StudioConfig, create_app
    except ImportError as e:
        raise MusegenError(
            f"the studio needs the web extra ({e.name} is missing): pip install 'musegen[web]'"
        ) from e
    if not 0 < args.port < 65536:
        raise MusegenError(f"--port must be 1-65535, got {args.port}")
    if args.workers < 1 or args.queue < 0 or args.time_limit <= 0 or args.max_upload_mb <= 0:
        raise MusegenError("--workers >= 1, --queue >= 0, --time-limit and --max-upload-mb > 0")
    hosts = ("127.0.0.1", "localhost", args.host)
    config = StudioConfig(
        data=Path(args.data) if args.data else None,
        workers=args.workers,
        queue=args.queue,
        time_limit=args.time_limit,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        hosts=("*",) if args.host in ("0.0.0.0", "::") else hosts,
    )
    settings = {k: v for k, v in vars(args).items() if k not in ("func", "debug", "all_threads")}
    print(f"musegen studio on http://{args.host}:{args.port}/ (settings: {settings})", flush=True)
    app = create_app(config)
    # keep-alive 30 s: a client that waits its turn under load finds its connection open
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_keep_alive=30)
    return 0
