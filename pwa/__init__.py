"""The citizen PWA: static files (``pwa/static``), the asset table built from them
(:mod:`pwa.assets`) and the routes serving them (:mod:`pwa.routes`). See docs/pwa.md."""
