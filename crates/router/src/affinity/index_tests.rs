use super::*;
use crate::affinity::PromptHasher;

/// A chain of `n` distinct block hashes; chains with different `id`s share nothing.
fn chain(id: u64, n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| (id << 32) | (i + 1)).collect()
}

/// `shared` blocks of `a`, then blocks of their own.
fn branch(a: &[u64], shared: usize, id: u64, n: usize) -> Vec<u64> {
    let mut out = a[..shared].to_vec();
    out.extend(chain(id, n - shared));
    out
}

/// Matches as (node, blocks), longest first, ties by node.
fn hashed<'a>(ids: &'a [&'a str]) -> impl Iterator<Item = (&'a str, u64)> {
    ids.iter().map(|id| (*id, node_hash(id)))
}

fn names(matches: &[NodeMatch]) -> Vec<(&str, usize)> {
    let mut out: Vec<(&str, usize)> = matches.iter().map(|m| (&*m.node, m.blocks)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    out
}

/// Every holder points at an LRU entry of the same hash, and every LRU entry has its holder.
fn assert_consistent(index: &PrefixIndex) {
    for m in index.models.values() {
        let mut holders = 0;
        for (hash, hs) in &m.blocks {
            for h in hs.as_slice() {
                let node = m.nodes[h.node as usize].as_ref().unwrap();
                assert_eq!(node.lru.hash(h.slot), *hash);
                holders += 1;
            }
        }
        let entries: usize = m.nodes.iter().flatten().map(|n| n.lru.len()).sum();
        assert_eq!(holders, entries);
        for n in m.nodes.iter().flatten() {
            assert!(n.lru.len() <= n.lru.capacity());
            assert_eq!(n.lru.hashes().count(), n.lru.len());
        }
    }
}

#[test]
fn matches_count_the_leading_blocks_each_node_holds() {
    let mut index = PrefixIndex::new(100);
    let a = chain(1, 10);
    index.record("m", "n1", &a);
    index.record("m", "n2", &a[..4]);
    index.record("m", "n3", &chain(2, 10));
    assert_eq!(names(&index.matches("m", &a)), [("n1", 10), ("n2", 4)]);
    assert_eq!(index.match_len("m", "n1", &a), 10);
    assert_eq!(index.match_len("m", "n2", &a), 4);
    assert_eq!(index.match_len("m", "n3", &a), 0);
    // Another model, or a prompt that differs from block 6 on.
    assert!(index.matches("other", &a).is_empty());
    let b = branch(&a, 6, 3, 12);
    assert_eq!(names(&index.matches("m", &b)), [("n1", 6), ("n2", 4)]);
    assert_eq!(index.match_len("m", "n1", &b), 6);
}

#[test]
fn a_hit_at_block_i_means_the_prompts_share_i_blocks() {
    let h = PromptHasher::with_seed(3);
    let base: String = (0..4000)
        .map(|i| char::from(b'a' + (i % 23) as u8))
        .collect();
    let mut index = PrefixIndex::default();
    index.record("m", "n", &h.text(&base).blocks);
    for k in [0usize, 5, 30, 61] {
        let mut changed = base.clone().into_bytes();
        changed[k * super::super::prompt::BLOCK_BYTES + 1] = b'!';
        let key = h.text(std::str::from_utf8(&changed).unwrap());
        assert_eq!(
            index.match_len("m", "n", &key.blocks),
            k,
            "change in block {k}"
        );
    }
}

#[test]
fn matches_join_with_node_ids() {
    let mut index = PrefixIndex::new(100);
    let a = chain(1, 10);
    index.record("m", "n1", &a);
    index.record("m", "n2", &a[..4]);
    assert_eq!(
        index.match_each("m", &a, hashed(&["n3", "n1", "n2", "n1"])),
        Some(vec![0, 10, 4, 10]),
        "in the caller's order, 0 for a node the index does not know"
    );
    assert_eq!(
        index.match_each("m", &chain(2, 10), hashed(&["n1", "n2"])),
        None,
        "nobody holds the first block"
    );
    assert_eq!(index.match_each("other", &a, hashed(&["n1"])), None);
}

#[test]
fn bisection_agrees_with_a_walk_over_many_nodes_and_lengths() {
    let mut index = PrefixIndex::new(1000);
    let root = chain(1, 200);
    for n in 0..300u64 {
        let depth = 1 + (n * 37 % 200) as usize;
        index.record("m", &format!("n{n}"), &root[..depth]);
        if n % 3 == 0 {
            index.record(
                "m",
                &format!("n{n}"),
                &branch(&root, depth / 2, 100 + n, depth),
            );
        }
    }
    for probe in [root.clone(), branch(&root, 50, 7, 120), root[..1].to_vec()] {
        let bisected = index.matches("m", &probe);
        assert_eq!(names(&bisected), names(&index.matches_by_walk("m", &probe)));
        assert!(
            bisected.windows(2).all(|w| w[0].blocks >= w[1].blocks),
            "longest first"
        );
    }
}

#[test]
fn a_node_missing_a_middle_block_matches_only_up_to_it() {
    let mut index = PrefixIndex::new(100);
    let a = chain(1, 8);
    index.record("m", "n1", &a);
    index.record("m", "n2", &a);
    // n1 lost block 3 and everything older (recorded after it in the same prompt).
    assert_eq!(index.correct("m", "n1", &a, 3), 5);
    assert_eq!(names(&index.matches("m", &a)), [("n2", 8), ("n1", 3)]);
}

#[test]
fn eviction_drops_the_least_recently_used_blocks_and_a_prompts_tail_first() {
    let mut index = PrefixIndex::new(10);
    let x = chain(1, 5);
    let y = chain(2, 5);
    index.record("m", "n", &x);
    index.record("m", "n", &y);
    // Three more blocks evict x's last three: x keeps its first two.
    index.record("m", "n", &chain(3, 3));
    assert_eq!(index.match_len("m", "n", &x), 2);
    assert_eq!(index.match_len("m", "n", &y), 5);
    // Using x again makes it the most recent: the next blocks evict y's tail, then z's.
    index.record("m", "n", &x[..2]);
    index.record("m", "n", &chain(4, 4));
    assert_eq!(index.match_len("m", "n", &x), 2);
    assert_eq!(index.match_len("m", "n", &y), 1);
    assert_eq!(index.node_blocks("m", "n"), 10);
    assert_consistent(&index);
}

#[test]
fn a_shared_system_prompt_outlives_the_conversations_built_on_it() {
    let mut index = PrefixIndex::new(40);
    let system = chain(1, 8);
    for conversation in 2..20 {
        index.record("m", "n", &branch(&system, 8, conversation, 20));
    }
    assert_eq!(index.match_len("m", "n", &system), 8);
    assert_consistent(&index);
}

#[test]
fn a_prompt_longer_than_the_capacity_keeps_its_first_blocks() {
    let mut index = PrefixIndex::new(6);
    let long = chain(1, 50);
    index.record("m", "n", &long);
    assert_eq!(index.match_len("m", "n", &long), 6);
    assert_eq!(index.blocks_held(), 6);
}

#[test]
fn memory_stays_within_the_sum_of_the_capacities() {
    let capacities = [7usize, 30, 64, 128];
    let mut index = PrefixIndex::new(1);
    for (n, cap) in capacities.iter().enumerate() {
        for model in ["a", "b"] {
            index.set_capacity(model, &format!("n{n}"), *cap);
        }
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let roots: Vec<Vec<u64>> = (0..12).map(|r| chain(r + 1, 40)).collect();
    for i in 0..3000 {
        let root = &roots[(next() % 12) as usize];
        let shared = (next() % 30) as usize;
        let prompt = branch(root, shared, 1000 + i, shared + 1 + (next() % 90) as usize);
        let model = if next() % 3 == 0 { "a" } else { "b" };
        let node = format!("n{}", next() % 4);
        if i % 50 == 0 {
            assert_eq!(
                names(&index.matches(model, &prompt)),
                names(&index.matches_by_walk(model, &prompt)),
                "bisection and walk agree"
            );
        }
        index.record(model, &node, &prompt);
        if i % 97 == 0 {
            let reported = (next() % 20) as usize;
            index.correct(model, &node, &prompt, reported);
        }
    }
    let bound: usize = 2 * capacities.iter().sum::<usize>();
    assert!(index.blocks_held() <= bound);
    for (n, cap) in capacities.iter().enumerate() {
        for model in ["a", "b"] {
            assert!(index.node_blocks(model, &format!("n{n}")) <= *cap);
        }
    }
    for m in index.models.values() {
        assert!(m.blocks.len() <= index.blocks_held());
        for n in m.nodes.iter().flatten() {
            // The slab never grows past the capacity (freed slots are reused).
            assert!(n.lru.slab_len() <= n.lru.capacity());
        }
    }
    assert_consistent(&index);
}

#[test]
fn forgetting_a_node_drops_all_it_held_and_nothing_else() {
    let mut index = PrefixIndex::new(100);
    let a = chain(1, 10);
    for model in ["m1", "m2"] {
        index.record(model, "gone", &a);
        index.record(model, "kept", &a[..5]);
    }
    index.record("m3", "gone", &a);
    index.forget_node("gone");
    assert_eq!(names(&index.matches("m1", &a)), [("kept", 5)]);
    assert_eq!(names(&index.matches("m2", &a)), [("kept", 5)]);
    assert!(index.matches("m3", &a).is_empty());
    assert!(
        !index.models.contains_key("m3"),
        "a model nobody holds is dropped"
    );
    assert_eq!(index.blocks_held(), 10);
    assert_eq!(index.models["m1"].blocks.len(), 5);
    // A node coming back starts empty and reuses the free id.
    index.record("m1", "new", &chain(9, 3));
    assert_eq!(index.models["m1"].nodes.len(), 2);
    assert_eq!(index.match_len("m1", "new", &a), 0);
    assert_consistent(&index);
}

#[test]
fn retain_forgets_one_model_of_a_node_and_keeps_its_others() {
    let mut index = PrefixIndex::new(100);
    let a = chain(1, 8);
    index.record("m1", "n", &a);
    index.record("m2", "n", &a);
    index.record("m1", "other", &a[..3]);
    index.retain(|model, node| !(model == "m1" && node == "n"));
    assert_eq!(names(&index.matches("m1", &a)), [("other", 3)]);
    assert_eq!(names(&index.matches("m2", &a)), [("n", 8)]);
    assert_eq!(index.blocks_held(), 11);
    assert_consistent(&index);
}

#[test]
fn a_reported_miss_drops_the_missed_blocks_and_everything_older() {
    let mut index = PrefixIndex::new(100);
    let old = chain(1, 6);
    let x = chain(2, 10);
    let newer = chain(3, 4);
    index.record("m", "n", &old);
    index.record("m", "n", &x);
    index.record("m", "n", &newer);
    // Predicted 10 blocks of x, the node reused 4: x[4..] and `old` (older still) are gone.
    assert_eq!(index.correct("m", "n", &x, 4), 6 + 6);
    assert_eq!(index.match_len("m", "n", &x), 4);
    assert_eq!(index.match_len("m", "n", &old), 0);
    assert_eq!(index.match_len("m", "n", &newer), 4);
    assert_consistent(&index);
}

#[test]
fn a_report_that_meets_the_prediction_changes_nothing() {
    let mut index = PrefixIndex::new(100);
    let x = chain(1, 10);
    index.record("m", "n", &x[..6]);
    assert_eq!(index.correct("m", "n", &x, 6), 0);
    assert_eq!(index.correct("m", "n", &x, 10), 0);
    assert_eq!(index.correct("m", "unknown", &x, 0), 0);
    assert_eq!(index.match_len("m", "n", &x), 6);
}

#[test]
fn lowering_the_capacity_evicts_the_oldest() {
    let mut index = PrefixIndex::new(100);
    let x = chain(1, 10);
    let y = chain(2, 10);
    index.record("m", "n", &x);
    index.record("m", "n", &y);
    index.set_capacity("m", "n", 12);
    assert_eq!(index.match_len("m", "n", &y), 10);
    assert_eq!(index.match_len("m", "n", &x), 2);
    assert_consistent(&index);
}

#[test]
fn capacity_comes_from_slots_context_and_host_cache() {
    // 4 slots x 4 096 tokens + 16 384 tokens of host cache, 16 tokens a block.
    assert_eq!(capacity_blocks(4, 4096, 16_384), 2048);
    assert_eq!(capacity_blocks(0, 0, 0), 1);
    assert!(capacity_blocks(u32::MAX, u64::MAX, u64::MAX) < u32::MAX as usize);
}

#[test]
fn the_shared_index_is_usable_after_a_panic_while_locked() {
    let shared = Arc::new(SharedIndex::default());
    let s = shared.clone();
    let _ = std::thread::spawn(move || {
        let _guard = s.lock();
        panic!("while locked");
    })
    .join();
    shared.lock().record("m", "n", &chain(1, 3));
    assert_eq!(shared.lock().match_len("m", "n", &chain(1, 3)), 3);
}
