"""The studio under load, on loopback: ``musegen serve`` started as its own process.

1. Load: ``--clients`` (200) clients at once, each making a mix of requests -- the page, its
   script, the catalog, the history, a take's notes, its MIDI, and for one client in
   ``--generate-every`` (10) a generate with the smallest settings (folk, 1 bar) -- each
   on its own keep-alive connection (a small HTTP/1.1 client on asyncio streams). Reports errors (any status but 200, or no answer: must be 0) and
   the latency p50 / p95 / p99 over all requests and per kind.
2. Generate through HTTP against the same call in-process: ``POST /api/generate`` (bach,
   ``--bars``) timed round by round against :func:`musegen.web.tasks.run_task` with the same
   parameters in this process (the worker's own code: generate, write the MIDI and the
   settings, read the take back), one thread each, the order alternating
   (``_timing.interleaved``); the figure is the median of the per-round ratios (in-process
   seconds / HTTP seconds: 1 would mean no cost, the goal is >= 1 / 1.1 = 0.91).

    python benchmarks/serve.py [--clients 200] [--rounds 12] [--bars 4]

Prints JSON lines ``{"benchmark", "ours", "peer", "ratio", "unit", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _timing import interleaved, paired_ratios


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, data: str, workers: int, queue: int) -> subprocess.Popen[bytes]:
    """``musegen serve`` on ``port``; its log (and its workers') in ``DATA/server.log``."""
    import httpx

    log = open(Path(data) / "server.log", "wb")  # noqa: SIM115  (the server's to keep)
    command = [sys.executable, "-m", "musegen", "serve", "--port", str(port), "--data", data]
    command += ["--workers", str(workers), "--queue", str(queue), "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(command, env=env, stderr=log)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise SystemExit(
                f"the server stopped while starting: {_tail(Path(data) / 'server.log')}"
            )
        time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not start in 300 s")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no log)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on an open keep-alive connection; (status, body). A small client
    of our own: the load generator should cost the host less than the server it loads."""
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    writer.write(head.encode() + b"\r\n" + data)
    await writer.drain()
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, await reader.readexactly(length)


async def load(port: int, clients: int, generate_every: int, take: str) -> dict[str, Any]:
    """Every client at once, each on its own connection making its requests one after the
    other; (kind, seconds, ok) of each request."""
    mix = [
        ("page", "GET", "/", None),
        ("script", "GET", "/static/studio.js", None),
        ("catalog", "GET", "/api/catalog", None),
        ("history", "GET", "/api/takes", None),
        ("take", "GET", f"/api/takes/{take}", None),
        ("midi", "GET", f"/api/takes/{take}/mid", None),
    ]
    results: list[tuple[str, float, bool]] = []
    errors: list[str] = []

    async def client(i: int) -> None:
        requests = list(mix)
        if i % generate_every == 0:
            body = {"model": "folk", "bars": 1, "seed": i}
            requests.append(("generate", "POST", "/api/generate", body))
        k = i % len(requests)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for kind, method, path, body in requests[k:] + requests[:k]:
                t0 = time.perf_counter()
                try:
                    status, answer = await request(reader, writer, method, path, body)
                    ok = status == 200
                    if not ok:
                        errors.append(f"{kind}: {status} {answer[:100]!r}")
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    ok = False
                    errors.append(f"{kind}: {type(e).__name__}")
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                results.append((kind, time.perf_counter() - t0, ok))
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return {"results": results, "errors": errors, "seconds": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--generate-every", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--skip-generate", action="store_true", help="the load test only")
    parser.add_argument("--bars", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import httpx
    import torch

    from musegen.utils import cpu_model_name
    from musegen.web.tasks import run_task

    torch.set_num_threads(1)
    cpu = cpu_model_name()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="musegen-serve-bench-") as data:
        server = start_server(port, data, args.workers, queue=args.clients)
        try:
            client = httpx.Client(base_url=base, timeout=300)
            take = client.post("/api/generate", json={"model": "folk", "bars": 2, "seed": 1})
            take.raise_for_status()
            cpu0, own0 = process_cpu(server.pid), time.process_time()
            out = asyncio.run(load(port, args.clients, args.generate_every, take.json()["id"]))
            server_cpu, own_cpu = process_cpu(server.pid) - cpu0, time.process_time() - own0
            latencies = [s for _, s, _ in out["results"]]
            per_kind = {
                kind: {
                    "n": len(xs),
                    "p50_ms": round(1000 * percentile(xs, 50), 1),
                    "p95_ms": round(1000 * percentile(xs, 95), 1),
                }
                for kind in dict.fromkeys(k for k, _, _ in out["results"])
                if (xs := [s for k, s, _ in out["results"] if k == kind])
            }
            row = {
                "benchmark": f"serve: {args.clients} clients at once, mixed requests, p95 latency",
                "ours": round(1000 * percentile(latencies, 95), 1),
                "peer": None,
                "ratio": None,
                "unit": "ms",
                "requests": len(latencies),
                "errors": len(out["errors"]),
                "error_examples": out["errors"][:3],
                "p50_ms": round(1000 * percentile(latencies, 50), 1),
                "p99_ms": round(1000 * percentile(latencies, 99), 1),
                "seconds": round(out["seconds"], 2),
                # CPU seconds the server's own process spent (its workers not counted) and the
                # load generator's: on a shared host the wall times mostly measure the queue
                # for the cores, these the work
                "server_cpu_ms_per_request": round(1000 * server_cpu / len(latencies), 2),
                "client_cpu_ms_per_request": round(1000 * own_cpu / len(latencies), 2),
                "load_average": os.getloadavg()[0],
                "per_kind": per_kind,
                "workers": args.workers,
                "cpu": cpu,
            }
            print(json.dumps(row), flush=True)

            if args.skip_generate:
                return
            # HTTP generate against the same task in this process
            local = Path(data) / "in-process"
            local.mkdir()
            params = {"model": "bach", "bars": args.bars, "seed": 3}
            run_task("generate", {**params, "take_dir": str(local)})  # warm this process

            def http() -> None:
                r = client.post("/api/generate", json=params)
                r.raise_for_status()

            def in_process() -> None:
                run_task("generate", {**params, "take_dir": str(local)})

            http()
            times = interleaved({"http": http, "in-process": in_process}, args.rounds)
            walls = {name: [w for w, _ in runs] for name, runs in times.items()}
            ratios = paired_ratios(walls["http"], walls["in-process"])
            row = {
                "benchmark": f"serve: generate (bach, {args.bars} bars) over HTTP vs in-process, p50",
                "ours": round(statistics.median(walls["http"]), 3),
                "peer": round(statistics.median(walls["in-process"]), 3),
                "ratio": round(statistics.median(ratios), 3),
                "unit": "s",
                "ratio_spread": [round(min(ratios), 3), round(max(ratios), 3)],
                "rounds": args.rounds,
                "goal": "ratio >= 0.909 (HTTP p50 <= 1.1 x in-process)",
                "cpu": cpu,
            }
            print(json.dumps(row), flush=True)
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
