//! The prefix-affinity index: per model and per node, which prompt blocks the node is believed to
//! hold, with LRU eviction and a bounded number of blocks per node.
//!
//! Per model, one map goes from a block hash to the nodes holding it, so matching a prompt against
//! every node is one walk down its chain of blocks, stopping at the first block no node continues
//! (cost: the holders of the blocks walked, not the number of candidates). Per (model, node), an
//! [`Lru`] of at most `capacity` entries orders the node's blocks; a new block beyond it evicts the
//! least recently used one. A prompt is recorded last block first, so its first blocks are the
//! most recent and a shared system prompt outlives the conversations built on it.
//!
//! Memory is bounded by the capacities: each (model, node) holds at most its capacity of entries
//! and the block map has at most one holder per entry.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hashbrown::HashTable;

use super::lru::{Lru, NIL};
use super::prompt::TOKENS_PER_BLOCK;
use crate::registry::node_hash;

/// Blocks per (model, node) when the node's own figures are unknown: 65 536 tokens, e.g. 4 slots of
/// 16 384 tokens of context, no host cache. About 64 bytes of index per block when full.
pub const DEFAULT_CAPACITY_BLOCKS: usize = 4096;

/// Blocks a node can hold for a model: its slots' context plus its host prompt cache, in tokens.
pub fn capacity_blocks(slots: u32, context_tokens: u64, host_cache_tokens: u64) -> usize {
    let tokens = u64::from(slots.max(1))
        .saturating_mul(context_tokens)
        .saturating_add(host_cache_tokens);
    (tokens / TOKENS_PER_BLOCK).clamp(1, u32::MAX as u64 - 1) as usize
}

/// How many leading blocks of a prompt one node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMatch {
    pub node: Arc<str>,
    pub blocks: usize,
}

/// Which blocks each node is believed to hold, per model. Not synchronised: see [`SharedIndex`].
#[derive(Debug)]
pub struct PrefixIndex {
    models: HashMap<Box<str>, ModelIndex>,
    default_capacity: usize,
}

impl Default for PrefixIndex {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY_BLOCKS)
    }
}

impl PrefixIndex {
    /// An empty index; (model, node) pairs start with `default_capacity` blocks.
    pub fn new(default_capacity: usize) -> Self {
        PrefixIndex {
            models: HashMap::new(),
            default_capacity: default_capacity.max(1),
        }
    }

    /// Sets how many blocks `node` can hold for `model` (evicting the oldest beyond it).
    pub fn set_capacity(&mut self, model: &str, node: &str, blocks: usize) {
        let m = self.model_mut(model);
        let id = m.node_id(node, blocks);
        let ModelIndex {
            blocks: map, nodes, ..
        } = m;
        if let Some(n) = nodes[id as usize].as_mut() {
            n.lru.set_capacity(blocks);
            while n.lru.len() > n.lru.capacity() {
                if let Some(hash) = n.lru.pop_oldest() {
                    detach(map, hash, id);
                }
            }
        }
    }

    /// For each node holding at least the first block of `blocks`: how many leading blocks it
    /// holds. Longest first.
    ///
    /// A node holding block `i` of a prompt holds every block before it (recording touches a
    /// prompt's blocks last first, eviction takes the oldest, a correction drops a block with
    /// everything older), so each node's match is found by bisection: a few lookups per distinct
    /// match length instead of one per block, which matters for long prompts on a big index
    /// (each lookup is likely a cache miss).
    pub fn matches(&self, model: &str, blocks: &[u64]) -> Vec<NodeMatch> {
        let Some(m) = self.models.get(model) else {
            return Vec::new();
        };
        m.match_ids(blocks)
            .into_iter()
            .filter_map(|(id, blocks)| {
                let node = m.nodes[id as usize].as_ref()?;
                Some(NodeMatch {
                    node: node.name.clone(),
                    blocks,
                })
            })
            .collect()
    }

