//! Strategies for the property tests of the parsers of outside input: arbitrary JSON, JSON of the
//! wrong shape (wrong types, missing fields, huge numbers, deep nesting, odd unicode, NUL bytes,
//! lone surrogates in escapes), and ways to cut a stream into chunks.
//!
//! Every property test takes its configuration from [`config`]: a fixed number of cases, a fixed
//! seed (unless `PROPTEST_RNG_SEED` says otherwise) and no persistence files, so a run in CI is
//! deterministic and fast.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Number, Value};

/// The seed of every property test, unless `PROPTEST_RNG_SEED` is set.
const SEED: u64 = 0x11_4d_20_07_e4;

/// `cases` cases from a fixed seed, no failure persistence, a bounded shrink.
pub fn config(cases: u32) -> Config {
    let default = Config::default();
    let rng_seed = match default.rng_seed {
        RngSeed::Random => RngSeed::Fixed(SEED),
        fixed => fixed,
    };
    Config {
        cases,
        failure_persistence: None,
        rng_seed,
        max_shrink_iters: 256,
        ..default
    }
}

/// Text a client might send to break a parser: any unicode, NUL and other control characters,
/// bidi overrides, byte-order marks, combining marks, long runs, blanks.
pub fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => Just(String::new()),
        1 => Just("   \t\n".to_owned()),
        1 => Just("\u{0}".to_owned()),
        1 => Just("a\u{0}b".to_owned()),
        1 => Just("\u{202e}evil\u{202c}".to_owned()),
        1 => Just("\u{feff}m".to_owned()),
        1 => Just("e\u{301}\u{301}\u{301}".to_owned()),
        1 => Just("😀🇯🇵".to_owned()),
        1 => Just("\u{10ffff}\u{fffd}".to_owned()),
        1 => Just("[DONE]".to_owned()),
        1 => Just("data: x\n\n".to_owned()),
        1 => (1usize..4096).prop_map(|n| "x".repeat(n)),
        1 => "[a-z:_.-]{1,24}",
    ]
}

/// Numbers at and beyond the edges of every integer and float type.
pub fn odd_number() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(u32::MAX as u64 + 1)),
        Just(Value::from(-1)),
        Just(Value::from(0)),
        Just(Value::from(65_536)),
        Just(Value::from(f64::MAX)),
        Just(Value::from(f64::MIN_POSITIVE)),
        Just(Value::from(-0.0)),
        Just(Value::from(1e300)),
        Just(Value::from(0.5)),
    ]
}

/// Field names the router's request types know, with odd ones beside them.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&[
            "model", "messages", "role", "content", "prompt", "input", "stream", "options",
            "format", "tools", "think", "keep_alive", "images", "tool_calls", "function", "name",
            "arguments", "temperature", "num_predict", "stop", "seed", "node_id", "metrics",
            "models", "agent_id", "timestamp", "machine_name", "address", "port", "state",
            "choices", "delta", "usage", "error", "index", "data", "embedding", "timings",
        ][..])
        .prop_map(str::to_owned),
        1 => odd_string(),
    ]
}

/// Any JSON value, up to a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        odd_number(),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object with the given keys (each present or not) holding arbitrary values, beside a
/// few arbitrary keys: the right field names with (mostly) the wrong contents.
pub fn object_with_keys(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(prop::option::of(json_value()), keys.len()),
        prop::collection::vec((key(), json_value()), 0..3),
    )
        .prop_map(move |(values, others)| {
            let mut map: Map<String, Value> = others.into_iter().collect();
            for (k, v) in keys.iter().zip(values) {
                if let Some(v) = v {
                    map.insert((*k).to_owned(), v);
                }
            }
            Value::Object(map)
        })
}

