//! A hand-written canonical encoder for the hashed part of an audit record: the same bytes as
//! `policy::canonical_json` (sorted keys, no whitespace, shortest escapes), without going
//! through `serde_json::Value`, so that verification runs at millions of records per second.
//! Any change here must keep the equality test (and its property test) green.

use policy::Sha256Hash;

use super::entry::{
    ActorFacts, AuditEntry, AuditKind, ConsentTokenFacts, LiveFacts, Outcome, WithheldName,
};

/// Append the canonical JSON of `{seq, ..entry, prev_hash}` (every member of a record but
/// `hash`) to `out`. Byte-identical to `policy::canonical_json` of the same value.
pub fn encode_hashed(seq: i64, entry: &AuditEntry, prev_hash: &Sha256Hash, out: &mut Vec<u8>) {
    // Destructured without `..` so that a new field in `AuditEntry` fails to compile here instead
    // of silently falling out of the hash.
    let AuditEntry {
        id,
        kind,
        time,
        trace_id,
        span_id,
        requester_oin,
        requester_person,
        source_oin,
        subject_pseudonym,
        purpose,
        legal_basis,
        covenant,
        consent_id,
        consent_token,
        fields_released,
        fields_withheld,
        decision,
        reason,
        processing_activity,
        foreign_span_id,
        actor,
        live,
    } = entry;
    // Members in the byte order of their names, as `canonical_json` sorts them.
    out.push(b'{');
    // Issue 16: absent, not null, when there is none: older records keep their hashes.
    if let Some(facts) = actor {
        out.extend_from_slice(b"\"actor\":");
        actor_facts(facts, out);
        out.push(b',');
    }
    out.extend_from_slice(b"\"consent_id\":");
    opt_str(consent_id.as_deref(), out);
    // Absent, not null, when there is none (as serde skips it): older records keep their hashes.
    if let Some(facts) = consent_token {
        out.extend_from_slice(b",\"consent_token\":");
        token_facts(facts, out);
    }
    out.extend_from_slice(b",\"covenant\":");
    opt_str(covenant.as_deref(), out);
    out.extend_from_slice(b",\"decision\":");
    opt_str(decision.map(Outcome::as_str), out);
    out.extend_from_slice(b",\"fields_released\":[");
    for (i, f) in fields_released.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(f, out);
    }
    out.extend_from_slice(b"],\"fields_withheld\":[");
    for (i, WithheldName { field, reason }) in fields_withheld.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"field\":");
        string(field, out);
        out.extend_from_slice(b",\"reason\":");
        string(reason, out);
        out.push(b'}');
    }
    out.push(b']');
    // Absent, not null, when there is none: older records keep their hashes.
    if let Some(span) = foreign_span_id {
        out.extend_from_slice(b",\"foreign_span_id\":");
        string(span, out);
    }
    out.extend_from_slice(b",\"id\":");
    string(id, out);
    out.extend_from_slice(b",\"kind\":");
    opt_str(kind.map(AuditKind::as_str), out);
    out.extend_from_slice(b",\"legal_basis\":");
    opt_str(legal_basis.as_deref(), out);
    // Absent, not null, when there is none: older records keep their hashes.
    if let Some(LiveFacts { over_delivered }) = live {
        out.extend_from_slice(b",\"live\":{\"over_delivered\":[");
        for (i, f) in over_delivered.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(f, out);
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b",\"prev_hash\":");
    hash(prev_hash, out);
    if let Some(activity) = processing_activity {
        out.extend_from_slice(b",\"processing_activity\":");
        string(activity, out);
    }
    out.extend_from_slice(b",\"purpose\":");
    opt_str(purpose.as_deref(), out);
    out.extend_from_slice(b",\"reason\":");
    opt_str(reason.as_deref(), out);
    out.extend_from_slice(b",\"requester_oin\":");
    opt_str(requester_oin.as_deref(), out);
    out.extend_from_slice(b",\"requester_person\":");
    opt_str(requester_person.as_deref(), out);
    out.extend_from_slice(b",\"seq\":");
    integer(seq, out);
    out.extend_from_slice(b",\"source_oin\":");
    opt_str(source_oin.as_deref(), out);
    out.extend_from_slice(b",\"span_id\":");
    opt_str(span_id.as_deref(), out);
    out.extend_from_slice(b",\"subject_pseudonym\":");
    opt_str(subject_pseudonym.as_deref(), out);
    out.extend_from_slice(b",\"time\":");
    string(time, out);
    out.extend_from_slice(b",\"trace_id\":");
    opt_str(trace_id.as_deref(), out);
    out.push(b'}');
}

/// `{"alg":…,"defect":…,"iss":…,"jti":…,"kid":…,"signature":…}`, members in byte order.
fn token_facts(facts: &ConsentTokenFacts, out: &mut Vec<u8>) {
    let ConsentTokenFacts {
        alg,
        kid,
        iss,
        jti,
        signature,
        defect,
    } = facts;
    out.extend_from_slice(b"{\"alg\":");
    opt_str(alg.as_deref(), out);
    out.extend_from_slice(b",\"defect\":");
    opt_str(defect.as_deref(), out);
    out.extend_from_slice(b",\"iss\":");
    opt_str(iss.as_deref(), out);
    out.extend_from_slice(b",\"jti\":");
    opt_str(jti.as_deref(), out);
    out.extend_from_slice(b",\"kid\":");
    opt_str(kid.as_deref(), out);
    out.extend_from_slice(b",\"signature\":");
    string(signature, out);
    out.push(b'}');
}

