"""The citizen's folder: procedures and records that agencies publish, and messages."""
