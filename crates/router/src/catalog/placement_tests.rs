use llm_router_protocol::node::{GpuDevice, Hardware};

use super::*;

const GIB: u64 = 1 << 30;

fn builtin() -> Catalog {
    Catalog::builtin().expect("the built-in catalog is valid")
}

fn gpu(index: u32, name: &str, memory_total_bytes: u64) -> GpuDevice {
    GpuDevice {
        index,
        name: name.to_owned(),
        memory_total_bytes,
    }
}

fn node(gpus: Vec<GpuDevice>) -> Hardware {
    Hardware {
        cpu_cores: 8,
        memory_total_bytes: 64 * GIB,
        gpus,
    }
}

/// The choice of the built-in catalog for a node with one GPU of `memory` bytes.
fn choose(memory: u64) -> Choice {
    let catalog = builtin();
    catalog
        .placement()
        .choose(&node(vec![gpu(0, "Test GPU", memory)]), &catalog)
}

#[test]
fn gpu_with_80_gb_gets_gpt_oss_120b_and_safeguard() {
    // An 80 GB A100 reports 81920 MiB.
    let choice = choose(81_920 * (1 << 20));
    assert_eq!(choice.tier, "≥ 80 GB");
    assert_eq!(choice.models, ["gpt-oss:120b", "gpt-oss-safeguard:20b"]);
}

#[test]
fn gpu_with_48_gb_gets_the_three_20_to_30b_models() {
    let choice = choose(48 * GIB);
    assert_eq!(choice.tier, "≥ 48 GB");
    assert_eq!(
        choice.models,
        ["gpt-oss:20b", "gpt-oss-safeguard:20b", "qwen3-coder:30b"]
    );
}

#[test]
fn gpu_with_16_gb_gets_gpt_oss_20b() {
    for memory in [16 * GIB, 15_360 * (1 << 20), 24 * GIB] {
        let choice = choose(memory);
        assert_eq!(choice.tier, "≥ 16 GB", "{memory}");
        assert_eq!(choice.models, ["gpt-oss:20b"]);
    }
}

#[test]
fn gpu_with_8_gb_gets_the_small_model() {
    let choice = choose(8 * GIB);
    assert_eq!(choice.tier, "≥ 8 GB");
    assert_eq!(choice.models, ["gemma3-270m"]);
}

#[test]
fn gpu_with_4_5_gb_gets_the_small_model() {
    let choice = choose(6 * GIB);
    assert_eq!(choice.tier, "≥ 4.5 GB");
    assert_eq!(choice.models, ["gemma3-270m"]);
}

#[test]
fn small_gpu_gets_the_small_model() {
    let choice = choose(4 * GIB);
    assert_eq!(choice.tier, "< 4.5 GB");
    assert_eq!(choice.models, ["gemma3-270m"]);
}

#[test]
fn node_without_gpu_gets_the_small_model() {
    let catalog = builtin();
    let choice = catalog.placement().choose(&node(Vec::new()), &catalog);
    assert_eq!(choice.tier, "no GPU");
    assert_eq!(choice.models, ["gemma3-270m"]);
    assert_eq!(choice.reason, "no GPU reported, tier no GPU: gemma3-270m");
}

#[test]
fn gpu_that_reports_no_memory_counts_as_no_gpu() {
    let catalog = builtin();
    let choice = catalog
        .placement()
        .choose(&node(vec![gpu(0, "Mystery", 0)]), &catalog);
    assert_eq!(choice.tier, "no GPU");
    assert_eq!(
        choice.reason,
        "no GPU memory reported (1 GPU of unknown size), tier no GPU: gemma3-270m"
    );
}

#[test]
fn tiers_start_exactly_at_their_threshold() {
    let cases = [
        (80_000_000_000, "≥ 80 GB"),
        (79_999_999_999, "≥ 48 GB"),
        (48_000_000_000, "≥ 48 GB"),
        (47_999_999_999, "≥ 16 GB"),
        (16_000_000_000, "≥ 16 GB"),
        (15_999_999_999, "≥ 8 GB"),
        (8_000_000_000, "≥ 8 GB"),
        (7_999_999_999, "≥ 4.5 GB"),
        (4_500_000_000, "≥ 4.5 GB"),
        (4_499_999_999, "< 4.5 GB"),
        (1, "< 4.5 GB"),
    ];
    for (memory, tier) in cases {
        assert_eq!(choose(memory).tier, tier, "{memory} bytes");
    }
}

