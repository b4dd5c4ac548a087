//! Which models a node gets for the memory it can serve from.
//!
//! A node with GPU memory is placed by it: all its GPUs of one maker together, since both runtimes
//! split a model over several GPUs ([`super::serving_memory`]), so two 12 GB cards make a 24 GB
//! node. It gets the GPU tier with the highest `min_gpu_memory_bytes` it reaches; the catalog
//! requires a GPU tier at 0, so every node gets one. A node without GPU memory is placed by its
//! system RAM in the CPU tiers (`min_ram_bytes`), when it reaches one; below all of them (or
//! without CPU tiers) it gets the GPU tier at 0.

use std::collections::HashSet;

use llm_router_protocol::node::Hardware;
use serde::{Deserialize, Serialize};

use super::serving_memory::{gib, gpu_memory, no_gpu};
use super::{Catalog, Problem};

/// One step of the placement: nodes with at least `min_gpu_memory_bytes` of GPU memory (all
/// their GPUs of one maker together) get `models`, unless a higher tier applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Shown to people, e.g. `≥ 16 GB`.
    pub label: String,
    pub min_gpu_memory_bytes: u64,
    /// Catalog model names, in the order they are distributed.
    pub models: Vec<String>,
}

/// One step of the placement of nodes without GPU memory: nodes with at least `min_ram_bytes` of
/// system RAM get `models`, unless a higher CPU tier applies. Models run on the CPU there, so a
/// CPU tier lists models whose weights and KV caches fit in RAM beside the system, at a speed
/// worth serving (mixture-of-experts models with few active parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuTier {
    /// Shown to people, e.g. `CPU, ≥ 32 GB RAM`.
    pub label: String,
    pub min_ram_bytes: u64,
    /// Catalog model names, in the order they are distributed.
    pub models: Vec<String>,
}

/// The tiers, validated, highest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    tiers: Vec<Tier>,
    cpu_tiers: Vec<CpuTier>,
}

/// The models chosen for a node, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// The tier's label.
    pub tier: String,
    /// Catalog model names; models the tier names but the catalog lacks are left out.
    pub models: Vec<String>,
    /// One sentence for people, stored with the download tasks, e.g. `GPU memory 24.0 GiB
    /// (GPU 0: NVIDIA GeForce RTX 4090), tier ≥ 16 GB: gpt-oss:20b`.
    pub reason: String,
}

/// The [placement] table of a catalog file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlacementFile {
    pub(super) tiers: Vec<Tier>,
    #[serde(default)]
    pub(super) cpu_tiers: Vec<CpuTier>,
}

impl Placement {
    /// Validates `tiers` and `cpu_tiers`, given in any order: at least one GPU tier, labels
    /// non-empty and unique across both, thresholds unique within each, a GPU tier at 0, no empty
    /// or repeated model name within a tier.
    pub fn new(mut tiers: Vec<Tier>, mut cpu_tiers: Vec<CpuTier>) -> Result<Placement, Problem> {
        if tiers.is_empty() {
            return Err(Problem::NoTiers);
        }
        let mut labels = HashSet::new();
        let all = tiers
            .iter()
            .map(|t| (&t.label, &t.models))
            .chain(cpu_tiers.iter().map(|t| (&t.label, &t.models)));
        for (index, (label, models)) in all.enumerate() {
            check_tier(index, label, models, &mut labels)?;
        }
        cpu_tiers.sort_by_key(|t| std::cmp::Reverse(t.min_ram_bytes));
        if let Some(pair) = cpu_tiers
            .windows(2)
            .find(|w| w[0].min_ram_bytes == w[1].min_ram_bytes)
        {
            return Err(Problem::DuplicateCpuTierThreshold {
                first: pair[0].label.clone(),
                second: pair[1].label.clone(),
                min_ram_bytes: pair[0].min_ram_bytes,
            });
        }
        // Stable: among equal thresholds the first given comes first, and is reported first.
        tiers.sort_by_key(|t| std::cmp::Reverse(t.min_gpu_memory_bytes));
        if let Some(pair) = tiers
            .windows(2)
            .find(|w| w[0].min_gpu_memory_bytes == w[1].min_gpu_memory_bytes)
        {
            return Err(Problem::DuplicateTierThreshold {
                first: pair[0].label.clone(),
                second: pair[1].label.clone(),
                min_gpu_memory_bytes: pair[0].min_gpu_memory_bytes,
            });
        }
        if tiers.last().is_none_or(|t| t.min_gpu_memory_bytes != 0) {
            return Err(Problem::NoBaseTier);
        }
        Ok(Placement { tiers, cpu_tiers })
    }