/// How a valid body is broken.
#[derive(Debug, Clone)]
enum Breakage {
    /// The value at one path replaced by another value (most often of the wrong type).
    Replace(Index, Value),
    /// The value at one path removed.
    Remove(Index),
    /// An unknown field added at one path.
    Add(Index, String, Value),
    /// The value at one path replaced by `depth` nested arrays or objects.
    Nest(Index, usize, bool),
    /// A string at one path replaced by a raw JSON escape (lone surrogates, NUL, bad escapes).
    Escape(Index, &'static str),
    /// The body's text cut short.
    Truncate(Index),
    /// The body replaced by another JSON value.
    Whole(Value),
    /// The body replaced by arbitrary bytes.
    Bytes(Vec<u8>),
    /// Arbitrary bytes spliced into the body's text.
    Splice(Index, Vec<u8>),
}

/// Raw escapes a JSON string may hold: lone surrogates (leading, trailing, reversed pair), NUL,
/// invalid escapes, an unterminated escape.
const ESCAPES: &[&str] = &[
    r#""\ud800""#,
    r#""\udfff""#,
    r#""\udc00\ud800""#,
    r#""a\ud83d""#,
    r#""\u0000""#,
    r#""\u0000\u0000""#,
    r#""\x41""#,
    r#""\u12""#,
    r#""\"#,
    "\"\u{0}\"",
    "\"\n\"",
];

/// Strategies for [`Breakage`].
fn breakage() -> impl Strategy<Value = Breakage> {
    prop_oneof![
        6 => (any::<Index>(), json_value()).prop_map(|(i, v)| Breakage::Replace(i, v)),
        2 => any::<Index>().prop_map(Breakage::Remove),
        1 => (any::<Index>(), key(), json_value()).prop_map(|(i, k, v)| Breakage::Add(i, k, v)),
        1 => (any::<Index>(), 100usize..3000, any::<bool>())
            .prop_map(|(i, depth, arrays)| Breakage::Nest(i, depth, arrays)),
        2 => (any::<Index>(), prop::sample::select(ESCAPES))
            .prop_map(|(i, e)| Breakage::Escape(i, e)),
        1 => any::<Index>().prop_map(Breakage::Truncate),
        1 => json_value().prop_map(Breakage::Whole),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Breakage::Bytes),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Breakage::Splice(i, b)),
    ]
}

/// `valid` broken in one to three ways, as the bytes of a body. Most results are malformed (bad
/// JSON, a wrong type, a missing field); some stay valid by chance, so a property over them must
/// not assume every one is refused.
pub fn broken(valid: Value) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(breakage(), 1..=3).prop_map(move |breakages| {
        let mut value = valid.clone();
        let mut text: Option<Vec<u8>> = None;
        for b in breakages {
            match (b, text.as_mut()) {
                (Breakage::Replace(i, v), None) => {
                    if let Some(slot) = pick_mut(&mut value, i) {
                        *slot = v;
                    }
                }
                (Breakage::Remove(i), None) => {
                    let at = pick(&value, &i);
                    remove(&mut value, at);
                }
                (Breakage::Add(i, k, v), None) => {
                    if let Some(Value::Object(map)) = pick_object(&mut value, i) {
                        map.insert(k, v);
                    }
                }
                (Breakage::Nest(i, depth, arrays), None) => {
                    let at = pick(&value, &i);
                    text = Some(with_raw(&mut value, at, &nested(depth, arrays)));
                }
                (Breakage::Escape(i, escape), None) => {
                    let at = pick(&value, &i);
                    text = Some(with_raw(&mut value, at, escape));
                }
                (Breakage::Truncate(i), None) => {
                    let mut bytes = to_bytes(&value);
                    bytes.truncate(i.index(bytes.len().max(1)));
                    text = Some(bytes);
                }
                (Breakage::Truncate(i), Some(bytes)) => {
                    let len = bytes.len().max(1);
                    bytes.truncate(i.index(len));
                }
                (Breakage::Whole(v), None) => value = v,
                (Breakage::Bytes(bytes), _) => text = Some(bytes),
                (Breakage::Splice(i, inserted), None) => {
                    let mut bytes = to_bytes(&value);
                    let at = i.index(bytes.len() + 1);
                    bytes.splice(at..at, inserted);
                    text = Some(bytes);
                }
                (Breakage::Splice(i, inserted), Some(bytes)) => {
                    let at = i.index(bytes.len() + 1);
                    bytes.splice(at..at, inserted);
                }
                // The body is text already: value edits no longer apply.
                (_, Some(_)) => {}
            }
        }
        text.unwrap_or_else(|| to_bytes(&value))
    })
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// `depth` nested arrays (`[[[…]]]`) or objects (`{"a":{"a":…}}`) around `1`.
pub fn nested(depth: usize, arrays: bool) -> String {
    if arrays {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    } else {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    }
}

/// Every path of `value` (the root first), as the number of steps in a preorder walk.
fn count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// The `n`th value of `value` in preorder.
fn nth_mut(value: &mut Value, n: usize) -> Result<&mut Value, usize> {
    if n == 0 {
        return Ok(value);
    }
    let mut n = n - 1;
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(map) => map.values_mut().collect(),
        _ => Vec::new(),
    };
    for child in children {
        match nth_mut(child, n) {
            Ok(found) => return Ok(found),
            Err(rest) => n = rest,
        }
    }
    Err(n)
}

