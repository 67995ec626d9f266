//! Export of the audit log as CSV (for spreadsheets) or JSON Lines (for offline verification),
//! streamed page by page in `seq` order up to a snapshot of the chain head, so memory stays
//! constant however large the log is. JSON Lines is the format `poortwachter audit verify
//! --export` reads: a `{"meta":…}` line, then each `AuditRecord` exactly as stored, each page
//! followed by the signed `{"checkpoint":…}` lines over its records. Field names and pseudonyms
//! only: an export never holds a BSN or a field value.

use std::collections::BTreeSet;

use chrono::Utc;
use futures_util::Stream;
use serde::Serialize;

use crate::audit::record::{AuditRecord, ConsentTokenFacts, Outcome};
use crate::audit::review::{record_read, Reader, ReviewError, ReviewFilter, Scope};
use crate::audit::verify_sources::checkpoint_line;
use crate::state::AppState;
use crate::store::review::AuditSelect;
use crate::store::{Store, StoreError};
use crate::timefmt::audit_time;

/// Records read from the store per chunk of the export.
pub const EXPORT_PAGE: i64 = 1000;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "csv" => Some(ExportFormat::Csv),
            "jsonl" => Some(ExportFormat::Jsonl),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/jsonl",
        }
    }
}

/// The CSV columns, in order. Lists are joined with `;`, withheld fields as `field:reason`, the
/// facts of a refused consent token as `name=value` pairs (those present).
pub const CSV_COLUMNS: [&str; 21] = [
    "seq",
    "id",
    "time",
    "kind",
    "trace_id",
    "span_id",
    "requester_oin",
    "requester_person",
    "source_oin",
    "subject_pseudonym",
    "purpose",
    "legal_basis",
    "covenant",
    "consent_id",
    "consent_token",
    "fields_released",
    "fields_withheld",
    "decision",
    "reason",
    "prev_hash",
    "hash",
];

/// One CSV cell (RFC 4180 quoting). A cell a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`: CSV is for reading; JSON Lines is exact.
fn csv_cell(value: &str, out: &mut String) {
    let guarded = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = guarded || value.contains([',', '"', '\n', '\r']);
    if needs_quotes {
        out.push('"');
    }
    if guarded {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if needs_quotes {
        out.push('"');
    }
}

/// The header line.
pub fn csv_header() -> String {
    let mut line = CSV_COLUMNS.join(",");
    line.push_str("\r\n");
    line
}

/// One record as a CSV line.
pub fn csv_row(r: &AuditRecord) -> String {
    let e = &r.entry;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        r.seq.to_string(),
        e.id.clone(),
        e.time.clone(),
        e.kind.map(|k| k.as_str()).unwrap_or_default().to_owned(),
        opt(&e.trace_id),
        opt(&e.span_id),
        opt(&e.requester_oin),
        opt(&e.requester_person),
        opt(&e.source_oin),
        opt(&e.subject_pseudonym),
        opt(&e.purpose),
        opt(&e.legal_basis),
        opt(&e.covenant),
        opt(&e.consent_id),
        e.consent_token.as_ref().map(token_cell).unwrap_or_default(),
        e.fields_released.join(";"),
        e.fields_withheld
            .iter()
            .map(|w| format!("{}:{}", w.field, w.reason))
            .collect::<Vec<_>>()
            .join(";"),
        e.decision
            .map(Outcome::as_str)
            .unwrap_or_default()
            .to_owned(),
        opt(&e.reason),
        r.prev_hash.to_string(),
        r.hash.to_string(),
    ];
    let mut line = String::with_capacity(512);
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_cell(cell, &mut line);
    }
    line.push_str("\r\n");
    line
}

/// `alg=…;kid=…;iss=…;jti=…;signature=…;defect=…`, the members that are present.
fn token_cell(t: &ConsentTokenFacts) -> String {
    [
        ("alg", t.alg.as_deref()),
        ("kid", t.kid.as_deref()),
        ("iss", t.iss.as_deref()),
        ("jti", t.jti.as_deref()),
        ("signature", Some(t.signature.as_str())),
        ("defect", t.defect.as_deref()),
    ]
    .iter()
    .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
    .collect::<Vec<_>>()
    .join(";")
}

/// One record as a JSON Lines line.
pub fn jsonl_row(r: &AuditRecord) -> Result<String, StoreError> {
    let mut line = serde_json::to_string(r)
        .map_err(|e| StoreError::Corrupt(format!("audit record {}: {e}", r.seq)))?;
    line.push('\n');
    Ok(line)
}

