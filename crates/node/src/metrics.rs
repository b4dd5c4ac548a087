//! Real machine figures for registration and heartbeats: CPU and memory from sysinfo, NVIDIA GPUs
//! from NVML when an NVIDIA driver is present, AMD GPUs from the amdgpu driver's sysfs files
//! ([`crate::amd_gpu`]). Neither present: no GPUs, not an error.

use std::path::PathBuf;

use llm_router_protocol::node::{GpuDevice, GpuMetrics, GpuVendor, Hardware};
use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// CPU and memory in percent, memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SystemSample {
    pub cpu_percent: f32,
    pub memory_percent: f32,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
}

pub struct MetricsCollector {
    system: System,
    nvml: Option<Nvml>,
    /// Where AMD cards are read (`/sys`).
    sysfs_root: PathBuf,
}

/// The real sysfs.
pub const SYSFS_ROOT: &str = "/sys";

impl MetricsCollector {
    /// Reads AMD cards under `sysfs_root` (`/sys`, or a fixture directory in tests).
    pub fn new(sysfs_root: PathBuf) -> Self {
        let mut system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        // CPU usage is a difference between two readings; take the first one now.
        system.refresh_cpu_usage();
        let nvml = match Nvml::init() {
            Ok(nvml) => Some(nvml),
            Err(e) => {
                tracing::info!(reason = %e, "no NVIDIA GPU metrics (NVML unavailable)");
                None
            }
        };
        MetricsCollector {
            system,
            nvml,
            sysfs_root,
        }
    }

    pub fn hardware(&self) -> Hardware {
        Hardware {
            cpu_cores: u32::try_from(self.system.cpus().len()).unwrap_or(u32::MAX),
            memory_total_bytes: self.system.total_memory(),
            gpus: self
                .gpus()
                .into_iter()
                .map(|(vendor, g)| GpuDevice {
                    index: g.index,
                    name: g.name,
                    memory_total_bytes: g.memory_total_bytes,
                    vendor: Some(vendor),
                })
                .collect(),
        }
    }

    /// CPU usage since the previous call, and current memory use.
    pub fn sample(&mut self) -> SystemSample {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let total = self.system.total_memory();
        let used = self.system.used_memory();
        SystemSample {
            cpu_percent: self.system.global_cpu_usage(),
            memory_percent: if total == 0 {
                0.0
            } else {
                (used as f64 * 100.0 / total as f64) as f32
            },
            memory_used_bytes: used,
            memory_total_bytes: total,
        }
    }

    /// One entry per GPU: NVIDIA ones first (NVML's order), then AMD ones (card order), numbered
    /// on from the NVIDIA ones.
    pub fn gpu_metrics(&self) -> Vec<GpuMetrics> {
        self.gpus().into_iter().map(|(_, g)| g).collect()
    }

    fn gpus(&self) -> Vec<(GpuVendor, GpuMetrics)> {
        let mut gpus: Vec<(GpuVendor, GpuMetrics)> = self
            .nvidia()
            .into_iter()
            .map(|g| (GpuVendor::Nvidia, g))
            .collect();
        let first = u32::try_from(gpus.len()).unwrap_or(u32::MAX);
        let amd = crate::amd_gpu::read(&self.sysfs_root);
        gpus.extend(amd.into_iter().zip(first..).map(|(g, index)| {
            (
                GpuVendor::Amd,
                GpuMetrics {
                    index,
                    name: g.name,
                    utilization_percent: g.utilization_percent,
                    memory_used_bytes: g.memory_used_bytes,
                    memory_total_bytes: g.memory_total_bytes,
                    temperature_celsius: g.temperature_celsius,
                },
            )
        }));
        gpus
    }

    /// One entry per NVIDIA GPU; empty without NVML. A device that fails to answer is skipped.
    fn nvidia(&self) -> Vec<GpuMetrics> {
        let Some(nvml) = &self.nvml else {
            return Vec::new();
        };
        let count = nvml.device_count().unwrap_or(0);
        (0..count)
            .filter_map(|index| {
                let device = nvml.device_by_index(index).ok()?;
                let memory = device.memory_info().ok()?;
                Some(GpuMetrics {
                    index,
                    name: device.name().unwrap_or_else(|_| format!("GPU {index}")),
                    utilization_percent: device
                        .utilization_rates()
                        .map(|u| u.gpu as f32)
                        .unwrap_or(0.0),
                    memory_used_bytes: memory.used,
                    memory_total_bytes: memory.total,
                    temperature_celsius: device
                        .temperature(TemperatureSensor::Gpu)
                        .ok()
                        .map(|t| t as f32),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_reports_real_memory() {
        let mut collector = MetricsCollector::new(PathBuf::from(SYSFS_ROOT));
        let s = collector.sample();
        assert!(s.memory_total_bytes > 0);
        assert!(s.memory_used_bytes > 0 && s.memory_used_bytes <= s.memory_total_bytes);
        assert!((0.0..=100.0).contains(&s.memory_percent));
        assert!((0.0..=100.0).contains(&s.cpu_percent));
        assert!(collector.hardware().cpu_cores > 0);
    }

    #[test]
    fn amd_cards_of_the_sysfs_root_are_reported_as_amd_gpus() {
        let root =
            std::env::temp_dir().join(format!("llm-node-metrics-amd-{}", std::process::id()));
        let device = root.join("class/drm/card0/device");
        std::fs::create_dir_all(&device).unwrap();
        for (file, text) in [
            ("vendor", "0x1002"),
            ("mem_info_vram_total", "68702699520"),
            ("mem_info_vram_used", "1073741824"),
            ("gpu_busy_percent", "12"),
        ] {
            std::fs::write(device.join(file), text).unwrap();
        }
        let collector = MetricsCollector::new(root.clone());
        let hardware = collector.hardware();
        let amd: Vec<&GpuDevice> = hardware
            .gpus
            .iter()
            .filter(|g| g.vendor == Some(GpuVendor::Amd))
            .collect();
        assert_eq!(amd.len(), 1, "{hardware:?}");
        assert_eq!(amd[0].memory_total_bytes, 68_702_699_520);
        let metrics = collector.gpu_metrics();
        let live = metrics.iter().find(|g| g.index == amd[0].index).unwrap();
        assert_eq!(
            (live.memory_used_bytes, live.utilization_percent),
            (1_073_741_824, 12.0)
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
