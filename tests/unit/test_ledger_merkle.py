"""RFC 9162 Merkle math: public vectors, and properties against a naive reference implementation.

The reference functions below (``naive_*``) transcribe RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1
recursively and literally, independently of ``ledger.merkle``'s iterative code, so that every
property compares two different derivations of the same definitions.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from functools import cache

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
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
    verify_consistency,
    verify_inclusion,
)
from tests.paths import FIXTURES

FIXTURE = FIXTURES / "rfc6962-vectors.json"
VECTORS = json.loads(FIXTURE.read_text(encoding="utf-8"))
FIXTURE_LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves_hex"]]
NAMED = {name: bytes.fromhex(h) for name, h in VECTORS["named_hashes"].items()}

MAX_SIZE = 300


# --------------------------------------------------------------------------------------------
# Naive reference (RFC 9162 text, recursive)
# --------------------------------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_for(n: int) -> int:
    """Largest power of two smaller than n (n > 1), by counting, not by bit tricks."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + leaves[0])
    k = k_for(n)
    return sha256(b"\x01" + naive_mth(leaves[:k]) + naive_mth(leaves[k:]))


def naive_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = k_for(n)
    if m < k:
        return [*naive_path(m, leaves[:k]), naive_mth(leaves[k:])]
    return [*naive_path(m - k, leaves[k:]), naive_mth(leaves[:k])]


def naive_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [naive_mth(leaves)]
    k = k_for(n)
    if m <= k:
        return [*naive_subproof(m, leaves[:k], whole), naive_mth(leaves[k:])]
    return [*naive_subproof(m - k, leaves[k:], False), naive_mth(leaves[:k])]


def naive_consistency(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return naive_subproof(m, leaves, True)


# Distinct leaves (distinct leaf hashes make a wrong index or size genuinely wrong).
LEAVES = [b"carpeta-event-%d" % i for i in range(MAX_SIZE)]
LEAF_HASHES = [leaf_hash(x) for x in LEAVES]


def _build_nodes() -> dict[tuple[int, int], bytes]:
    nodes: dict[tuple[int, int], bytes] = {}
    cr = CompactRange()
    for level, index, h in cr.append_many(LEAF_HASHES):
        nodes[(level, index)] = h
    return nodes


NODES = _build_nodes()


def getter_for(size: int) -> Callable[[int, int], bytes]:
    """A storage stand-in for a tree of ``size`` leaves: it refuses nodes that would not yet
    exist (not complete) at that size, which proof generation must never ask for."""

    def get(level: int, index: int) -> bytes:
        assert (index + 1) << level <= size, f"node {(level, index)} incomplete at size {size}"
        return NODES[(level, index)]

    return get


@cache
def root_of(size: int) -> bytes:
    return naive_mth(LEAVES[:size])


def flip_bit(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def ceil_log2(n: int) -> int:
    """Exact ceil(log2 n) for n >= 1 (floats round 2**50 + 1 down to 2**50)."""
    return (n - 1).bit_length()


def log_bound(n: int) -> int:
    """2 * ceil(log2 n) + 2: the proof-size budget a client would notice."""
    return 2 * ceil_log2(n) + 2


# --------------------------------------------------------------------------------------------
# Public vectors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_roots_for_sizes_0_to_8_match_the_published_vectors(size: int) -> None:
    expected = bytes.fromhex(VECTORS["roots_by_size"][str(size)])
    hashes = [leaf_hash(x) for x in FIXTURE_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes) == expected
    assert naive_mth(FIXTURE_LEAVES[:size]) == expected
    cr = CompactRange()
    cr.append_many(hashes)
    assert cr.root() == expected


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert CompactRange().root() == EMPTY_ROOT


def test_named_hashes_are_what_their_names_say() -> None:
    assert NAMED["L4"] == leaf_hash(FIXTURE_LEAVES[4])
    assert NAMED["N23"] == node_hash(leaf_hash(FIXTURE_LEAVES[2]), leaf_hash(FIXTURE_LEAVES[3]))
    assert NAMED["N45"] == node_hash(leaf_hash(FIXTURE_LEAVES[4]), leaf_hash(FIXTURE_LEAVES[5]))
    assert NAMED["N67"] == node_hash(leaf_hash(FIXTURE_LEAVES[6]), leaf_hash(FIXTURE_LEAVES[7]))
    assert NAMED["R4"] == bytes.fromhex(VECTORS["roots_by_size"]["4"])


def _fixture_getter() -> Callable[[int, int], bytes]:
    nodes = {
        (lv, ix): h
        for lv, ix, h in CompactRange().append_many([leaf_hash(x) for x in FIXTURE_LEAVES])
    }
    return lambda level, index: nodes[(level, index)]


def test_inclusion_of_leaf_5_in_size_8_is_generated_and_verified() -> None:
    expected = [NAMED[n] for n in VECTORS["proofs"]["inclusion of leaf 5 in size 8"]]
    root8 = bytes.fromhex(VECTORS["roots_by_size"]["8"])
    assert inclusion_proof(5, 8, _fixture_getter()) == expected
    assert verify_inclusion(leaf_hash(FIXTURE_LEAVES[5]), 5, 8, expected, root8)
    assert not verify_inclusion(leaf_hash(FIXTURE_LEAVES[4]), 5, 8, expected, root8)


@pytest.mark.parametrize(("first", "second"), [(6, 8), (2, 5)])
def test_named_consistency_proofs_are_generated_and_verified(first: int, second: int) -> None:
    expected = [NAMED[n] for n in VECTORS["proofs"][f"consistency {first} -> {second}"]]
    r1 = bytes.fromhex(VECTORS["roots_by_size"][str(first)])
    r2 = bytes.fromhex(VECTORS["roots_by_size"][str(second)])
    assert consistency_proof(first, second, _fixture_getter()) == expected
    assert verify_consistency(first, second, r1, r2, expected)
    assert root_from_consistency_proof(first, second, r1, expected) == r2
    assert not verify_consistency(first, second, r2, r1, expected)


# --------------------------------------------------------------------------------------------
# Inclusion proofs: properties
# --------------------------------------------------------------------------------------------

two_sizes = st.integers(1, MAX_SIZE).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
size_and_index = st.integers(1, MAX_SIZE).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n - 1))
)