/// The first line of a JSON Lines export (ignored by verification).
#[derive(Debug, Clone, Serialize)]
pub struct ExportMeta {
    pub format: &'static str,
    pub generated_at: String,
    /// The export holds records up to this sequence number (the chain head when it began).
    pub through_seq: i64,
    /// Whether this is the whole chain from seq 1, so that its links and checkpoints verify.
    /// A scoped or filtered export has gaps: each record's own hash still verifies, and it
    /// carries the checkpoints that name one of its records.
    pub complete: bool,
    /// `all`, or the OIN whose records these are.
    pub scope: String,
    /// The filter, as recorded in the meta-audit record.
    pub filter: String,
    /// The id of the meta-audit record of this export.
    pub read_id: String,
}

#[derive(Serialize)]
struct MetaLine<'a> {
    meta: &'a ExportMeta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    Records,
    Done,
}

/// A running export: pull chunks with [`Export::next_chunk`] or turn it into a body stream.
#[derive(Debug)]
pub struct Export {
    store: Store,
    select: AuditSelect,
    scope: Scope,
    format: ExportFormat,
    phase: Phase,
    /// The last sequence number the export covers: the chain head when it began.
    pub through: i64,
    /// What the export is; the first line of a JSON Lines export.
    pub meta: ExportMeta,
}

/// Record the export (before anything is read), snapshot the chain head and return the export.
pub async fn begin(
    state: &AppState,
    reader: &Reader,
    filter: &ReviewFilter,
    format: ExportFormat,
) -> Result<Export, ReviewError> {
    let mut select = filter.select(&reader.scope, &state.pseudonymizer);
    let what = format!("export format={} {}", format.as_str(), filter.describe());
    let read_id = record_read(
        state,
        reader,
        what.trim(),
        select.subject_pseudonym.clone(),
        Outcome::Permit,
    )
    .await?;
    let through = state.store.audit_head().await?.map_or(0, |(seq, _)| seq);
    select.through = Some(through);
    let meta = ExportMeta {
        format: "poortwachter-audit-export/1",
        generated_at: audit_time(Utc::now()),
        through_seq: through,
        complete: reader.scope == Scope::All && *filter == ReviewFilter::default(),
        scope: match &reader.scope {
            Scope::All => "all".to_owned(),
            Scope::Organisation(o) => o.to_string(),
        },
        filter: filter.describe(),
        read_id,
    };
    Ok(Export {
        store: state.store.clone(),
        select,
        scope: reader.scope.clone(),
        format,
        phase: Phase::Header,
        through,
        meta,
    })
}

