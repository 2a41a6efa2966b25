"""Screening under load: a workspace with >= 1,000,000 tainted holdings, the web app under
uvicorn on 127.0.0.1, and an async httpx load generator for a bounded time.

Run by hand: `.venv/bin/python benchmarks/bench_screen.py [--holdings N] [--seconds S]
[--rate R] [--concurrency C] [--miss F]`. Requests are paced at `--rate` per second over
`--concurrency` keep-alive connections (0 = as fast as they go), and a request's latency is
counted from the moment it was due, not from when it was sent: a server that falls behind
the schedule shows it in p50/p99 (no coordinated omission). p50/p99 are over every request
of the run. `--miss` (default 0.1) is the fraction of addresses without direct exposure: half
of them received from a tainted holding (the ledger walk finds them 1 hop away), half are
unknown to the ledger. Last line: `screen requests=N rps=R p50_ms=A p99_ms=B errors=E`.
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
import psutil

from heisttrace.ledger import open_workspace
from heisttrace.trace.store import ensure_case_tables

THIEF = "0x" + "bb" * 20


def addr(i: int) -> str:
    return "0x" + format(i, "040x")


def downstream(i: int, n: int) -> str:
    """The clean address holding i (0-based) paid, for every 10th holding: 1 hop from taint."""
    return addr(2 * n + 10 + i)


def build(path: Path, n: int) -> None:
    """Case tables written directly: the thief pays each of n addresses, half of them keep
    the taint (dormant), half are exchange deposits (cashed_out). The ledger has those n
    flows plus one onward payment from every 10th holding to a clean address."""
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
            f"""
            INSERT INTO flow_rows
            SELECT 'ethereum', 1000 + i // 100, 1700000000 + i, i * 10 + 1,
                   '0x' || lpad(format('{{:x}}', i), 64, '0'), '{THIEF}',
                   '0x' || lpad(format('{{:x}}', i + 1), 40, '0'), 'ETH',
                   '2000000000000000000', '2000000000000000000', 'native', NULL, NULL
            FROM range(?) t(i)
            UNION ALL
            SELECT 'ethereum', 200000 + i // 100, 1800000000 + i, i * 10 + 1,
                   '0x' || lpad(format('{{:x}}', i + 1), 64, 'f'),
                   '0x' || lpad(format('{{:x}}', i + 1), 40, '0'),
                   '0x' || lpad(format('{{:x}}', 2 * ? + 10 + i), 40, '0'), 'ETH',
                   '1000000000000000000', '1000000000000000000', 'native', NULL, NULL
            FROM range(0, ?, 10) t(i)
            """, [n, n, n])
        con.execute(
            """
            INSERT INTO case_sinks
            SELECT 'bench', CASE WHEN i % 2 = 0 THEN 'dormant' ELSE 'cashed_out' END,
                   'ethereum', '0x' || lpad(format('{:x}', i + 1), 40, '0'), 'ETH',
                   CASE WHEN i % 2 = 0 THEN NULL ELSE 'Exchange' END, 1.0, 1.0,
                   1700000000 + i, 1700000000 + i
            FROM range(?) t(i)
            """, [n])


def waited_for_cpu(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a CPU (Linux schedstat):
    on a shared machine, the part of the latency that other processes caused."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def start_server(path: Path, port: int) -> subprocess.Popen[bytes]:
    code = ("import uvicorn; from heisttrace.web.app import create_app; "
            f"uvicorn.run(create_app({str(path)!r}), host='127.0.0.1', port={port}, "
            "log_level='warning', access_log=False)")
    return subprocess.Popen([sys.executable, "-c", code])


async def _worker(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], urls: list[str],
                  t0: float, rate: float, step: int, first: int, lat: list[float],
                  errors: list[int], seconds: float) -> None:
    """One keep-alive connection; request k of this worker is due at t0 + (first + k*step)
    / rate. A raw HTTP/1.1 client: httpx's own per-request cost (about 1-3 ms of CPU on this
    shared 2-core machine) would measure the client, not the server."""
    reader, writer = conn
    k = 0
    try:
        while True:
            due = t0 + (first + k * step) / rate if rate > 0 else 0.0
            now = time.perf_counter()
            if now - t0 >= seconds:
                return
            if due > now:
                await asyncio.sleep(due - now)
            url = urls[(first + k * step) % len(urls)]
            start = due if rate > 0 else time.perf_counter()
            writer.write(f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - start)
            if status != 200:
                errors[0] += 1
            k += 1
    except (OSError, asyncio.IncompleteReadError):
        errors[0] += 1
    finally:
        writer.close()


async def load(port: int, n: int, seconds: float, rate: float, concurrency: int,
               miss: float) -> tuple[int, float, list[float], int]:
    """Checks answers with httpx first, then drives `concurrency` connections."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
        r = await client.get(f"/api/screen/ethereum/{addr(1)}")
        assert r.status_code == 200 and r.json()["risk"] != "none", r.text
        r = await client.get(f"/api/screen/ethereum/{downstream(0, n)}")
        assert r.status_code == 200 and r.json()["exposures"][0]["hops"] == 1, r.text
        r = await client.get(f"/api/screen/ethereum/{addr(4 * n + 5)}")
        assert r.status_code == 200 and r.json()["risk"] == "none", r.text
    rnd = random.Random(7)

    def pick() -> str:
        if rnd.random() >= miss:
            return addr(1 + rnd.randrange(n))
        if rnd.random() < 0.5:
            return downstream(10 * rnd.randrange((n + 9) // 10), n)
        return addr(4 * n + 10 + rnd.randrange(n))

    urls = [f"/api/screen/ethereum/{pick()}" for _ in range(100_000)]
    lat: list[float] = []
    errors = [0]
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]
    t0 = time.perf_counter()
    await asyncio.gather(*(_worker(conn, urls, t0, rate, concurrency, i, lat, errors, seconds)
                           for i, conn in enumerate(conns)))
    return len(lat), time.perf_counter() - t0, lat, errors[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--holdings", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--miss", type=float, default=0.1)
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
            # the app warms its report cache (every case graph) in a thread at start; load the
            # screening index, then wait for the server to go idle so both are not measured
            t1 = time.perf_counter()
            httpx.get(f"http://127.0.0.1:{args.port}/api/screen/ethereum/{addr(1)}", timeout=600)
            # returns once the report's graph of the case is cached, by this call or the thread
            httpx.get(f"http://127.0.0.1:{args.port}/api/cases/bench/paths",
                      params={"address": addr(1)}, timeout=900)
            proc = psutil.Process(server.pid)
            while proc.cpu_percent(interval=1.0) > 15 and time.monotonic() < deadline + 300:
                pass
            print(f"# server warm after {time.perf_counter() - t1:.1f}s", file=sys.stderr)
            cpu0, own0 = proc.cpu_times(), psutil.Process().cpu_times()
            wait0 = waited_for_cpu(server.pid)
            n, elapsed, lat, errors = asyncio.run(load(args.port, args.holdings, args.seconds,
                                                       args.rate, args.concurrency, args.miss))
            cpu1, own1 = proc.cpu_times(), psutil.Process().cpu_times()
            waited = waited_for_cpu(server.pid) - wait0
            per = 1e6 / max(n, 1)
            print(f"# cpu per request: server {(cpu1.user + cpu1.system - cpu0.user - cpu0.system) * per:.0f} us, "
                  f"load generator {(own1.user + own1.system - own0.user - own0.system) * per:.0f} us; "
                  f"server runnable but waiting for a CPU {waited * 1000:.0f} ms in {elapsed:.0f} s; "
                  f"load average {' '.join(f'{x:.2f}' for x in psutil.getloadavg())}",
                  file=sys.stderr)
        finally:
            server.terminate()
            server.wait(timeout=20)
    ms = np.array(lat) * 1000
    print(f"screen requests={n} rps={n / elapsed:.0f} p50_ms={np.percentile(ms, 50):.2f} "
          f"p99_ms={np.percentile(ms, 99):.2f} errors={errors}")


if __name__ == "__main__":
    main()
