// The service worker keeps the app shell, so the app opens without signal and a repeat visit
// downloads none of it. It never stores API answers: the page keeps the person's own copy,
// which "Salir" erases; here there is only the public shell.
// The server fills in VERSION (a digest of every file), PRECACHE (the hashed names) and PAGE
// (the digest of this release's page, as its ETag starts): a new release is a new sw.js,
// installed beside the old one, which it then replaces.
const VERSION = "__VERSION__";
const PRECACHE = "__PRECACHE__";
const PAGE = "__PAGE__";
const SHELL = "shell-" + VERSION;

// The visit installing this worker has just downloaded what it keeps: take each file from the
// browser's HTTP cache, not the network. A hashed name cannot be stale; the page is taken only
// if it is this release's (its ETag says so), else asked for again. The server varies on
// Accept, so each file is asked for as the page asked for it (Chrome's words); with other
// words the cache merely revalidates (a 304), which is also correct.
const ACCEPT = {
  "/": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
  css: "text/css,*/*;q=0.1",
};
async function keep(cache, url) {
  const accept = ACCEPT[url] || (url.endsWith(".css") ? ACCEPT.css : "*/*");
  let response = await fetch(url, { cache: "force-cache", headers: { Accept: accept } });
  const etag = response.headers.get("ETag") || "";
  if (url === "/" && !etag.startsWith('"' + PAGE)) response = await fetch(url, { cache: "no-cache" });
  if (!response.ok) throw new Error(url + " " + response.status);
  await cache.put(url, response);
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL)
      .then((cache) => Promise.all(PRECACHE.map((url) => keep(cache, url))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== SHELL).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== location.origin) return;
  // Only the app's own page: other addresses (/schema, /healthz…) reach the server as usual.
  if (request.mode === "navigate" && url.pathname === "/") event.respondWith(shell(request));
  else if (url.pathname.startsWith("/static/")) event.respondWith(hashed(request));
});

// ignoreVary: the page and its copy were fetched with different Accept headers.
async function shell(request) {
  const hit = await caches.match("/", { cacheName: SHELL, ignoreVary: true, ignoreSearch: true });
  return hit || fetch(request);
}

// Hashed names never change content: the cached copy is always right. Files loaded later
// (the e.firma module) join the cache the first time they are fetched.
async function hashed(request) {
  const cache = await caches.open(SHELL);
  const hit = await cache.match(request, { ignoreVary: true });
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) cache.put(request, response.clone());
  return response;
}
