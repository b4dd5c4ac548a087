//! One model of the catalog: where to fetch it and how to start it.

use serde::{Deserialize, Serialize};

use super::Problem;

/// A model the fleet can run, as written in a catalog file and as shown by
/// `GET /api/models/available`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The name clients ask for, e.g. `gpt-oss:20b`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What a node downloads for this model.
    pub size_bytes: u64,
    /// GPU memory the model wants on one GPU (weights, KV cache and buffers); 0 for a CPU model.
    pub recommended_gpu_memory_bytes: u64,
    /// The GGUF file for llama-server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gguf: Option<GgufSource>,
    /// The model's Ollama tag, for nodes that run Ollama, e.g. `gpt-oss:20b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama: Option<String>,
    /// Default llama-server arguments, appended to the node's own.
    #[serde(default)]
    pub args: Vec<String>,
    /// Built-in llama-server chat template to use instead of the file's own, e.g. `gemma`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx_size: Option<u32>,
}

/// Where a model's GGUF file is downloaded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GgufSource {
    /// `http(s)://` URL of the file, or of its first part when it is split.
    pub url: String,
    /// Lower-case hex SHA-256 of the file, when known (never for a split file: see
    /// `part_sha256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Lower-case hex SHA-256 of each part of a split file, in order, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_sha256: Vec<String>,
    /// No digest is published for the file: nodes take what they download as it comes and only
    /// report the digest they computed. Written in the catalog to say so; a file that gives no
    /// digest and does not say it is taken as unverified all the same.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unverified: bool,
    /// Size of the file, of all parts together when it is split.
    pub size_bytes: u64,
    /// Name to store the file under (of the first part when it is split); a plain file name.
    pub file_name: String,
    /// Number of parts, 1 unless the model is split into `<stem>-0000i-of-0000n.gguf` files that
    /// sit next to each other; `url` and `file_name` then name part 1.
    #[serde(default = "one_part", skip_serializing_if = "is_one_part")]
    pub parts: u32,
}

/// One file to download for a GGUF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GgufPart {
    pub url: String,
    pub file_name: String,
    /// Its SHA-256, when the catalog has it.
    pub sha256: Option<String>,
}

fn one_part() -> u32 {
    1
}

fn is_one_part(parts: &u32) -> bool {
    *parts == 1
}

impl GgufSource {
    /// Every file to download, in order; one for an unsplit file.
    pub fn part_files(&self) -> Vec<GgufPart> {
        if self.parts <= 1 {
            return vec![GgufPart {
                url: self.url.clone(),
                file_name: self.file_name.clone(),
                sha256: self.sha256.clone(),
            }];
        }
        let first = split_suffix(1, self.parts);
        let url_stem = self.url.strip_suffix(&first).unwrap_or(&self.url);
        let name_stem = self
            .file_name
            .strip_suffix(&first)
            .unwrap_or(&self.file_name);
        (1..=self.parts)
            .map(|i| {
                let suffix = split_suffix(i, self.parts);
                GgufPart {
                    url: format!("{url_stem}{suffix}"),
                    file_name: format!("{name_stem}{suffix}"),
                    sha256: usize::try_from(i - 1)
                        .ok()
                        .and_then(|at| self.part_sha256.get(at))
                        .cloned(),
                }
            })
            .collect()
    }

    /// Checks the source of model `name`, with its digest made lower-case.
    fn checked(mut self, name: &str) -> Result<Self, Problem> {
        let named = || name.to_owned();
        if !is_http_url(&self.url) {
            return Err(Problem::BadUrl {
                name: named(),
                url: self.url,
            });
        }
        if !is_plain_file_name(&self.file_name) {
            return Err(Problem::BadFileName {
                name: named(),
                file_name: self.file_name,
            });
        }
        if self.parts == 0 {
            return Err(Problem::NoParts { name: named() });
        }
        if self.parts > 1 {
            let suffix = split_suffix(1, self.parts);
            if !self.url.ends_with(&suffix) || !self.file_name.ends_with(&suffix) {
                return Err(Problem::BadSplitName {
                    name: named(),
                    parts: self.parts,
                    suffix,
                });
            }
            if self.sha256.is_some() {
                return Err(Problem::SplitWithSha256 { name: named() });
            }
        }
        if self.parts == 1 && !self.part_sha256.is_empty() {
            return Err(Problem::PartDigestsOfOneFile { name: named() });
        }
        if self.parts > 1
            && !self.part_sha256.is_empty()
            && self.part_sha256.len() != self.parts as usize
        {
            return Err(Problem::PartDigestCount {
                name: named(),
                parts: self.parts,
                digests: self.part_sha256.len(),
            });
        }
        self.sha256 = self
            .sha256
            .take()
            .map(|d| hex_digest(d, name))
            .transpose()?;
        self.part_sha256 = std::mem::take(&mut self.part_sha256)
            .into_iter()
            .map(|d| hex_digest(d, name))
            .collect::<Result<_, _>>()?;
        let has_digest = self.sha256.is_some() || !self.part_sha256.is_empty();
        if has_digest && self.unverified {
            return Err(Problem::UnverifiedWithDigest { name: named() });
        }
        self.unverified = !has_digest;
        Ok(self)
    }
}

impl CatalogEntry {
    /// Checks the entry at position `index` of its file; the digest is made lower-case.
    pub(super) fn checked(mut self, index: usize) -> Result<Self, Problem> {
        if self.name.is_empty() {
            return Err(Problem::EmptyName { index });
        }
        if self
            .name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Problem::BadName { name: self.name });
        }
        let named = || self.name.clone();
        if self.gguf.is_none() && self.ollama.is_none() {
            return Err(Problem::NoSource { name: named() });
        }
        if self.ollama.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(Problem::EmptyOllamaTag { name: named() });
        }
        if self
            .chat_template
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(Problem::EmptyChatTemplate { name: named() });
        }
        if self.ctx_size == Some(0) {
            return Err(Problem::ZeroCtxSize { name: named() });
        }
        if let Some(gguf) = self.gguf.take() {
            self.gguf = Some(gguf.checked(&self.name)?);
        }
        Ok(self)
    }
}

/// `digest` made lower-case, when it is 64 hex digits.
fn hex_digest(digest: String, name: &str) -> Result<String, Problem> {
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Problem::BadSha256 {
            name: name.to_owned(),
            sha256: digest,
        });
    }
    Ok(digest.to_ascii_lowercase())
}

/// `-0000i-of-0000n.gguf`, the part suffix llama.cpp's `gguf-split` writes.
fn split_suffix(part: u32, parts: u32) -> String {
    format!("-{part:05}-of-{parts:05}.gguf")
}

fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// A name that stays inside the directory it is joined to.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', ':'])
        && !name.chars().any(char::is_control)
}
