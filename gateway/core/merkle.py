"""Merkle tree hashing, proofs and proof verification (RFC 6962 / RFC 9162, SHA-256).

    leaf hash   SHA-256(0x00 || leaf input)
    node hash   SHA-256(0x01 || left || right)
    empty tree  SHA-256("")

`MTH(D[n])` splits at the largest power of two below `n` (RFC 9162 section 2.1.1).
A `MerkleFrontier` keeps the roots of the perfect subtrees that make up a tree of
any size (at most 64 hashes), so a writer can append leaves and know the root at
every size without keeping the leaves; it is what the audit log's head row holds.

Proof generation works on leaf hashes; verification (`verify_inclusion`,
`verify_consistency`) takes nothing but the proof, sizes and hashes, so an auditor
runs it offline without trusting the server. Verification follows RFC 9162
sections 2.1.3.2 and 2.1.4.2 and additionally rejects hashes that are not 32
bytes long, negative or out-of-range sizes and indices, and proofs with extra or
missing elements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
"""Bytes in every hash (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root hash of the empty tree."""

_LEAF = b"\x00"
_NODE = b"\x01"


class ProofError(ValueError):
    """A proof does not verify, or its parameters are malformed."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one leaf input: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than `n` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleFrontier:
    """The roots of the perfect subtrees of a growing tree, largest (leftmost) first.

    For a tree of `size` leaves there is one subtree per set bit of `size`, so at
    most 64 hashes; appending a leaf costs one node hash on average.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} hashes")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError("frontier hashes must be 32 bytes")
        self.size = size
        self._hashes = list(hashes)

    @classmethod
    def from_bytes(cls, size: int, packed: bytes) -> MerkleFrontier:
        """The frontier stored by `to_bytes`."""
        if len(packed) % HASH_SIZE:
            raise ValueError("packed frontier length is not a multiple of 32")
        hashes = [packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE)]
        return cls(size, hashes)

    def to_bytes(self) -> bytes:
        """The subtree roots concatenated, largest first."""
        return b"".join(self._hashes)

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree roots, largest (leftmost) first."""
        return tuple(self._hashes)

    def copy(self) -> MerkleFrontier:
        """An independent copy."""
        return MerkleFrontier(self.size, self._hashes)

    def append(self, leaf: bytes) -> None:
        """Adds one leaf hash at position `size`."""
        hashes = self._hashes
        node = leaf
        size = self.size
        # Each trailing one bit of the old size is a perfect subtree of equal
        # height waiting for a right sibling.
        while size & 1:
            node = hashlib.sha256(_NODE + hashes.pop() + node).digest()
            size >>= 1
        hashes.append(node)
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Appends leaf hashes in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """The tree hash MTH of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        hashes = self._hashes
        node = hashes[-1]
        for left in reversed(hashes[:-1]):
            node = node_hash(left, node)
        return node


def tree_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (not leaf inputs)."""
    frontier = MerkleFrontier()
    frontier.extend(leaves)
    return frontier.root()


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path PATH(index, D[n]) of RFC 9162 section 2.1.3.1, bottom-up.

    Args:
        index: Position of the leaf, 0 <= index < len(leaves).
        leaves: Every leaf hash of the tree.

    Raises:
        ProofError: `index` is out of range.
    """
    size = len(leaves)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(tree_hash(leaves[start + k : end]))
            end = start + k
        else:
            proof.append(tree_hash(leaves[start : start + k]))
            start += k
    proof.reverse()
    return proof


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1: the old tree is a prefix of the new.

    Args:
        old_size: Size `m` of the earlier tree, 0 <= m <= len(leaves).
        leaves: Every leaf hash of the newer tree.

    Raises:
        ProofError: `old_size` is out of range.
    """
    size = len(leaves)
    if not 0 <= old_size <= size:
        raise ProofError(f"old size {old_size} is outside 0..{size}")
    if old_size in (0, size):
        return []  # nothing to prove (the empty tree is a prefix of every tree)
    proof: list[bytes] = []
    start, end, m, complete = 0, size, old_size, True
    # SUBPROOF(m, D[start:end], complete), unrolled: each step appends the
    # sibling it does not descend into; the order is reversed at the end.
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(tree_hash(leaves[start + k : end]))
            end = start + k
        else:
            proof.append(tree_hash(leaves[start : start + k]))
            start += k
            m -= k
            complete = False
    if not complete:
        proof.append(tree_hash(leaves[start:end]))
    proof.reverse()
    return proof


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 section 2.1.3.2, steps 1-4).

    Raises:
        ProofError: The parameters are impossible or the proof has the wrong length.
    """
    if size <= 0 or not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    _check_hash(leaf, "leaf hash")
    fn, sn, node = index, size - 1, leaf
    for element in proof:
        _check_hash(element, "proof element")
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            node = node_hash(element, node)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is high")
    return node


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Checks that `leaf` is at `index` of the tree of `size` leaves with `root`.

    Raises:
        ProofError: The proof does not hold.
    """
    _check_hash(root, "root hash")
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"the inclusion proof of leaf {index} does not lead to the root")


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Checks that the tree of `old_size` leaves is a prefix of the one of `new_size`.

    Follows RFC 9162 section 2.1.4.2. As in transparency-dev/merkle, a proof from
    the empty tree is refused as meaningless (every tree extends it), and equal
    sizes need an empty proof and byte-equal roots.

    Raises:
        ProofError: The proof does not hold.
    """
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"sizes {old_size} -> {new_size} do not grow")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofError("equal sizes need an empty consistency proof")
        if old_root != new_root:
            raise ProofError("equal sizes but different roots")
        return
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if not proof:
        raise ProofError("the consistency proof is empty")
    for element in proof:
        _check_hash(element, "proof element")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for element in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short")
    if fr != old_root:
        raise ProofError(f"the consistency proof does not lead to the root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"the consistency proof does not lead to the root of size {new_size}")
