"""Server-side proof generation time at 1 M and 10 M leaves on SQLite (budget ≤ 2 ms).

The ledger is built directly — leaf rows plus every perfect-subtree node, written with
DB-API ``executemany`` in large transactions with the journal off — because integrating
10 M events through the sequencer would take minutes and measure nothing new here. Two
shortcuts, neither touching what a proof reads (``ledger_nodes`` and ``ledger_state``): the
leaves are short synthetic byte strings, and the leaves' secondary indexes are not built.

Then, through the app's engine (``wallet.db.create_engine``: aiosqlite, WAL), each request
is timed around ``ledger.proofs.inclusion_proof`` / ``consistency_proof`` on an open
connection: node ids computed, one SELECT, proof assembled — what an HTTP handler awaits.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.registry import Check, Metric, Params, Result, scenario
from ledger.merkle import CompactRange, verify_inclusion
from ledger.note import Checkpoint, sign_checkpoint
from ledger.proofs import consistency_proof, inclusion_proof
from ledger.storage import ledger_metadata
from wallet.db import create_engine

ORIGIN = "bench.carpeta.local/ledger"
_CHUNK = 1 << 18
_AT = "2025-01-01 00:00:00.000000"


def build_ledger(path: Path, size: int) -> bytes:
    """Write a ledger of ``size`` leaves (leaves, nodes, state, checkpoint); return its root."""
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    ledger_metadata.create_all(engine)
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")
        for (name,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='ledger_leaves' "
            "AND name LIKE 'ix_%'"
        ).fetchall():
            con.execute(f'DROP INDEX "{name}"')
        compact = CompactRange()
        sha = hashlib.sha256
        for start in range(0, size, _CHUNK):
            end = min(size, start + _CHUNK)
            leaves = [b'{"bench":%d}' % i for i in range(start, end)]
            hashes = [sha(b"\x00" + leaf).digest() for leaf in leaves]
            completed = compact.append_many(hashes)
            con.execute("BEGIN")
            con.executemany(
                "INSERT INTO ledger_leaves (leaf_index, queue_id, leaf, type, at) "
                "VALUES (?, ?, ?, 'record.published', ?)",
                ((start + k, start + k + 1, leaf, _AT) for k, leaf in enumerate(leaves)),
            )
            con.executemany(
                "INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)", completed
            )
            con.execute("COMMIT")
        root = compact.root()
        note = sign_checkpoint(Checkpoint(ORIGIN, size, root), ORIGIN, Ed25519PrivateKey.generate())
        con.execute("INSERT INTO ledger_state VALUES (1, ?, ?, ?)", (size, root, _AT))
        con.execute("INSERT INTO ledger_checkpoints VALUES (?, ?, ?, ?)", (size, root, note, _AT))
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()
    return root


def _ms(seconds: list[float]) -> tuple[float, float, float]:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered) * 1e3, p99 * 1e3, ordered[-1] * 1e3


async def time_proofs(
    path: Path, size: int, root: bytes, requests: int, seed: int
) -> dict[str, list[float]]:
    """Seconds per request for each proof kind, after a short warm-up."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    rnd = random.Random(seed)
    timings: dict[str, list[float]] = {
        "inclusion": [],
        "inclusion_historical": [],
        "consistency": [],
    }
    clock = time.perf_counter
    try:
        async with engine.connect() as conn:
            for i in range(requests + 50):
                index = rnd.randrange(size)
                t0 = clock()
                proof = await inclusion_proof(conn, index, size)
                t1 = clock()
                historical = rnd.randint(index + 1, size)
                t2 = clock()
                await inclusion_proof(conn, index, historical)
                t3 = clock()
                first = rnd.randint(1, size)
                t4 = clock()
                consistency = await consistency_proof(conn, first, size)
                t5 = clock()
                if i >= 50:
                    timings["inclusion"].append(t1 - t0)
                    timings["inclusion_historical"].append(t3 - t2)
                    timings["consistency"].append(t5 - t4)
                if i < 3:  # spot-check that what we time is a real, valid proof
                    leaf = b'{"bench":%d}' % index
                    assert verify_inclusion(
                        hashlib.sha256(b"\x00" + leaf).digest(), index, size, proof.hashes, root
                    )
                    assert len(consistency.hashes) <= 2 * size.bit_length()
    finally:
        await engine.dispose()
    return timings


def _label(size: int) -> str:
    return f"{size // 1_000_000} M" if size % 1_000_000 == 0 else f"{size:,}"


@scenario(
    "ledger_proofs",
    defaults={"sizes": [1_000_000, 10_000_000], "requests": 1000, "seed": 9162},
    smoke={"sizes": [1000, 4097], "requests": 20},
)
async def run(params: Params) -> Result:
    """Inclusion and consistency proof time (median, p99) at 1 M and 10 M leaves."""
    result = Result()
    requests, seed = int(params["requests"]), int(params["seed"])
    for size in (int(s) for s in params["sizes"]):
        label = _label(size)
        with tempfile.TemporaryDirectory(prefix="bench-proofs-") as tmp:
            path = Path(tmp) / "ledger.db"
            started = time.perf_counter()
            root = build_ledger(path, size)
            built = time.perf_counter() - started
            result.metrics.append(Metric(f"build {label} leaves", built, "s"))
            result.metrics.append(
                Metric(f"database size {label}", path.stat().st_size / 2**20, "MiB")
            )
            timings = await time_proofs(path, size, root, requests, seed)
        for kind, seconds in timings.items():
            median, p99, worst = _ms(seconds)
            result.metrics += [
                Metric(f"{kind} @ {label}: median", median, "ms"),
                Metric(f"{kind} @ {label}: p99", p99, "ms"),
                Metric(f"{kind} @ {label}: max", worst, "ms"),
            ]
            if kind != "inclusion_historical":
                result.checks.append(Check(f"{kind} proof p99 @ {label}", p99, "<=", 2.0, "ms"))
    result.notes.append(
        f"{requests} random requests per kind and size (after 50 warm-up), one open "
        "connection, timed around the library call an HTTP handler makes; leaves are short "
        "synthetic strings and the leaves' secondary indexes are not built (proofs read "
        "only ledger_nodes and ledger_state)."
    )
    return result
