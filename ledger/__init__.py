"""Transparency ledger: RFC 9162 Merkle log math and C2SP signed checkpoints.

This package imports nothing from the rest of the project, so verifiers — the CLI, monitors,
auditors' scripts — can use it alone. Importing ``ledger`` itself needs only the standard
library and ``cryptography``; the modules with I/O are imported explicitly:

* ``ledger.events`` — event body, canonical leaf bytes, subject pseudonyms (re-exported here);
* ``ledger.storage`` — SQLAlchemy tables and ``append`` (inside the caller's transaction);
* ``ledger.sequencer`` — the single writer: batches, nodes, one signed checkpoint per batch;
* ``ledger.proofs`` — checkpoints, proofs, citizen/regulator queries, stats, export;
* ``ledger.verify`` — offline export verification; ``ledger.monitor`` — the witness (httpx);
* ``ledger.cli`` — the ``ledger`` click group (``python -m ledger``).
"""

from ledger.events import (
    EVENT_TYPES,
    EventError,
    LedgerEvent,
    pseudonym,
)
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    ProofError,
    assemble_proof,
    consistency_proof,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_ranges,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    required_nodes,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.note import (
    Checkpoint,
    InvalidSignatureError,
    NoteError,
    NoteSignature,
    NoteVerifier,
    OpenedNote,
    UnverifiedNoteError,
    format_vkey,
    is_valid_key_name,
    key_id,
    open_note,
    parse_checkpoint,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    verify_note,
)

__all__ = [
    "EMPTY_ROOT",
    "EVENT_TYPES",
    "HASH_SIZE",
    "Checkpoint",
    "CompactRange",
    "EventError",
    "InvalidSignatureError",
    "LedgerEvent",
    "NoteError",
    "NoteSignature",
    "NoteVerifier",
    "OpenedNote",
    "ProofError",
    "UnverifiedNoteError",
    "assemble_proof",
    "consistency_proof",
    "consistency_proof_ranges",
    "format_vkey",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "is_valid_key_name",
    "key_id",
    "leaf_hash",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "parse_vkey",
    "perfect_subtrees",
    "pseudonym",
    "required_nodes",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "sign_note",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
    "verify_note",
]