/// `{"assertion":…,"defect":…,"iss":…,"role":…,"sub":…}`, members in byte order.
fn actor_facts(facts: &ActorFacts, out: &mut Vec<u8>) {
    let ActorFacts {
        assertion,
        iss,
        sub,
        role,
        defect,
    } = facts;
    out.extend_from_slice(b"{\"assertion\":");
    string(assertion, out);
    out.extend_from_slice(b",\"defect\":");
    opt_str(defect.as_deref(), out);
    out.extend_from_slice(b",\"iss\":");
    opt_str(iss.as_deref(), out);
    out.extend_from_slice(b",\"role\":");
    opt_str(role.as_deref(), out);
    out.extend_from_slice(b",\"sub\":");
    opt_str(sub.as_deref(), out);
    out.push(b'}');
}

/// SHA-256 of [`encode_hashed`], using `scratch` as the encoding buffer (cleared first), so a
/// caller hashing many records allocates once.
pub fn hash_with(
    seq: i64,
    entry: &AuditEntry,
    prev_hash: &Sha256Hash,
    scratch: &mut Vec<u8>,
) -> Sha256Hash {
    scratch.clear();
    encode_hashed(seq, entry, prev_hash, scratch);
    Sha256Hash::of(scratch)
}

fn opt_str(value: Option<&str>, out: &mut Vec<u8>) {
    match value {
        Some(s) => string(s, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string with the escapes of `policy::canonical_json`: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
/// `\f`, `\u00xx` (lowercase hex) for other control characters, everything else as raw UTF-8.
fn string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.push(b'"');
    if !needs_escape(bytes) {
        // Audit strings (ids, hashes, pseudonyms, names) almost never need escaping.
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any byte must be escaped (below 0x20, `"` or `\\`). Written without an early exit so
/// that the compiler vectorises it: it looks at every byte of every string of every record.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, &b| {
        acc | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
    }) != 0
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `"sha256:<64 lowercase hex>"`, as `Sha256Hash` serialises.
fn hash(h: &Sha256Hash, out: &mut Vec<u8>) {
    let mut text = *b"\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"";
    for (i, &b) in h.0.iter().enumerate() {
        text[8 + 2 * i] = HEX[usize::from(b >> 4)];
        text[9 + 2 * i] = HEX[usize::from(b & 0xf)];
    }
    out.extend_from_slice(&text);
}

/// Plain decimal, as `serde_json` writes an `i64`.
fn integer(n: i64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;

    /// The reference encoding: what `AuditRecord::compute_hash` hashed before this encoder.
    fn reference(seq: i64, entry: &AuditEntry, prev_hash: &Sha256Hash) -> Vec<u8> {
        #[derive(Serialize)]
        struct Hashed<'a> {
            seq: i64,
            #[serde(flatten)]
            entry: &'a AuditEntry,
            prev_hash: &'a Sha256Hash,
        }
        policy::canonical_json(&Hashed {
            seq,
            entry,
            prev_hash,
        })
    }

    fn fast(seq: i64, entry: &AuditEntry, prev_hash: &Sha256Hash) -> Vec<u8> {
        let mut out = Vec::new();
        encode_hashed(seq, entry, prev_hash, &mut out);
        out
    }

    #[test]
    fn empty_entry_encodes_like_canonical_json() {
        let e = AuditEntry::default();
        let h = Sha256Hash([0u8; 32]);
        assert_eq!(
            String::from_utf8(fast(0, &e, &h)).unwrap(),
            String::from_utf8(reference(0, &e, &h)).unwrap()
        );
    }

    #[test]
    fn full_entry_with_every_escape_encodes_like_canonical_json() {
        let nasty = "q\"b\\n\nr\rt\tb\u{8}f\u{c}\u{0}\u{1f}\u{7f}é😀 end";
        let e = AuditEntry {
            id: nasty.into(),
            kind: Some(AuditKind::HandoverDestroyed),
            time: "2026-01-02T03:04:05.123456Z".into(),
            trace_id: Some(nasty.into()),
            span_id: Some("s".into()),
            requester_oin: Some("00000001823288444000".into()),
            requester_person: Some(nasty.into()),
            source_oin: Some("00000001003214345000".into()),
            subject_pseudonym: Some("ab".repeat(32)),
            purpose: Some("job-mediation".into()),
            legal_basis: Some("consent".into()),
            covenant: Some("c@1#sha256:00".into()),
            consent_id: Some(nasty.into()),
            consent_token: Some(ConsentTokenFacts {
                alg: Some(nasty.into()),
                kid: None,
                iss: Some("00000001003214345000".into()),
                jti: Some(nasty.into()),
                signature: nasty.into(),
                defect: Some(nasty.into()),
            }),
            fields_released: vec!["a".into(), nasty.into(), String::new()],
            fields_withheld: vec![
                WithheldName {
                    field: "x".into(),
                    reason: nasty.into(),
                },
                WithheldName {
                    field: String::new(),
                    reason: String::new(),
                },
            ],
            decision: Some(Outcome::Refuse),
            reason: Some(nasty.into()),
            processing_activity: Some(nasty.into()),
            foreign_span_id: Some(nasty.into()),
            actor: Some(ActorFacts {
                assertion: nasty.into(),
                iss: Some(nasty.into()),
                sub: None,
                role: Some("r".into()),
                defect: Some(nasty.into()),
            }),
            live: Some(LiveFacts {
                over_delivered: vec![nasty.into(), "cv".into()],
            }),
        };
        let h = Sha256Hash::of(b"x");
        for seq in [0, 1, 9, 10, 12345, -1, -987, i64::MAX, i64::MIN] {
            assert_eq!(
                String::from_utf8(fast(seq, &e, &h)).unwrap(),
                String::from_utf8(reference(seq, &e, &h)).unwrap(),
                "seq {seq}"
            );
        }
    }

    fn text() -> impl Strategy<Value = String> {
        // Mostly printable, with control characters, quotes, backslashes and non-ASCII mixed in.
        prop::collection::vec(
            prop_oneof![
                4 => any::<char>(),
                2 => prop::char::range('\u{0}', '\u{20}'),
                1 => Just('"'),
                1 => Just('\\'),
                1 => Just('\u{7f}'),
            ],
            0..12,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    fn kind() -> impl Strategy<Value = Option<AuditKind>> {
        prop::option::of(prop::sample::select(vec![
            AuditKind::Disclosure,
            AuditKind::ConsentRegistered,
            AuditKind::ConsentRevoked,
            AuditKind::ConsentRegistrationRefused,
            AuditKind::ConsentRevocationRefused,
            AuditKind::HandoverStored,
            AuditKind::HandoverRefused,
            AuditKind::HandoverDestroyed,
            AuditKind::AuditRead,
            AuditKind::CovenantAdmin,
            AuditKind::AuditPruned,
        ]))
    }

    fn token_facts() -> impl Strategy<Value = Option<ConsentTokenFacts>> {
        prop::option::of(
            (
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
                text(),
                prop::option::of(text()),
            )
                .prop_map(|(alg, kid, iss, jti, signature, defect)| {
                    ConsentTokenFacts {
                        alg,
                        kid,
                        iss,
                        jti,
                        signature,
                        defect,
                    }
                }),
        )
    }

    fn actor_facts() -> impl Strategy<Value = Option<ActorFacts>> {
        prop::option::of(
            (
                text(),
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(text()),
            )
                .prop_map(|(assertion, iss, sub, role, defect)| ActorFacts {
                    assertion,
                    iss,
                    sub,
                    role,
                    defect,
                }),
        )
    }

    /// The members added after the first release (all absent when `None`), as one boxed
    /// strategy: one flat tuple of every member overflows a debug build's test-thread stack.
    #[allow(clippy::type_complexity)]
    fn later_members() -> BoxedStrategy<(
        Option<String>,
        Option<String>,
        Option<ActorFacts>,
        Option<Vec<String>>,
    )> {
        (
            prop::option::of(text()),
            prop::option::of(text()),
            actor_facts(),
            prop::option::of(prop::collection::vec(text(), 0..3)),
        )
            .boxed()
    }

    prop_compose! {
        fn entry()(
            id in text(), kind in kind(), time in text(),
            trace_id in prop::option::of(text()), span_id in prop::option::of(text()),
            requester_oin in prop::option::of(text()), requester_person in prop::option::of(text()),
            source_oin in prop::option::of(text()), subject_pseudonym in prop::option::of(text()),
            purpose in prop::option::of(text()), legal_basis in prop::option::of(text()),
            covenant in prop::option::of(text()), consent_id in prop::option::of(text()),
            consent_token in token_facts(),
            fields_released in prop::collection::vec(text(), 0..4),
            fields_withheld in prop::collection::vec((text(), text()), 0..3),
            decision in prop::option::of(prop::sample::select(vec![Outcome::Permit, Outcome::Refuse])),
            reason in prop::option::of(text()),
            (processing_activity, foreign_span_id, actor, live) in later_members(),
        ) -> AuditEntry {
            AuditEntry {
                id, kind, time, trace_id, span_id, requester_oin, requester_person, source_oin,
                subject_pseudonym, purpose, legal_basis, covenant, consent_id, consent_token,
                fields_released,
                fields_withheld: fields_withheld
                    .into_iter()
                    .map(|(field, reason)| WithheldName { field, reason })
                    .collect(),
                decision, reason, processing_activity, foreign_span_id, actor,
                live: live.map(|over_delivered| LiveFacts { over_delivered }),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn fast_encoding_equals_canonical_json(
            seq in any::<i64>(),
            e in entry(),
            prev in any::<[u8; 32]>(),
        ) {
            let prev = Sha256Hash(prev);
            prop_assert_eq!(fast(seq, &e, &prev), reference(seq, &e, &prev));
        }
    }
}