    /// For each of `nodes` (node ids with their [`node_hash`], in the caller's order), how many
    /// leading blocks of `blocks` it holds for `model`; `None` when no node holds the first block
    /// (every match is 0), which costs one lookup whatever the number of nodes. With the hashes
    /// computed once per node, joining 1 000 candidates hashes no string.
    pub fn match_each<'n>(
        &self,
        model: &str,
        blocks: &[u64],
        nodes: impl IntoIterator<Item = (&'n str, u64)>,
    ) -> Option<Vec<usize>> {
        let m = self.models.get(model)?;
        let found = m.match_ids(blocks);
        if found.is_empty() {
            return None;
        }
        // The matched nodes by their hash alone: a 64-bit hash with a secret seed, where a
        // collision would only misjudge one node's match (a misrouted request, never a wrong
        // answer), so no candidate's name is compared.
        let mut by_hash: HashTable<(u64, usize)> = HashTable::with_capacity(found.len());
        for (id, blocks) in found {
            if let Some(node) = m.nodes[id as usize].as_ref() {
                by_hash.insert_unique(node.hash, (node.hash, blocks), |&(h, _)| h);
            }
        }
        Some(
            nodes
                .into_iter()
                .map(|(_, hash)| {
                    by_hash
                        .find(hash, |&(h, _)| h == hash)
                        .map_or(0, |&(_, b)| b)
                })
                .collect(),
        )
    }

    /// [`Self::matches`] by walking every block: the reference the bisection is tested against.
    #[cfg(test)]
    fn matches_by_walk(&self, model: &str, blocks: &[u64]) -> Vec<NodeMatch> {
        let mut out: Vec<NodeMatch> = self
            .models
            .get(model)
            .map(|m| {
                m.ids
                    .keys()
                    .map(|node| NodeMatch {
                        node: node.clone(),
                        blocks: self.match_len(model, node, blocks),
                    })
                    .filter(|n| n.blocks > 0)
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| b.blocks.cmp(&a.blocks).then_with(|| a.node.cmp(&b.node)));
        out
    }

    /// How many leading blocks of `blocks` `node` holds for `model`.
    pub fn match_len(&self, model: &str, node: &str, blocks: &[u64]) -> usize {
        let Some(m) = self.models.get(model) else {
            return 0;
        };
        let Some(id) = m.ids.get(node) else {
            return 0;
        };
        blocks
            .iter()
            .take_while(|hash| m.blocks.get(hash).is_some_and(|h| h.find(id).is_some()))
            .count()
    }

    /// `node` now holds the prompt `blocks` for `model` (they become its most recent ones; beyond
    /// its capacity, only the first blocks are kept).
    pub fn record(&mut self, model: &str, node: &str, blocks: &[u64]) {
        if blocks.is_empty() {
            return;
        }
        let default = self.default_capacity;
        let m = self.model_mut(model);
        let id = m.node_id(node, default);
        let ModelIndex {
            blocks: map, nodes, ..
        } = m;
        let Some(n) = nodes[id as usize].as_mut() else {
            return;
        };
        let keep = blocks.len().min(n.lru.capacity());
        for &hash in blocks[..keep].iter().rev() {
            if let Some(slot) = map.get(&hash).and_then(|h| h.find(id)) {
                n.lru.touch(slot);
                continue;
            }
            if n.lru.is_full()
                && let Some(old) = n.lru.pop_oldest()
            {
                detach(map, old, id);
            }
            let holder = Holder {
                node: id,
                slot: n.lru.push_newest(hash),
            };
            map.entry(hash)
                .and_modify(|h| h.push(holder))
                .or_insert(Holders::One(holder));
        }
    }

    /// Feedback from an answer: `node` reused only `reported_blocks` leading blocks of `blocks`.
    /// If the index believed it held more, the node has evicted block `reported_blocks`, and (its
    /// cache being least-recently-used too) everything older: those entries are dropped. Call it
    /// before recording the same prompt again. Returns the number of entries dropped.
    pub fn correct(
        &mut self,
        model: &str,
        node: &str,
        blocks: &[u64],
        reported_blocks: usize,
    ) -> usize {
        let Some(m) = self.models.get_mut(model) else {
            return 0;
        };
        let Some(id) = m.ids.get(node) else {
            return 0;
        };
        let Some(first_missing) = blocks.get(reported_blocks) else {
            return 0;
        };
        let ModelIndex {
            blocks: map, nodes, ..
        } = m;
        let Some(n) = nodes[id as usize].as_mut() else {
            return 0;
        };
        let mut dropped = 0;
        let mut at = map
            .get(first_missing)
            .and_then(|h| h.find(id))
            .unwrap_or(NIL);
        while at != NIL {
            let older = n.lru.older(at);
            let hash = n.lru.remove(at);
            detach(map, hash, id);
            dropped += 1;
            at = older;
        }
        for hash in &blocks[reported_blocks..] {
            if let Some(slot) = map.get(hash).and_then(|h| h.find(id)) {
                n.lru.remove(slot);
                detach(map, *hash, id);
                dropped += 1;
            }
        }
        dropped
    }

    /// Drops everything `node` held, for every model (its runtime restarted, or it left).
    pub fn forget_node(&mut self, node: &str) {
        self.retain(|_, held_by| held_by != node);
    }

    /// Keeps only the (model, node) pairs `keep` accepts; the others are forgotten (the node left,
    /// or its runtime for the model restarted and lost its cache).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.models.retain(|model, m| {
            let gone: Vec<(Arc<str>, u32)> = m
                .ids
                .iter()
                .filter(|(node, _)| !keep(model, node))
                .map(|(node, id)| (Arc::clone(node), id))
                .collect();
            for (node, id) in gone {
                m.ids.remove(&node);
                if let Some(n) = m.nodes[id as usize].take() {
                    for hash in n.lru.hashes() {
                        detach(&mut m.blocks, hash, id);
                    }
                }
                m.free_ids.push(id);
            }
            !m.ids.is_empty()
        });
    }

    /// Blocks held, counted once per node holding them.
    pub fn blocks_held(&self) -> usize {
        self.models
            .values()
            .flat_map(|m| m.nodes.iter().flatten())
            .map(|n| n.lru.len())
            .sum()
    }

    /// Blocks `node` holds for `model`.
    pub fn node_blocks(&self, model: &str, node: &str) -> usize {
        self.models
            .get(model)
            .and_then(|m| m.nodes[m.ids.get(node)? as usize].as_ref())
            .map_or(0, |n| n.lru.len())
    }

    fn model_mut(&mut self, model: &str) -> &mut ModelIndex {
        self.models.entry(Box::from(model)).or_default()
    }
}