impl Export {
    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// The next piece of the export, or `None` at the end. Holds at most one page in memory.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        loop {
            match self.phase {
                Phase::Header => {
                    self.phase = Phase::Records;
                    return Ok(Some(match self.format {
                        ExportFormat::Csv => csv_header().into_bytes(),
                        ExportFormat::Jsonl => {
                            let mut line = serde_json::to_vec(&MetaLine { meta: &self.meta })
                                .map_err(|e| StoreError::Corrupt(format!("export meta: {e}")))?;
                            line.push(b'\n');
                            line
                        }
                    }));
                }
                Phase::Records => {
                    let page = self.store.audit_select(&self.select, EXPORT_PAGE).await?;
                    let Some(last) = page.last() else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    let first_seq = self.select.after + 1;
                    self.select.after = last.seq;
                    if (page.len() as i64) < EXPORT_PAGE {
                        self.phase = Phase::Done;
                    }
                    let mut chunk = String::with_capacity(page.len() * 600);
                    let mut written = BTreeSet::new();
                    for r in page.iter().filter(|r| self.scope.allows(&r.entry)) {
                        written.insert(r.seq);
                        match self.format {
                            ExportFormat::Csv => chunk.push_str(&csv_row(r)),
                            ExportFormat::Jsonl => chunk.push_str(&jsonl_row(r)?),
                        }
                    }
                    if self.format == ExportFormat::Jsonl && !written.is_empty() {
                        let checkpoints = self
                            .store
                            .audit_checkpoints(first_seq, self.select.after)
                            .await?;
                        for cp in checkpoints {
                            if self.meta.complete || written.contains(&cp.seq) {
                                chunk.push_str(&checkpoint_line(&cp));
                                chunk.push('\n');
                            }
                        }
                    }
                    if !chunk.is_empty() {
                        return Ok(Some(chunk.into_bytes()));
                    }
                }
                Phase::Done => return Ok(None),
            }
        }
    }

    /// The export as a stream of chunks, pulled only as fast as the reader takes them.
    pub fn into_stream(self) -> impl Stream<Item = Result<Vec<u8>, StoreError>> + Send + 'static {
        futures_util::stream::unfold(Some(self), |export| async move {
            let mut export = export?;
            match export.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(export))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{AuditEntry, AuditKind, WithheldName, GENESIS};

    fn record() -> AuditRecord {
        AuditRecord::chain(
            3,
            AuditEntry {
                id: "dsc_1".into(),
                kind: Some(AuditKind::Disclosure),
                time: "2026-11-25T10:00:00.000000Z".into(),
                requester_oin: Some("00000001823288444000".into()),
                requester_person: Some("=HYPERLINK(\"x\"),\nnext".into()),
                fields_released: vec!["own_transport".into(), "cv".into()],
                fields_withheld: vec![WithheldName {
                    field: "debt_assistance".into(),
                    reason: "field-not-granted".into(),
                }],
                decision: Some(Outcome::Permit),
                ..Default::default()
            },
            GENESIS,
        )
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let row = csv_row(&record());
        assert!(row.starts_with("3,dsc_1,2026-11-25T10:00:00.000000Z,disclosure,,,"));
        assert!(row.contains(",\"'=HYPERLINK(\"\"x\"\"),\nnext\","), "{row}");
        assert!(row.contains(",own_transport;cv,debt_assistance:field-not-granted,permit,,"));
        assert!(row.ends_with("\r\n"));
        assert_eq!(
            csv_header().trim_end().split(',').count(),
            CSV_COLUMNS.len()
        );
    }

    #[test]
    fn jsonl_line_round_trips_with_a_valid_hash() {
        let r = record();
        let line = jsonl_row(&r).unwrap();
        assert_eq!(line.matches('\n').count(), 1);
        let back: AuditRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(back, r);
        assert!(back.hash_is_valid());
    }

    #[tokio::test]
    async fn export_pages_through_a_snapshot_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::open(&crate::config::DatabaseSection::new(url))
            .await
            .unwrap();
        let mut prev = GENESIS;
        let mut records = Vec::new();
        let total = EXPORT_PAGE * 2 + 5;
        for seq in 1..=total {
            let r = AuditRecord::chain(
                seq,
                AuditEntry {
                    id: format!("r{seq}"),
                    requester_oin: Some(if seq % 3 == 0 { "A" } else { "B" }.into()),
                    ..Default::default()
                },
                prev,
            );
            prev = r.hash;
            records.push(r);
        }
        store.append_audit(&records).await.unwrap();
        let through = total - 2;
        let mut export = Export {
            store,
            select: AuditSelect {
                party: Some("B".into()),
                through: Some(through),
                ..Default::default()
            },
            scope: Scope::Organisation("00000000000000000000".parse().unwrap()),
            format: ExportFormat::Jsonl,
            phase: Phase::Header,
            through,
            meta: ExportMeta {
                format: "test",
                generated_at: String::new(),
                through_seq: through,
                complete: false,
                scope: "B".into(),
                filter: String::new(),
                read_id: "read_1".into(),
            },
        };
        // The scope re-check drops everything that is not the scope's organisation.
        let meta = export.next_chunk().await.unwrap().unwrap();
        assert!(meta.starts_with(b"{\"meta\":{"));
        assert_eq!(export.next_chunk().await.unwrap(), None);

        export.select.after = 0;
        export.phase = Phase::Header;
        export.scope = Scope::All;
        let mut seqs = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = export.next_chunk().await.unwrap() {
            chunks += 1;
            for line in String::from_utf8(chunk).unwrap().lines() {
                if line.starts_with("{\"meta\"") {
                    continue;
                }
                let r: AuditRecord = serde_json::from_str(line).unwrap();
                assert!(r.hash_is_valid());
                seqs.push(r.seq);
            }
        }
        let expected: Vec<i64> = (1..=through).filter(|s| s % 3 != 0).collect();
        assert_eq!(seqs, expected);
        assert!(chunks >= 2, "paged, not loaded at once");
    }
}
