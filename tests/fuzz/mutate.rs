//! The reusable mutation strategy: a list of [`Mutation`]s applied in order to a seed's bytes.
//! Proptest shrinks a failing list to the few mutations that matter, so a crash is reported with
//! a near-minimal input.

use proptest::prelude::*;
use serde_json::Value;

/// Lengths and counts a hostile file declares.
pub const HUGE_U64: [u64; 8] = [
    0,
    1,
    u32::MAX as u64,
    1 << 31,
    1 << 40,
    1 << 60,
    1 << 63,
    u64::MAX,
];

/// Numbers a hostile text file writes where a number belongs.
pub const BAD_NUMBERS: [&str; 18] = [
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1",
    "0",
    "-0",
    "0.0",
    "1e-320",
    "18446744073709551616",
    "9223372036854775807",
    "1152921504606846976",
    "4294967296",
    "65536",
    "1.5",
    "\"7\"",
];

/// One change to a byte string. Positions are taken modulo the current length.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Keep the first `len * keep / 65536` bytes.
    Truncate {
        keep: u16,
    },
    FlipBit {
        at: u32,
        bit: u8,
    },
    SetByte {
        at: u32,
        byte: u8,
    },
    /// Overwrite 8 bytes with a little-endian huge length or count.
    WriteU64 {
        at: u32,
        value: u64,
    },
    WriteU32 {
        at: u32,
        value: u32,
    },
    Delete {
        at: u32,
        len: u16,
    },
    /// Copy `len` bytes from `at` to `to`.
    Duplicate {
        at: u32,
        len: u16,
        to: u32,
    },
    Insert {
        at: u32,
        bytes: Vec<u8>,
    },
    /// Replace the `nth` number of the text with one of [`BAD_NUMBERS`].
    BadNumber {
        nth: u16,
        with: usize,
    },
    /// Duplicate or delete the `nth` line (duplicated and missing keys in JSON, TOML, CSV).
    DuplicateLine {
        nth: u16,
    },
    DeleteLine {
        nth: u16,
    },
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<u16>().prop_map(|keep| Mutation::Truncate { keep }),
        3 => (any::<u32>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        2 => (any::<u32>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        2 => (any::<u32>(), prop::sample::select(&HUGE_U64[..]))
            .prop_map(|(at, value)| Mutation::WriteU64 { at, value }),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(at, value)| Mutation::WriteU32 { at, value }),
        1 => (any::<u32>(), 1u16..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<u32>(), 1u16..64, any::<u32>())
            .prop_map(|(at, len, to)| Mutation::Duplicate { at, len, to }),
        1 => (any::<u32>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        3 => (any::<u16>(), 0..BAD_NUMBERS.len())
            .prop_map(|(nth, with)| Mutation::BadNumber { nth, with }),
        1 => any::<u16>().prop_map(|nth| Mutation::DuplicateLine { nth }),
        1 => any::<u16>().prop_map(|nth| Mutation::DeleteLine { nth }),
    ]
}

/// One to `max` mutations.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..=max)
}

/// Only the byte-level mutations (for binary formats' data sections).
pub fn apply_all(seed: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in ms {
        apply(&mut b, m);
    }
    b
}

fn pos(at: u32, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        at as usize % len
    }
}

pub fn apply(b: &mut Vec<u8>, m: &Mutation) {
    let len = b.len();
    match *m {
        Mutation::Truncate { keep } => b.truncate(len * keep as usize / 65536),
        Mutation::FlipBit { at, bit } if len > 0 => b[pos(at, len)] ^= 1 << bit,
        Mutation::SetByte { at, byte } if len > 0 => b[pos(at, len)] = byte,
        Mutation::WriteU64 { at, value } => overwrite(b, pos(at, len), &value.to_le_bytes()),
        Mutation::WriteU32 { at, value } => overwrite(b, pos(at, len), &value.to_le_bytes()),
        Mutation::Delete { at, len: n } if len > 0 => {
            let at = pos(at, len);
            let end = (at + n as usize).min(len);
            b.drain(at..end);
        }
        Mutation::Duplicate { at, len: n, to } if len > 0 => {
            let at = pos(at, len);
            let piece = b[at..(at + n as usize).min(len)].to_vec();
            let to = pos(to, len + 1);
            b.splice(to..to, piece);
        }
        Mutation::Insert { at, ref bytes } => {
            let at = pos(at, len + 1);
            b.splice(at..at, bytes.iter().copied());
        }
        Mutation::BadNumber { nth, with } => {
            let spans = number_spans(b);
            if !spans.is_empty() {
                let (s, e) = spans[nth as usize % spans.len()];
                b.splice(s..e, BAD_NUMBERS[with].bytes());
            }
        }
        Mutation::DuplicateLine { nth } => {
            let lines = line_spans(b);
            if !lines.is_empty() {
                let (s, e) = lines[nth as usize % lines.len()];
                let line = b[s..e].to_vec();
                b.splice(e..e, line);
            }
        }
        Mutation::DeleteLine { nth } => {
            let lines = line_spans(b);
            if !lines.is_empty() {
                let (s, e) = lines[nth as usize % lines.len()];
                b.drain(s..e);
            }
        }
        _ => {}
    }
}

