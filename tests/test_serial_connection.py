"""Threads sharing a workspace through `SerialConnection` cursors, one each as the web app
gives them: thousands of concurrent queries run clean and every result comes back whole; a
call waits while another thread holds the lock; batches are read under it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import duckdb

from heisttrace.ledger.workspace import SerialConnection

STRESS = """
import concurrent.futures, faulthandler, threading, duckdb
from heisttrace.ledger.workspace import SerialConnection
faulthandler.enable()
con = SerialConnection(duckdb.connect())
con.execute("CREATE TABLE t AS SELECT range AS i, 'x' || range AS s FROM range(2000)")
mine = threading.local()  # one cursor per thread, as the web app gives each of its threads
def run(i):
    if not hasattr(mine, "cur"):
        mine.cur = con.cursor()
    return len(mine.cur.execute("SELECT * FROM t WHERE i % 7 = ?", [i % 7]).fetchall())
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print(sum(f.result() for f in [ex.submit(run, i) for i in range(3000)]))
"""


def test_threads_on_serial_cursors_do_not_crash() -> None:
    # in a child process: a crash must fail this test, not end the test run
    out = subprocess.run([sys.executable, "-c", STRESS], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    # rows with i % 7 == k, summed over the 3000 queries (k = n % 7)
    per_k = [len([i for i in range(2000) if i % 7 == k]) for k in range(7)]
    assert int(out.stdout) == sum(per_k[n % 7] for n in range(3000))


def test_calls_hold_the_shared_lock_and_return_the_proxy(tmp_path: Path) -> None:
    lock = threading.RLock()
    con = SerialConnection(duckdb.connect(str(tmp_path / "db")), lock)
    cur = con.cursor()
    assert cur.execute("SELECT 42") is cur and cur.fetchone() == (42,)
    held = []

    def hold() -> None:
        with lock:
            held.append(True)
            done.wait(5)

    done = threading.Event()
    t = threading.Thread(target=hold)
    t.start()
    while not held:
        pass
    got: list = []
    q = threading.Thread(target=lambda: got.append(cur.execute("SELECT 1").fetchone()))
    q.start()
    q.join(0.3)
    assert got == []  # waits for the lock another thread holds
    done.set()
    q.join(5)
    t.join(5)
    assert got == [(1,)]
    reader = con.execute("SELECT range AS i FROM range(10000)").fetch_record_batch(1000)
    assert sum(b.num_rows for b in reader) == 10000


def test_write_transactions_of_threads_take_turns(tmp_path: Path) -> None:
    """Two threads (a watch batch, a case traced from the API) update the same row in
    overlapping transactions: DuckDB alone would fail one on a write-write conflict; through
    the shared write lock both commit, one after the other, while reads still go through."""
    import time

    from heisttrace.ledger.workspace import Workspace, open_workspace

    with open_workspace(tmp_path / "ws") as root:
        root.set_checkpoint("n", "0")
        con = SerialConnection(root.con)
        errors: list[BaseException] = []
        inside = threading.Event()

        def bump() -> None:
            ws = Workspace(root.path, con.cursor())
            try:
                with ws.transaction():
                    n = int(ws.checkpoint("n") or 0)
                    inside.set()
                    time.sleep(0.3)  # the other thread starts its transaction meanwhile
                    ws.set_checkpoint("n", str(n + 1))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=bump) for _ in range(2)]
        threads[0].start()
        inside.wait(5)
        threads[1].start()
        reader = con.cursor()
        assert reader.execute("SELECT value FROM checkpoints WHERE name = 'n'").fetchone() == ("0",)
        for t in threads:
            t.join(10)
        assert errors == []
        assert root.checkpoint("n") == "2"
