"""RFC 9162 §2.1 Merkle tree math: hashing, proofs as subtree ranges, verification, frontier.

Everything here is pure (no I/O) so that the same code serves the sequencer, the proof
endpoints, the offline ``carpeta ledger verify`` command and the tests.

Storage model this module is designed for
-----------------------------------------
A tree of size ``n`` is stored as its *perfect* (complete, power-of-two-aligned) subtrees:
node ``(level, index)`` is the Merkle Tree Hash (MTH) of leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Such a node
never changes once its last leaf exists, so it can be written once and read forever.

Proof generation is split in two steps so storage can answer in O(log n) reads, ideally one
query:

1. :func:`inclusion_proof_ranges` / :func:`consistency_proof_ranges` return the RFC 9162 proof
   as a list of leaf ranges ``[start, end)`` whose MTH is each proof element.
2. Each range is either a stored perfect node or a right-edge range that
   :func:`perfect_subtrees` splits into at most ``log2(n)`` stored nodes;
   :func:`required_nodes` collects every node a proof needs and :func:`assemble_proof` folds
   the fetched hashes back into proof elements. :func:`inclusion_proof` and
   :func:`consistency_proof` do both steps with a ``get_node(level, index)`` callback.

:class:`CompactRange` is the sequencer's in-memory frontier: it appends leaf hashes, reports
every perfect node completed by the append (to be persisted), and yields the root without
re-reading the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "ProofError",
    "assemble_proof",
    "consistency_proof",
    "consistency_proof_ranges",
    "inclusion_proof",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_subtrees",
    "required_nodes",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH({}) = SHA-256() — RFC 9162 §2.1.1: the hash of an empty tree is the hash of "" ."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

Range = tuple[int, int]
"""A half-open leaf range ``[start, end)``."""

Node = tuple[int, int]
"""A perfect subtree ``(level, index)``: leaves ``[index << level, (index + 1) << level)``."""

GetNode = Callable[[int, int], bytes]
"""Storage callback: ``get_node(level, index)`` returns the stored hash of that perfect node."""


class ProofError(ValueError):
    """A proof request or proof is malformed (sizes out of range, wrong lengths)."""


# ---------------------------------------------------------------------------------------------
# Hashing (RFC 9162 §2.1.1)
# ---------------------------------------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d).

    The 0x00 / 0x01 domain separation (RFC 9162 §2.1.1) stops a leaf from being passed off as an
    interior node (second-preimage attack on the tree).
    """
    return _sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node = SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) from the leaf hashes, RFC 9162 §2.1.1.

    Computed bottom-up, level by level: pairing adjacent nodes and promoting an odd last node
    unchanged builds exactly the RFC tree (whose left subtree is always the largest perfect
    one), in O(n) hashes and without recursion, so it works for millions of leaves.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    sha = _sha256
    while len(level) > 1:
        paired = [
            sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


# ---------------------------------------------------------------------------------------------
# Proofs as subtree ranges (RFC 9162 §2.1.3.1 and §2.1.4.1)
# ---------------------------------------------------------------------------------------------


def inclusion_proof_ranges(index: int, size: int) -> list[Range]:
    """The inclusion proof PATH(index, D[size]) of RFC 9162 §2.1.3.1 as leaf ranges.

    Element ``i`` of the proof is ``MTH(D[start:end])`` for the ``i``-th range, ordered from the
    leaf's sibling up to the root's child, as the RFC's recursion emits them. Iterative
    top-down walk: at each level the range *not* containing ``index`` is the sibling.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
    ranges.reverse()
    return ranges


def consistency_proof_ranges(first: int, second: int) -> list[Range]:
    """The consistency proof PROOF(first, D[second]) of RFC 9162 §2.1.4.1 as leaf ranges.

    RFC 9162 defines the proof for ``0 < first < second``; for ``first == second`` and for
    ``first == 0`` there is nothing to prove and the proof is empty (the verifier then checks
    the roots directly, see :func:`verify_consistency`).
    """
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    # SUBPROOF(m, D[start:end], b), unrolled: every recursive call appends one range *after*
    # the sub-result, so collect them and emit the base case first, then the tail reversed.
    tail: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            tail.append((start + k, end))
            end = start + k
        else:
            tail.append((start, start + k))
            start += k
            m -= k
            whole = False
    proof: list[Range] = [] if whole else [(start, end)]
    proof.extend(reversed(tail))
    return proof


def perfect_subtrees(start: int, end: int) -> list[Node]:
    """Split an RFC 9162 subtree range into the stored perfect nodes it is made of.

    Every range an RFC proof asks for starts at a multiple of the largest power of two not
    above its length, so ``D[start:end]`` splits, left to right, into perfect subtrees of the
    sizes of the set bits of ``end - start`` (largest first) — at most ``log2(n) + 1`` nodes —
    and its MTH is the right fold ``node_hash(p0, node_hash(p1, ... p_last))`` of their
    hashes. A range that is itself perfect yields exactly one node (one stored read).
    """
    length = end - start
    if start < 0 or length <= 0:
        raise ProofError(f"empty or negative range [{start}, {end})")
    top = length.bit_length() - 1
    if start & ((1 << top) - 1):
        raise ProofError(f"range [{start}, {end}) is not an RFC 9162 subtree")
    nodes: list[Node] = []
    pos = start
    for level in range(top, -1, -1):
        if length >> level & 1:
            nodes.append((level, pos >> level))
            pos += 1 << level
    return nodes


def subtree_hash(start: int, end: int, get_node: GetNode) -> bytes:
    """MTH(D[start:end]) from stored perfect nodes (see :func:`perfect_subtrees`)."""
    nodes = perfect_subtrees(start, end)
    level, index = nodes[-1]
    acc = get_node(level, index)
    for level, index in reversed(nodes[:-1]):
        acc = _sha256(b"\x01" + get_node(level, index) + acc).digest()
    return acc


def required_nodes(ranges: Iterable[Range]) -> list[Node]:
    """Every distinct stored node needed to answer ``ranges``, for a single batched read."""
    seen: dict[Node, None] = {}
    for start, end in ranges:
        for node in perfect_subtrees(start, end):
            seen[node] = None
    return list(seen)


def assemble_proof(ranges: Iterable[Range], nodes: Mapping[Node, bytes]) -> list[bytes]:
    """Proof hashes for ``ranges`` from a mapping of fetched nodes (``KeyError`` if missing)."""
    get = nodes.__getitem__
    return [subtree_hash(start, end, lambda lv, ix: get((lv, ix))) for start, end in ranges]


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return [subtree_hash(s, e, get_node) for s, e in inclusion_proof_ranges(index, size)]


def consistency_proof(first: int, second: int, get_node: GetNode) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof between tree sizes ``first`` and ``second``."""
    return [subtree_hash(s, e, get_node) for s, e in consistency_proof_ranges(first, second)]


# ---------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2)
# ---------------------------------------------------------------------------------------------


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof, per RFC 9162 §2.1.3.2 steps 1-5.

    Raises :class:`ProofError` when the proof cannot be for ``(index, size)`` (index out of
    range, proof too long or too short, element of the wrong size), so a caller comparing the
    result with a signed root only has to check equality.
    """
    # Step 1: leaf_index must be < tree_size.
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError("leaf hash must be 32 bytes")
    # Steps 2-3.
    fn, sn = index, size - 1
    r = leaf_hash
    sha = _sha256
    # Step 4.
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError("proof hashes must be 32 bytes")
        if sn == 0:  # 4a: more elements than the path has levels.
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:  # 4b: p is a left sibling (or we are on the right edge).
            r = sha(b"\x01" + p + r).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha(b"\x01" + r + p).digest()
        fn >>= 1  # 4c
        sn >>= 1
    # Step 5: sn must have reached 0, otherwise levels are missing.
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff ``proof`` shows leaf hash ``leaf_hash`` at ``index`` in the tree ``(size, root)``.

    RFC 9162 §2.1.3.2. Never raises on bad input: a malformed proof is simply not valid.
    """
    try:
        return root_from_inclusion_proof(leaf_hash, index, size, proof) == root
    except ProofError:
        return False


def root_from_consistency_proof(
    first: int, second: int, first_root: bytes, proof: Sequence[bytes]
) -> bytes:
    """The second root implied by a consistency proof, after checking it against ``first_root``.

    RFC 9162 §2.1.4.2 steps 1-7, for ``0 < first < second``; the degenerate cases follow the
    convention of :func:`consistency_proof_ranges` (empty proof; ``first == second`` returns
    ``first_root``; ``first == 0`` requires ``first_root`` to be the empty-tree hash and cannot
    imply a second root, so it raises). Raises :class:`ProofError` when the proof is
    malformed or does not reproduce ``first_root``.
    """
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if len(first_root) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    if first == second:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        return first_root
    if first == 0:
        raise ProofError("a proof from the empty tree does not determine the second root")
    # Step 1: an empty path cannot prove anything when 0 < first < second.
    if not proof:
        raise ProofError("consistency proof is empty")
    # Step 2: when first is a power of two, its root is itself a node of the second tree and
    # is not sent; the verifier supplies it.
    path = [first_root, *proof] if first & (first - 1) == 0 else list(proof)
    # Step 3.
    fn, sn = first - 1, second - 1
    # Step 4: skip the levels where the first tree's last node is a right child.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    sha = _sha256
    # Step 6.
    for c in path[1:]:
        if sn == 0:  # 6a
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:  # 6b
            fr = sha(b"\x01" + c + fr).digest()
            sr = sha(b"\x01" + c + sr).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha(b"\x01" + sr + c).digest()
        fn >>= 1  # 6c
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != first_root:
        raise ProofError("consistency proof does not match the first root")
    return sr


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff ``proof`` shows the tree ``(second, second_root)`` extends ``(first, first_root)``.

    RFC 9162 §2.1.4.2, plus the two trivial cases it leaves out: equal sizes need an empty proof
    and equal roots; the empty tree (whose root must be SHA-256("")) is a prefix of every tree.
    Never raises on bad input.
    """
    try:
        if first == 0:
            # The empty tree is a prefix of every tree; only its own root is checkable.
            if second == 0:
                return not proof and first_root == second_root == EMPTY_ROOT
            return second > 0 and not proof and first_root == EMPTY_ROOT
        return root_from_consistency_proof(first, second, first_root, proof) == second_root
    except ProofError:
        return False


# ---------------------------------------------------------------------------------------------
# Frontier for the sequencer
# ---------------------------------------------------------------------------------------------


class CompactRange:
    """The right frontier of a tree: the perfect subtrees covering ``[0, size)``, largest first.

    This is all the state needed to append leaves and compute roots, so the sequencer can
    integrate a batch without reading the stored tree. ``append_many`` returns every perfect
    node ``(level, index, hash)`` the batch completed — including the level-0 leaf hashes —
    which is exactly the set of rows storage must insert. A restarted sequencer rebuilds the
    frontier with ``CompactRange(size, hashes)`` from the nodes ``frontier_nodes(size)``.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError("frontier hashes must be 32 bytes")
        self._size = size
        self._hashes: list[bytes] = list(hashes)

    @staticmethod
    def frontier_nodes(size: int) -> list[Node]:
        """The stored nodes ``(level, index)`` that make up the frontier of a tree of ``size``."""
        return perfect_subtrees(0, size) if size else []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Frontier hashes, largest subtree first (matches :meth:`frontier_nodes`)."""
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        """An independent copy (e.g. to compute a batch tentatively before committing)."""
        return CompactRange(self._size, self._hashes)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return the perfect nodes it completed (see ``append_many``)."""
        return self.append_many((leaf_hash,))

    def append_many(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Append leaf hashes in order; return every newly completed ``(level, index, hash)``.

        Appending leaf number ``size`` completes one node per trailing 1-bit of ``size``
        (binary-counter carry), so a batch of ``b`` leaves costs fewer than ``2 * b`` hashes
        in total, and the nodes come out in an order where children precede parents.
        """
        batch = leaf_hashes if isinstance(leaf_hashes, list | tuple) else list(leaf_hashes)
        # Validate before mutating: a batch is integrated entirely or not at all.
        if any(len(h) != HASH_SIZE for h in batch):
            raise ValueError("leaf hashes must be 32 bytes")
        stack = self._hashes
        size = self._size
        out: list[tuple[int, int, bytes]] = []
        emit = out.append
        push = stack.append
        pop = stack.pop
        sha = _sha256
        for h in batch:
            emit((0, size, h))
            carry = size
            level = 0
            while carry & 1:
                h = sha(b"\x01" + pop() + h).digest()
                carry >>= 1
                level += 1
                emit((level, carry, h))
            push(h)
            size += 1
        self._size = size
        return out

    def root(self) -> bytes:
        """MTH of the leaves so far: fold the frontier from the right (RFC 9162 §2.1.1)."""
        stack = self._hashes
        if not stack:
            return EMPTY_ROOT
        acc = stack[-1]
        for h in reversed(stack[:-1]):
            acc = _sha256(b"\x01" + h + acc).digest()
        return acc
