use llm_router_protocol::node::{GpuDevice, GpuVendor, Hardware};

use super::serving_memory::gpu_memory;
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
        vendor: Some(GpuVendor::Nvidia),
    }
}

fn amd(index: u32, name: &str, memory_total_bytes: u64) -> GpuDevice {
    GpuDevice {
        vendor: Some(GpuVendor::Amd),
        ..gpu(index, name, memory_total_bytes)
    }
}

/// A node with 16 GiB of RAM (below every built-in CPU tier) and `gpus`.
fn node(gpus: Vec<GpuDevice>) -> Hardware {
    with_ram(16 * GIB, gpus)
}

fn with_ram(memory_total_bytes: u64, gpus: Vec<GpuDevice>) -> Hardware {
    Hardware {
        cpu_cores: 8,
        memory_total_bytes,
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
    assert_eq!(
        choice.reason,
        "no GPU reported; 16.0 GiB of RAM, below every CPU tier, tier no GPU: gemma3-270m"
    );
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
        "no GPU memory reported (1 GPU of unknown size); 16.0 GiB of RAM, below every CPU tier, \
         tier no GPU: gemma3-270m"
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
fn all_gpus_of_a_node_add_up() {
    let catalog = builtin();
    let hardware = node(vec![
        gpu(0, "NVIDIA GeForce RTX 3060", 12 * GIB),
        gpu(1, "NVIDIA GeForce RTX 3060", 12 * GIB),
    ]);
    let choice = catalog.placement().choose(&hardware, &catalog);
    assert_eq!(choice.tier, "≥ 16 GB");
    assert_eq!(
        choice.reason,
        "GPU memory 24.0 GiB over 2 GPUs (GPU 0: NVIDIA GeForce RTX 3060 12.0 GiB, \
         GPU 1: NVIDIA GeForce RTX 3060 12.0 GiB), tier ≥ 16 GB: gpt-oss:20b"
    );
    // Four 24 GB cards serve what one 80 GB card does.
    let four = node(
        (0..4)
            .map(|i| gpu(i, "NVIDIA RTX A5000", 24 * GIB))
            .collect(),
    );
    let choice = catalog.placement().choose(&four, &catalog);
    assert_eq!(choice.models, ["gpt-oss:120b", "gpt-oss-safeguard:20b"]);
}

#[test]
fn amd_gpus_place_like_nvidia_ones() {
    let catalog = builtin();
    let one = node(vec![amd(0, "Radeon RX 7900 XTX", 24 * GIB)]);
    let choice = catalog.placement().choose(&one, &catalog);
    assert_eq!(choice.models, ["gpt-oss:20b"]);
    assert_eq!(
        choice.reason,
        "GPU memory 24.0 GiB (GPU 0: AMD Radeon RX 7900 XTX), tier ≥ 16 GB: gpt-oss:20b"
    );
    // Two 48 GB AMD cards (sysfs gives no product name on some boards).
    let two = node(vec![
        amd(0, "AMD GPU (card0)", 48 * GIB),
        amd(1, "AMD GPU (card1)", 48 * GIB),
    ]);
    let choice = catalog.placement().choose(&two, &catalog);
    assert_eq!(choice.tier, "≥ 80 GB");
    assert!(
        choice
            .reason
            .starts_with("GPU memory 96.0 GiB over 2 GPUs (GPU 0: AMD GPU (card0) 48.0 GiB"),
        "{}",
        choice.reason
    );
}

#[test]
fn gpus_of_different_makers_are_not_added_up() {
    // One runtime build drives one maker's GPUs: the maker with the most memory counts.
    let hardware = node(vec![
        gpu(0, "NVIDIA GeForce RTX 4060", 8 * GIB),
        amd(1, "Radeon PRO W7900", 48 * GIB),
        gpu(2, "NVIDIA GeForce RTX 4060", 8 * GIB),
        gpu(3, "unknown", 0),
    ]);
    let memory = gpu_memory(&hardware).unwrap();
    assert_eq!(memory.total_bytes, 48 * GIB);
    assert_eq!(memory.left_out, 3);
    let catalog = builtin();
    let choice = catalog.placement().choose(&hardware, &catalog);
    assert_eq!(choice.tier, "≥ 48 GB");
    assert!(
        choice.reason.contains("3 other GPUs not counted"),
        "{}",
        choice.reason
    );
    assert_eq!(gpu_memory(&node(vec![gpu(0, "unknown", 0)])), None);
}

#[test]
fn cpu_nodes_are_placed_by_their_ram() {
    let catalog = builtin();
    let pick = |ram: u64| {
        catalog
            .placement()
            .choose(&with_ram(ram, Vec::new()), &catalog)
    };
    // A machine sold as 64 GB: gpt-oss:20b on the CPU.
    let choice = pick(64 * GIB);
    assert_eq!(choice.tier, "CPU, ≥ 32 GB RAM");
    assert_eq!(choice.models, ["gpt-oss:20b"]);
    assert_eq!(
        choice.reason,
        "no GPU reported; 64.0 GiB of RAM, tier CPU, ≥ 32 GB RAM: gpt-oss:20b"
    );
    // 32 GiB reported by a 32 GB machine reaches the tier; 31 GB does not.
    assert_eq!(pick(32 * GIB).tier, "CPU, ≥ 32 GB RAM");
    assert_eq!(pick(31_000_000_000).tier, "no GPU");
    assert_eq!(pick(128 * GIB).models, ["gpt-oss:120b"]);
    // A GPU with memory places by the GPU, however much RAM the node has.
    let choice = catalog
        .placement()
        .choose(&with_ram(256 * GIB, vec![gpu(0, "GPU", 8 * GIB)]), &catalog);
    assert_eq!(choice.tier, "≥ 8 GB");
}

#[test]
fn reason_names_the_gpu_its_memory_and_the_models() {
    let catalog = builtin();
    let hardware = node(vec![gpu(0, "NVIDIA GeForce RTX 4090", 24_564 * (1 << 20))]);
    let choice = catalog.placement().choose(&hardware, &catalog);
    assert_eq!(
        choice.reason,
        "GPU memory 24.0 GiB (GPU 0: NVIDIA GeForce RTX 4090), tier ≥ 16 GB: gpt-oss:20b"
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
        "no GPU reported, tier everything: gemma3-270m; not in the catalog, skipped: \
         llama9:70b, phi9:3b"
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
    let placement =
        Placement::new(vec![tier("b", 10), tier("a", 0), tier("c", 20)], Vec::new()).unwrap();
    let order: Vec<u64> = placement
        .tiers()
        .iter()
        .map(|t| t.min_gpu_memory_bytes)
        .collect();
    assert_eq!(order, [20, 10, 0]);
    assert_eq!(placement.tier_for(15).map(|t| t.label.as_str()), Some("b"));
    assert_eq!(placement.tier_for(0).map(|t| t.label.as_str()), Some("a"));
}

#[test]
fn cpu_tiers_are_checked_like_gpu_tiers() {
    let tier = |label: &str, min: u64| Tier {
        label: label.into(),
        min_gpu_memory_bytes: min,
        models: Vec::new(),
    };
    let cpu = |label: &str, min: u64| CpuTier {
        label: label.into(),
        min_ram_bytes: min,
        models: vec!["m".into()],
    };
    let placement =
        Placement::new(vec![tier("no GPU", 0)], vec![cpu("32", 32), cpu("96", 96)]).unwrap();
    let order: Vec<u64> = placement
        .cpu_tiers()
        .iter()
        .map(|t| t.min_ram_bytes)
        .collect();
    assert_eq!(order, [96, 32]);
    assert_eq!(
        placement.cpu_tier_for(40).map(|t| t.label.as_str()),
        Some("32")
    );
    assert_eq!(placement.cpu_tier_for(31), None);
    assert!(matches!(
        Placement::new(vec![tier("no GPU", 0)], vec![cpu("a", 32), cpu("b", 32)]),
        Err(Problem::DuplicateCpuTierThreshold { .. })
    ));
    assert!(matches!(
        Placement::new(vec![tier("x", 0)], vec![cpu("x", 32)]),
        Err(Problem::DuplicateTierLabel { .. })
    ));
    assert!(matches!(
        Placement::new(vec![tier("x", 0)], vec![cpu(" ", 32)]),
        Err(Problem::EmptyTierLabel { index: 1 })
    ));
}

#[test]
fn a_catalog_file_without_cpu_tiers_places_cpu_nodes_in_the_gpu_tier_at_0() {
    let catalog = builtin()
        .with_file(
            "[[placement.tiers]]\nlabel = \"CPU\"\nmin_gpu_memory_bytes = 0\nmodels = [\"gemma3-270m\"]\n",
            "test.toml",
        )
        .unwrap();
    let choice = catalog
        .placement()
        .choose(&with_ram(512 * GIB, Vec::new()), &catalog);
    assert_eq!(choice.tier, "CPU");
    assert_eq!(choice.reason, "no GPU reported, tier CPU: gemma3-270m");
}