    /// The GPU tiers, highest threshold first.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The CPU tiers, highest threshold first.
    pub fn cpu_tiers(&self) -> &[CpuTier] {
        &self.cpu_tiers
    }

    /// Every model name the tiers give, GPU tiers first, with repeats.
    pub fn models(&self) -> impl Iterator<Item = &String> {
        self.tiers()
            .iter()
            .flat_map(|t| t.models.iter())
            .chain(self.cpu_tiers().iter().flat_map(|t| t.models.iter()))
    }

    /// The CPU tier for a node without GPU memory and `ram_bytes` of RAM, if it reaches one.
    pub fn cpu_tier_for(&self, ram_bytes: u64) -> Option<&CpuTier> {
        self.cpu_tiers.iter().find(|t| ram_bytes >= t.min_ram_bytes)
    }

    /// The GPU tier for a node with `gpu_memory_bytes` to serve from (0: no GPU).
    pub fn tier_for(&self, gpu_memory_bytes: u64) -> Option<&Tier> {
        self.tiers
            .iter()
            .find(|t| gpu_memory_bytes >= t.min_gpu_memory_bytes)
    }

    /// The models for a node with `hardware`, from its tier, keeping those `catalog` has: the GPU
    /// tier of its GPU memory when it has some, else the CPU tier of its RAM, else the GPU tier
    /// at 0 (no GPU).
    pub fn choose(&self, hardware: &Hardware, catalog: &Catalog) -> Choice {
        let (what, tier) = match gpu_memory(hardware) {
            Some(memory) => (memory.describe(), self.tier_for(memory.total_bytes)),
            None => {
                let ram = hardware.memory_total_bytes;
                match self.cpu_tier_for(ram) {
                    Some(cpu) => {
                        let what = format!("{}; {} of RAM", no_gpu(hardware), gib(ram));
                        return choice(&what, &cpu.label, &cpu.models, catalog);
                    }
                    None if self.cpu_tiers.is_empty() => (no_gpu(hardware), self.tier_for(0)),
                    None => (
                        format!(
                            "{}; {} of RAM, below every CPU tier",
                            no_gpu(hardware),
                            gib(ram)
                        ),
                        self.tier_for(0),
                    ),
                }
            }
        };
        match tier {
            Some(tier) => choice(&what, &tier.label, &tier.models, catalog),
            // Not reached: a validated placement always has a tier at 0.
            None => Choice {
                tier: String::new(),
                models: Vec::new(),
                reason: format!("{what}, and no placement tier covers it"),
            },
        }
    }
}

/// The choice of a tier's `models` that `catalog` has, with the reason.
fn choice(what: &str, label: &str, tier_models: &[String], catalog: &Catalog) -> Choice {
    let (models, missing): (Vec<&String>, Vec<&String>) = tier_models
        .iter()
        .partition(|name| catalog.get(name).is_some());
    let listed = if models.is_empty() {
        "no models".to_owned()
    } else {
        join(&models)
    };
    let mut reason = format!("{what}, tier {label}: {listed}");
    if !missing.is_empty() {
        reason.push_str(&format!(
            "; not in the catalog, skipped: {}",
            join(&missing)
        ));
    }
    Choice {
        tier: label.to_owned(),
        models: models.into_iter().cloned().collect(),
        reason,
    }
}

/// Label at position `index` (GPU tiers, then CPU tiers) non-empty and not seen before; models
/// non-empty and not repeated.
fn check_tier<'a>(
    index: usize,
    label: &'a str,
    models: &[String],
    labels: &mut HashSet<&'a str>,
) -> Result<(), Problem> {
    if label.trim().is_empty() {
        return Err(Problem::EmptyTierLabel { index });
    }
    if !labels.insert(label) {
        return Err(Problem::DuplicateTierLabel {
            label: label.to_owned(),
        });
    }
    let mut seen = HashSet::new();
    for model in models {
        if model.is_empty() {
            return Err(Problem::EmptyTierModel {
                label: label.to_owned(),
            });
        }
        if !seen.insert(model.as_str()) {
            return Err(Problem::DuplicateTierModel {
                label: label.to_owned(),
                model: model.clone(),
            });
        }
    }
    Ok(())
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
