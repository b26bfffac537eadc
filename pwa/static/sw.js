// The service worker keeps the app shell, so the app opens without signal and a repeat visit
// downloads none of it. It never stores API answers: the page keeps the person's own copy,
// which "Salir" erases; here there is only the public shell.
// The server fills in VERSION (a digest of every file) and PRECACHE (the hashed names):
// a new release is a new sw.js, installed beside the old one, which it then replaces.
const VERSION = "__VERSION__";
const PRECACHE = "__PRECACHE__";
const SHELL = "shell-" + VERSION;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()));
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
