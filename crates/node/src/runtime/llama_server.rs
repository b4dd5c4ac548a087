//! llama.cpp's `llama-server`: how to start it for a model and how to read its state.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use llm_router_protocol::node::RuntimeBackend;
use llm_router_protocol::ollama::{ListModel, ModelDetails};
use serde::Deserialize;
use serde_json::Value;
use tokio::process::Command;

use super::environment;
use super::gguf::GgufInfo;
use super::user_args;
use crate::config::ModelSpec;

/// The command that serves `spec` on `127.0.0.1:port`, in a scrubbed environment. `gguf` is what
/// the model file says of itself, when it could be read.
///
/// Prompt caching stays on (llama-server's `cache_prompt` default; `--no-cache-prompt` is never
/// passed and `LLAMA_ARG_*` never reach the runtime) and is made to pay: `--swa-full` for
/// sliding-window models and `--cache-ram` as configured, unless the extra args give their own.
pub fn command(binary: &Path, spec: &ModelSpec, port: u16, gguf: Option<&GgufInfo>) -> Command {
    let mut cmd = environment::command(binary);
    cmd.arg("--model")
        .arg(&spec.path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--alias", &spec.name])
        .args(["--metrics", "--offline", "--no-webui"]);
    if let Some(ctx) = spec.ctx_size {
        cmd.args(["--ctx-size", &ctx.to_string()]);
    }
    if let Some(np) = spec.parallel {
        cmd.args(["--parallel", &np.to_string()]);
    }
    if let Some(t) = spec.threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    if let Some(template) = &spec.chat_template {
        // With jinja on, --chat-template is read as template text, not a built-in name.
        cmd.args(["--no-jinja", "--chat-template", template]);
    }
    if swa_full(spec, gguf) && !user_args::has(&spec.args, &["--swa-full"]) {
        cmd.arg("--swa-full");
    }
    if let Some(mib) = spec.cache_ram_mib
        && !user_args::has(&spec.args, &["-cram", "--cache-ram"])
    {
        cmd.args(["--cache-ram", &mib.to_string()]);
    }
    // Offload decided by the node (every layer with a GPU, none without), not by the build's own
    // default; `-ngl` in the model's args wins.
    if let Some(layers) = spec.gpu_layers
        && !user_args::has(&spec.args, GPU_LAYERS_FLAGS)
    {
        cmd.args(["--n-gpu-layers", &layers.llama_server_value()]);
    }
    if spec.embeddings == Some(true) {
        cmd.arg("--embeddings");
        // A model not made for embeddings has no pooling type, and llama-server then refuses
        // OpenAI embeddings ("pooling type 'none'"): pool by mean unless told otherwise.
        let pooling_given = spec.args.iter().any(|a| a.starts_with("--pooling"));
        if !pooling_given && gguf.is_some_and(|g| g.pooling_type.is_none()) {
            cmd.args(["--pooling", "mean"]);
        }
    }
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Every spelling of llama-server's offload flag.
const GPU_LAYERS_FLAGS: &[&str] = &["-ngl", "--gpu-layers", "--n-gpu-layers"];

/// Whether the runtime gets `--swa-full`: as configured, else when the model has sliding-window
/// attention. Without it, llama-server keeps only the last window of those layers, and a cached
/// prefix cannot be reused by a conversation that did not just compute it.
fn swa_full(spec: &ModelSpec, gguf: Option<&GgufInfo>) -> bool {
    spec.swa_full
        .unwrap_or_else(|| gguf.is_some_and(|g| g.sliding_window.is_some_and(|w| w > 0)))
}

/// The version in `llama-server --version`'s output, e.g. `version: 6604 (1234abcd)`.
pub fn parse_version(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("version:")
            .map(|v| v.trim().to_owned())
    })
}

/// The backend `llama-server --list-devices` shows: its devices (`CUDA0: NVIDIA ...`,
/// `Vulkan0: ...`, `ROCm0: ...`, `Metal: ...`) after `Available devices:`, none (`(none)`) for a
/// CPU build or a GPU build that finds no GPU. `None` when the output has no device list.
pub fn parse_devices(text: &str) -> Option<RuntimeBackend> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim().starts_with("Available devices"));
    lines.next()?;
    let mut found: Option<RuntimeBackend> = None;
    for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
        if line == "(none)" {
            break;
        }
        let Some((device, _)) = line.split_once(':') else {
            continue;
        };
        let name = device
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_ascii_lowercase();
        let backend = match name.as_str() {
            "cuda" => RuntimeBackend::Cuda,
            "rocm" | "hip" => RuntimeBackend::Rocm,
            "vulkan" => RuntimeBackend::Vulkan,
            "metal" | "mtl" => RuntimeBackend::Metal,
            _ => RuntimeBackend::Other,
        };
        // The first named GPU backend decides; another one only when the first was unnamed.
        if found.is_none_or(|f| f == RuntimeBackend::Other) {
            found = Some(backend);
        }
    }
    Some(found.unwrap_or(RuntimeBackend::Cpu))
}

