"""Where the public test vectors live (copied from the project's shared fixtures so a clean
clone is self-contained): CURP examples, RFC 6962 Merkle vectors, SAT's test e.firma files."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAT_DIR = FIXTURES / "sat-test-certs"
