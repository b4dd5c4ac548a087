//! AMD GPUs through the amdgpu driver's sysfs files, which NVML does not see.
//!
//! Every `class/drm/card<N>` under the sysfs root whose `device/vendor` is `0x1002` (AMD) and
//! whose driver publishes `device/mem_info_vram_total` is a GPU: VRAM total and used from
//! `mem_info_vram_total|used` (bytes), load from `gpu_busy_percent`, temperature from the first
//! `device/hwmon/hwmon*/temp1_input` (millidegrees), name from `device/product_name` when the
//! board has one. Connector entries (`card0-DP-1`) and render nodes are not cards. A card whose
//! VRAM total cannot be read is left out (it could not hold a model, as far as the node knows);
//! a missing load or temperature reads as 0 or unknown.
//!
//! The root is `/sys` on a real machine and a fixture directory in tests.

use std::fs;
use std::path::{Path, PathBuf};

/// The PCI vendor id of AMD.
const AMD_VENDOR: &str = "0x1002";

/// Longest sysfs file read (they hold one number or one short name).
const MAX_FILE_BYTES: u64 = 256;

/// One AMD card as sysfs shows it now.
#[derive(Debug, Clone, PartialEq)]
pub struct AmdGpu {
    /// The DRM card number (`card1` → 1).
    pub card: u32,
    pub name: String,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub utilization_percent: f32,
    pub temperature_celsius: Option<f32>,
}

/// Reads the AMD cards under `root` (`/sys`), ordered by card number. No `class/drm` (no GPU
/// driver, a container): none.
pub fn read(root: &Path) -> Vec<AmdGpu> {
    let Ok(entries) = fs::read_dir(root.join("class/drm")) else {
        return Vec::new();
    };
    let mut gpus: Vec<AmdGpu> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let card = card_number(&e.file_name().to_string_lossy())?;
            read_card(card, &e.path().join("device"))
        })
        .collect();
    gpus.sort_by_key(|g| g.card);
    gpus
}

/// `card<N>` → N; connectors (`card0-DP-1`) and other entries → `None`.
fn card_number(name: &str) -> Option<u32> {
    name.strip_prefix("card")?.parse().ok()
}

