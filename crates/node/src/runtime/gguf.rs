//! Reading the few GGUF metadata values the node needs (architecture, quantization, context
//! length, embedding pooling) from the head of a model file, without loading the model.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

/// Longest string value read (longer ones are skipped: they are token lists, templates...).
const MAX_STRING: u64 = 64 * 1024;

/// What a GGUF file says of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GgufInfo {
    /// `general.architecture`, e.g. `gemma3`.
    pub architecture: Option<String>,
    /// `general.file_type` (llama.cpp's `LLAMA_FTYPE_*`).
    pub file_type: Option<u64>,
    /// `<arch>.context_length`: the context the model was trained with.
    pub context_length: Option<u64>,
    /// `<arch>.pooling_type`; absent in models not made for embeddings.
    pub pooling_type: Option<u64>,
    /// `general.parameter_count`, when the converter wrote it.
    pub parameter_count: Option<u64>,
}

impl GgufInfo {
    /// llama.cpp's name of the quantization, as Ollama shows it (`Q4_K_M`).
    pub fn quantization(&self) -> Option<&'static str> {
        Some(match self.file_type? {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            7 => "Q8_0",
            8 => "Q5_0",
            9 => "Q5_1",
            10 => "Q2_K",
            11 => "Q3_K_S",
            12 => "Q3_K_M",
            13 => "Q3_K_L",
            14 => "Q4_K_S",
            15 => "Q4_K_M",
            16 => "Q5_K_S",
            17 => "Q5_K_M",
            18 => "Q6_K",
            19 => "IQ2_XXS",
            20 => "IQ2_XS",
            21 => "Q2_K_S",
            22 => "IQ3_XS",
            23 => "IQ3_XXS",
            24 => "IQ1_S",
            25 => "IQ4_NL",
            26 => "IQ3_S",
            27 => "IQ3_M",
            28 => "IQ2_S",
            29 => "IQ2_M",
            30 => "IQ4_XS",
            31 => "IQ1_M",
            32 => "BF16",
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read the model file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a GGUF file")]
    NotGguf,
    #[error("unsupported GGUF version {0}")]
    Version(u32),
    #[error("unknown GGUF value type {0}")]
    ValueType(u32),
}

/// Reads the metadata of the GGUF file at `path`.
pub fn read(path: &Path) -> Result<GgufInfo, GgufError> {
    read_from(BufReader::new(File::open(path)?))
}

/// A metadata value the reader keeps.
enum Kept {
    Text(String),
    Number(u64),
    Skipped,
}

fn read_from(mut r: impl Read + Seek) -> Result<GgufInfo, GgufError> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)?;
    if &magic != b"GGUF" {
        return Err(GgufError::NotGguf);
    }
    let version = u32_le(&mut r)?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let _tensors = u64_le(&mut r)?;
    let count = u64_le(&mut r)?;
    let mut values: HashMap<String, Kept> = HashMap::new();
    for _ in 0..count {
        let Some(key) = string(&mut r)? else {
            break;
        };
        let kind = u32_le(&mut r)?;
        let value = value(&mut r, kind)?;
        if !matches!(value, Kept::Skipped) {
            values.insert(key, value);
        }
    }
    let text = |key: &str| match values.get(key) {
        Some(Kept::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let number = |key: &str| match values.get(key) {
        Some(Kept::Number(n)) => Some(*n),
        _ => None,
    };
    let architecture = text("general.architecture");
    let per_arch = |suffix: &str| {
        architecture
            .as_deref()
            .and_then(|arch| number(&format!("{arch}.{suffix}")))
    };
    Ok(GgufInfo {
        file_type: number("general.file_type"),
        parameter_count: number("general.parameter_count"),
        context_length: per_arch("context_length"),
        pooling_type: per_arch("pooling_type"),
        architecture,
    })
}

fn value(r: &mut (impl Read + Seek), kind: u32) -> Result<Kept, GgufError> {
    Ok(match kind {
        0 | 1 | 7 => Kept::Number(u64::from(byte(r)?)),
        2 | 3 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            Kept::Number(u64::from(u16::from_le_bytes(b)))
        }
        4 | 5 => Kept::Number(u64::from(u32_le(r)?)),
        10 | 11 => Kept::Number(u64_le(r)?),
        6 => {
            skip(r, 4)?;
            Kept::Skipped
        }
        12 => {
            skip(r, 8)?;
            Kept::Skipped
        }
        8 => string(r)?.map_or(Kept::Skipped, Kept::Text),
        9 => {
            let element = u32_le(r)?;
            let len = u64_le(r)?;
            match element_size(element) {
                Some(size) => skip(r, size.saturating_mul(len))?,
                None => {
                    for _ in 0..len {
                        value(r, element)?;
                    }
                }
            }
            Kept::Skipped
        }
        other => return Err(GgufError::ValueType(other)),
    })
}

/// Size of a fixed-size element type; `None` for strings and arrays.
fn element_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// A string; `None` (and skipped) when longer than [`MAX_STRING`].
fn string(r: &mut (impl Read + Seek)) -> Result<Option<String>, GgufError> {
    let len = u64_le(r)?;
    if len > MAX_STRING {
        skip(r, len)?;
        return Ok(None);
    }
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    r.read_exact(&mut buf)?;
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn skip(r: &mut impl Seek, n: u64) -> Result<(), GgufError> {
    let n = i64::try_from(n).map_err(|_| GgufError::NotGguf)?;
    r.seek_relative(n)?;
    Ok(())
}

fn byte(r: &mut impl Read) -> std::io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn u32_le(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn u64_le(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn kv_string(out: &mut Vec<u8>, key: &str, value: &str) {
        out.extend((key.len() as u64).to_le_bytes());
        out.extend(key.as_bytes());
        out.extend(8u32.to_le_bytes());
        out.extend((value.len() as u64).to_le_bytes());
        out.extend(value.as_bytes());
    }

    fn kv_u32(out: &mut Vec<u8>, key: &str, value: u32) {
        out.extend((key.len() as u64).to_le_bytes());
        out.extend(key.as_bytes());
        out.extend(4u32.to_le_bytes());
        out.extend(value.to_le_bytes());
    }

    fn header(kv_count: u64) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend(kv_count.to_le_bytes());
        out
    }

    #[test]
    fn reads_architecture_quantization_and_per_architecture_values() {
        let mut file = header(5);
        kv_string(&mut file, "general.architecture", "gemma3");
        // An array of strings (a token list) and one of floats are skipped.
        file.extend((21u64).to_le_bytes());
        file.extend(b"tokenizer.ggml.tokens");
        file.extend(9u32.to_le_bytes());
        file.extend(8u32.to_le_bytes());
        file.extend(2u64.to_le_bytes());
        for t in ["<bos>", "hello"] {
            file.extend((t.len() as u64).to_le_bytes());
            file.extend(t.as_bytes());
        }
        file.extend((6u64).to_le_bytes());
        file.extend(b"scores");
        file.extend(9u32.to_le_bytes());
        file.extend(6u32.to_le_bytes());
        file.extend(3u64.to_le_bytes());
        file.extend([0u8; 12]);
        kv_u32(&mut file, "general.file_type", 15);
        kv_u32(&mut file, "gemma3.context_length", 32768);
        let info = read_from(Cursor::new(file)).unwrap();
        assert_eq!(info.architecture.as_deref(), Some("gemma3"));
        assert_eq!(info.quantization(), Some("Q4_K_M"));
        assert_eq!(info.context_length, Some(32768));
        assert_eq!(info.pooling_type, None);
    }

    #[test]
    fn other_files_are_refused() {
        assert!(matches!(
            read_from(Cursor::new(b"PK\x03\x04 not a model".to_vec())),
            Err(GgufError::NotGguf)
        ));
    }
}