fn overwrite(b: &mut [u8], at: usize, bytes: &[u8]) {
    let end = (at + bytes.len()).min(b.len());
    b[at..end].copy_from_slice(&bytes[..end - at]);
}

/// Byte ranges of the numbers in a text: a digit run with an optional sign, fraction and
/// exponent.
fn number_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts =
            b[i].is_ascii_digit() || (b[i] == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        let inside_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if starts && !inside_word {
            let s = i;
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_digit() || matches!(b[i], b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                i += 1;
            }
            spans.push((s, i));
        } else {
            i += 1;
        }
    }
    spans
}

/// Byte ranges of the lines, each with its newline.
fn line_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut s = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            spans.push((s, i + 1));
            s = i + 1;
        }
    }
    if s < b.len() {
        spans.push((s, b.len()));
    }
    spans
}

/// A change to a parsed JSON document: the `nth` node (pre-order) gets `action`.
#[derive(Debug, Clone)]
pub struct JsonMutation {
    pub nth: u16,
    pub action: JsonAction,
}

#[derive(Debug, Clone)]
pub enum JsonAction {
    /// Remove the node from its object or array (a missing key).
    Remove,
    /// Replace it with a hostile value.
    Replace(Value),
}

/// Values that stress a JSON schema: huge and negative counts, wrong types, wrong dtypes.
pub fn hostile_value() -> impl Strategy<Value = Value> {
    let fixed: Vec<Value> = vec![
        Value::Null,
        Value::Bool(true),
        serde_json::json!(0),
        serde_json::json!(-1),
        serde_json::json!(1u64 << 60),
        serde_json::json!(u64::MAX),
        serde_json::json!(1e300),
        serde_json::json!(-1e300),
        serde_json::json!(0.5),
        serde_json::json!(""),
        serde_json::json!("F64"),
        serde_json::json!("I64"),
        serde_json::json!("BOOL"),
        serde_json::json!("F8_E4M3"),
        serde_json::json!("X9"),
        serde_json::json!([]),
        serde_json::json!([1u64 << 40, 1u64 << 40]),
        serde_json::json!([0, 1u64 << 62]),
        serde_json::json!({}),
        serde_json::json!("../../etc/passwd"),
        serde_json::json!("/nonexistent.safetensors"),
    ];
    prop_oneof![
        4 => prop::sample::select(fixed),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
    ]
}

pub fn json_mutations(max: usize) -> impl Strategy<Value = Vec<JsonMutation>> {
    let action = prop_oneof![
        1 => Just(JsonAction::Remove),
        3 => hostile_value().prop_map(JsonAction::Replace),
    ];
    prop::collection::vec(
        (any::<u16>(), action).prop_map(|(nth, action)| JsonMutation { nth, action }),
        0..=max,
    )
}

pub fn apply_json(v: &mut Value, ms: &[JsonMutation]) {
    for m in ms {
        let count = count_nodes(v);
        if count <= 1 {
            continue;
        }
        // Node 0 is the root; never remove or replace it.
        let mut target = 1 + m.nth as usize % (count - 1);
        mutate_nth(v, &mut target, &m.action);
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Finds the `target`-th descendant (pre-order, counting down) and applies the action in its
/// parent. Returns true once done.
fn mutate_nth(v: &mut Value, target: &mut usize, action: &JsonAction) -> bool {
    match v {
        Value::Array(a) => {
            for i in 0..a.len() {
                *target -= 1;
                if *target == 0 {
                    match action {
                        JsonAction::Remove => {
                            a.remove(i);
                        }
                        JsonAction::Replace(x) => a[i] = x.clone(),
                    }
                    return true;
                }
                if mutate_nth(&mut a[i], target, action) {
                    return true;
                }
            }
        }
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                *target -= 1;
                if *target == 0 {
                    match action {
                        JsonAction::Remove => {
                            o.remove(&k);
                        }
                        JsonAction::Replace(x) => {
                            o.insert(k, x.clone());
                        }
                    }
                    return true;
                }
                if mutate_nth(o.get_mut(&k).expect("key listed"), target, action) {
                    return true;
                }
            }
        }
        _ => {}
    }
    false
}

/// Pretty JSON of a mutated document, then byte mutations on the text (duplicated lines are
/// duplicated keys).
pub fn mutate_json_text(seed: &Value, js: &[JsonMutation], ms: &[Mutation]) -> Vec<u8> {
    let mut v = seed.clone();
    apply_json(&mut v, js);
    let text = serde_json::to_vec_pretty(&v).expect("a JSON value serialises");
    apply_all(&text, ms)
}
