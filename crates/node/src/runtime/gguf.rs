//! Reading the few GGUF metadata values the node needs (architecture, quantization, context
//! length, embedding pooling, attention shape and sliding window) from the head of a model file,
//! without loading the model.
//!
//! The file may come from anywhere a pull was told to fetch it, so the reader is bounded: arrays
//! nest at most [`MAX_DEPTH`] deep, a file declares at most [`MAX_KEYS`] keys and arrays of at
//! most [`MAX_ARRAY_LEN`] elements, keys are at most [`MAX_KEY`] bytes, and the metadata must end
//! within [`MAX_HEADER_BYTES`]. Past any limit the file is refused with an error that names it; no
//! declared length is ever allocated or trusted beyond those limits.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

/// Longest string value read (longer ones are skipped: they are token lists, templates...).
const MAX_STRING: u64 = 64 * 1024;
/// Deepest nesting of arrays in arrays (llama.cpp itself reads no nested array at all).
pub const MAX_DEPTH: u32 = 4;
/// Most metadata keys a file may declare (real models have a few dozen).
pub const MAX_KEYS: u64 = 65_536;
/// Longest metadata key (real keys are under 100 bytes).
pub const MAX_KEY: u64 = 256;
/// Most elements of one array (the largest token lists have a few hundred thousand).
pub const MAX_ARRAY_LEN: u64 = 1 << 24;
/// Where the metadata must have ended (real models' metadata take tens of MiB at most).
pub const MAX_HEADER_BYTES: u64 = 256 * 1024 * 1024;

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
    /// `<arch>.block_count`: the number of layers.
    pub block_count: Option<u64>,
    /// `<arch>.embedding_length`.
    pub embedding_length: Option<u64>,
    /// `<arch>.attention.head_count` (absent when given per layer, as an array).
    pub head_count: Option<u64>,
    /// `<arch>.attention.head_count_kv` (absent when given per layer, as an array).
    pub head_count_kv: Option<u64>,
    /// `<arch>.attention.key_length`: one head's key size; absent means embedding / heads.
    pub key_length: Option<u64>,
    /// `<arch>.attention.value_length`: one head's value size; absent means embedding / heads.
    pub value_length: Option<u64>,
    /// `<arch>.attention.sliding_window`: present in models with sliding-window attention
    /// layers (Gemma 2 and 3, gpt-oss...).
    pub sliding_window: Option<u64>,
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
    #[error("GGUF metadata nests arrays deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("GGUF metadata runs past its first {MAX_HEADER_BYTES} bytes")]
    TooLong,
    #[error("GGUF metadata declares {what} of {declared}, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        declared: u64,
        limit: u64,
    },
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

fn read_from(r: impl Read + Seek) -> Result<GgufInfo, GgufError> {
    let mut r = Header { r, pos: 0 };
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)?;
    if &magic != b"GGUF" {
        return Err(GgufError::NotGguf);
    }
    let version = r.u32_le()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let _tensors = r.u64_le()?;
    let count = limited("metadata keys", r.u64_le()?, MAX_KEYS)?;
    let mut architecture = None;
    // Only the numbers the node may want: memory stays bounded by the key count.
    let mut numbers: HashMap<String, u64> = HashMap::new();
    for _ in 0..count {
        let len = limited("a key length", r.u64_le()?, MAX_KEY)?;
        let key = r.text(len)?;
        let kind = r.u32_le()?;
        match (r.value(kind, 0)?, key.as_str()) {
            (Kept::Text(t), "general.architecture") => architecture = Some(t),
            (Kept::Number(n), key) if wanted(key) => {
                numbers.insert(key.to_owned(), n);
            }
            _ => {}
        }
    }
    let number = |key: &str| numbers.get(key).copied();
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
        block_count: per_arch("block_count"),
        embedding_length: per_arch("embedding_length"),
        head_count: per_arch("attention.head_count"),
        head_count_kv: per_arch("attention.head_count_kv"),
        key_length: per_arch("attention.key_length"),
        value_length: per_arch("attention.value_length"),
        sliding_window: per_arch("attention.sliding_window"),
        architecture,
    })
}

/// Suffixes of the per-architecture numbers [`GgufInfo`] is made of.
const PER_ARCH: &[&str] = &[
    ".context_length",
    ".pooling_type",
    ".block_count",
    ".embedding_length",
    ".attention.head_count",
    ".attention.head_count_kv",
    ".attention.key_length",
    ".attention.value_length",
    ".attention.sliding_window",
];

/// Keys of the numbers [`GgufInfo`] is made of.
fn wanted(key: &str) -> bool {
    matches!(key, "general.file_type" | "general.parameter_count")
        || PER_ARCH.iter().any(|suffix| key.ends_with(suffix))
}