@settings(max_examples=300, deadline=None)
@given(size_and_index)
def test_every_inclusion_proof_matches_the_rfc_and_verifies(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_proof(index, size, getter_for(size))
    assert proof == naive_path(index, LEAVES[:size])
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, root_of(size))
    assert root_from_inclusion_proof(LEAF_HASHES[index], index, size, proof) == root_of(size)
    ranges = inclusion_proof_ranges(index, size)
    # The batched storage path (one read of all needed nodes) gives the same proof.
    needed = required_nodes(ranges)
    fetched = {node: getter_for(size)(*node) for node in needed}
    assert assemble_proof(ranges, fetched) == proof
    assert len(needed) <= log_bound(size)


@settings(max_examples=300, deadline=None)
@given(size_and_index, st.data())
def test_any_flipped_bit_breaks_an_inclusion_proof(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    proof = inclusion_proof(index, size, getter_for(size))
    root, leaf = root_of(size), LEAF_HASHES[index]
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="element")
        bit = data.draw(st.integers(0, 255), label="bit")
        bad = [*proof[:i], flip_bit(proof[i], bit), *proof[i + 1 :]]
        assert not verify_inclusion(leaf, index, size, bad, root)
    bit = data.draw(st.integers(0, 255), label="leaf/root bit")
    assert not verify_inclusion(flip_bit(leaf, bit), index, size, proof, root)
    assert not verify_inclusion(leaf, index, size, proof, flip_bit(root, bit))