/// True when the runtime answers `GET /health` with 200 (503 while loading).
pub async fn is_healthy(http: &reqwest::Client, port: u16) -> bool {
    http.get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[derive(Deserialize)]
struct Props {
    total_slots: Option<u32>,
}

/// Parallel slots of the runtime (`GET /props`).
pub async fn total_slots(http: &reqwest::Client, port: u16) -> Option<u32> {
    let props: Props = http
        .get(format!("http://127.0.0.1:{port}/props"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    props.total_slots
}

#[derive(Deserialize)]
struct Slot {
    is_processing: bool,
}

/// Slots not processing a request right now (`GET /slots`).
pub async fn free_slots(http: &reqwest::Client, port: u16) -> Option<u32> {
    let slots: Vec<Slot> = http
        .get(format!("http://127.0.0.1:{port}/slots"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    u32::try_from(slots.iter().filter(|s| !s.is_processing).count()).ok()
}

/// What llama-server and the model file say of the model, in Ollama's terms.
pub async fn describe(
    http: &reqwest::Client,
    port: u16,
    spec: &ModelSpec,
    gguf: Option<&GgufInfo>,
) -> ListModel {
    let get = |path: &'static str| async move {
        http.get(format!("http://127.0.0.1:{port}{path}"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .json::<Value>()
            .await
            .ok()
    };
    let models = get("/v1/models").await.unwrap_or_default();
    let meta = &models["data"][0]["meta"];
    let props = get("/props").await.unwrap_or_default();
    let file = std::fs::metadata(&spec.path).ok();
    let family = gguf
        .and_then(|g| g.architecture.clone())
        .unwrap_or_default();
    let parameters = meta["n_params"]
        .as_u64()
        .or_else(|| gguf.and_then(|g| g.parameter_count));
    let mut capabilities = vec!["completion".to_owned()];
    if spec.embeddings == Some(true) {
        capabilities.push("embedding".to_owned());
    }
    if props["modalities"]["vision"].as_bool() == Some(true) {
        capabilities.push("vision".to_owned());
    }
    // Tools need jinja templates; a fixed built-in template (--chat-template) turns them off.
    if spec.chat_template.is_none() {
        capabilities.push("tools".to_owned());
    }
    let mut model_info = serde_json::Map::new();
    if !family.is_empty() {
        model_info.insert("general.architecture".into(), Value::from(family.clone()));
        if let Some(ctx) = gguf.and_then(|g| g.context_length) {
            model_info.insert(format!("{family}.context_length"), Value::from(ctx));
        }
        if let Some(n) = meta["n_embd"].as_u64() {
            model_info.insert(format!("{family}.embedding_length"), Value::from(n));
        }
    }
    if let Some(n) = parameters {
        model_info.insert("general.parameter_count".into(), Value::from(n));
    }
    if let Some(t) = gguf.and_then(|g| g.file_type) {
        model_info.insert("general.file_type".into(), Value::from(t));
    }
    ListModel {
        name: spec.name.clone(),
        model: spec.name.clone(),
        modified_at: file
            .as_ref()
            .and_then(|f| f.modified().ok())
            .map(|t| humantime::format_rfc3339_micros(t).to_string())
            .unwrap_or_else(|| humantime::format_rfc3339_micros(SystemTime::now()).to_string()),
        size: file.map(|f| f.len()).unwrap_or(0),
        digest: String::new(),
        details: ModelDetails {
            parent_model: String::new(),
            format: "gguf".to_owned(),
            families: (!family.is_empty()).then(|| vec![family.clone()]),
            family,
            parameter_size: parameters.map(human_count).unwrap_or_default(),
            quantization_level: gguf
                .and_then(GgufInfo::quantization)
                .map(str::to_owned)
                .unwrap_or_default(),
        },
        capabilities,
        context_length: meta["n_ctx"].as_u64().or(spec.ctx_size.map(u64::from)),
        model_info,
    }
}

/// A parameter count as Ollama writes it: `268.10M`, `8.0B`.
fn human_count(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else {
        format!("{:.0}K", n / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_version_line_is_found_among_the_build_lines() {
        let text =
            "ggml_cuda_init: found 1 CUDA devices\nversion: 6604 (1234abcd)\nbuilt with cc\n";
        assert_eq!(parse_version(text).as_deref(), Some("6604 (1234abcd)"));
        assert_eq!(parse_version("garbage"), None);
    }

    fn spec(embeddings: bool, args: &[&str]) -> ModelSpec {
        ModelSpec {
            name: "m".into(),
            path: PathBuf::from("/models/m.gguf"),
            ctx_size: Some(2048),
            parallel: Some(2),
            threads: Some(1),
            chat_template: Some("gemma".into()),
            embeddings: Some(embeddings),
            swa_full: None,
            cache_ram_mib: None,
            gpu_layers: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn sliding_window() -> GgufInfo {
        GgufInfo {
            architecture: Some("gemma3".into()),
            sliding_window: Some(512),
            ..GgufInfo::default()
        }
    }

    fn count(args: &[String], flag: &str) -> usize {
        args.iter().filter(|a| *a == flag).count()
    }

    #[test]
    fn a_sliding_window_model_gets_swa_full_and_others_do_not() {
        let swa = sliding_window();
        let cmd = command(Path::new("ls"), &spec(false, &[]), 9, Some(&swa));
        assert_eq!(count(&args(&cmd), "--swa-full"), 1, "{:?}", args(&cmd));
        let plain = GgufInfo::default();
        let cmd = command(Path::new("ls"), &spec(false, &[]), 9, Some(&plain));
        assert_eq!(count(&args(&cmd), "--swa-full"), 0);
        // Unreadable metadata: not known to be a sliding-window model.
        let cmd = command(Path::new("ls"), &spec(false, &[]), 9, None);
        assert_eq!(count(&args(&cmd), "--swa-full"), 0);
    }

    #[test]
    fn swa_full_is_overridden_both_ways() {
        let off = ModelSpec {
            swa_full: Some(false),
            ..spec(false, &[])
        };
        let cmd = command(Path::new("ls"), &off, 9, Some(&sliding_window()));
        assert_eq!(count(&args(&cmd), "--swa-full"), 0);
        let on = ModelSpec {
            swa_full: Some(true),
            ..spec(false, &[])
        };
        let cmd = command(Path::new("ls"), &on, 9, Some(&GgufInfo::default()));
        assert_eq!(count(&args(&cmd), "--swa-full"), 1);
    }

    #[test]
    fn cache_ram_is_passed_as_configured() {
        let sized = ModelSpec {
            cache_ram_mib: Some(1024),
            ..spec(false, &[])
        };
        let cmd = command(Path::new("ls"), &sized, 9, None);
        assert!(
            args(&cmd).windows(2).any(|w| w == ["--cache-ram", "1024"]),
            "{:?}",
            args(&cmd)
        );
        let off = ModelSpec {
            cache_ram_mib: Some(0),
            ..spec(false, &[])
        };
        let cmd = command(Path::new("ls"), &off, 9, None);
        assert!(args(&cmd).windows(2).any(|w| w == ["--cache-ram", "0"]));
        // Unset: llama-server's own default.
        let cmd = command(Path::new("ls"), &spec(false, &[]), 9, None);
        assert_eq!(count(&args(&cmd), "--cache-ram"), 0);
    }

    #[test]
    fn the_users_own_cache_flags_win_and_are_not_doubled() {
        let given = ModelSpec {
            swa_full: Some(true),
            cache_ram_mib: Some(1024),
            ..spec(false, &["--swa-full", "-cram", "-1"])
        };
        let cmd = command(Path::new("ls"), &given, 9, Some(&sliding_window()));
        let a = args(&cmd);
        assert_eq!(count(&a, "--swa-full"), 1, "{a:?}");
        assert_eq!(count(&a, "--cache-ram"), 0, "{a:?}");
        assert!(a.ends_with(&["--swa-full".into(), "-cram".into(), "-1".into()]));
        let inline = ModelSpec {
            cache_ram_mib: Some(1024),
            ..spec(false, &["--cache-ram=64"])
        };
        let cmd = command(Path::new("ls"), &inline, 9, None);
        assert_eq!(count(&args(&cmd), "--cache-ram"), 0);
    }

    #[test]
    fn prompt_caching_is_never_turned_off() {
        let cmd = command(
            Path::new("ls"),
            &spec(true, &[]),
            9,
            Some(&sliding_window()),
        );
        assert!(!args(&cmd).iter().any(|a| a.contains("cache-prompt")));
        for (name, _) in cmd.as_std().get_envs() {
            assert!(!name.to_string_lossy().starts_with("LLAMA_ARG"), "{name:?}");
        }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn embeddings_of_a_model_without_pooling_type_pool_by_mean() {
        let no_pooling = GgufInfo::default();
        let cmd = command(Path::new("ls"), &spec(true, &[]), 9, Some(&no_pooling));
        assert!(
            args(&cmd).windows(2).any(|w| w == ["--pooling", "mean"]),
            "{:?}",
            args(&cmd)
        );
    }

    #[test]
    fn a_model_pooling_type_or_a_given_one_is_kept() {
        let pooled = GgufInfo {
            pooling_type: Some(2),
            ..GgufInfo::default()
        };
        let cmd = command(Path::new("ls"), &spec(true, &[]), 9, Some(&pooled));
        assert!(!args(&cmd).contains(&"--pooling".to_owned()));
        let cmd = command(
            Path::new("ls"),
            &spec(true, &["--pooling", "cls"]),
            9,
            Some(&GgufInfo::default()),
        );
        assert_eq!(args(&cmd).iter().filter(|a| *a == "--pooling").count(), 1);
        let cmd = command(
            Path::new("ls"),
            &spec(false, &[]),
            9,
            Some(&GgufInfo::default()),
        );
        assert!(!args(&cmd).contains(&"--pooling".to_owned()));
    }

    #[test]
    fn the_runtime_starts_in_a_scrubbed_environment() {
        let cmd = command(Path::new("ls"), &spec(false, &[]), 9, None);
        // Cleared, then only what a runtime may see.
        assert!(format!("{:?}", cmd.as_std()).starts_with("env -i "));
        for (name, _) in cmd.as_std().get_envs() {
            assert!(environment::passed(name), "{name:?}");
            assert!(!name.to_string_lossy().starts_with("LLM_"), "{name:?}");
        }
    }

    fn ngl(args: &[String]) -> Vec<&str> {
        args.windows(2)
            .filter(|w| w[0] == "--n-gpu-layers")
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn a_node_with_a_gpu_offloads_every_layer_and_one_without_none() {
        use crate::config::GpuLayers;
        for (has_gpu, value) in [(true, "all"), (false, "0")] {
            let settled = ModelSpec {
                gpu_layers: Some(GpuLayers::default_for(has_gpu)),
                ..spec(false, &[])
            };
            let cmd = command(Path::new("ls"), &settled, 9, None);
            assert_eq!(ngl(&args(&cmd)), [value], "{:?}", args(&cmd));
        }
        let some = ModelSpec {
            gpu_layers: Some(GpuLayers::Layers(20)),
            ..spec(false, &[])
        };
        assert_eq!(
            ngl(&args(&command(Path::new("ls"), &some, 9, None))),
            ["20"]
        );
        // Unsettled (never the case once the node started): the runtime's own default.
        let cmd = command(Path::new("ls"), &spec(false, &[]), 9, None);
        assert!(ngl(&args(&cmd)).is_empty());
    }

    #[test]
    fn the_models_own_offload_flag_wins() {
        use crate::config::GpuLayers;
        for given in [
            &["-ngl", "12"][..],
            &["--gpu-layers=12"],
            &["--n-gpu-layers", "12"],
        ] {
            let own = ModelSpec {
                gpu_layers: Some(GpuLayers::All),
                ..spec(false, given)
            };
            let a = args(&command(Path::new("ls"), &own, 9, None));
            assert!(!a.contains(&"all".to_owned()), "{a:?}");
            assert!(a.ends_with(&given.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()));
        }
    }

    #[test]
    fn the_backend_is_read_from_the_device_list() {
        // This project's CPU build.
        let cpu = "Available devices:\n  (none)\n";
        assert_eq!(parse_devices(cpu), Some(RuntimeBackend::Cpu));
        // llama.cpp's formats for GPU builds (loader lines first).
        let cuda = "ggml_cuda_init: found 2 CUDA devices:\n  Device 0: NVIDIA A100, compute capability 8.0\n\
                    Available devices:\n  CUDA0: NVIDIA A100-SXM4-80GB (81037 MiB, 80500 MiB free)\n  \
                    CUDA1: NVIDIA A100-SXM4-80GB (81037 MiB, 80500 MiB free)\n";
        assert_eq!(parse_devices(cuda), Some(RuntimeBackend::Cuda));
        let vulkan = "Available devices:\n  Vulkan0: AMD Radeon RX 7900 XTX (RADV NAVI31) (24560 MiB, 24000 MiB free)\n";
        assert_eq!(parse_devices(vulkan), Some(RuntimeBackend::Vulkan));
        let rocm =
            "Available devices:\n  ROCm0: AMD Instinct MI300X (196592 MiB, 196000 MiB free)\n";
        assert_eq!(parse_devices(rocm), Some(RuntimeBackend::Rocm));
        let sycl =
            "Available devices:\n  SYCL0: Intel(R) Arc(TM) A770 (16225 MiB, 16225 MiB free)\n";
        assert_eq!(parse_devices(sycl), Some(RuntimeBackend::Other));
        assert_eq!(
            parse_devices("error: unknown argument: --list-devices"),
            None
        );
    }

    #[test]
    fn parameter_counts_read_like_ollama() {
        assert_eq!(human_count(268_098_176), "268.10M");
        assert_eq!(human_count(8_030_261_248), "8.0B");
    }
}
