use std::path::PathBuf;

use super::*;

const SEED_MODELS: [&str; 4] = [
    "gpt-oss:20b",
    "gpt-oss:120b",
    "gpt-oss-safeguard:20b",
    "qwen3-coder:30b",
];

fn builtin() -> Catalog {
    Catalog::builtin().expect("the built-in catalog is valid")
}

/// Writes `text` to a fresh file and gives its path.
fn catalog_file(text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llm-router-catalog-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("catalog.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn load_text(text: &str) -> Result<Catalog, CatalogError> {
    let path = catalog_file(text);
    let result = Catalog::load(Some(&path));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    result
}

fn problem(result: Result<Catalog, CatalogError>) -> Problem {
    match result {
        Err(CatalogError::Invalid { problem, .. }) => problem,
        other => panic!("expected an invalid catalog, got {other:?}"),
    }
}

const EXTRA: &str = r#"
[[models]]
name = "tiny:1b"
size_bytes = 1000
recommended_gpu_memory_bytes = 2000
ollama = "tiny:1b"
"#;

#[test]
fn builtin_catalog_has_the_seed_models_and_the_cpu_model() {
    let catalog = builtin();
    let names: Vec<&str> = catalog.entries().iter().map(|e| e.name.as_str()).collect();
    let mut expected = SEED_MODELS.to_vec();
    expected.push("gemma3-270m");
    assert_eq!(names, expected);
    for entry in catalog.entries() {
        let gguf = entry
            .gguf
            .as_ref()
            .expect("every built-in model has a GGUF");
        assert!(
            gguf.url.starts_with("https://huggingface.co/"),
            "{}",
            gguf.url
        );
        assert!(gguf.url.contains("/resolve/main/"), "{}", gguf.url);
        assert_eq!(entry.size_bytes, gguf.size_bytes, "{}", entry.name);
        assert!(entry.ollama.is_some(), "{}", entry.name);
        assert!(!entry.description.is_empty(), "{}", entry.name);
    }
}

#[test]
fn builtin_gemma_is_the_install_scripts_file() {
    let catalog = builtin();
    let gemma = catalog.get("gemma3-270m").unwrap();
    let gguf = gemma.gguf.as_ref().unwrap();
    assert_eq!(gguf.file_name, "gemma-3-270m-q4_k_m.gguf");
    assert_eq!(gguf.size_bytes, 253_113_024);
    assert_eq!(
        gguf.sha256.as_deref(),
        Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818")
    );
    assert_eq!(gemma.recommended_gpu_memory_bytes, 0);
    assert_eq!(gemma.chat_template.as_deref(), Some("gemma"));
    assert_eq!(gemma.ollama.as_deref(), Some("gemma3:270m"));
}

#[test]
fn builtin_120b_names_all_three_parts() {
    let catalog = builtin();
    let gguf = catalog.get("gpt-oss:120b").unwrap().gguf.clone().unwrap();
    let base = "https://huggingface.co/ggml-org/gpt-oss-120b-GGUF/resolve/main/";
    let expected: Vec<GgufPart> = (1..=3)
        .map(|i| {
            let file_name = format!("gpt-oss-120b-mxfp4-0000{i}-of-00003.gguf");
            GgufPart {
                url: format!("{base}{file_name}"),
                file_name,
                sha256: None,
            }
        })
        .collect();
    assert_eq!(gguf.part_files(), expected);
    assert_eq!(gguf.sha256, None);
    assert!(gguf.unverified);
}

#[test]
fn single_file_gguf_is_its_own_only_part() {
    let catalog = builtin();
    let gguf = catalog.get("gpt-oss:20b").unwrap().gguf.clone().unwrap();
    assert_eq!(
        gguf.part_files(),
        vec![GgufPart {
            url: gguf.url.clone(),
            file_name: gguf.file_name.clone(),
            sha256: None,
        }]
    );
}

#[test]
fn builtin_tiers_only_name_catalog_models_that_fit_together() {
    let catalog = builtin();
    assert!(catalog.unknown_tier_models().is_empty());
    for tier in catalog.placement().tiers() {
        let models: Vec<&CatalogEntry> = tier
            .models
            .iter()
            .map(|m| catalog.get(m).unwrap())
            .collect();
        assert!(!models.is_empty(), "{}", tier.label);
        for m in &models {
            assert!(
                m.recommended_gpu_memory_bytes <= tier.min_gpu_memory_bytes,
                "{} in {}",
                m.name,
                tier.label
            );
        }
        if tier.min_gpu_memory_bytes >= 1_000_000_000 {
            let files: u64 = models.iter().map(|m| m.size_bytes).sum();
            assert!(files <= tier.min_gpu_memory_bytes, "{}", tier.label);
        }
    }
    let placed: HashSet<&str> = catalog
        .placement()
        .tiers()
        .iter()
        .flat_map(|t| t.models.iter().map(String::as_str))
        .collect();
    for seed in SEED_MODELS {
        assert!(placed.contains(seed), "{seed} is in no tier");
    }
}

#[test]
fn load_without_a_file_is_the_builtin_catalog() {
    assert_eq!(Catalog::load(None).unwrap(), builtin());
}

#[test]
fn user_file_replaces_an_entry_in_place_and_adds_new_ones() {
    let text = format!(
        r#"
[[models]]
name = "gpt-oss:20b"
description = "local mirror"
size_bytes = 42
recommended_gpu_memory_bytes = 16_000_000_000
args = ["--jinja", "-fa", "on"]

[models.gguf]
url = "http://mirror.lan/gpt-oss-20b-mxfp4.gguf"
file_name = "gpt-oss-20b-mxfp4.gguf"
size_bytes = 42
sha256 = "{}"
{EXTRA}"#,
        "AB".repeat(32)
    );
    let catalog = load_text(&text).unwrap();
    let names: Vec<&str> = catalog.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "gpt-oss:20b",
            "gpt-oss:120b",
            "gpt-oss-safeguard:20b",
            "qwen3-coder:30b",
            "gemma3-270m",
            "tiny:1b"
        ]
    );
    let replaced = catalog.get("gpt-oss:20b").unwrap();
    assert_eq!(replaced.description, "local mirror");
    assert_eq!(replaced.ollama, None, "the entry is replaced, not merged");
    let gguf = replaced.gguf.as_ref().unwrap();
    assert_eq!(gguf.url, "http://mirror.lan/gpt-oss-20b-mxfp4.gguf");
    assert_eq!(gguf.sha256, Some("ab".repeat(32)), "digest made lower-case");
    assert_eq!(catalog.get("tiny:1b").unwrap().size_bytes, 1000);
    assert_eq!(catalog.get("gemma3-270m"), builtin().get("gemma3-270m"));
    assert_eq!(catalog.placement(), builtin().placement());
}