@settings(max_examples=300, deadline=None)
@given(size_and_index, st.integers(0, MAX_SIZE + 5))
def test_an_inclusion_proof_fails_for_any_other_index(case: tuple[int, int], other: int) -> None:
    size, index = case
    assume(other != index)
    proof = inclusion_proof(index, size, getter_for(size))
    assert not verify_inclusion(LEAF_HASHES[index], other, size, proof, root_of(size))


@settings(max_examples=300, deadline=None)
@given(size_and_index, st.integers(1, MAX_SIZE))
def test_an_inclusion_proof_fails_for_any_other_tree(case: tuple[int, int], other: int) -> None:
    # A tree is its (size, root) pair — what a checkpoint signs — so "wrong size" means
    # checking the proof against another checkpoint.
    size, index = case
    assume(other != size)
    proof = inclusion_proof(index, size, getter_for(size))
    assert not verify_inclusion(LEAF_HASHES[index], index, other, proof, root_of(other))


@settings(max_examples=300, deadline=None)
@given(size_and_index, st.data())
def test_truncated_or_extended_inclusion_proofs_fail(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    proof = inclusion_proof(index, size, getter_for(size))
    root, leaf = root_of(size), LEAF_HASHES[index]
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra")
    where = data.draw(st.integers(0, len(proof)), label="insert at")
    assert not verify_inclusion(leaf, index, size, [*proof[:where], extra, *proof[where:]], root)
    assert not verify_inclusion(leaf, index, size, [*proof, extra], root)
    if proof:
        drop = data.draw(st.integers(0, len(proof) - 1), label="drop")
        assert not verify_inclusion(leaf, index, size, proof[:drop] + proof[drop + 1 :], root)
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
    # A hash of the wrong length is not a hash.
    assert not verify_inclusion(leaf, index, size, [*proof, b"\x00" * 31], root)


@settings(max_examples=100, deadline=None)
@given(size_and_index)
def test_wrong_length_proofs_are_reported_not_silently_hashed(case: tuple[int, int]) -> None:
    # Callers that derive a root (e.g. to compare with a later checkpoint) must learn that the
    # proof had the wrong number of levels, not get an arbitrary hash back.
    size, index = case
    proof = inclusion_proof(index, size, getter_for(size))
    with pytest.raises(ProofError, match="too long"):
        root_from_inclusion_proof(LEAF_HASHES[index], index, size, [*proof, EMPTY_ROOT])
    if proof:
        with pytest.raises(ProofError, match="too short"):
            root_from_inclusion_proof(LEAF_HASHES[index], index, size, proof[:-1])


@settings(max_examples=100, deadline=None)
@given(two_sizes)
def test_wrong_length_consistency_proofs_are_reported(case: tuple[int, int]) -> None:
    first, second = case
    assume(0 < first < second)
    proof = consistency_proof(first, second, getter_for(second))
    with pytest.raises(ProofError, match="too long"):
        root_from_consistency_proof(first, second, root_of(first), [*proof, EMPTY_ROOT])
    if len(proof) > 1:
        with pytest.raises(ProofError, match=r"too short|first root"):
            root_from_consistency_proof(first, second, root_of(first), proof[:-1])


def test_inclusion_rejects_out_of_range_requests() -> None:
    with pytest.raises(ProofError):
        inclusion_proof_ranges(5, 5)
    with pytest.raises(ProofError):
        inclusion_proof_ranges(-1, 5)
    with pytest.raises(ProofError):
        inclusion_proof_ranges(0, 0)
    assert not verify_inclusion(LEAF_HASHES[0], 0, 0, [], EMPTY_ROOT)
    assert inclusion_proof_ranges(0, 1) == []
    assert verify_inclusion(LEAF_HASHES[0], 0, 1, [], root_of(1))


# --------------------------------------------------------------------------------------------
# Consistency proofs: properties
# --------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(two_sizes)
def test_every_consistency_proof_matches_the_rfc_and_verifies(case: tuple[int, int]) -> None:
    first, second = case
    proof = consistency_proof(first, second, getter_for(second))
    if 0 < first < second:
        assert proof == naive_consistency(first, LEAVES[:second])
    else:
        assert proof == []
    assert verify_consistency(first, second, root_of(first), root_of(second), proof)
    ranges = consistency_proof_ranges(first, second)
    needed = required_nodes(ranges)
    fetched = {node: getter_for(second)(*node) for node in needed}
    assert assemble_proof(ranges, fetched) == proof
    assert len(needed) <= log_bound(second)


@settings(max_examples=300, deadline=None)
@given(two_sizes, st.data())
def test_tampered_consistency_proofs_fail(case: tuple[int, int], data: st.DataObject) -> None:
    first, second = case
    assume(0 < first < second)
    proof = consistency_proof(first, second, getter_for(second))
    r1, r2 = root_of(first), root_of(second)
    i = data.draw(st.integers(0, len(proof) - 1), label="element")
    bit = data.draw(st.integers(0, 255), label="bit")
    assert not verify_consistency(
        first, second, r1, r2, [*proof[:i], flip_bit(proof[i], bit), *proof[i + 1 :]]
    )
    assert not verify_consistency(first, second, flip_bit(r1, bit), r2, proof)
    assert not verify_consistency(first, second, r1, flip_bit(r2, bit), proof)
    # Truncated, extended.
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra")
    assert not verify_consistency(first, second, r1, r2, proof[:-1])
    assert not verify_consistency(first, second, r1, r2, proof[1:])
    assert not verify_consistency(first, second, r1, r2, [*proof, extra])
    assert not verify_consistency(first, second, r1, r2, [extra, *proof])


@settings(max_examples=300, deadline=None)
@given(two_sizes, st.integers(0, MAX_SIZE), st.integers(1, MAX_SIZE))
def test_a_consistency_proof_fails_between_other_trees(
    case: tuple[int, int], other_first: int, other_second: int
) -> None:
    first, second = case
    assume(0 < first < second)
    assume((other_first, other_second) != (first, second) and other_first <= other_second)
    proof = consistency_proof(first, second, getter_for(second))
    assert not verify_consistency(
        other_first, other_second, root_of(other_first), root_of(other_second), proof
    )


def test_consistency_degenerate_cases() -> None:
    r5 = root_of(5)
    assert verify_consistency(5, 5, r5, r5, [])
    assert not verify_consistency(5, 5, r5, root_of(4), [])
    assert not verify_consistency(5, 5, r5, r5, [r5])
    assert verify_consistency(0, 5, EMPTY_ROOT, r5, [])
    assert not verify_consistency(0, 5, r5, r5, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, r5, [r5])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, r5, [])
    assert not verify_consistency(6, 5, root_of(6), r5, [])
    assert not verify_consistency(3, 5, root_of(3), r5, [])  # RFC 9162 §2.1.4.2 step 1
    with pytest.raises(ProofError):
        consistency_proof_ranges(6, 5)


