"""Merkle hashing and proofs against the transparency-dev/merkle reference vectors.

`tests/data/merkle-vectors.json` holds the RFC 6962 vectors of transparency-dev/merkle
(leaf inputs, roots, reference proofs, the probe corpus with the expected verdict)
and the accumulated subtree vectors of draft-ietf-plants-merkle-tree-certs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import merkle
from gateway.core.merkle import ProofError

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "data" / "merkle-vectors.json").read_text()
)
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in VECTORS["TD_LEAF_INPUTS"]]


def _hex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def test_node_hashes_of_the_reference_tree() -> None:
    level = LEAVES
    for want in VECTORS["TD_NODE_HASHES"]:
        assert [h.hex() for h in level] == want
        level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]


@pytest.mark.parametrize("size", range(len(VECTORS["TD_ROOT_HASHES"])))
def test_root_of_every_prefix(size: int) -> None:
    assert merkle.tree_hash(LEAVES[:size]).hex() == VECTORS["TD_ROOT_HASHES"][size]


def test_empty_root_is_the_hash_of_nothing() -> None:
    assert merkle.tree_hash([]) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(("index", "size", "want"), VECTORS["TD_REF_INCLUSION"])
def test_reference_inclusion_proofs(index: int, size: int, want: list[str]) -> None:
    proof = merkle.inclusion_proof(index, LEAVES[:size])
    assert [p.hex() for p in proof] == want
    merkle.verify_inclusion(index, size, LEAVES[index], proof, merkle.tree_hash(LEAVES[:size]))


@pytest.mark.parametrize(("old", "new", "want"), VECTORS["TD_REF_CONSISTENCY"])
def test_reference_consistency_proofs(old: int, new: int, want: list[str]) -> None:
    proof = merkle.consistency_proof(old, LEAVES[:new])
    assert [p.hex() for p in proof] == want
    merkle.verify_consistency(
        old, new, merkle.tree_hash(LEAVES[:old]), merkle.tree_hash(LEAVES[:new]), proof
    )


@pytest.mark.parametrize(
    "probe", VECTORS["TD_INCLUSION_PROBES"], ids=[p[0] for p in VECTORS["TD_INCLUSION_PROBES"]]
)
def test_inclusion_probe_corpus(probe: list[Any]) -> None:
    _, index, size, root, leaf, proof, want_error = probe
    if want_error:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(
                index, size, bytes.fromhex(leaf), _hex(proof), bytes.fromhex(root)
            )
    else:
        merkle.verify_inclusion(index, size, bytes.fromhex(leaf), _hex(proof), bytes.fromhex(root))


@pytest.mark.parametrize(
    "probe", VECTORS["TD_CONSISTENCY_PROBES"], ids=[p[0] for p in VECTORS["TD_CONSISTENCY_PROBES"]]
)
def test_consistency_probe_corpus(probe: list[Any]) -> None:
    _, old, new, root1, root2, proof, want_error = probe
    args = (old, new, bytes.fromhex(root1), bytes.fromhex(root2), _hex(proof))
    if want_error:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_probe_corpus_has_both_verdicts() -> None:
    for key in ("TD_INCLUSION_PROBES", "TD_CONSISTENCY_PROBES"):
        verdicts = {p[-1] for p in VECTORS[key]}
        assert verdicts == {True, False}


# --- the accumulated subtree vectors (draft-ietf-plants-merkle-tree-certs) ---------------

SUBTREE_LEAVES = [merkle.leaf_hash(bytes([i])) for i in range(VECTORS["SUBTREE_VECTOR_MAX"])]


def _valid_subtree(start: int, end: int) -> bool:
    if start in (0, end):
        return True
    length = end - start
    return start % (1 << (length - 1).bit_length()) == 0


def _subtree_hash_digest(first_end: int, include_empty: bool) -> str:
    digest = hashlib.sha256()
    for end in range(first_end, len(SUBTREE_LEAVES) + 1):
        for start in range(end + 1 if include_empty else end):
            if _valid_subtree(start, end):
                root = merkle.tree_hash(SUBTREE_LEAVES[start:end])
                digest.update(f"[{start}, {end}) {root.hex()}\n".encode())
    return digest.hexdigest()


def test_subtree_hash_vectors() -> None:
    # transparency-dev/merkle v1 (non-empty subtrees) and the draft's head (with empty ones).
    assert _subtree_hash_digest(1, include_empty=False) == VECTORS["SUBTREE_HASH_WANT_V1"]
    assert _subtree_hash_digest(0, include_empty=True) == VECTORS["SUBTREE_HASH_WANT_HEAD"]


def test_subtree_inclusion_proof_vectors() -> None:
    digest = hashlib.sha256()
    for end in range(1, len(SUBTREE_LEAVES) + 1):
        for start in range(end):
            if not _valid_subtree(start, end):
                continue
            subtree = SUBTREE_LEAVES[start:end]
            root = merkle.tree_hash(subtree)
            for index in range(start, end):
                proof = merkle.inclusion_proof(index - start, subtree)
                line = f"{index} [{start}, {end})" + "".join(f" {p.hex()}" for p in proof)
                digest.update(f"{line}\n".encode())
                merkle.verify_inclusion(
                    index - start, end - start, subtree[index - start], proof, root
                )
    assert digest.hexdigest() == VECTORS["SUBTREE_INCLUSION_WANT"]


# --- corrupted proofs: every one must be rejected -----------------------------------------


def _corruptions(proof: list[bytes]) -> list[tuple[str, list[bytes]]]:
    out: list[tuple[str, list[bytes]]] = []
    for i, element in enumerate(proof):
        for bit in (0, 7, 100, 255):
            flipped = bytearray(element)
            flipped[bit // 8] ^= 1 << (bit % 8)
            out.append((f"flip {i}:{bit}", [*proof[:i], bytes(flipped), *proof[i + 1 :]]))
        out.append((f"drop {i}", proof[:i] + proof[i + 1 :]))
        out.append((f"short {i}", [*proof[:i], element[:31], *proof[i + 1 :]]))
        out.append((f"long {i}", [*proof[:i], element + b"\x00", *proof[i + 1 :]]))
        out.append((f"dup {i}", [*proof[: i + 1], element, *proof[i + 1 :]]))
    out.append(("append zero", [*proof, bytes(32)]))
    out.append(("prepend zero", [bytes(32), *proof]))
    if len(proof) > 1:
        out.append(("reversed", proof[::-1]))
    return out


def _inclusion_rejected(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> bool:
    try:
        merkle.verify_inclusion(index, size, leaf, proof, root)
    except ProofError:
        return True
    return False


def _consistency_rejected(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    try:
        merkle.verify_consistency(old, new, old_root, new_root, proof)
    except ProofError:
        return True
    return False


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 64, 100])
def test_every_corrupted_inclusion_proof_is_rejected(size: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    root = merkle.tree_hash(leaves)
    for index in range(size):
        leaf = leaves[index]
        proof = merkle.inclusion_proof(index, leaves)
        assert not _inclusion_rejected(index, size, leaf, proof, root)
        for name, bad in _corruptions(proof):
            assert _inclusion_rejected(index, size, leaf, bad, root), (index, name)
        for other_index in {index - 1, index + 1, size} - {index}:
            assert _inclusion_rejected(other_index, size, leaf, proof, root)
        # A proof may fit other tree sizes with the same shape along the path: the
        # size is vouched for by the signed checkpoint next to the root, not the proof.
        assert _inclusion_rejected(index, size, bytes(32), proof, root)
        assert _inclusion_rejected(index, size, leaf, proof, bytes(32))


@pytest.mark.parametrize("new", [2, 3, 5, 8, 9, 13, 16, 33])
def test_every_corrupted_consistency_proof_is_rejected(new: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(new)]
    new_root = merkle.tree_hash(leaves)
    for old in range(1, new):
        old_root = merkle.tree_hash(leaves[:old])
        proof = merkle.consistency_proof(old, leaves)
        assert not _consistency_rejected(old, new, old_root, new_root, proof)
        for name, bad in _corruptions(proof):
            assert _consistency_rejected(old, new, old_root, new_root, bad), (old, name)
        assert _consistency_rejected(old, new, new_root, old_root, proof)
        assert _consistency_rejected(old, new, old_root, bytes(32), proof)
        assert _consistency_rejected(old, new, bytes(32), new_root, proof)
        for other_old in {old - 1, old + 1} - {old, new}:
            assert _consistency_rejected(other_old, new, old_root, new_root, proof)


# --- properties ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_proofs_from_any_tree_verify(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    root = merkle.tree_hash(leaves)
    index = data.draw(st.integers(0, size - 1))
    merkle.verify_inclusion(index, size, leaves[index], merkle.inclusion_proof(index, leaves), root)
    old = data.draw(st.integers(1, size))
    merkle.verify_consistency(
        old, size, merkle.tree_hash(leaves[:old]), root, merkle.consistency_proof(old, leaves)
    )


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 600))
def test_frontier_matches_the_recursive_definition(size: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]

    def mth(items: list[bytes]) -> bytes:
        if not items:
            return merkle.EMPTY_ROOT
        if len(items) == 1:
            return items[0]
        k = 1 << ((len(items) - 1).bit_length() - 1)
        return merkle.node_hash(mth(items[:k]), mth(items[k:]))

    frontier = merkle.MerkleFrontier()
    frontier.extend(leaves)
    assert frontier.root() == mth(leaves)
    restored = merkle.MerkleFrontier.from_bytes(size, frontier.to_bytes())
    assert restored.root() == frontier.root()
    assert len(frontier.hashes) == size.bit_count()


def test_frontier_refuses_a_wrong_number_of_hashes() -> None:
    with pytest.raises(ValueError, match="hashes"):
        merkle.MerkleFrontier(3, [bytes(32)])
    with pytest.raises(ValueError, match="multiple of 32"):
        merkle.MerkleFrontier.from_bytes(1, bytes(31))


def test_proof_generation_refuses_out_of_range_positions() -> None:
    with pytest.raises(ProofError):
        merkle.inclusion_proof(3, LEAVES[:3])
    with pytest.raises(ProofError):
        merkle.consistency_proof(4, LEAVES[:3])
