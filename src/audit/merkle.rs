//! The RFC 9162 Merkle tree over the audit log (§2.1), as pure functions.
//!
//! A leaf hash is `SHA-256(0x00 ‖ entry)` and an interior node `SHA-256(0x01 ‖ left ‖
//! right)`. The store keeps every *perfect* subtree (2^level leaves starting at a
//! multiple of 2^level) as it completes, so any tree head, inclusion proof or
//! consistency proof is a function of O(log n) stored hashes. The functions here take
//! those hashes through a lookup, so they never see the whole log: [`needed`] runs a
//! computation once with a recording lookup to learn which hashes it reads, the store
//! fetches just those, and the computation runs again on them.

use crate::crypto::sha256;
use std::collections::{BTreeSet, HashMap};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// A perfect subtree: the `2^level` leaves starting at `index * 2^level`. Level 0 is a
/// leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves.
    pub level: u32,
    /// Position among the subtrees of that level.
    pub index: u64,
}

impl NodeId {
    /// The index of the last leaf under this subtree.
    pub fn last_leaf(self) -> u64 {
        ((self.index + 1) << self.level) - 1
    }
}

/// The hash of an empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// The hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut bytes = [0u8; 65];
    bytes[0] = 0x01;
    bytes[1..33].copy_from_slice(left);
    bytes[33..].copy_from_slice(right);
    sha256(&bytes)
}

/// The largest power of two smaller than `n` (n ≥ 2): where RFC 9162 splits a tree.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:end]), read from perfect subtrees. In every call RFC 9162's recursion
/// makes, `start` is a multiple of the split, so each perfect part is a stored node.
fn subtree(start: u64, end: u64, get: &mut dyn FnMut(NodeId) -> Hash) -> Hash {
    let n = end - start;
    if n.is_power_of_two() && start % n == 0 {
        return get(NodeId {
            level: n.trailing_zeros(),
            index: start / n,
        });
    }
    let k = split(n);
    let left = subtree(start, start + k, get);
    let right = subtree(start + k, end, get);
    node_hash(&left, &right)
}

/// The tree head of the first `size` leaves.
pub fn root(size: u64, get: &mut dyn FnMut(NodeId) -> Hash) -> Hash {
    if size == 0 {
        empty_root()
    } else {
        subtree(0, size, get)
    }
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1),
/// from the leaf up. `index < size`.
pub fn inclusion_proof(index: u64, size: u64, get: &mut dyn FnMut(NodeId) -> Hash) -> Vec<Hash> {
    fn path(m: u64, start: u64, end: u64, get: &mut dyn FnMut(NodeId) -> Hash) -> Vec<Hash> {
        let n = end - start;
        if n <= 1 {
            return Vec::new();
        }
        let k = split(n);
        if m - start < k {
            let mut proof = path(m, start, start + k, get);
            proof.push(subtree(start + k, end, get));
            proof
        } else {
            let mut proof = path(m, start + k, end, get);
            proof.push(subtree(start, start + k, get));
            proof
        }
    }
    assert!(index < size, "leaf {index} is not in a tree of {size}");
    path(index, 0, size, get)
}

/// The proof that the tree of `first` leaves is a prefix of the tree of `second`
/// (RFC 9162 §2.1.4.1). Empty when `first` is 0 or equal to `second`.
pub fn consistency_proof(
    first: u64,
    second: u64,
    get: &mut dyn FnMut(NodeId) -> Hash,
) -> Vec<Hash> {
    fn subproof(
        m: u64,
        start: u64,
        end: u64,
        whole: bool,
        get: &mut dyn FnMut(NodeId) -> Hash,
    ) -> Vec<Hash> {
        let n = end - start;
        if m == n {
            return if whole {
                Vec::new()
            } else {
                vec![subtree(start, end, get)]
            };
        }
        let k = split(n);
        if m <= k {
            let mut proof = subproof(m, start, start + k, whole, get);
            proof.push(subtree(start + k, end, get));
            proof
        } else {
            let mut proof = subproof(m - k, start + k, end, false, get);
            proof.push(subtree(start, start + k, get));
            proof
        }
    }
    assert!(
        first <= second,
        "a tree of {first} cannot precede one of {second}"
    );
    if first == 0 || first == second {
        return Vec::new();
    }
    subproof(first, 0, second, true, get)
}