#[test]
fn the_largest_single_gpu_decides_not_the_sum() {
    let catalog = builtin();
    let hardware = node(vec![
        gpu(0, "NVIDIA GeForce RTX 3060", 12 * GIB),
        gpu(1, "NVIDIA GeForce RTX 3060", 12 * GIB),
    ]);
    let choice = catalog.placement().choose(&hardware, &catalog);
    assert_eq!(choice.tier, "≥ 8 GB");
    assert_eq!(
        choice.reason,
        "largest of 2 GPUs has 12.0 GiB (GPU 0: NVIDIA GeForce RTX 3060), tier ≥ 8 GB: gemma3-270m"
    );
}

#[test]
fn largest_gpu_is_the_one_with_most_memory_first_of_equals() {
    let hardware = node(vec![
        gpu(0, "small", 8 * GIB),
        gpu(1, "big", 24 * GIB),
        gpu(2, "big too", 24 * GIB),
        gpu(3, "unknown", 0),
    ]);
    assert_eq!(largest_gpu(&hardware).map(|g| g.index), Some(1));
    assert_eq!(largest_gpu(&node(vec![gpu(0, "unknown", 0)])), None);
}

#[test]
fn reason_names_the_gpu_its_memory_and_the_models() {
    let catalog = builtin();
    let hardware = node(vec![gpu(0, "NVIDIA GeForce RTX 4090", 24_564 * (1 << 20))]);
    let choice = catalog.placement().choose(&hardware, &catalog);
    assert_eq!(
        choice.reason,
        "largest GPU has 24.0 GiB (GPU 0: NVIDIA GeForce RTX 4090), tier ≥ 16 GB: gpt-oss:20b"
    );
}

#[test]
fn models_missing_from_the_catalog_are_skipped_and_said() {
    let catalog = builtin()
        .with_file(
            r#"
[[placement.tiers]]
label = "everything"
min_gpu_memory_bytes = 0
models = ["llama9:70b", "gemma3-270m", "phi9:3b"]
"#,
            "test.toml",
        )
        .unwrap();
    let choice = catalog.placement().choose(&node(Vec::new()), &catalog);
    assert_eq!(choice.models, ["gemma3-270m"]);
    assert_eq!(
        choice.reason,
        "no GPU reported, tier everything: gemma3-270m; not in the catalog, skipped: llama9:70b, phi9:3b"
    );
}

#[test]
fn tier_with_no_known_models_gives_none() {
    let catalog = builtin()
        .with_file(
            "[[placement.tiers]]\nlabel = \"CPU\"\nmin_gpu_memory_bytes = 0\nmodels = []\n",
            "test.toml",
        )
        .unwrap();
    let choice = catalog.placement().choose(&node(Vec::new()), &catalog);
    assert!(choice.models.is_empty());
    assert_eq!(choice.reason, "no GPU reported, tier CPU: no models");
}

#[test]
fn user_tiers_and_entries_decide_the_choice() {
    let catalog = builtin()
        .with_file(
            r#"
[[models]]
name = "qwen3:8b"
size_bytes = 5_027_783_488
recommended_gpu_memory_bytes = 8_000_000_000
ollama = "qwen3:8b"

[[placement.tiers]]
label = "CPU"
min_gpu_memory_bytes = 0
models = ["gemma3-270m"]

[[placement.tiers]]
label = "8 GB and up"
min_gpu_memory_bytes = 8_000_000_000
models = ["qwen3:8b", "gemma3-270m"]

[[placement.tiers]]
label = "24 GB and up"
min_gpu_memory_bytes = 24_000_000_000
models = ["qwen3-coder:30b"]
"#,
            "user.toml",
        )
        .unwrap();
    let pick = |memory: u64| {
        catalog
            .placement()
            .choose(&node(vec![gpu(0, "GPU", memory)]), &catalog)
    };
    assert_eq!(pick(12 * GIB).models, ["qwen3:8b", "gemma3-270m"]);
    assert_eq!(pick(24 * GIB).tier, "24 GB and up");
    assert_eq!(pick(24 * GIB).models, ["qwen3-coder:30b"]);
    assert_eq!(pick(80 * GIB).tier, "24 GB and up");
    assert_eq!(pick(4 * GIB).tier, "CPU");
}

#[test]
fn tiers_given_in_any_order_are_kept_highest_first() {
    let tier = |label: &str, min: u64| Tier {
        label: label.into(),
        min_gpu_memory_bytes: min,
        models: Vec::new(),
    };
    let placement = Placement::new(vec![tier("b", 10), tier("a", 0), tier("c", 20)]).unwrap();
    let order: Vec<u64> = placement
        .tiers()
        .iter()
        .map(|t| t.min_gpu_memory_bytes)
        .collect();
    assert_eq!(order, [20, 10, 0]);
    assert_eq!(placement.tier_for(15).map(|t| t.label.as_str()), Some("b"));
    assert_eq!(placement.tier_for(0).map(|t| t.label.as_str()), Some("a"));
}