fn read_card(card: u32, device: &Path) -> Option<AmdGpu> {
    if !read_text(&device.join("vendor"))?.eq_ignore_ascii_case(AMD_VENDOR) {
        return None;
    }
    let memory_total_bytes = read_number(&device.join("mem_info_vram_total"))?;
    Some(AmdGpu {
        card,
        name: read_text(&device.join("product_name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("AMD GPU (card{card})")),
        memory_total_bytes,
        memory_used_bytes: read_number(&device.join("mem_info_vram_used"))
            .unwrap_or(0)
            .min(memory_total_bytes),
        utilization_percent: read_number(&device.join("gpu_busy_percent"))
            .map_or(0.0, |p| p.min(100) as f32),
        temperature_celsius: temperature(device),
    })
}

/// The first hwmon's `temp1_input` (millidegrees Celsius) in degrees.
fn temperature(device: &Path) -> Option<f32> {
    let mut hwmons: Vec<PathBuf> = fs::read_dir(device.join("hwmon"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    hwmons.sort();
    hwmons
        .iter()
        .find_map(|h| read_number(&h.join("temp1_input")))
        .map(|milli| milli as f32 / 1000.0)
}

/// The file's trimmed text; `None` when absent, unreadable, too long or not UTF-8.
fn read_text(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES).read_to_string(&mut text).ok()?;
    Some(text.trim().to_owned())
}

fn read_number(path: &Path) -> Option<u64> {
    read_text(path)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture sysfs tree in a fresh temporary directory, removed on drop.
    struct Sysfs(PathBuf);

    impl Sysfs {
        fn new(tag: &str) -> Sysfs {
            let root = std::env::temp_dir().join(format!(
                "llm-node-sysfs-{tag}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            fs::create_dir_all(root.join("class/drm")).unwrap();
            Sysfs(root)
        }

        fn file(&self, rel: &str, text: &str) {
            let path = self.0.join("class/drm").join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }

        fn amd(&self, card: &str, total: u64, used: u64, busy: u32) {
            self.file(&format!("{card}/device/vendor"), "0x1002\n");
            self.file(
                &format!("{card}/device/mem_info_vram_total"),
                &format!("{total}\n"),
            );
            self.file(
                &format!("{card}/device/mem_info_vram_used"),
                &format!("{used}\n"),
            );
            self.file(
                &format!("{card}/device/gpu_busy_percent"),
                &format!("{busy}\n"),
            );
        }
    }

    impl Drop for Sysfs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn one_card_reports_its_vram_load_name_and_temperature() {
        let sysfs = Sysfs::new("one");
        sysfs.amd("card0", 24 * GIB, 3 * GIB, 37);
        sysfs.file("card0/device/product_name", "Radeon RX 7900 XTX\n");
        sysfs.file("card0/device/hwmon/hwmon3/temp1_input", "51000\n");
        // A connector of the same card is not a second card.
        sysfs.file("card0-DP-1/status", "connected\n");
        assert_eq!(
            read(&sysfs.0),
            [AmdGpu {
                card: 0,
                name: "Radeon RX 7900 XTX".into(),
                memory_total_bytes: 24 * GIB,
                memory_used_bytes: 3 * GIB,
                utilization_percent: 37.0,
                temperature_celsius: Some(51.0),
            }]
        );
    }

    #[test]
    fn several_cards_come_in_card_order_and_other_vendors_are_skipped() {
        let sysfs = Sysfs::new("several");
        sysfs.amd("card2", 64 * GIB, 0, 0);
        sysfs.amd("card1", 48 * GIB, GIB, 99);
        // An Intel iGPU (vendor 0x8086) with the same files is not an AMD card; NVIDIA cards
        // come through NVML.
        sysfs.amd("card0", 8 * GIB, 0, 0);
        sysfs.file("card0/device/vendor", "0x8086\n");
        sysfs.file("renderD128/device/vendor", "0x1002\n");
        let gpus = read(&sysfs.0);
        let seen: Vec<(u32, u64, &str)> = gpus
            .iter()
            .map(|g| (g.card, g.memory_total_bytes, g.name.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (1, 48 * GIB, "AMD GPU (card1)"),
                (2, 64 * GIB, "AMD GPU (card2)")
            ]
        );
        assert_eq!(gpus[0].utilization_percent, 99.0);
        assert_eq!(gpus[0].temperature_celsius, None);
    }

    #[test]
    fn missing_or_garbled_files_leave_a_card_out_or_read_as_unknown() {
        let sysfs = Sysfs::new("missing");
        // No VRAM total (an old driver, an APU without the files): not a GPU to place models on.
        sysfs.file("card0/device/vendor", "0x1002\n");
        sysfs.file("card0/device/gpu_busy_percent", "5\n");
        // VRAM total only: used and load read as 0.
        sysfs.file("card1/device/vendor", "0x1002\n");
        sysfs.file("card1/device/mem_info_vram_total", "17163091968\n");
        // Garbage total: left out.
        sysfs.file("card2/device/vendor", "0x1002\n");
        sysfs.file("card2/device/mem_info_vram_total", "lots\n");
        // No vendor file: left out.
        sysfs.file("card3/device/mem_info_vram_total", "1024\n");
        // Used above total and load above 100 are capped.
        sysfs.amd("card4", GIB, 2 * GIB, 250);
        let gpus = read(&sysfs.0);
        assert_eq!(gpus.len(), 2, "{gpus:?}");
        assert_eq!(
            (
                gpus[0].card,
                gpus[0].memory_total_bytes,
                gpus[0].memory_used_bytes
            ),
            (1, 17_163_091_968, 0)
        );
        assert_eq!(gpus[0].utilization_percent, 0.0);
        assert_eq!(
            (gpus[1].memory_used_bytes, gpus[1].utilization_percent),
            (GIB, 100.0)
        );
    }

    #[test]
    fn no_drm_directory_means_no_gpu() {
        let sysfs = Sysfs::new("empty");
        fs::remove_dir_all(sysfs.0.join("class/drm")).unwrap();
        assert!(read(&sysfs.0).is_empty());
        assert!(read(Path::new("/nonexistent/sysfs")).is_empty());
    }

    #[test]
    fn an_oversized_file_is_not_read_whole() {
        let sysfs = Sysfs::new("big");
        sysfs.amd("card0", GIB, 0, 0);
        sysfs.file("card0/device/product_name", &"x".repeat(10_000));
        let gpus = read(&sysfs.0);
        assert_eq!(gpus[0].name.len(), MAX_FILE_BYTES as usize);
    }
}