/// Which stored hashes `compute` reads: runs it with a lookup that records and answers
/// zeros (the path a computation takes depends on sizes, never on hash values).
pub fn needed<T>(compute: impl FnOnce(&mut dyn FnMut(NodeId) -> Hash) -> T) -> BTreeSet<NodeId> {
    let mut ids = BTreeSet::new();
    compute(&mut |id| {
        ids.insert(id);
        [0; 32]
    });
    ids
}

/// A lookup over fetched hashes; `None` from [`Lookup::missing`] names the first absent.
pub struct Lookup<'a> {
    hashes: &'a HashMap<NodeId, Hash>,
    missing: Option<NodeId>,
}

impl<'a> Lookup<'a> {
    /// Answers from `hashes`.
    pub fn new(hashes: &'a HashMap<NodeId, Hash>) -> Self {
        Self {
            hashes,
            missing: None,
        }
    }

    /// The hash of `id`, or zeros (recorded as missing) when it was not fetched.
    pub fn get(&mut self, id: NodeId) -> Hash {
        match self.hashes.get(&id) {
            Some(hash) => *hash,
            None => {
                self.missing.get_or_insert(id);
                [0; 32]
            }
        }
    }

    /// The first node asked for that was not there.
    pub fn missing(&self) -> Option<NodeId> {
        self.missing
    }
}

/// The perfect subtrees that leaf `index` completes, lowest first: appending leaf
/// `index` completes a node at each level `l ≥ 1` where `index + 1` is a multiple of
/// `2^l` (what [`Frontier::push`] reports, by definition).
pub fn completed_by(index: u64) -> impl Iterator<Item = NodeId> {
    let size = index + 1;
    (1..=size.trailing_zeros()).map(move |level| NodeId {
        level,
        index: (size >> level) - 1,
    })
}

/// Verifies that `leaf` sits at `index` in the tree of `size` leaves whose head is
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Verifies that the tree of `first` leaves with head `first_root` is a prefix of the
/// tree of `second` leaves with head `second_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && fr == *first_root && sr == *second_root
}

/// The right edge of a tree being built leaf by leaf: one perfect subtree per set bit
/// of the size, so O(log n) memory to hash a log of any length in one pass.
#[derive(Debug, Default, Clone)]
pub struct Frontier {
    size: u64,
    stack: Vec<(u32, Hash)>,
}

impl Frontier {
    /// Leaves added so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtrees a tree of `size` leaves splits into, leftmost (largest)
    /// first: what a frontier at that size holds, and all an append needs to know.
    pub fn parts(size: u64) -> Vec<NodeId> {
        let mut parts = Vec::new();
        let mut start = 0u64;
        for level in (0..u64::BITS).rev() {
            if size & (1u64 << level) != 0 {
                parts.push(NodeId {
                    level,
                    index: start >> level,
                });
                start += 1u64 << level;
            }
        }
        parts
    }

    /// The frontier of a tree of `size` leaves, from the hashes of its [`Frontier::parts`].
    pub fn from_parts(size: u64, get: &mut dyn FnMut(NodeId) -> Hash) -> Self {
        let stack = Self::parts(size)
            .into_iter()
            .map(|id| (id.level, get(id)))
            .collect();
        Self { size, stack }
    }