/// The index behind one lock, read on every request and written after it. A plain mutex: every
/// operation is a few microseconds (a walk down one prompt's chain), shorter than the time a
/// read-write lock would save.
#[derive(Debug, Default)]
pub struct SharedIndex {
    inner: Mutex<PrefixIndex>,
}

impl SharedIndex {
    pub fn new(index: PrefixIndex) -> Self {
        SharedIndex {
            inner: Mutex::new(index),
        }
    }

    /// The index; a panic while it was held leaves it consistent enough to go on using.
    pub fn lock(&self) -> MutexGuard<'_, PrefixIndex> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct ModelIndex {
    blocks: HashMap<u64, Holders, BuildHasherDefault<BlockHashHasher>>,
    /// Dense node ids; `None` for a forgotten node whose id is free for reuse.
    nodes: Vec<Option<NodeBlocks>>,
    ids: NodeIds,
    free_ids: Vec<u32>,
}

impl ModelIndex {
    /// The nodes holding at least the first of `blocks`, each with how many leading blocks it
    /// holds, longest first. See [`PrefixIndex::matches`] for the bisection.
    fn match_ids(&self, blocks: &[u64]) -> Vec<(u32, usize)> {
        let Some(first) = blocks.first().and_then(|h| self.blocks.get(h)) else {
            return Vec::new();
        };
        // The nodes whose match is not known yet; all hold block 0.
        let mut pending = vec![false; self.nodes.len()];
        let mut left = 0;
        for h in first.as_slice() {
            pending[h.node as usize] = true;
            left += 1;
        }
        let mut out = Vec::with_capacity(left);
        let held_by_pending = |i: usize, pending: &[bool]| {
            self.blocks
                .get(&blocks[i])
                .is_some_and(|h| h.as_slice().iter().any(|h| pending[h.node as usize]))
        };
        // Every pending node's match is at most `bound` blocks.
        let mut bound = blocks.len();
        while left > 0 {
            // The last block some pending node holds: held at `lo`, not at `hi` or beyond.
            let (mut lo, mut hi) = (0, bound);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if held_by_pending(mid, &pending) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let holders = self
                .blocks
                .get(&blocks[lo])
                .map_or(&[][..], Holders::as_slice);
            for h in holders {
                if std::mem::take(&mut pending[h.node as usize]) {
                    left -= 1;
                    out.push((h.node, lo + 1));
                }
            }
            bound = lo;
            if lo == 0 {
                break;
            }
        }
        out
    }