# --------------------------------------------------------------------------------------------
# Range decomposition and proof size
# --------------------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.integers(1, 1 << 62).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_inclusion_proofs_need_logarithmically_many_stored_nodes(case: tuple[int, int]) -> None:
    index, size = case
    ranges = inclusion_proof_ranges(index, size)
    assert len(ranges) <= ceil_log2(size)
    assert len(required_nodes(ranges)) <= log_bound(size)
    # The ranges tile [0, size) minus the leaf itself: they are siblings along one path.
    covered = sorted([*ranges, (index, index + 1)])
    assert covered[0][0] == 0
    assert covered[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))


@settings(max_examples=500)
@given(st.integers(1, 1 << 62).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_consistency_proofs_need_logarithmically_many_stored_nodes(case: tuple[int, int]) -> None:
    first, second = case
    ranges = consistency_proof_ranges(first, second)
    assert len(required_nodes(ranges)) <= log_bound(second)


@settings(max_examples=300)
@given(st.integers(0, 1 << 40).flatmap(lambda s: st.tuples(st.just(s), st.integers(1, 1 << 40))))
def test_perfect_subtrees_tile_rfc_ranges_with_aligned_nodes(case: tuple[int, int]) -> None:
    start_hint, length = case
    top = length.bit_length() - 1
    start = (start_hint >> top) << top  # an RFC-aligned start for this length
    nodes = perfect_subtrees(start, start + length)
    pos = start
    for level, index in nodes:
        assert index << level == pos
        pos += 1 << level
    assert pos == start + length
    assert len(nodes) == length.bit_count()
    assert [lv for lv, _ in nodes] == sorted((lv for lv, _ in nodes), reverse=True)


def test_perfect_subtrees_rejects_ranges_that_are_not_rfc_subtrees() -> None:
    with pytest.raises(ProofError):
        perfect_subtrees(1, 4)  # length 3 must start at a multiple of 2
    with pytest.raises(ProofError):
        perfect_subtrees(4, 4)
    assert perfect_subtrees(8, 16) == [(3, 1)]  # a perfect range is one stored read


def test_ten_million_leaf_proofs_touch_few_nodes() -> None:
    size = 10_000_000
    for index in (0, 1, 4_999_999, 9_999_998, 9_999_999):
        assert len(required_nodes(inclusion_proof_ranges(index, size))) <= 48
    for first in (1, 2, 1 << 20, 9_999_999):
        assert len(required_nodes(consistency_proof_ranges(first, size))) <= 48


# --------------------------------------------------------------------------------------------
# CompactRange (sequencer frontier)
# --------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=12))
def test_batch_appends_give_the_naive_root_and_exactly_the_new_nodes(batches: list[int]) -> None:
    cr = CompactRange()
    size = 0
    for b in batches:
        b = min(b, MAX_SIZE - size)
        emitted = cr.append_many(LEAF_HASHES[size : size + b])
        new_size = size + b
        assert cr.size == new_size
        assert cr.root() == root_of(new_size)
        # Every emitted node is the true MTH of its leaf range ...
        for level, index, h in emitted:
            assert h == naive_mth(LEAVES[index << level : (index + 1) << level])
        # ... and they are exactly the perfect nodes completed by this batch, each once.
        keys = [(lv, ix) for lv, ix, _ in emitted]
        expected = {
            (lv, ix)
            for lv in range(new_size.bit_length())
            for ix in range(new_size >> lv)
            if (ix + 1) << lv > size
        }
        assert len(keys) == len(set(keys))
        assert set(keys) == expected
        # Children are emitted before their parent, so storage may insert in order.
        seen: set[tuple[int, int]] = set()
        for lv, ix in keys:
            if lv:
                left_done_before = (2 * ix + 1) << (lv - 1) <= size
                assert left_done_before or (lv - 1, 2 * ix) in seen
                assert (lv - 1, 2 * ix + 1) in seen
            seen.add((lv, ix))
        size = new_size


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_SIZE - 1), st.integers(1, 50))
def test_a_frontier_rebuilt_from_stored_nodes_continues_the_same_tree(size: int, more: int) -> None:
    more = min(more, MAX_SIZE - size)
    frontier = [NODES[node] for node in CompactRange.frontier_nodes(size)]
    cr = CompactRange(size, frontier)
    assert cr.root() == root_of(size)
    cr.append_many(LEAF_HASHES[size : size + more])
    assert cr.root() == root_of(size + more)


def test_compact_range_one_by_one_equals_batch_and_rejects_bad_input() -> None:
    one = CompactRange()
    nodes_one = [n for h in LEAF_HASHES[:37] for n in one.append(h)]
    batch = CompactRange()
    assert batch.append_many(iter(LEAF_HASHES[:37])) == nodes_one
    assert one.root() == batch.root() == root_of(37)
    snapshot = batch.copy()
    with pytest.raises(ValueError, match="32 bytes"):
        batch.append_many([LEAF_HASHES[37], b"short"])
    # A rejected batch leaves the frontier untouched.
    assert batch.size == 37
    assert batch.hashes == snapshot.hashes
    with pytest.raises(ValueError, match="frontier hashes"):
        CompactRange(5, [LEAF_HASHES[0]])
