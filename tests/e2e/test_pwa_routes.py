"""The PWA's server side without a browser: how the asset table is built (hashing in
dependency order, references, refusals), content-coding choice, and the routes inside the
real app — with the compressor told to leave precompressed bodies alone, and without."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import pytest
from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.testing import TestClient

from pwa.assets import IMMUTABLE, AssetError, build, build_table, minify
from pwa.routes import PRECOMPRESSED_OPT, choose_coding, pwa_route_handlers
from wallet.app import create_app
from wallet.settings import Settings

SHELL = {
    "index.html": b'<link rel="stylesheet" href="./a.css">'
    b'<script type="module" src="./main.js"></script>',
    "sw.js": b'const V = "__VERSION__"; const P = "__PRECACHE__";\n',
    "manifest.webmanifest": b'{"icons": [{"src": "./icon.svg"}]}',
    "icon.svg": b"<svg/>",
    "a.css": b"/* why */\nbody {\n  color: red;\n}\n",
    "main.js": b'// the app\nimport { x } from "./lib.js";\n  x();\n',
    "lib.js": b"export const x = () => 1;\n",
}


def test_names_follow_content_and_dependencies() -> None:
    table = build_table(SHELL)
    lib, main = table.url("lib.js"), table.url("main.js")
    assert re.fullmatch(r"/static/lib\.[0-9a-f]{12}\.js", lib)
    served_main = table.by_path[main].body.decode()
    assert f'from "{lib}"' in served_main and "// the app" not in served_main
    assert table.by_path["/"].body.decode().count("/static/") == 2
    assert table.by_path["/"].cache_control == "no-cache"
    assert table.by_path[lib].cache_control == IMMUTABLE

    # Changing a dependency renames it and everything that imports it, nothing else.
    changed = build_table({**SHELL, "lib.js": b"export const x = () => 2;\n"})
    assert changed.url("lib.js") != lib and changed.url("main.js") != main
    assert changed.url("a.css") == table.url("a.css")
    assert changed.version != table.version

    worker = table.by_path["/sw.js"].body.decode()
    assert f'"{table.version}"' in worker and f'"{lib}"' in worker and '"/"' in worker
    assert table.url("manifest.webmanifest") not in table.precache


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"main.js": b'import "./missing.js";\n'}, "missing.js"),
        ({"lib.js": b'import "./main.js";\n'}, "cycle"),
        ({"sw.js": b"self.addEventListener('fetch', () => {});\n"}, "__PRECACHE__"),
        ({"main.js": b'import "./index.html";\n'}, "index.html"),
    ],
)
def test_inconsistent_sources_are_refused_at_build(change: dict[str, bytes], message: str) -> None:
    with pytest.raises(AssetError, match=re.escape(message)):
        build_table({**SHELL, **change})


def test_minify_is_conservative() -> None:
    assert (
        minify("a.js", "// why\n  const a = 1; // kept\n\n  f();\n")
        == "const a = 1; // kept\nf();\n"
    )
    template = "const t = `line\n  // not a comment inside a template\n`;\n"
    assert minify("t.js", template) == template
    assert minify("a.css", "/* x */\na {\n  b: c;\n}\n") == "a {b: c;}\n"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip", "gzip"),
        ("br;q=0, gzip;q=0.5", "gzip"),
        ("identity", None),
        ("", None),
        ("*", "br"),
        ("BR", "br"),
    ],
)
def test_content_coding_choice(header: str, expected: str | None) -> None:
    asset = build().by_path["/"]
    assert choose_coding(header, asset) == expected


def test_the_real_shell_builds_with_every_reference_resolved() -> None:
    table = build()
    index = table.by_path["/"].body.decode()
    assert "./" not in re.sub(r"<!--.*?-->", "", index)
    for asset in table.by_path.values():
        if asset.media_type.startswith("text/javascript"):
            assert not re.search(r"""["']\./[\w.-]+["']""", asset.body.decode()), asset.source
    assert table.url("efirma.js") not in table.precache


def _client(tmp_path: Path, *, excluded: bool) -> Iterator[TestClient[Litestar]]:
    """The real app as ``wallet/app.py`` wires it (its compressor told to leave precompressed
    bodies alone), or the routes in an app whose stock compressor was not told."""
    if excluded:
        settings = Settings(data_dir=tmp_path / "var", public_url="http://127.0.0.1:8000")
        app = create_app(settings)
        assert app.compression_config is not None
        assert app.compression_config.exclude_opt_key == PRECOMPRESSED_OPT
    else:
        config = CompressionConfig(backend="brotli", brotli_gzip_fallback=True, minimum_size=256)
        app = Litestar(route_handlers=pwa_route_handlers(), compression_config=config)
    with TestClient(app) as client:
        yield client


@pytest.fixture(params=[True, False], ids=["precompressed", "compressed-by-app"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient[Any]]:
    yield from _client(tmp_path, excluded=request.param)


def _raw(client: TestClient[Any], path: str, coding: str) -> tuple[dict[str, str], bytes]:
    with client.stream("GET", path, headers={"Accept-Encoding": coding}) as response:
        return dict(response.headers), b"".join(response.iter_raw())


def test_routes_in_the_app_never_compress_twice(client: TestClient[Any]) -> None:
    table = build()
    core = table.url("core.js")
    headers, raw = _raw(client, core, "br")
    assert headers["content-encoding"] == "br"
    assert brotli.decompress(raw) == table.by_path[core].body
    assert headers["cache-control"] == IMMUTABLE

    headers, raw = _raw(client, "/", "gzip")
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == table.by_path["/"].body
    assert client.get("/static/nope.js").status_code == 404


def test_the_real_app_serves_the_shell_under_its_security_headers(tmp_path: Path) -> None:
    for client in _client(tmp_path, excluded=True):
        headers, _ = _raw(client, "/", "br")
        assert headers["content-encoding"] == "br"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert client.get("/healthz").status_code == 200  # the app's own routes are untouched