    fn node_id(&mut self, node: &str, capacity: usize) -> u32 {
        if let Some(id) = self.ids.get(node) {
            return id;
        }
        let name: Arc<str> = Arc::from(node);
        let entry = NodeBlocks {
            hash: node_hash(&name),
            name: name.clone(),
            lru: Lru::new(capacity),
        };
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.nodes[id as usize] = Some(entry);
                id
            }
            None => {
                self.nodes.push(Some(entry));
                (self.nodes.len() - 1) as u32
            }
        };
        self.ids.insert(name, id);
        id
    }
}

/// A model's node ids by name, hashed with [`node_hash`].
#[derive(Debug, Default)]
struct NodeIds(HashTable<(Arc<str>, u32)>);

impl NodeIds {
    fn get(&self, node: &str) -> Option<u32> {
        self.0
            .find(node_hash(node), |(name, _)| **name == *node)
            .map(|&(_, id)| id)
    }

    fn insert(&mut self, name: Arc<str>, id: u32) {
        let hash = node_hash(&name);
        self.0
            .insert_unique(hash, (name, id), |(n, _)| node_hash(n));
    }

    fn remove(&mut self, node: &str) {
        if let Ok(entry) = self
            .0
            .find_entry(node_hash(node), |(name, _)| **name == *node)
        {
            entry.remove();
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&Arc<str>, u32)> {
        self.0.iter().map(|(name, id)| (name, *id))
    }

    #[cfg(test)]
    fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.0.iter().map(|(name, _)| name)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug)]
struct NodeBlocks {
    name: Arc<str>,
    /// [`node_hash`] of `name`.
    hash: u64,
    lru: Lru,
}

/// One node holding a block, and where the block sits in that node's LRU.
#[derive(Debug, Clone, Copy)]
struct Holder {
    node: u32,
    slot: u32,
}

/// The nodes holding one block: usually one, so no allocation for it.
#[derive(Debug)]
enum Holders {
    One(Holder),
    Many(Vec<Holder>),
}

impl Holders {
    fn as_slice(&self) -> &[Holder] {
        match self {
            Holders::One(h) => std::slice::from_ref(h),
            Holders::Many(v) => v,
        }
    }

    fn find(&self, node: u32) -> Option<u32> {
        self.as_slice()
            .iter()
            .find(|h| h.node == node)
            .map(|h| h.slot)
    }

    fn push(&mut self, holder: Holder) {
        match self {
            Holders::One(first) => *self = Holders::Many(vec![*first, holder]),
            Holders::Many(v) => v.push(holder),
        }
    }

    /// Removes `node`; whether no holder is left.
    fn remove(&mut self, node: u32) -> bool {
        match self {
            Holders::One(h) => h.node == node,
            Holders::Many(v) => {
                v.retain(|h| h.node != node);
                match v[..] {
                    [] => true,
                    [only] => {
                        *self = Holders::One(only);
                        false
                    }
                    _ => false,
                }
            }
        }
    }
}

fn detach(
    map: &mut HashMap<u64, Holders, BuildHasherDefault<BlockHashHasher>>,
    hash: u64,
    node: u32,
) {
    if map.get_mut(&hash).is_some_and(|h| h.remove(node)) {
        map.remove(&hash);
    }
}

/// Block hashes are already seeded hashes: the map uses them as they are.
#[derive(Debug, Default)]
struct BlockHashHasher(u64);

impl Hasher for BlockHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
