"""Benchmarks for the SPEC budgets: ``python -m bench [scenario…]`` (``make bench``).

Each scenario lives in ``bench/scenarios/<name>.py`` and registers itself with
:func:`bench.registry.scenario`; the runner discovers them, runs the ones asked for, writes
``bench/results/<name>.json`` and regenerates ``bench/results/REPORT.md`` from every JSON
file there. Everything runs on loopback/local files only, bounded in time.
"""
