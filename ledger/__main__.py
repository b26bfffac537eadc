"""``python -m ledger verify|monitor`` — the verifier and the witness, without the app."""

from ledger.cli import main

main()
