"""The real app, one uvicorn worker, plus a bare msgspec route for throughput baselines.

``python -m bench.serve_app --data-dir DIR --port PORT`` builds ``create_app(Settings(...))``
exactly as ``carpeta serve`` does (uvloop and httptools when installed, access log off,
no server header), then registers ``GET /bench/hello`` on that same app instance, so the
baseline pays the same middleware, hooks and logging as every production route. The route
exists only in this bench entry point, never in production code.

Settings are built from the arguments alone (no ``CARPETA_*`` variables are read), so a
developer's environment cannot point the bench at another database.

``--cprofile FILE`` runs the server under cProfile (event-loop thread) and writes the stats
on shutdown (SIGTERM or SIGINT): handy to see where a request's time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import signal
from collections.abc import Sequence
from pathlib import Path

import msgspec
import uvicorn
from litestar import Litestar, get

from wallet.app import create_app
from wallet.settings import Settings

HELLO_PATH = "/bench/hello"


class Hello(msgspec.Struct):
    message: str


@get(HELLO_PATH, summary="Bench baseline", include_in_schema=False)
async def hello() -> Hello:
    """The bare baseline: no dependencies, no guard, no database."""
    return Hello(message="hola")


def bench_settings(data_dir: Path, port: int, log_level: str = "INFO") -> Settings:
    settings = Settings(
        data_dir=data_dir,
        public_url=f"http://127.0.0.1:{port}",
        sms_sink=f"file:{(data_dir / 'sms.jsonl').resolve()}",
        log_level=log_level,
        log_format="json",
    )
    settings.check()
    return settings


def build_app(settings: Settings) -> Litestar:
    app = create_app(settings)
    app.register(hello)
    return app


def serve(settings: Settings, port: int, profile: Path | None = None) -> None:
    config = uvicorn.Config(
        build_app(settings),
        host="127.0.0.1",
        port=port,
        workers=1,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    if profile is None:
        server.run()
        return
    # uvicorn re-raises the signal that stopped it once it has shut down; with the default
    # handler that kills the process before the stats are written, so make it a no-op here.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        server.run()
    finally:
        profiler.disable()
        profiler.dump_stats(str(profile))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_app", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--cprofile", type=Path, default=None)
    args = parser.parse_args(argv)
    serve(bench_settings(args.data_dir, args.port, args.log_level), args.port, args.cprofile)


if __name__ == "__main__":
    main()
