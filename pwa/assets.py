"""The PWA's files as served: content-hashed names, precompressed bodies, cache headers.

Built once per process from ``pwa/static/`` (no build chain: the sources *are* the app).

- Every file except ``index.html`` and ``sw.js`` is served as ``/static/<stem>.<hash>.<ext>``
  with ``Cache-Control: public, max-age=31536000, immutable``. The hash covers the bytes as
  served, after references inside the file were rewritten, so a change anywhere below a
  module gives that module a new name too (files are processed in dependency order).
- A reference is a quoted relative name, ``"./name.ext"`` (or single quotes), in JS, CSS,
  HTML or the manifest; it becomes the hashed URL. An unknown name or a cycle fails the build:
  better at start-up than as a 404 on a phone.
- ``sw.js`` gets the precache list and a version (a digest of every served name) in place of
  the ``"__PRECACHE__"`` and ``"__VERSION__"`` placeholders (and the page's digest, the start
  of its ETag, for ``"__PAGE__"`` when present), and is served unhashed at the root
  (a service worker's URL must stay stable) with ``no-cache``; ``index.html`` is served at ``/``.
- Bodies are compressed once, here: brotli at quality 11 and gzip at level 9 (deterministic,
  no timestamp), kept only where smaller than the original.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import brotli

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

#: Files that are served from the root, not hashed.
INDEX = "index.html"
SERVICE_WORKER = "sw.js"
MANIFEST = "manifest.webmanifest"

#: Not precached by the service worker: the e.firma code and the form granting a permission
#: from scratch load only when chosen (and need the network anyway); the manifest and its
#: icons are only read when installing (the page's own favicon is a data: URI in index.html,
#: which costs no request).
NOT_PRECACHED = frozenset(
    {
        "efirma.js",
        "grant.js",
        "icon.svg",
        "icon-192.png",
        "icon-512.png",
        "icon-maskable.png",
        MANIFEST,
    }
)

#: Litestar appends ``; charset=utf-8`` to ``text/*`` types itself.
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
}
TEXT_SUFFIXES = frozenset({".js", ".css", ".html", ".svg", ".webmanifest", ".json"})

_REFERENCE = re.compile(r"""(["'])\./([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)\1""")


class AssetError(ValueError):
    """The static sources are inconsistent (unknown reference, cycle, missing file)."""


@dataclass(frozen=True, slots=True)
class Asset:
    """One served file: its URL path, headers and the bodies per content coding."""

    path: str
    source: str
    media_type: str
    cache_control: str
    body: bytes
    digest: str
    #: Content coding (``br``, ``gzip``) → body; only codings smaller than ``body``.
    encoded: Mapping[str, bytes] = field(default_factory=dict)

    def etag(self, coding: str | None) -> str:
        """A strong validator per representation: each coding is a different entity."""
        suffix = f"-{coding}" if coding else ""
        return f'"{self.digest[:24]}{suffix}"'


@dataclass(frozen=True, slots=True)
class AssetTable:
    """Served path → asset, and source name → served path."""

    by_path: Mapping[str, Asset]
    urls: Mapping[str, str]
    version: str
    precache: tuple[str, ...]

    def get(self, path: str) -> Asset | None:
        return self.by_path.get(path)

    def url(self, source_name: str) -> str:
        return self.urls[source_name]

    def total(self, coding: str | None = "br") -> dict[str, int]:
        """Bytes per served path in ``coding`` (falling back to identity): for reports."""
        return {
            path: len(asset.encoded.get(coding, asset.body) if coding else asset.body)
            for path, asset in self.by_path.items()
        }


def _compress(body: bytes, text: bool) -> dict[str, bytes]:
    if not text or len(body) < 64:
        return {}
    out: dict[str, bytes] = {}
    br = brotli.compress(body, mode=brotli.MODE_TEXT, quality=11)
    if len(br) < len(body):
        out["br"] = br
    gz = gzip.compress(body, compresslevel=9, mtime=0)
    if len(gz) < len(body):
        out["gzip"] = gz
    return out


def minify(name: str, text: str) -> str:
    """Comments and indentation are for people; phones get the code.

    Deliberately conservative: in JS only whole comment lines and surrounding blanks go and
    line breaks stay (no automatic-semicolon surprises), and a file with template literals,
    which may span lines, is left as it is. In CSS, comments and line breaks go.
    """
    suffix = Path(name).suffix
    if suffix == ".js" and "`" not in text:
        lines = (line.strip() for line in text.splitlines())
        return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"
    if suffix == ".css":
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
        return "".join(line.strip() for line in text.splitlines()) + "\n"
    return text


def _references(text: str) -> list[str]:
    return [m.group(2) for m in _REFERENCE.finditer(text)]


def _rewrite(text: str, urls: Mapping[str, str], owner: str) -> str:
    def replace(match: re.Match[str]) -> str:
        quote, name = match.group(1), match.group(2)
        if name not in urls:
            raise AssetError(f"{owner} refers to ./{name}, which is not a served file")
        return f"{quote}{urls[name]}{quote}"

    return _REFERENCE.sub(replace, text)


def _order(sources: Mapping[str, bytes]) -> list[str]:
    """Hashed files, each after every file it refers to (depth-first; cycles refused)."""
    graph: dict[str, list[str]] = {}
    for name, data in sources.items():
        if name in (INDEX, SERVICE_WORKER):
            continue
        refs = _references(data.decode("utf-8")) if Path(name).suffix in TEXT_SUFFIXES else []
        for ref in refs:
            if ref not in sources or ref in (INDEX, SERVICE_WORKER):
                raise AssetError(f"{name} refers to ./{ref}, which is not a hashed static file")
        graph[name] = refs
    done: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise AssetError("reference cycle: " + " → ".join((*trail, name)))
        state[name] = 1
        for ref in graph[name]:
            visit(ref, (*trail, name))
        state[name] = 2
        done.append(name)

    for name in sorted(graph):
        visit(name, ())
    return done


def _asset(path: str, source: str, body: bytes, cache_control: str) -> Asset:
    suffix = Path(source).suffix
    return Asset(
        path=path,
        source=source,
        media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"),
        cache_control=cache_control,
        body=body,
        digest=hashlib.sha256(body).hexdigest(),
        encoded=_compress(body, suffix in TEXT_SUFFIXES),
    )


def read_sources(directory: Path = STATIC_DIR) -> dict[str, bytes]:
    """Every file directly in ``directory`` (flat on purpose: one namespace of names)."""
    files = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
    for required in (INDEX, SERVICE_WORKER, MANIFEST):
        if required not in files:
            raise AssetError(f"{directory} has no {required}")
    return files


def build_table(sources: Mapping[str, bytes]) -> AssetTable:
    """Hash, rewrite and compress ``sources`` (file name → bytes) into the served table."""
    urls: dict[str, str] = {}
    by_path: dict[str, Asset] = {}
    for name in _order(sources):
        data = sources[name]
        if Path(name).suffix in TEXT_SUFFIXES:
            data = minify(name, _rewrite(data.decode("utf-8"), urls, name)).encode("utf-8")
        stem, dot, ext = name.rpartition(".")
        digest = hashlib.sha256(data).hexdigest()[:12]
        path = f"{STATIC_PREFIX}{stem}.{digest}{dot}{ext}"
        urls[name] = path
        by_path[path] = _asset(path, name, data, IMMUTABLE)

    index_html = _rewrite(sources[INDEX].decode("utf-8"), urls, INDEX).encode("utf-8")
    by_path["/"] = _asset("/", INDEX, index_html, REVALIDATE)
    # The manifest also lives at a stable, well-known address (revalidated, never immutable).
    manifest = by_path[urls[MANIFEST]]
    by_path["/" + MANIFEST] = _asset("/" + MANIFEST, MANIFEST, manifest.body, REVALIDATE)

    precache = ("/", *sorted(urls[n] for n in urls if n not in NOT_PRECACHED))
    version = hashlib.sha256("\n".join(sorted(by_path[p].digest for p in by_path)).encode())
    version_tag = version.hexdigest()[:16]
    worker = sources[SERVICE_WORKER].decode("utf-8")
    for placeholder in ('"__PRECACHE__"', '"__VERSION__"'):
        if placeholder not in worker:
            raise AssetError(f"{SERVICE_WORKER} lacks the {placeholder} placeholder")
    worker = worker.replace('"__PRECACHE__"', json.dumps(list(precache)))
    worker = worker.replace('"__VERSION__"', json.dumps(version_tag))
    # Optional: lets the worker recognise this release's page in the HTTP cache by its ETag.
    worker = worker.replace('"__PAGE__"', json.dumps(by_path["/"].digest[:24]))
    worker = minify(SERVICE_WORKER, _rewrite(worker, urls, SERVICE_WORKER))
    by_path["/" + SERVICE_WORKER] = _asset(
        "/" + SERVICE_WORKER, SERVICE_WORKER, worker.encode("utf-8"), REVALIDATE
    )
    return AssetTable(by_path=by_path, urls=urls, version=version_tag, precache=precache)


def build(directory: Path = STATIC_DIR) -> AssetTable:
    return build_table(read_sources(directory))


def first_load_paths(table: AssetTable) -> list[str]:
    """What a first visit fetches before it can show the sign-in screen: the page, then
    everything the page names (stylesheet, module preloads, icon, manifest)."""
    index = table.by_path["/"].body.decode("utf-8")
    named = re.findall(r'(?:href|src)="(/static/[^"]+)"', index)
    return ["/", *dict.fromkeys(named)]


def describe(table: AssetTable, names: Iterable[str] | None = None) -> list[tuple[str, int, int]]:
    """(source name, identity bytes, brotli bytes) rows, for docs and reports."""
    rows = []
    wanted = set(names) if names is not None else None
    for asset in sorted(table.by_path.values(), key=lambda a: a.path):
        if wanted is not None and asset.source not in wanted:
            continue
        rows.append((asset.source, len(asset.body), len(asset.encoded.get("br", asset.body))))
    return rows
