//! One audit record → one Logboek Dataverwerkingen log record: an OTLP span with the record's
//! trace and span id, its kind as name, its decision as status, its time, and the `dpl.core.*`
//! attributes of the standard (Logius, "Logboek Dataverwerkingen", Component: Logboek). Pure: no
//! I/O, no clock. Sends the subject's pseudonym (never a BSN) and no field names or values.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

use crate::audit::record::{AuditRecord, Outcome};

/// `dpl.core.processing_activity_id`: the register entry of the processing activity (URI).
pub const PROCESSING_ACTIVITY_ID: &str = "dpl.core.processing_activity_id";
/// `dpl.core.data_subject_id`: the data subject's identifier (here the keyed pseudonym).
pub const DATA_SUBJECT_ID: &str = "dpl.core.data_subject_id";
/// `dpl.core.data_subject_id_type`: what kind of identifier `data_subject_id` is.
pub const DATA_SUBJECT_ID_TYPE: &str = "dpl.core.data_subject_id_type";
/// `dpl.core.foreign_operation.span_id`: the calling party's operation (its W3C span id).
pub const FOREIGN_OPERATION_SPAN_ID: &str = "dpl.core.foreign_operation.span_id";
/// `dpl.core.foreign_operation.processor`: who the calling party is.
pub const FOREIGN_OPERATION_PROCESSOR: &str = "dpl.core.foreign_operation.processor";
/// The audit record's sequence number and id, to find it in the audit log (and to drop a second
/// delivery of it: the export is at-least-once).
pub const AUDIT_SEQ: &str = "poortwachter.audit.seq";
pub const AUDIT_ID: &str = "poortwachter.audit.id";

/// What the encoding needs besides the records.
#[derive(Debug, Clone)]
pub struct Encoding {
    /// The gateway's id (`gateway.id`), as the resource's `service.instance.id`.
    pub gateway_id: String,
    /// The value of `dpl.core.data_subject_id_type`.
    pub data_subject_id_type: String,
}

/// One OTLP/HTTP request body's message for `records` (in the given order).
pub fn request(records: &[AuditRecord], encoding: &Encoding) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "poortwachter"),
                    text("service.instance.id", &encoding.gateway_id),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "poortwachter.logboek".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: records.iter().map(|r| log_record(r, encoding)).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The log record of one audit record.