#[test]
fn user_file_placement_replaces_all_tiers() {
    let text = format!(
        r#"{EXTRA}
[[placement.tiers]]
label = "CPU"
min_gpu_memory_bytes = 0
models = ["gemma3-270m"]

[[placement.tiers]]
label = "any GPU"
min_gpu_memory_bytes = 1
models = ["tiny:1b", "gone:7b"]
"#
    );
    let catalog = load_text(&text).unwrap();
    let labels: Vec<&str> = catalog
        .placement()
        .tiers()
        .iter()
        .map(|t| t.label.as_str())
        .collect();
    assert_eq!(labels, ["any GPU", "CPU"], "highest threshold first");
    assert_eq!(catalog.unknown_tier_models(), ["gone:7b"]);
}

#[test]
fn unknown_keys_are_refused_naming_the_file() {
    for text in [
        "[[models]]\nname = \"x\"\nsize_bytes = 1\nrecommended_gpu_memory_bytes = 0\nollama = \"x\"\ncolour = \"red\"\n",
        "[[models]]\nname = \"x\"\nsize_bytes = 1\nrecommended_gpu_memory_bytes = 0\n[models.gguf]\nurl = \"https://h/x.gguf\"\nfile_name = \"x.gguf\"\nsize_bytes = 1\nmd5 = \"0\"\n",
        "[[placement.tiers]]\nlabel = \"all\"\nmin_gpu_memory_bytes = 0\nmodels = []\nmax = 3\n",
        "[defaults]\nctx_size = 1\n",
    ] {
        let path = catalog_file(text);
        let err = Catalog::load(Some(&path)).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, CatalogError::Parse { .. }), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("unknown field"), "{message}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let path =
        std::env::temp_dir().join(format!("llm-router-no-such-{}.toml", uuid::Uuid::new_v4()));
    let err = Catalog::load(Some(&path)).unwrap_err();
    assert!(matches!(err, CatalogError::Read { .. }));
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn invalid_entries_are_refused_naming_the_file_and_the_model() {
    let path = catalog_file(
        "[[models]]\nname = \"bad:1b\"\nsize_bytes = 1\nrecommended_gpu_memory_bytes = 0\n[models.gguf]\nurl = \"ftp://h/x.gguf\"\nfile_name = \"x.gguf\"\nsize_bytes = 1\n",
    );
    let message = Catalog::load(Some(&path)).unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("bad:1b"), "{message}");
    assert!(message.contains("ftp://h/x.gguf"), "{message}");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// A one-model file whose model has `fields` and, when `gguf` is not empty, that `[models.gguf]`.
fn model(fields: &str, gguf: &str) -> String {
    let mut text =
        format!("[[models]]\nsize_bytes = 1\nrecommended_gpu_memory_bytes = 0\n{fields}\n");
    if !gguf.is_empty() {
        text.push_str(&format!("[models.gguf]\nsize_bytes = 1\n{gguf}\n"));
    }
    text
}

const GOOD_GGUF: &str = "url = \"https://h/m.gguf\"\nfile_name = \"m.gguf\"";

#[test]
fn names_must_be_non_empty_plain_and_unique() {
    let text = model("name = \"\"\nollama = \"m\"", "");
    assert_eq!(problem(load_text(&text)), Problem::EmptyName { index: 0 });
    let text = model("name = \"two words\"\nollama = \"m\"", "");
    assert!(matches!(problem(load_text(&text)), Problem::BadName { .. }));
    let one = model("name = \"m\"\nollama = \"m\"", "");
    assert_eq!(
        problem(load_text(&format!("{one}{one}"))),
        Problem::DuplicateName { name: "m".into() }
    );
}

#[test]
fn a_model_needs_something_to_download() {
    assert_eq!(
        problem(load_text(&model("name = \"m\"", ""))),
        Problem::NoSource { name: "m".into() }
    );
    assert!(matches!(
        problem(load_text(&model("name = \"m\"\nollama = \" \"", ""))),
        Problem::EmptyOllamaTag { .. }
    ));
    assert!(load_text(&model("name = \"m\"", GOOD_GGUF)).is_ok());
}

#[test]
fn gguf_url_must_be_http_or_https() {
    for url in ["ftp://h/m.gguf", "file:///m.gguf", "m.gguf", "https://", ""] {
        let gguf = format!("url = \"{url}\"\nfile_name = \"m.gguf\"");
        assert!(
            matches!(
                problem(load_text(&model("name = \"m\"", &gguf))),
                Problem::BadUrl { .. }
            ),
            "{url}"
        );
    }
    let gguf = "url = \"http://10.0.0.2:8000/m.gguf?download=true\"\nfile_name = \"m.gguf\"";
    assert!(load_text(&model("name = \"m\"", gguf)).is_ok());
}

#[test]
fn sha256_must_be_64_hex_digits() {
    for sha in [
        "abc".to_owned(),
        "g".repeat(64),
        "a".repeat(63),
        "a".repeat(65),
    ] {
        let gguf = format!("{GOOD_GGUF}\nsha256 = \"{sha}\"");
        assert!(
            matches!(
                problem(load_text(&model("name = \"m\"", &gguf))),
                Problem::BadSha256 { .. }
            ),
            "{sha}"
        );
    }
}

#[test]
fn file_name_must_stay_in_the_models_directory() {
    // The third is the TOML text `a\\m.gguf`, the file name `a\m.gguf`.
    for name in ["../m.gguf", "a/m.gguf", "a\\\\m.gguf", "..", "", "C:m.gguf"] {
        let gguf = format!("url = \"https://h/m.gguf\"\nfile_name = \"{name}\"");
        assert!(
            matches!(
                problem(load_text(&model("name = \"m\"", &gguf))),
                Problem::BadFileName { .. }
            ),
            "{name}"
        );
    }
}

#[test]
fn split_gguf_must_name_its_first_part_and_carry_no_digest() {
    let gguf = "url = \"https://h/m.gguf\"\nfile_name = \"m.gguf\"\nparts = 2";
    assert!(matches!(
        problem(load_text(&model("name = \"m\"", gguf))),
        Problem::BadSplitName { parts: 2, .. }
    ));
    let first = "url = \"https://h/m-00001-of-00002.gguf\"\nfile_name = \"m-00001-of-00002.gguf\"";
    let gguf = format!("{first}\nparts = 2\nsha256 = \"{}\"", "a".repeat(64));
    assert!(matches!(
        problem(load_text(&model("name = \"m\"", &gguf))),
        Problem::SplitWithSha256 { .. }
    ));
    let gguf = format!("{GOOD_GGUF}\nparts = 0");
    assert!(matches!(
        problem(load_text(&model("name = \"m\"", &gguf))),
        Problem::NoParts { .. }
    ));
    let catalog = load_text(&model("name = \"m\"", &format!("{first}\nparts = 2"))).unwrap();
    let parts = catalog
        .get("m")
        .unwrap()
        .gguf
        .as_ref()
        .unwrap()
        .part_files();
    assert_eq!(parts[1].url, "https://h/m-00002-of-00002.gguf");
    assert_eq!(parts[1].file_name, "m-00002-of-00002.gguf");
}

#[test]
fn empty_chat_template_and_zero_context_are_refused() {
    assert!(matches!(
        problem(load_text(&model(
            "name = \"m\"\nchat_template = \"\"",
            GOOD_GGUF
        ))),
        Problem::EmptyChatTemplate { .. }
    ));
    assert!(matches!(
        problem(load_text(&model("name = \"m\"\nctx_size = 0", GOOD_GGUF))),
        Problem::ZeroCtxSize { .. }
    ));
}

#[test]
fn bad_placement_is_refused() {
    let tier = |label: &str, min: u64, models: &str| {
        format!(
            "[[placement.tiers]]\nlabel = \"{label}\"\nmin_gpu_memory_bytes = {min}\nmodels = [{models}]\n"
        )
    };
    let cases = [
        ("[placement]\ntiers = []\n".to_owned(), Problem::NoTiers),
        (tier("big", 1, ""), Problem::NoBaseTier),
        (
            format!("{}{}", tier("a", 0, ""), tier("a", 5, "")),
            Problem::DuplicateTierLabel { label: "a".into() },
        ),
        (
            format!("{}{}", tier("a", 0, ""), tier("b", 0, "")),
            Problem::DuplicateTierThreshold {
                first: "a".into(),
                second: "b".into(),
                min_gpu_memory_bytes: 0,
            },
        ),
        (tier(" ", 0, ""), Problem::EmptyTierLabel { index: 0 }),
        (
            tier("a", 0, "\"\""),
            Problem::EmptyTierModel { label: "a".into() },
        ),
        (
            tier("a", 0, "\"m\", \"m\""),
            Problem::DuplicateTierModel {
                label: "a".into(),
                model: "m".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(problem(load_text(&text)), expected, "{text}");
    }
}

#[test]
fn entries_serialize_for_the_available_models_api() {
    let catalog = builtin();
    let json = serde_json::to_value(catalog.get("gpt-oss:120b").unwrap()).unwrap();
    assert_eq!(json["name"], "gpt-oss:120b");
    assert_eq!(json["size_bytes"], 63_387_346_464u64);
    assert_eq!(json["recommended_gpu_memory_bytes"], 80_000_000_000u64);
    assert_eq!(json["gguf"]["parts"], 3);
    assert!(
        json.get("chat_template").is_none(),
        "absent fields are left out"
    );
    let json = serde_json::to_value(catalog.get("gpt-oss:20b").unwrap()).unwrap();
    assert!(json["gguf"].get("parts").is_none());
    assert!(json["gguf"].get("sha256").is_none());
}

#[test]
fn every_builtin_gguf_has_its_digests_or_says_it_is_unverified() {
    let text = include_str!("default.toml");
    let file: toml::Value = toml::from_str(text).unwrap();
    for model in file["models"].as_array().unwrap() {
        let gguf = &model["gguf"];
        let digests = gguf.get("sha256").is_some() || gguf.get("part_sha256").is_some();
        let unverified = gguf.get("unverified").and_then(toml::Value::as_bool) == Some(true);
        assert!(
            digests != unverified,
            "{:?}: digests or unverified = true",
            model["name"]
        );
    }
    let catalog = builtin();
    let verified: Vec<&str> = catalog
        .entries()
        .iter()
        .filter(|e| !e.gguf.as_ref().unwrap().unverified)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        verified,
        ["gpt-oss-safeguard:20b", "qwen3-coder:30b", "gemma3-270m"]
    );
}

#[test]
fn split_parts_carry_their_own_digests() {
    let first = "url = \"https://h/m-00001-of-00002.gguf\"\nfile_name = \"m-00001-of-00002.gguf\"";
    let gguf = format!(
        "{first}\nparts = 2\npart_sha256 = [\"{}\", \"{}\"]",
        "A".repeat(64),
        "b".repeat(64)
    );
    let catalog = load_text(&model("name = \"m\"", &gguf)).unwrap();
    let source = catalog.get("m").unwrap().gguf.clone().unwrap();
    assert!(!source.unverified);
    let parts = source.part_files();
    assert_eq!(parts[0].sha256, Some("a".repeat(64)), "made lower-case");
    assert_eq!(parts[1].sha256, Some("b".repeat(64)));
    // One digest too few, a bad one, digests of a single file, digests with unverified.
    let short = format!("{first}\nparts = 2\npart_sha256 = [\"{}\"]", "a".repeat(64));
    assert!(matches!(
        problem(load_text(&model("name = \"m\"", &short))),
        Problem::PartDigestCount {
            parts: 2,
            digests: 1,
            ..
        }
    ));
    let bad = format!(
        "{first}\nparts = 2\npart_sha256 = [\"{}\", \"xyz\"]",
        "a".repeat(64)
    );
    assert!(matches!(
        problem(load_text(&model("name = \"m\"", &bad))),
        Problem::BadSha256 { .. }
    ));
    let single = format!("{GOOD_GGUF}\npart_sha256 = [\"{}\"]", "a".repeat(64));
    assert!(matches!(
        problem(load_text(&model("name = \"m\"", &single))),
        Problem::PartDigestsOfOneFile { .. }
    ));
    let both = format!(
        "{GOOD_GGUF}\nsha256 = \"{}\"\nunverified = true",
        "a".repeat(64)
    );
    assert!(matches!(
        problem(load_text(&model("name = \"m\"", &both))),
        Problem::UnverifiedWithDigest { .. }
    ));
    // No digest, not said: unverified all the same, and shown so.
    let catalog = load_text(&model("name = \"m\"", GOOD_GGUF)).unwrap();
    let entry = catalog.get("m").unwrap();
    assert!(entry.gguf.as_ref().unwrap().unverified);
    assert_eq!(
        serde_json::to_value(entry).unwrap()["gguf"]["unverified"],
        true
    );
}
