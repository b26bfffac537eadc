"""Scenario registry: how a benchmark declares its name, parameters and budget checks.

A scenario is an async function taking its parameters (a dict, defaults merged with the
command line) and returning a :class:`Result`. Adding one is a new module in
``bench/scenarios/`` with::

    @scenario("http_summary", defaults={"requests": 10_000}, smoke={"requests": 50})
    async def run(params: Params) -> Result:
        ...
        return Result(metrics=[Metric("rps", 1234.5, "req/s")],
                      checks=[Check("summary ≥ 60 % of hello", ratio, ">=", 0.6)])
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Metric:
    """A measured figure, reported as is."""

    name: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Check:
    """A figure compared with a SPEC budget: ``value <op> target``."""

    name: str
    value: float
    op: Literal[">=", "<="]
    target: float
    unit: str = ""

    @property
    def ok(self) -> bool:
        return self.value >= self.target if self.op == ">=" else self.value <= self.target


@dataclass(slots=True)
class Result:
    metrics: list[Metric] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


Runner = Callable[[Params], Awaitable[Result]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    run: Runner
    defaults: Params
    smoke: Params
    description: str


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, *, defaults: Params | None = None, smoke: Params | None = None
) -> Callable[[Runner], Runner]:
    """Register ``run`` under ``name``; ``smoke`` overrides make it tiny for the test suite."""

    def register(run: Runner) -> Runner:
        if name in SCENARIOS:
            raise ValueError(f"duplicate bench scenario {name!r}")
        doc = (run.__doc__ or "").strip().splitlines()
        SCENARIOS[name] = Scenario(
            name, run, dict(defaults or {}), dict(smoke or {}), doc[0] if doc else ""
        )
        return run

    return register


def discover() -> dict[str, Scenario]:
    """Import every module of ``bench.scenarios`` so their decorators run."""
    import bench.scenarios as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return SCENARIOS