    /// Adds the next leaf; calls `completed` with each interior subtree it completes,
    /// lowest first.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let mut top = (0u32, leaf);
        while let Some(&(level, left)) = self.stack.last() {
            if level != top.0 {
                break;
            }
            self.stack.pop();
            top = (level + 1, node_hash(&left, &top.1));
            let id = NodeId {
                level: top.0,
                index: self.size >> top.0,
            };
            completed(id, &top.1);
        }
        self.stack.push(top);
        self.size += 1;
    }

    /// The tree head of the leaves added so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(&(_, last)) => iter.fold(last, |acc, (_, left)| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u64) -> Hash {
        let mut bytes = vec![0x00];
        bytes.extend_from_slice(format!("entry {i}").as_bytes());
        sha256(&bytes)
    }

    /// MTH straight from RFC 9162's definition, over all leaves.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    /// Every perfect subtree of `n` leaves, as the store would hold them.
    fn stored(n: u64) -> HashMap<NodeId, Hash> {
        let mut nodes = HashMap::new();
        let mut frontier = Frontier::default();
        for i in 0..n {
            nodes.insert(NodeId { level: 0, index: i }, leaf(i));
            frontier.push(leaf(i), |id, h| {
                nodes.insert(id, *h);
            });
        }
        nodes
    }

    #[test]
    fn roots_from_stored_subtrees_and_from_the_frontier_match_the_definition() {
        let nodes = stored(70);
        let leaves: Vec<Hash> = (0..70).map(leaf).collect();
        let mut frontier = Frontier::default();
        for size in 0..=70u64 {
            let expected = reference_root(&leaves[..size as usize]);
            let mut lookup = Lookup::new(&nodes);
            assert_eq!(
                root(size, &mut |id| lookup.get(id)),
                expected,
                "size {size}"
            );
            assert_eq!(lookup.missing(), None);
            assert_eq!(frontier.root(), expected, "frontier at {size}");
            if size < 70 {
                frontier.push(leaf(size), |_, _| {});
            }
        }
    }

    #[test]
    fn a_frontier_rebuilt_from_stored_subtrees_goes_on_like_the_one_that_grew() {
        let nodes = stored(70);
        for size in 0..=64u64 {
            let mut lookup = Lookup::new(&nodes);
            let mut rebuilt = Frontier::from_parts(size, &mut |id| lookup.get(id));
            assert_eq!(lookup.missing(), None, "size {size}");
            let mut grown = Frontier::default();
            for i in 0..size {
                grown.push(leaf(i), |_, _| {});
            }
            assert_eq!(rebuilt.size(), size);
            assert_eq!(rebuilt.root(), grown.root(), "size {size}");
            for i in size..size + 6 {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                rebuilt.push(leaf(i), |id, h| a.push((id, *h)));
                grown.push(leaf(i), |id, h| b.push((id, *h)));
                assert_eq!(a, b, "leaf {i} after a rebuild at {size}");
            }
            assert_eq!(rebuilt.root(), grown.root());
        }
    }

    #[test]
    fn each_append_completes_the_nodes_the_frontier_reports() {
        let mut frontier = Frontier::default();
        for i in 0..40u64 {
            let mut reported = Vec::new();
            frontier.push(leaf(i), |id, _| reported.push(id));
            assert_eq!(reported, completed_by(i).collect::<Vec<_>>(), "leaf {i}");
            for id in &reported {
                assert_eq!(id.last_leaf(), i);
            }
        }
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_and_size_and_fail_when_altered() {
        let nodes = stored(33);
        let leaves: Vec<Hash> = (0..33).map(leaf).collect();
        for size in 1..=33u64 {
            let head = reference_root(&leaves[..size as usize]);
            for index in 0..size {
                let mut lookup = Lookup::new(&nodes);
                let proof = inclusion_proof(index, size, &mut |id| lookup.get(id));
                assert!(proof.len() <= 64 - (size - 1).leading_zeros() as usize + 1);
                assert!(verify_inclusion(index, size, &leaf(index), &proof, &head));
                assert!(!verify_inclusion(
                    index,
                    size,
                    &leaf(index + 1),
                    &proof,
                    &head
                ));
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert!(!verify_inclusion(index, size, &leaf(index), &bad, &head));
                }
                assert!(!verify_inclusion(size, size, &leaf(index), &proof, &head));
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_between_every_pair_of_sizes_and_fail_when_altered() {
        let nodes = stored(33);
        let leaves: Vec<Hash> = (0..33).map(leaf).collect();
        for second in 1..=33u64 {
            let second_root = reference_root(&leaves[..second as usize]);
            for first in 1..=second {
                let first_root = reference_root(&leaves[..first as usize]);
                let mut lookup = Lookup::new(&nodes);
                let proof = consistency_proof(first, second, &mut |id| lookup.get(id));
                assert!(
                    verify_consistency(first, second, &first_root, &second_root, &proof),
                    "{first} → {second}"
                );
                if first < second {
                    let other = reference_root(&leaves[1..first as usize + 1]);
                    assert!(!verify_consistency(
                        first,
                        second,
                        &other,
                        &second_root,
                        &proof
                    ));
                }
            }
        }
    }

    #[test]
    fn a_proof_reads_only_a_logarithmic_number_of_stored_hashes() {
        let size = 10_000_000u64;
        let ids = needed(|get| inclusion_proof(4_321_987, size, get));
        assert!(ids.len() <= 2 * 24, "{} hashes read", ids.len());
        let ids = needed(|get| consistency_proof(3_333_333, size, get));
        assert!(ids.len() <= 2 * 24, "{} hashes read", ids.len());
        let ids = needed(|get| root(size, get));
        assert_eq!(ids.len(), size.count_ones() as usize);
    }
}
