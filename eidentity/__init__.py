"""eidentity package."""