pub fn log_record(record: &AuditRecord, encoding: &Encoding) -> Span {
    let e = &record.entry;
    // Records made outside a request (retention) have no trace: ids derived from the record's
    // hash, so that a second delivery of the same record carries the same ids.
    let (derived_trace, derived_span) = (&record.hash.0[..16], &record.hash.0[16..24]);
    let trace_id = id_bytes(e.trace_id.as_deref(), 16).unwrap_or_else(|| derived_trace.to_vec());
    let span_id = id_bytes(e.span_id.as_deref(), 8).unwrap_or_else(|| derived_span.to_vec());
    let foreign = id_bytes(e.foreign_span_id.as_deref(), 8);
    let time = unix_nanos(&e.time);

    let mut attributes = Vec::with_capacity(8);
    if let Some(activity) = &e.processing_activity {
        attributes.push(text(PROCESSING_ACTIVITY_ID, activity));
    }
    // One subject per record: the pseudonym, never the BSN.
    if let Some(pseudonym) = &e.subject_pseudonym {
        attributes.push(text(DATA_SUBJECT_ID, pseudonym));
        attributes.push(text(DATA_SUBJECT_ID_TYPE, &encoding.data_subject_id_type));
    }
    if let (Some(_), Some(span)) = (&foreign, &e.foreign_span_id) {
        attributes.push(text(FOREIGN_OPERATION_SPAN_ID, span));
        if let Some(oin) = &e.requester_oin {
            attributes.push(text(FOREIGN_OPERATION_PROCESSOR, &format!("urn:oin:{oin}")));
        }
    }
    attributes.push(KeyValue {
        key: AUDIT_SEQ.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(record.seq)),
        }),
        ..Default::default()
    });
    attributes.push(text(AUDIT_ID, &e.id));

    let status = match e.decision {
        Some(Outcome::Permit) => Status {
            code: status::StatusCode::Ok as i32,
            message: String::new(),
        },
        Some(Outcome::Refuse) => Status {
            code: status::StatusCode::Error as i32,
            message: e.reason.clone().unwrap_or_else(|| "refused".into()),
        },
        None => Status::default(),
    };
    let kind = if e.requester_oin.is_some() {
        span::SpanKind::Server
    } else {
        span::SpanKind::Internal
    };
    Span {
        trace_id,
        span_id,
        parent_span_id: foreign.unwrap_or_default(),
        name: e.kind.map_or("audit-record", |k| k.as_str()).into(),
        kind: kind as i32,
        start_time_unix_nano: time,
        end_time_unix_nano: time,
        attributes,
        status: Some(status),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// Lowercase or uppercase hex of exactly `len` bytes, not all zero (W3C: an all-zero id is no id).
fn id_bytes(hex_text: Option<&str>, len: usize) -> Option<Vec<u8>> {
    let bytes = hex::decode(hex_text?).ok()?;
    (bytes.len() == len && bytes.iter().any(|b| *b != 0)).then_some(bytes)
}

/// An audit record's RFC 3339 time in nanoseconds since 1970 (0 when it does not parse: the
/// record is still sent, never dropped).
fn unix_nanos(time: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{AuditEntry, AuditKind, GENESIS};

    fn encoding() -> Encoding {
        Encoding {
            gateway_id: "poortwachter-test".into(),
            data_subject_id_type: "urn:test:pseudonym".into(),
        }
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn text_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
        match attribute(span, key) {
            Some(any_value::Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    fn disclosure() -> AuditEntry {
        AuditEntry {
            id: "dsc_1".into(),
            kind: Some(AuditKind::Disclosure),
            time: "2026-11-29T10:00:00.250000Z".into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            span_id: Some("a1b2c3d4e5f60718".into()),
            foreign_span_id: Some("00f067aa0ba902b7".into()),
            requester_oin: Some("00000001823288444000".into()),
            subject_pseudonym: Some("ab".repeat(32)),
            processing_activity: Some("https://register.example/pa/1".into()),
            fields_released: vec!["own_transport".into()],
            decision: Some(Outcome::Permit),
            ..Default::default()
        }
    }

    #[test]
    fn a_permitted_disclosure_becomes_an_ok_log_record_with_the_dpl_core_attributes() {
        let record = AuditRecord::chain(7, disclosure(), GENESIS);
        let span = log_record(&record, &encoding());
        assert_eq!(
            hex::encode(&span.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(hex::encode(&span.span_id), "a1b2c3d4e5f60718");
        assert_eq!(hex::encode(&span.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(span.name, "disclosure");
        assert_eq!(
            span.status.as_ref().unwrap().code,
            status::StatusCode::Ok as i32
        );
        assert_eq!(span.start_time_unix_nano, 1_795_946_400_250_000_000);
        assert_eq!(span.end_time_unix_nano, span.start_time_unix_nano);
        assert_eq!(
            text_attr(&span, PROCESSING_ACTIVITY_ID),
            Some("https://register.example/pa/1")
        );
        assert_eq!(
            text_attr(&span, DATA_SUBJECT_ID),
            Some("ab".repeat(32).as_str())
        );
        assert_eq!(
            text_attr(&span, DATA_SUBJECT_ID_TYPE),
            Some("urn:test:pseudonym")
        );
        assert_eq!(
            text_attr(&span, FOREIGN_OPERATION_SPAN_ID),
            Some("00f067aa0ba902b7")
        );
        assert_eq!(
            text_attr(&span, FOREIGN_OPERATION_PROCESSOR),
            Some("urn:oin:00000001823288444000")
        );
        assert_eq!(
            attribute(&span, AUDIT_SEQ),
            Some(&any_value::Value::IntValue(7))
        );
        // No field names, no values: nothing of the disclosure's content.
        assert!(!format!("{span:?}").contains("own_transport"));
    }

    #[test]
    fn a_refusal_is_an_error_with_its_reason_and_a_record_without_trace_gets_stable_ids() {
        let mut entry = disclosure();
        entry.decision = Some(Outcome::Refuse);
        entry.reason = Some("consent-required".into());
        entry.trace_id = None;
        entry.span_id = None;
        entry.foreign_span_id = None;
        entry.processing_activity = None;
        let record = AuditRecord::chain(8, entry, GENESIS);
        let span = log_record(&record, &encoding());
        let status = span.status.as_ref().unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
        assert_eq!(status.message, "consent-required");
        assert_eq!(span.trace_id, record.hash.0[..16].to_vec());
        assert_eq!(span.span_id, record.hash.0[16..24].to_vec());
        assert!(span.parent_span_id.is_empty());
        assert_eq!(attribute(&span, PROCESSING_ACTIVITY_ID), None);
        assert_eq!(attribute(&span, FOREIGN_OPERATION_SPAN_ID), None);
        assert_eq!(
            log_record(&record, &encoding()),
            span,
            "the same ids every time"
        );
    }

    #[test]
    fn a_record_about_no_subject_names_none() {
        let entry = AuditEntry {
            id: "read_1".into(),
            kind: Some(AuditKind::AuditRead),
            time: "2026-11-29T10:00:00Z".into(),
            ..Default::default()
        };
        let span = log_record(&AuditRecord::chain(1, entry, GENESIS), &encoding());
        assert_eq!(attribute(&span, DATA_SUBJECT_ID), None);
        assert_eq!(attribute(&span, DATA_SUBJECT_ID_TYPE), None);
        assert_eq!(
            span.status.as_ref().unwrap().code,
            status::StatusCode::Unset as i32
        );
        assert_eq!(span.kind, span::SpanKind::Internal as i32);
    }
}
