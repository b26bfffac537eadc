"""pwa package."""
