//! The memory a node can serve models from, as its registration reports it.
//!
//! GPU memory first: the sum of every GPU of one maker, because both runtimes split one model
//! over several GPUs (llama-server spreads layers over every GPU it sees, `--split-mode layer` by
//! default; Ollama spreads a model that does not fit one GPU). One runtime build drives one
//! maker's GPUs (CUDA for NVIDIA, ROCm for AMD), so GPUs of different makers are not added up:
//! the maker whose GPUs hold the most counts. A GPU that reports no memory counts as no GPU.
//! Without GPU memory, the node serves from its system RAM, which the CPU tiers of the placement
//! read.

use llm_router_protocol::node::{GpuDevice, GpuVendor, Hardware};

/// The GPUs a node serves from, and their memory together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuMemory<'a> {
    /// The GPUs counted, in the node's order.
    pub gpus: Vec<&'a GpuDevice>,
    pub total_bytes: u64,
    /// GPUs left out: another maker's, or of unknown size.
    pub left_out: usize,
}

/// The GPU memory `hardware` can serve from; `None` without a GPU that reports memory.
pub fn gpu_memory(hardware: &Hardware) -> Option<GpuMemory<'_>> {
    let sized: Vec<&GpuDevice> = hardware
        .gpus
        .iter()
        .filter(|g| g.memory_total_bytes > 0)
        .collect();
    // Makers in the order their first GPU comes, so that equal sums go to the first.
    let mut makers: Vec<Option<GpuVendor>> = Vec::new();
    for g in &sized {
        if !makers.contains(&g.vendor) {
            makers.push(g.vendor);
        }
    }
    let sum = |maker: Option<GpuVendor>| -> u64 {
        sized
            .iter()
            .filter(|g| g.vendor == maker)
            .fold(0u64, |s, g| s.saturating_add(g.memory_total_bytes))
    };
    let best = makers
        .into_iter()
        .fold(None, |best: Option<(Option<GpuVendor>, u64)>, m| {
            let total = sum(m);
            match best {
                Some((_, b)) if b >= total => best,
                _ => Some((m, total)),
            }
        })?;
    let gpus: Vec<&GpuDevice> = sized.into_iter().filter(|g| g.vendor == best.0).collect();
    Some(GpuMemory {
        left_out: hardware.gpus.len() - gpus.len(),
        gpus,
        total_bytes: best.1,
    })
}

impl GpuMemory<'_> {
    /// For people: `GPU memory 24.0 GiB (GPU 0: NVIDIA RTX 4090)` or, for several,
    /// `GPU memory 24.0 GiB over 2 GPUs (GPU 0: A 12.0 GiB, GPU 1: B 12.0 GiB)`.
    pub fn describe(&self) -> String {
        let mut text = match self.gpus.as_slice() {
            [one] => format!("GPU memory {} ({})", gib(self.total_bytes), gpu_name(one)),
            many => format!(
                "GPU memory {} over {} GPUs ({})",
                gib(self.total_bytes),
                many.len(),
                many.iter()
                    .map(|g| format!("{} {}", gpu_name(g), gib(g.memory_total_bytes)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if self.left_out > 0 {
            text.push_str(&format!(
                "; {} other GPU{} not counted (another maker, or no memory reported)",
                self.left_out,
                if self.left_out == 1 { "" } else { "s" }
            ));
        }
        text
    }
}

/// `GPU 0: NVIDIA GeForce RTX 4090`, or `GPU 1: AMD Radeon PRO W7900` when the name does not say
/// the maker.
fn gpu_name(g: &GpuDevice) -> String {
    match g.vendor {
        Some(v) if !g.name.to_ascii_uppercase().contains(v.as_str()) => {
            format!("GPU {}: {} {}", g.index, v.as_str(), g.name)
        }
        _ => format!("GPU {}: {}", g.index, g.name),
    }
}

/// Why a node has no GPU memory to serve from.
pub fn no_gpu(hardware: &Hardware) -> String {
    match hardware.gpus.len() {
        0 => "no GPU reported".to_owned(),
        1 => "no GPU memory reported (1 GPU of unknown size)".to_owned(),
        n => format!("no GPU memory reported ({n} GPUs of unknown size)"),
    }
}

pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}
