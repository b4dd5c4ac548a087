//! Real machine figures for registration and heartbeats: CPU and memory from sysinfo, GPUs from
//! NVML when an NVIDIA driver is present (absent: no GPUs, not an error).

use llm_router_protocol::node::{GpuDevice, GpuMetrics, Hardware};
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
}

impl MetricsCollector {
    pub fn new() -> Self {
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
        MetricsCollector { system, nvml }
    }

    pub fn hardware(&self) -> Hardware {
        Hardware {
            cpu_cores: u32::try_from(self.system.cpus().len()).unwrap_or(u32::MAX),
            memory_total_bytes: self.system.total_memory(),
            gpus: self
                .gpu_metrics()
                .into_iter()
                .map(|g| GpuDevice {
                    index: g.index,
                    name: g.name,
                    memory_total_bytes: g.memory_total_bytes,
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

    /// One entry per NVIDIA GPU; empty without NVML. A device that fails to answer is skipped.
    pub fn gpu_metrics(&self) -> Vec<GpuMetrics> {
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

impl Default for MetricsCollector {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_reports_real_memory() {
        let mut collector = MetricsCollector::new();
        let s = collector.sample();
        assert!(s.memory_total_bytes > 0);
        assert!(s.memory_used_bytes > 0 && s.memory_used_bytes <= s.memory_total_bytes);
        assert!((0.0..=100.0).contains(&s.memory_percent));
        assert!((0.0..=100.0).contains(&s.cpu_percent));
        assert!(collector.hardware().cpu_cores > 0);
    }
}
