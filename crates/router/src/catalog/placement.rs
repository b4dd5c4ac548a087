//! Which models a node gets for its GPU memory.
//!
//! The GPU memory of a node is that of its largest single GPU: one model is not assumed to be
//! split over several GPUs, so two 12 GB cards make a 12 GB node, not a 24 GB one. A GPU that
//! reports no memory counts as no GPU. The node gets the tier with the highest
//! `min_gpu_memory_bytes` it reaches; the catalog requires a tier at 0, so every node gets one.

use std::collections::HashSet;

use llm_router_protocol::node::{GpuDevice, Hardware};
use serde::{Deserialize, Serialize};

use super::{Catalog, Problem};

/// One step of the placement: nodes whose largest GPU has at least `min_gpu_memory_bytes` get
/// `models`, unless a higher tier applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Shown to people, e.g. `≥ 16 GB`.
    pub label: String,
    pub min_gpu_memory_bytes: u64,
    /// Catalog model names, in the order they are distributed.
    pub models: Vec<String>,
}

/// The tiers, validated, highest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    tiers: Vec<Tier>,
}

/// The models chosen for a node, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// The tier's label.
    pub tier: String,
    /// Catalog model names; models the tier names but the catalog lacks are left out.
    pub models: Vec<String>,
    /// One sentence for people, stored with the download tasks, e.g. `largest GPU has 24.0 GiB
    /// (GPU 0: NVIDIA GeForce RTX 4090), tier ≥ 16 GB: gpt-oss:20b`.
    pub reason: String,
}

/// The [placement] table of a catalog file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlacementFile {
    pub(super) tiers: Vec<Tier>,
}

impl Placement {
    /// Validates `tiers`, given in any order: at least one, labels non-empty and unique,
    /// thresholds unique, one of them 0, no empty or repeated model name within a tier.
    pub fn new(mut tiers: Vec<Tier>) -> Result<Placement, Problem> {
        if tiers.is_empty() {
            return Err(Problem::NoTiers);
        }
        let mut labels = HashSet::new();
        for (index, tier) in tiers.iter().enumerate() {
            if tier.label.trim().is_empty() {
                return Err(Problem::EmptyTierLabel { index });
            }
            if !labels.insert(tier.label.as_str()) {
                return Err(Problem::DuplicateTierLabel {
                    label: tier.label.clone(),
                });
            }
            let mut models = HashSet::new();
            for model in &tier.models {
                if model.is_empty() {
                    return Err(Problem::EmptyTierModel {
                        label: tier.label.clone(),
                    });
                }
                if !models.insert(model.as_str()) {
                    return Err(Problem::DuplicateTierModel {
                        label: tier.label.clone(),
                        model: model.clone(),
                    });
                }
            }
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
        Ok(Placement { tiers })
    }

    /// The tiers, highest threshold first.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The tier for a node whose largest GPU has `gpu_memory_bytes` (0: no GPU).
    pub fn tier_for(&self, gpu_memory_bytes: u64) -> Option<&Tier> {
        self.tiers
            .iter()
            .find(|t| gpu_memory_bytes >= t.min_gpu_memory_bytes)
    }

    /// The models for a node with `hardware`, from its tier, keeping those `catalog` has.
    pub fn choose(&self, hardware: &Hardware, catalog: &Catalog) -> Choice {
        let largest = largest_gpu(hardware);
        let memory = largest.map_or(0, |g| g.memory_total_bytes);
        let gpu = describe_gpu(hardware, largest);
        let Some(tier) = self.tier_for(memory) else {
            // Not reached: a validated placement always has a tier at 0.
            return Choice {
                tier: String::new(),
                models: Vec::new(),
                reason: format!("{gpu}, and no placement tier covers it"),
            };
        };
        let (models, missing): (Vec<&String>, Vec<&String>) = tier
            .models
            .iter()
            .partition(|name| catalog.get(name).is_some());
        let listed = if models.is_empty() {
            "no models".to_owned()
        } else {
            join(&models)
        };
        let mut reason = format!("{gpu}, tier {}: {listed}", tier.label);
        if !missing.is_empty() {
            reason.push_str(&format!(
                "; not in the catalog, skipped: {}",
                join(&missing)
            ));
        }
        Choice {
            tier: tier.label.clone(),
            models: models.into_iter().cloned().collect(),
            reason,
        }
    }
}

/// The GPU with the most memory (the first of equals); `None` without a GPU that reports memory.
pub fn largest_gpu(hardware: &Hardware) -> Option<&GpuDevice> {
    hardware
        .gpus
        .iter()
        .filter(|g| g.memory_total_bytes > 0)
        .fold(None, |best: Option<&GpuDevice>, g| match best {
            Some(b) if b.memory_total_bytes >= g.memory_total_bytes => Some(b),
            _ => Some(g),
        })
}

fn describe_gpu(hardware: &Hardware, largest: Option<&GpuDevice>) -> String {
    let count = hardware.gpus.len();
    match largest {
        Some(g) => {
            let which = if count > 1 {
                format!("largest of {count} GPUs")
            } else {
                "largest GPU".to_owned()
            };
            format!(
                "{which} has {} (GPU {}: {})",
                gib(g.memory_total_bytes),
                g.index,
                g.name
            )
        }
        None if count == 0 => "no GPU reported".to_owned(),
        None if count == 1 => "no GPU memory reported (1 GPU of unknown size)".to_owned(),
        None => format!("no GPU memory reported ({count} GPUs of unknown size)"),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