/// `declared`, or an error naming `what` when it is over `limit`.
fn limited(what: &'static str, declared: u64, limit: u64) -> Result<u64, GgufError> {
    if declared > limit {
        return Err(GgufError::TooLarge {
            what,
            declared,
            limit,
        });
    }
    Ok(declared)
}

/// The metadata being read, with the count of bytes read or skipped so far.
struct Header<R> {
    r: R,
    pos: u64,
}

impl<R: Read + Seek> Header<R> {
    /// Counts `n` more bytes, refusing to go past [`MAX_HEADER_BYTES`].
    fn advance(&mut self, n: u64) -> Result<(), GgufError> {
        let end = self.pos.saturating_add(n);
        if end > MAX_HEADER_BYTES {
            return Err(GgufError::TooLong);
        }
        self.pos = end;
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        self.advance(buf.len() as u64)?;
        self.r.read_exact(buf)?;
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        self.advance(n)?;
        // Within MAX_HEADER_BYTES, so it fits.
        let n = i64::try_from(n).map_err(|_| GgufError::NotGguf)?;
        self.r.seek_relative(n)?;
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, GgufError> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }

    fn u32_le(&mut self) -> Result<u32, GgufError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64_le(&mut self) -> Result<u64, GgufError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// `len` bytes as text; the caller has bounded `len`.
    fn text(&mut self, len: u64) -> Result<String, GgufError> {
        let mut buf = vec![0u8; usize::try_from(len).map_err(|_| GgufError::NotGguf)?];
        self.read_exact(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// A string value; skipped when longer than [`MAX_STRING`].
    fn string(&mut self) -> Result<Kept, GgufError> {
        let len = self.u64_le()?;
        if len > MAX_STRING {
            self.skip(len)?;
            return Ok(Kept::Skipped);
        }
        Ok(Kept::Text(self.text(len)?))
    }

    /// A value of type `kind`, inside `depth` arrays.
    fn value(&mut self, kind: u32, depth: u32) -> Result<Kept, GgufError> {
        Ok(match kind {
            0 | 1 | 7 => Kept::Number(u64::from(self.byte()?)),
            2 | 3 => {
                let mut b = [0u8; 2];
                self.read_exact(&mut b)?;
                Kept::Number(u64::from(u16::from_le_bytes(b)))
            }
            4 | 5 => Kept::Number(u64::from(self.u32_le()?)),
            10 | 11 => Kept::Number(self.u64_le()?),
            6 => {
                self.skip(4)?;
                Kept::Skipped
            }
            12 => {
                self.skip(8)?;
                Kept::Skipped
            }
            8 => self.string()?,
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(GgufError::TooDeep);
                }
                let element = self.u32_le()?;
                let len = limited("an array length", self.u64_le()?, MAX_ARRAY_LEN)?;
                match element_size(element) {
                    Some(size) => self.skip(size.saturating_mul(len))?,
                    None => {
                        for _ in 0..len {
                            self.value(element, depth + 1)?;
                        }
                    }
                }
                Kept::Skipped
            }
            other => return Err(GgufError::ValueType(other)),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
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
        assert_eq!(info.sliding_window, None);
    }

    #[test]
    fn reads_the_attention_shape_and_the_sliding_window() {
        // Gemma 3 270M's values.
        let mut file = header(8);
        kv_string(&mut file, "general.architecture", "gemma3");
        kv_u32(&mut file, "gemma3.block_count", 18);
        kv_u32(&mut file, "gemma3.embedding_length", 640);
        kv_u32(&mut file, "gemma3.attention.head_count", 4);
        kv_u32(&mut file, "gemma3.attention.head_count_kv", 1);
        kv_u32(&mut file, "gemma3.attention.key_length", 256);
        kv_u32(&mut file, "gemma3.attention.value_length", 256);
        kv_u32(&mut file, "gemma3.attention.sliding_window", 512);
        let info = read_from(Cursor::new(file)).unwrap();
        assert_eq!(info.block_count, Some(18));
        assert_eq!(info.embedding_length, Some(640));
        assert_eq!(info.head_count, Some(4));
        assert_eq!(info.head_count_kv, Some(1));
        assert_eq!(info.key_length, Some(256));
        assert_eq!(info.value_length, Some(256));
        assert_eq!(info.sliding_window, Some(512));
        // Another architecture's keys are not this model's.
        let mut file = header(2);
        kv_string(&mut file, "general.architecture", "llama");
        kv_u32(&mut file, "gemma3.attention.sliding_window", 512);
        assert_eq!(read_from(Cursor::new(file)).unwrap().sliding_window, None);
    }

    /// A key whose value is `depth` arrays, each holding the next, the innermost empty.
    fn nested_arrays(out: &mut Vec<u8>, key: &str, depth: usize) {
        out.extend((key.len() as u64).to_le_bytes());
        out.extend(key.as_bytes());
        out.extend(9u32.to_le_bytes());
        for level in 1..=depth {
            let element = if level == depth { 8u32 } else { 9u32 };
            out.extend(element.to_le_bytes());
            let len: u64 = if level == depth { 0 } else { 1 };
            out.extend(len.to_le_bytes());
        }
    }

    #[test]
    fn arrays_nested_up_to_the_limit_are_read() {
        let mut file = header(2);
        nested_arrays(&mut file, "deep", MAX_DEPTH as usize);
        kv_string(&mut file, "general.architecture", "llama");
        let info = read_from(Cursor::new(file)).unwrap();
        assert_eq!(info.architecture.as_deref(), Some("llama"));
    }

    #[test]
    fn deeply_nested_arrays_are_refused_without_recursing_into_them() {
        // 200 000 levels would overflow the stack of an unbounded recursive reader.
        for depth in [MAX_DEPTH as usize + 1, 200_000] {
            let mut file = header(1);
            nested_arrays(&mut file, "bomb", depth);
            let error = read_from(Cursor::new(file)).unwrap_err();
            assert!(matches!(error, GgufError::TooDeep), "{depth}: {error}");
            assert!(error.to_string().contains("deeper than 4"), "{error}");
        }
    }

    #[test]
    fn huge_declared_counts_and_lengths_are_refused_before_anything_is_allocated() {
        // More keys than allowed.
        let file = header(u64::MAX);
        let error = read_from(Cursor::new(file)).unwrap_err();
        assert!(
            matches!(
                error,
                GgufError::TooLarge {
                    what: "metadata keys",
                    declared: u64::MAX,
                    ..
                }
            ),
            "{error}"
        );
        // A key of an exabyte.
        let mut file = header(1);
        file.extend((1u64 << 60).to_le_bytes());
        let error = read_from(Cursor::new(file)).unwrap_err();
        assert!(
            matches!(
                error,
                GgufError::TooLarge {
                    what: "a key length",
                    ..
                }
            ),
            "{error}"
        );
        // An array of 2^64 - 1 strings.
        let mut file = header(1);
        file.extend(3u64.to_le_bytes());
        file.extend(b"arr");
        file.extend(9u32.to_le_bytes());
        file.extend(8u32.to_le_bytes());
        file.extend(u64::MAX.to_le_bytes());
        let error = read_from(Cursor::new(file)).unwrap_err();
        assert!(
            matches!(
                error,
                GgufError::TooLarge {
                    what: "an array length",
                    ..
                }
            ),
            "{error}"
        );
        // A string value of a petabyte: skipped, not read, and past the header limit.
        let mut file = header(1);
        file.extend(3u64.to_le_bytes());
        file.extend(b"str");
        file.extend(8u32.to_le_bytes());
        file.extend((1u64 << 50).to_le_bytes());
        let error = read_from(Cursor::new(file)).unwrap_err();
        assert!(matches!(error, GgufError::TooLong), "{error}");
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let mut file = header(1);
        kv_string(&mut file, "general.architecture", "gemma3");
        file.truncate(file.len() - 3);
        assert!(matches!(
            read_from(Cursor::new(file)),
            Err(GgufError::Io(_))
        ));
    }

    /// A GGUF header followed by `kvs` made of arbitrary types and lengths.
    fn arbitrary_metadata() -> impl Strategy<Value = Vec<u8>> {
        let kv = (
            proptest::collection::vec(any::<u8>(), 0..12),
            0u32..14,
            prop_oneof![Just(0u64), Just(1), 0u64..64, any::<u64>()],
            proptest::collection::vec(any::<u8>(), 0..48),
        );
        (any::<u64>(), proptest::collection::vec(kv, 0..8)).prop_map(|(count, kvs)| {
            let mut file = header(count % 16);
            for (key, kind, len, tail) in kvs {
                file.extend((key.len() as u64).to_le_bytes());
                file.extend(key);
                file.extend(kind.to_le_bytes());
                if kind == 9 {
                    file.extend((len as u32 % 14).to_le_bytes());
                }
                file.extend(len.to_le_bytes());
                file.extend(tail);
            }
            file
        })
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_from(Cursor::new(bytes));
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_header_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..1024),
            count in any::<u64>(),
        ) {
            let mut file = header(count);
            file.extend(tail);
            let _ = read_from(Cursor::new(file));
        }

        #[test]
        fn arbitrary_metadata_never_panics(file in arbitrary_metadata()) {
            let _ = read_from(Cursor::new(file));
        }
    }

    #[test]
    fn other_files_are_refused() {
        assert!(matches!(
            read_from(Cursor::new(b"PK\x03\x04 not a model".to_vec())),
            Err(GgufError::NotGguf)
        ));
    }
}
