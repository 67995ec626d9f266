//! The canonical encoding of a covenant version and its SHA-256 hash, which parties sign and
//! every decision names.
//!
//! # Canonical form
//! 1. Parse the document (TOML or JSON) into the typed [`Covenant`]. Unknown keys are refused, so
//!    nothing outside the typed model can be hashed or smuggled in.
//! 2. Serialise the typed value to JSON with:
//!    - object keys sorted by their UTF-8 bytes, at every depth;
//!    - no insignificant whitespace;
//!    - strings escaped as in RFC 8259 with the shortest escape (`\"`, `\\`, `\n`, `\r`, `\t`,
//!      `\b`, `\f`, and `\u00XX` for other control characters); everything else as raw UTF-8;
//!    - integers in plain decimal; dates as `YYYY-MM-DD`; defaults written out explicitly
//!      (`special_categories: false`).
//!    - Array order is kept: the order of parties, grants, recipients and fields is part of the
//!      document a party signs.
//! 3. The hash is SHA-256 over those bytes, written as `sha256:` + 64 lowercase hex digits.
//!
//! The same covenant written in TOML or JSON, with keys in any order and any whitespace, therefore
//! has one hash; any change to a value changes it.

use std::fmt;

use ring::digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::covenant::Covenant;
use crate::ids::CovenantId;

/// The canonical JSON bytes of any serialisable value (see the module docs).
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own plain data types to a `Value` cannot fail (no maps with non-string
    // keys, no failing `Serialize` impls); fall back to `null` rather than panic.
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut out = Vec::with_capacity(1024);
    write_canonical(&value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// A SHA-256 digest of a canonical encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Hash(pub [u8; 32]);

impl Sha256Hash {
    pub fn of(bytes: &[u8]) -> Self {
        let d = digest::digest(&digest::SHA256, bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Sha256Hash(out)
    }

    /// Parse `sha256:<64 hex>` (the prefix is optional).
    pub fn parse(s: &str) -> Option<Self> {
        let hex_part = s.strip_prefix("sha256:").unwrap_or(s);
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).ok()?;
        Some(Sha256Hash(out))
    }

    pub fn hex(&self) -> String {
        self.hex_digits().to_owned()
    }

    /// The 64 lowercase hex digits, without allocating (hashes are formatted on every decision).
    fn hex_digits(&self) -> HexDigits {
        let mut digits = [0u8; 64];
        // The buffer is exactly twice the digest length, so encoding cannot fail.
        let _ = hex::encode_to_slice(self.0, &mut digits);
        HexDigits(digits)
    }
}

/// A digest's hex digits on the stack.
struct HexDigits([u8; 64]);

impl std::ops::Deref for HexDigits {
    type Target = str;
    fn deref(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        f.write_str(&self.hex_digits())
    }
}

impl fmt::Debug for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Sha256Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Sha256Hash::parse(&s).ok_or_else(|| serde::de::Error::custom("expected sha256:<64 hex>"))
    }
}

impl Covenant {
    /// The canonical bytes of this covenant version (see the module docs).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_json(self)
    }

    /// SHA-256 of [`Covenant::canonical_bytes`].
    pub fn canonical_hash(&self) -> Sha256Hash {
        Sha256Hash::of(&self.canonical_bytes())
    }

    /// `id@version#sha256:…`, the reference every decision records.
    pub fn reference(&self) -> CovenantRef {
        CovenantRef {
            id: self.id.clone(),
            version: self.version,
            hash: self.canonical_hash(),
        }
    }
}

/// The exact covenant version a decision relied on: `id@version#hash`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CovenantRef {
    pub id: CovenantId,
    pub version: u32,
    pub hash: Sha256Hash,
}

impl fmt::Display for CovenantRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.id, self.version, self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let a = json!({"b": 1, "a": {"d": [1, 2], "c": "x\n\u{1}é"}});
        assert_eq!(
            String::from_utf8(canonical_json(&a)).unwrap(),
            "{\"a\":{\"c\":\"x\\n\\u0001é\",\"d\":[1,2]},\"b\":1}"
        );
    }

    #[test]
    fn hash_round_trips_through_text() {
        let h = Sha256Hash::of(b"abc");
        assert_eq!(
            h.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(format!("sha256:{}", h.hex()), h.to_string());
        assert_eq!(Sha256Hash::parse(&h.to_string()), Some(h));
        assert_eq!(Sha256Hash::parse("sha256:zz"), None);
    }
}
