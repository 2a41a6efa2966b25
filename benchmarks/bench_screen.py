"""Screening under load: a workspace with >= 1,000,000 tainted holdings, the web app under
uvicorn on 127.0.0.1, and an async httpx load generator for a bounded time.

Run by hand: `.venv/bin/python benchmarks/bench_screen.py [--holdings N] [--seconds S]
[--rate R] [--concurrency C] [--miss F]`. Requests are sent open-loop at `--rate` per second
(0 = as fast as the client can), so latency is not inflated by the generator waiting on
itself. `--miss` is the fraction of well-formed addresses unknown to the case (they take the
indirect walk over the ledger). Last line:
`screen requests=N rps=R p50_ms=A p99_ms=B errors=E`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from heisttrace.ledger import open_workspace
from heisttrace.trace.store import ensure_case_tables

THIEF = "0x" + "bb" * 20


def addr(i: int) -> str:
    return "0x" + format(i, "040x")


def build(path: Path, n: int) -> None:
    """Case tables written directly: the thief pays each of n addresses, half of them keep
    the taint (dormant), half are exchange deposits (cashed_out)."""
    with open_workspace(path) as ws:
        ensure_case_tables(ws)
        con = ws.con
        con.execute("INSERT INTO cases VALUES ('bench', 'haircut', ['0xseed'], NULL, 1e-9, "
                    "'ETH', ?, now())", [float(n)])
        con.execute(
            f"""
            INSERT INTO case_edges
            SELECT 'bench', 'ethereum', 1000 + i // 100, 1700000000 + i, i * 10 + 1,
                   '0x' || lpad(format('{{:x}}', i), 64, '0'), '{THIEF}',
                   '0x' || lpad(format('{{:x}}', i + 1), 40, '0'), 'ETH', 'ethereum', 'ETH',
                   'native', 2.0, 1.0, 1.0
            FROM range(?) t(i)
            """, [n])
        con.execute(
            """
            INSERT INTO case_sinks
            SELECT 'bench', CASE WHEN i % 2 = 0 THEN 'dormant' ELSE 'cashed_out' END,
                   'ethereum', '0x' || lpad(format('{:x}', i + 1), 40, '0'), 'ETH',
                   CASE WHEN i % 2 = 0 THEN NULL ELSE 'Exchange' END, 1.0, 1.0,
                   1700000000 + i, 1700000000 + i
            FROM range(?) t(i)
            """, [n])


def start_server(path: Path, port: int) -> subprocess.Popen[bytes]:
    code = ("import uvicorn; from heisttrace.web.app import create_app; "
            f"uvicorn.run(create_app({str(path)!r}), host='127.0.0.1', port={port}, "
            "log_level='warning', access_log=False)")
    return subprocess.Popen([sys.executable, "-c", code])


async def load(port: int, n: int, seconds: float, rate: float, concurrency: int,
               miss: float) -> tuple[int, float, list[float], int]:
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    lat: list[float] = []
    errors = 0
    rnd = random.Random(7)
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        # warm-up: the first request builds the index
        r = await client.get(f"/api/screen/ethereum/{addr(1)}", timeout=600)
        assert r.status_code == 200 and r.json()["risk"] != "none", r.text

        async def one(url: str) -> None:
            nonlocal errors
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.get(url)
                    if r.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                lat.append(time.perf_counter() - t0)

        tasks = []
        start = time.perf_counter()
        i = 0
        while True:
            now = time.perf_counter()
            if now - start >= seconds:
                break
            if rate > 0:
                due = start + i / rate
                if due > now:
                    await asyncio.sleep(due - now)
            a = addr(n + 10 + rnd.randrange(n)) if rnd.random() < miss \
                else addr(1 + rnd.randrange(n))
            tasks.append(asyncio.create_task(one(f"/api/screen/ethereum/{a}")))
            i += 1
            if rate <= 0 or len(tasks) % 64 == 0:
                await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return len(lat), elapsed, lat, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--holdings", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--miss", type=float, default=0.0)
    ap.add_argument("--port", type=int, default=18731)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ws"
        t0 = time.perf_counter()
        build(path, args.holdings)
        print(f"# built {args.holdings:,} tainted holdings in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
        server = start_server(path, args.port)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{args.port}/api/cases", timeout=2)
                    break
                except httpx.HTTPError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("server did not start")
                    time.sleep(0.2)
            t0 = time.perf_counter()
            n, elapsed, lat, errors = asyncio.run(load(args.port, args.holdings, args.seconds,
                                                       args.rate, args.concurrency, args.miss))
        finally:
            server.terminate()
            server.wait(timeout=20)
    ms = np.array(lat) * 1000
    print(f"screen requests={n} rps={n / elapsed:.0f} p50_ms={np.percentile(ms, 50):.2f} "
          f"p99_ms={np.percentile(ms, 99):.2f} errors={errors}")


if __name__ == "__main__":
    main()