/// The preorder position of a value of `value` other than the root, chosen by `i` (0, the root,
/// when it has nothing inside).
fn pick(value: &Value, i: &Index) -> usize {
    let total = count(value);
    if total <= 1 {
        0
    } else {
        1 + i.index(total - 1)
    }
}

/// A value of `value` other than the root, chosen by `i`.
fn pick_mut(value: &mut Value, i: Index) -> Option<&mut Value> {
    match pick(value, &i) {
        0 => None,
        at => nth_mut(value, at).ok(),
    }
}

/// An object of `value` (the root included), chosen by `i`.
fn pick_object(value: &mut Value, i: Index) -> Option<&mut Value> {
    let objects = {
        fn walk(v: &Value, at: &mut usize, out: &mut Vec<usize>) {
            if v.is_object() {
                out.push(*at);
            }
            *at += 1;
            match v {
                Value::Array(items) => items.iter().for_each(|c| walk(c, at, out)),
                Value::Object(map) => map.values().for_each(|c| walk(c, at, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(value, &mut 0, &mut out);
        out
    };
    if objects.is_empty() {
        return None;
    }
    let n = objects[i.index(objects.len())];
    nth_mut(value, n).ok()
}

/// Removes the field or item at preorder position `at` (not the root).
fn remove(value: &mut Value, at: usize) {
    if at == 0 {
        return;
    }
    // Mark the target, then drop whatever holds the mark.
    if let Ok(slot) = nth_mut(value, at) {
        *slot = Value::String(MARK.to_owned());
    }
    drop_marked(value);
}

const MARK: &str = "\u{e000}llm-router-prop-mark\u{e000}";

fn drop_marked(value: &mut Value) {
    let is_mark = |v: &Value| v.as_str() == Some(MARK);
    match value {
        Value::Array(items) => {
            items.retain(|v| !is_mark(v));
            items.iter_mut().for_each(drop_marked);
        }
        Value::Object(map) => {
            map.retain(|_, v| !is_mark(v));
            map.values_mut().for_each(drop_marked);
        }
        _ => {}
    }
}

/// The text of `value` with the value at preorder position `at` replaced by the raw JSON `raw`
/// (the whole body when `at` is the root).
fn with_raw(value: &mut Value, at: usize, raw: &str) -> Vec<u8> {
    let replaced = match nth_mut(value, at) {
        Ok(slot) if at > 0 => {
            *slot = Value::String(MARK.to_owned());
            true
        }
        _ => false,
    };
    let text = serde_json::to_string(value).unwrap_or_default();
    if replaced {
        let quoted = serde_json::to_string(MARK).unwrap_or_default();
        text.replacen(&quoted, raw, 1).into_bytes()
    } else {
        raw.as_bytes().to_vec()
    }
}

/// Where to cut a stream: up to `max` cut points, each an [`Index`] into the stream.
pub fn cuts(max: usize) -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..=max)
}

/// `bytes` cut at `cuts` (sorted; empty pieces kept, as a stream may deliver them).
pub fn cut<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for p in points {
        pieces.push(&bytes[start..p]);
        start = p;
    }
    pieces.push(&bytes[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::test_runner::TestRunner;
    use serde_json::json;

    #[test]
    fn cut_pieces_join_to_the_whole() {
        let mut runner = TestRunner::new(config(64));
        let bytes = b"data: x\n\ndata: y\n\n".to_vec();
        runner
            .run(&cuts(8), |c| {
                prop_assert_eq!(cut(&bytes, &c).concat(), bytes.clone());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn broken_bodies_are_mostly_refused_by_a_strict_reader() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Strict {
            model: String,
            n: u32,
        }
        let mut runner = TestRunner::new(config(128));
        let refused = std::cell::Cell::new(0);
        runner
            .run(&broken(json!({"model": "m", "n": 1})), |body| {
                if serde_json::from_slice::<Strict>(&body).is_err() {
                    refused.set(refused.get() + 1);
                }
                Ok(())
            })
            .unwrap();
        assert!(refused.get() > 64, "{} of 128 refused", refused.get());
    }

    #[test]
    fn raw_escapes_land_inside_the_body() {
        let mut value = json!({"a": "x"});
        let text = with_raw(&mut value, 1, r#""\ud800""#);
        assert_eq!(text, br#"{"a":"\ud800"}"#);
        let mut value = json!({"a": [1, 2]});
        remove(&mut value, 3);
        assert_eq!(value, json!({"a": [1]}));
    }
}
