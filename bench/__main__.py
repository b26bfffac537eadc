"""``python -m bench [scenario…] [--smoke] [--set key=value…] [--results DIR]``.

Runs the named scenarios (all by default), each under a wall-clock limit, writes
``<results>/<scenario>.json`` and regenerates ``<results>/REPORT.md``. Exit status 0 even when
a budget is missed (the report says so); 1 if a scenario crashed or timed out.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.registry import Params, discover
from bench.report import now, write_report, write_result

RESULTS = Path(__file__).resolve().parent / "results"


def _value(text: str) -> Any:
    """``--set`` values: Python literals (``200000``, ``[1000, 2000]``, ``0.5``) or strings."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per scenario")
    parser.add_argument("--list", action="store_true", help="list scenarios and exit")
    return parser.parse_args(argv)


async def run(argv: list[str]) -> int:
    args = parse_args(argv)
    registry = discover()
    if args.list:
        for name, sc in sorted(registry.items()):
            print(f"{name:24} {sc.description}")
        return 0
    names = args.scenarios or sorted(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; try --list", file=sys.stderr)
        return 2
    overrides: Params = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = _value(value)
    status = 0
    for name in names:
        sc = registry[name]
        params = {**sc.defaults, **(sc.smoke if args.smoke else {}), **overrides}
        params = {k: v for k, v in params.items() if k in sc.defaults}
        print(f"== {name} {params}", file=sys.stderr)
        started, t0 = now(), time.perf_counter()
        try:
            result = await asyncio.wait_for(sc.run(params), args.timeout)
        except TimeoutError:
            print(f"{name}: timed out after {args.timeout:.0f} s", file=sys.stderr)
            status = 1
            continue
        except Exception:
            traceback.print_exc()
            print(f"{name}: failed", file=sys.stderr)
            status = 1
            continue
        path = write_result(args.results, name, params, result, started, time.perf_counter() - t0)
        for m in result.metrics:
            print(f"   {m.name}: {m.value:,.3f} {m.unit}", file=sys.stderr)
        for c in result.checks:
            mark = "ok" if c.ok else "MISSED"
            print(f"   [{mark}] {c.name}: {c.value:,.3f} {c.op} {c.target:,}", file=sys.stderr)
        print(f"   -> {path}", file=sys.stderr)
    write_report(args.results)
    return status


def main() -> None:
    sys.exit(asyncio.run(run(sys.argv[1:])))


if __name__ == "__main__":
    main()
