//! Keeps the JSON Schemas, examples and OpenAPI description in `schemas/` in step with the Rust
//! types that parse and produce those documents. Every example must pass its schema *and* parse
//! into its type and back; every invalid example must fail both. Reads files only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use gateway::api::{
    BasisView, ConsentRegistered, ConsentRevoked, DisclosureRequestBody, DisclosureResponse,
    HandoverBody, HandoverStored, RecordStatus,
};
use gateway::audit::record::{AuditKind, AuditRecord, Outcome};
use gateway::http::problem::ApiError;
use gateway::ops::error::OpError;
use gateway::upstream::SourceFault;
use jsonschema::{Resource, Validator};
use policy::{
    decide, AdminState, CatalogueDocument, ConsentBook, ConsentClaims, ConsentId, ConsentRecord,
    Covenant, CovenantEntry, CovenantId, CovenantProblem, CovenantSet, Decision, DisclosureRequest,
    DocumentFormat, FieldCatalogue, FieldName, HandoverFieldProblem, HandoverReason,
    HandoverRefusal, LegalBasis, Oin, PartyRole, Purpose, RefusalReason, Sha256Hash, Snapshot,
    Withheld, WithheldReason,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

const SCHEMA_BASE: &str = "https://poortwachter.example/schemas/";
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// The pseudonym key the audit-record example was made with (documentation only, not a secret).
const EXAMPLE_PSEUDONYM_KEY: &[u8] = b"example pseudonym key for the schemas docs, not a real one";
/// Set to `1` to rewrite `bsn-eleven-check.schema.json` from its generator.
const BLESS: &str = "POORTWACHTER_BLESS_SCHEMAS";

// ---------------------------------------------------------------------------------------------
// Files

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn read(rel: &str) -> String {
    let path = schemas_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// File names (not paths) in `dir` under `schemas/`, sorted.
fn files_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(schemas_dir().join(dir))
        .unwrap_or_else(|e| panic!("cannot list schemas/{dir}: {e}"))
        .map(|e| e.expect("directory entry"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every `*.schema.json` in `schemas/`, by file name.
fn schema_docs() -> &'static BTreeMap<String, Value> {
    static DOCS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        files_in(".")
            .into_iter()
            .filter(|n| n.ends_with(".schema.json"))
            .map(|n| {
                let doc = read_json(&n);
                (n, doc)
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Validation

/// A validator for `schema` that resolves references to every schema in `schemas/` from memory
/// and checks `format`s (dates, date-times, URIs) too.
fn validator_for_value(schema: &Value) -> Result<Validator, String> {
    let mut options = jsonschema::options().should_validate_formats(true);
    for doc in schema_docs().values() {
        let id = doc["$id"]
            .as_str()
            .expect("every schema has an $id")
            .to_owned();
        let resource = Resource::from_contents(doc.clone()).map_err(|e| e.to_string())?;
        options = options.with_resource(id, resource);
    }
    options.build(schema).map_err(|e| e.to_string())
}

fn validator(schema_file: &str) -> Validator {
    let doc = schema_docs()
        .get(schema_file)
        .unwrap_or_else(|| panic!("no schema {schema_file} in schemas/"));
    validator_for_value(doc).unwrap_or_else(|e| panic!("{schema_file} does not compile: {e}"))
}

/// A validator for one definition of `common.schema.json`.
fn common_def(name: &str) -> Validator {
    validator_for_value(&json!({
        "$schema": DRAFT_2020_12,
        "$ref": format!("{SCHEMA_BASE}common.schema.json#/$defs/{name}"),
    }))
    .unwrap_or_else(|e| panic!("common.schema.json#/$defs/{name}: {e}"))
}

fn schema_errors(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("at `{}`: {e}", e.instance_path))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Documents: which schema and which Rust type each example belongs to

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doc {
    Covenant,
    ConsentClaims,
    FieldCatalogue,
    DisclosureRequest,
    DisclosureResponse,
    ProblemDetails,
    AuditRecord,
    Handover,
    HandoverStored,
    ConsentRegistered,
    ConsentRevoked,
}

impl Doc {
    const ALL: [Doc; 11] = [
        Doc::Covenant,
        Doc::ConsentClaims,
        Doc::FieldCatalogue,
        Doc::DisclosureRequest,
        Doc::DisclosureResponse,
        Doc::ProblemDetails,
        Doc::AuditRecord,
        Doc::Handover,
        Doc::HandoverStored,
        Doc::ConsentRegistered,
        Doc::ConsentRevoked,
    ];

    fn name(self) -> &'static str {
        match self {
            Doc::Covenant => "covenant",
            Doc::ConsentClaims => "consent-claims",
            Doc::FieldCatalogue => "field-catalogue",
            Doc::DisclosureRequest => "disclosure-request",
            Doc::DisclosureResponse => "disclosure-response",
            Doc::ProblemDetails => "problem-details",
            Doc::AuditRecord => "audit-record",
            Doc::Handover => "handover",
            Doc::HandoverStored => "handover-stored",
            Doc::ConsentRegistered => "consent-registered",
            Doc::ConsentRevoked => "consent-revoked",
        }
    }

    fn schema_file(self) -> String {
        format!("{}.schema.json", self.name())
    }

    /// How example file names for this document start.
    fn example_prefix(self) -> &'static str {
        match self {
            Doc::ProblemDetails => "problem",
            other => other.name(),
        }
    }

    /// The document an example file is for: the longest matching prefix of its name (before
    /// `--` for invalid examples). `None` means no test would cover it.
    fn of_example(file_name: &str) -> Option<Doc> {
        let stem = file_name
            .split("--")
            .next()
            .unwrap_or(file_name)
            .trim_end_matches(".json")
            .trim_end_matches(".toml");
        Doc::ALL
            .into_iter()
            .filter(|d| {
                let p = d.example_prefix();
                stem == p || stem.starts_with(&format!("{p}-"))
            })
            .max_by_key(|d| d.example_prefix().len())
    }

    /// Parse `text` with the same parser the gateway uses for this document and serialise the
    /// result back to JSON. `Ok(None)`: the gateway only writes this document (problem details),
    /// so there is no parser to check.
    fn parse_and_serialise(
        self,
        text: &str,
        format: DocumentFormat,
    ) -> Result<Option<Value>, String> {
        if format == DocumentFormat::Toml && self != Doc::Covenant {
            return Err(format!("{} is JSON only", self.name()));
        }
        let out = match self {
            Doc::Covenant => {
                let c = Covenant::parse(text, format).map_err(|e| e.to_string())?;
                let out = to_json(&c);
                let again = Covenant::parse(&out.to_string(), DocumentFormat::Json)
                    .map_err(|e| format!("does not parse back: {e}"))?;
                assert_eq!(
                    again, c,
                    "covenant changes when serialised and parsed again"
                );
                out
            }
            Doc::ConsentClaims => reserialise::<ConsentClaims>(text)?,
            Doc::FieldCatalogue => {
                let out = reserialise::<CatalogueDocument>(text)?;
                gateway::catalogue::parse(text, "example").map_err(|e| e.to_string())?;
                out
            }
            Doc::DisclosureRequest => reserialise::<DisclosureRequestBody>(text)?,
            Doc::DisclosureResponse => reserialise::<DisclosureResponse>(text)?,
            Doc::ProblemDetails => return Ok(None),
            Doc::AuditRecord => reserialise::<AuditRecord>(text)?,
            Doc::Handover => reserialise::<HandoverBody>(text)?,
            Doc::HandoverStored => reserialise::<HandoverStored>(text)?,
            Doc::ConsentRegistered => reserialise::<ConsentRegistered>(text)?,
            Doc::ConsentRevoked => reserialise::<ConsentRevoked>(text)?,
        };
        Ok(Some(out))
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("our types serialise to JSON")
}

/// Parse, serialise, parse again, serialise again: both serialisations must be equal.
fn reserialise<T: DeserializeOwned + Serialize>(text: &str) -> Result<Value, String> {
    let first: T = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let out = to_json(&first);
    let second: T =
        serde_json::from_value(out.clone()).map_err(|e| format!("does not parse back: {e}"))?;
    assert_eq!(to_json(&second), out, "serialisation is not stable");
    Ok(out)
}

/// An example as a JSON value: JSON as is, TOML converted (only covenants are TOML).
fn example_value(text: &str, format: DocumentFormat) -> Result<Value, String> {
    match format {
        DocumentFormat::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        DocumentFormat::Toml => toml::from_str::<Value>(text).map_err(|e| e.to_string()),
    }
}

/// `reserialised` keeps every member of `original` with the same value, and adds only members
/// holding a default (`null`, `false`, `[]`).
fn same_up_to_defaults(original: &Value, reserialised: &Value, at: &str) -> Result<(), String> {
    match (original, reserialised) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let w = b
                    .get(k)
                    .ok_or_else(|| format!("{at}/{k} is dropped when serialised"))?;
                same_up_to_defaults(v, w, &format!("{at}/{k}"))?;
            }
            for (k, w) in b {
                let is_default = matches!(w, Value::Null | Value::Bool(false))
                    || w.as_array().is_some_and(Vec::is_empty);
                if !a.contains_key(k) && !is_default {
                    return Err(format!("{at}/{k} appears when serialised, as {w}"));
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (v, w))| same_up_to_defaults(v, w, &format!("{at}/{i}"))),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{at} changes from {a} to {b}")),
    }
}

fn format_of(file_name: &str) -> DocumentFormat {
    DocumentFormat::from_file_name(file_name)
}

/// (file name under `schemas/`, document) for every valid example, plus the field catalogue.
fn valid_examples() -> Vec<(String, Doc)> {
    let mut out = vec![("field-catalogue.json".to_owned(), Doc::FieldCatalogue)];
    for name in files_in("examples") {
        let doc = Doc::of_example(&name)
            .unwrap_or_else(|| panic!("examples/{name}: no schema is known for this example"));
        out.push((format!("examples/{name}"), doc));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The example world: one covenant, one consent, one request, one answer

fn catalogue() -> FieldCatalogue {
    let doc: CatalogueDocument = serde_json::from_str(&read("field-catalogue.json")).unwrap();
    FieldCatalogue::new(doc).unwrap()
}

fn example_covenant() -> Covenant {
    Covenant::parse(
        &read("examples/covenant-drechtsteden.json"),
        DocumentFormat::Json,
    )
    .unwrap()
}

fn example<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&read(&format!("examples/{name}")))
        .unwrap_or_else(|e| panic!("examples/{name}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Schemas themselves

#[test]
fn every_schema_is_draft_2020_12_with_its_own_id_title_and_description() {
    assert!(
        schema_docs().len() >= Doc::ALL.len() + 2,
        "expected at least {} schemas, found {:?}",
        Doc::ALL.len() + 2,
        schema_docs().keys().collect::<Vec<_>>()
    );
    for (file, doc) in schema_docs() {
        assert_eq!(doc["$schema"], DRAFT_2020_12, "{file}: $schema");
        assert_eq!(doc["$id"], format!("{SCHEMA_BASE}{file}"), "{file}: $id");
        for key in ["title", "description"] {
            assert!(
                doc[key].as_str().is_some_and(|s| !s.trim().is_empty()),
                "{file}: needs a {key} a privacy officer can read"
            );
        }
        // Compiling checks the schema against the draft 2020-12 meta-schema and resolves every
        // $ref, including those into other files.
        validator(file);
    }
    for d in Doc::ALL {
        assert!(
            schema_docs().contains_key(&d.schema_file()),
            "missing {}",
            d.schema_file()
        );
    }
}

#[test]
fn every_object_in_the_schemas_that_lists_properties_is_closed() {
    fn walk(v: &Value, at: &str, open: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                // An object listing its members names all of them: unknown members are refused,
                // as the Rust types refuse them (`deny_unknown_fields`).
                if map.contains_key("properties")
                    && map.get("additionalProperties") != Some(&json!(false))
                {
                    open.push(at.to_owned());
                }
                for (k, w) in map {
                    walk(w, &format!("{at}/{k}"), open);
                }
            }
            Value::Array(items) => {
                for (i, w) in items.iter().enumerate() {
                    walk(w, &format!("{at}/{i}"), open);
                }
            }
            _ => {}
        }
    }
    let mut open = Vec::new();
    for (file, doc) in schema_docs() {
        walk(doc, file, &mut open);
    }
    // `if` and `then` only add a condition to an object that is closed already.
    open.retain(|at| !at.ends_with("/if") && !at.ends_with("/then"));
    assert!(
        open.is_empty(),
        "objects that accept unknown members: {open:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Examples

#[test]
fn every_example_validates_against_its_schema() {
    let mut failures = Vec::new();
    for (file, doc) in valid_examples() {
        let value = example_value(&read(&file), format_of(&file)).unwrap();
        let errors = schema_errors(&validator(&doc.schema_file()), &value);
        if !errors.is_empty() {
            failures.push(format!("{file} against {}: {errors:#?}", doc.schema_file()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_example_parses_into_its_rust_type_and_serialises_back_to_a_valid_equal_document() {
    for (file, doc) in valid_examples() {
        let text = read(&file);
        let format = format_of(&file);
        let Some(out) = doc
            .parse_and_serialise(&text, format)
            .unwrap_or_else(|e| panic!("{file} does not parse as {}: {e}", doc.name()))
        else {
            continue;
        };
        let errors = schema_errors(&validator(&doc.schema_file()), &out);
        assert!(errors.is_empty(), "{file} serialised back: {errors:#?}");
        let original = example_value(&text, format).unwrap();
        same_up_to_defaults(&original, &out, "").unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

#[test]
fn every_example_directory_entry_is_covered_by_a_schema() {
    for name in files_in("examples")
        .into_iter()
        .chain(files_in("examples/invalid"))
    {
        assert!(
            Doc::of_example(&name).is_some(),
            "{name}: name it after its schema (e.g. `covenant-….json`, `invalid/covenant--….json`)"
        );
    }
    // Every schema of a message or document has at least one valid example.
    let covered: BTreeSet<&str> = valid_examples().iter().map(|(_, d)| d.name()).collect();
    for d in Doc::ALL {
        assert!(
            covered.contains(d.name()),
            "no example for {}",
            d.schema_file()
        );
    }
}

#[test]
fn every_invalid_example_fails_schema_validation_and_rust_parsing() {
    let invalid = files_in("examples/invalid");
    assert!(
        invalid.len() >= 3,
        "expected invalid examples, found {invalid:?}"
    );
    for name in invalid {
        let doc = Doc::of_example(&name).expect("named after its schema");
        assert_ne!(
            doc,
            Doc::ProblemDetails,
            "{name}: the gateway does not parse problems"
        );
        let text = read(&format!("examples/invalid/{name}"));
        let format = format_of(&name);
        let value = example_value(&text, format)
            .unwrap_or_else(|e| panic!("{name} must be well-formed, only invalid by schema: {e}"));
        assert!(
            !schema_errors(&validator(&doc.schema_file()), &value).is_empty(),
            "invalid/{name} passes {}",
            doc.schema_file()
        );
        assert!(
            doc.parse_and_serialise(&text, format).is_err(),
            "invalid/{name} parses as {}",
            doc.name()
        );
    }
}

#[test]
fn toml_and_json_covenant_examples_are_the_same_covenant_and_validate() {
    let from_toml = Covenant::parse(
        &read("examples/covenant-drechtsteden.toml"),
        DocumentFormat::Toml,
    )
    .unwrap();
    let from_json = example_covenant();
    assert_eq!(from_toml, from_json);
    assert_eq!(from_toml.canonical_hash(), from_json.canonical_hash());
    let errors = schema_errors(&validator("covenant.schema.json"), &to_json(&from_toml));
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(from_json.validate(&catalogue()).is_empty());
}

#[test]
fn field_catalogue_validates_and_is_the_catalogue_the_gateway_embeds() {
    let doc = read_json("field-catalogue.json");
    let errors = schema_errors(&validator("field-catalogue.schema.json"), &doc);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(gateway::catalogue::embedded(), catalogue());
}

#[test]
fn every_field_named_in_the_example_covenant_and_consent_is_catalogued() {
    let catalogue = catalogue();
    let covenant = example_covenant();
    for grant in &covenant.grants {
        for f in &grant.fields {
            assert!(
                catalogue.contains(f),
                "covenant grant {} names {f}",
                grant.purpose
            );
        }
    }
    let consent: ConsentClaims = example("consent-claims.json");
    for f in &consent.fields {
        assert!(catalogue.contains(f), "consent names {f}");
    }
    assert_eq!(consent.covenant, covenant.id);
    assert!(covenant.is_party(&consent.iss));
    assert!(consent.recipients.iter().all(|r| covenant.is_party(r)));
}

#[test]
fn handover_example_holds_values_of_the_catalogued_types_granted_to_its_source() {
    let catalogue = catalogue();
    let covenant = example_covenant();
    let purpose: Purpose = "job-mediation".parse().unwrap();
    let grant = covenant
        .grants
        .iter()
        .find(|g| g.purpose == purpose)
        .expect("a job-mediation grant");
    let body: HandoverBody = example("handover.json");
    for (name, value) in &body.fields {
        let field: FieldName = name.parse().unwrap();
        let spec = catalogue
            .get(&field)
            .unwrap_or_else(|| panic!("{name} not catalogued"));
        assert!(
            spec.field_type.accepts(value),
            "{name}: {value} is not a {:?}",
            spec.field_type
        );
        assert!(
            grant.fields.contains(&field),
            "{name} is not granted for {purpose}"
        );
    }

    let stored: HandoverStored = example("handover-stored.json");
    assert_eq!(
        stored.fields,
        body.fields.keys().cloned().collect::<Vec<_>>()
    );
    assert_eq!(stored.purpose, purpose.as_str());
    assert_eq!(stored.covenant, covenant.reference().to_string());
    let consent: ConsentClaims = example("consent-claims.json");
    assert_eq!(stored.consent.as_deref(), Some(consent.jti.as_str()));
}

#[test]
fn disclosure_response_example_is_what_decide_answers_to_the_example_request() {
    let covenant = example_covenant();
    let recipient = covenant.grants[0].recipients[0].clone();
    let signed_by = covenant.parties.iter().map(|p| p.oin.clone()).collect();
    let set = CovenantSet::new(
        catalogue(),
        vec![CovenantEntry::new(covenant, AdminState::Open, signed_by)],
    );
    let consent: ConsentClaims = example("consent-claims.json");
    let consents = ConsentBook::new([ConsentRecord {
        claims: consent,
        revoked: false,
    }]);
    let body: DisclosureRequestBody = example("disclosure-request.json");
    let audit: AuditRecord = example("audit-record.json");
    let now: DateTime<Utc> = audit.entry.time.parse().unwrap();
    let request = DisclosureRequest {
        requester: recipient,
        subject: body.subject.bsn,
        purpose: body.purpose.clone(),
        fields: body.fields.clone(),
        actor: None,
    };
    let Decision::Permit(permit) = decide(
        &request,
        &Snapshot {
            covenants: &set,
            consents: &consents,
        },
        now,
    ) else {
        panic!("the example request is refused");
    };

    let response: DisclosureResponse = example("disclosure-response.json");
    assert_eq!(response.decision, "permit");
    assert_eq!(response.purpose, body.purpose.as_str());
    assert_eq!(response.record, RecordStatus::Found);
    assert_eq!(response.withheld, permit.withheld);
    assert_eq!(response.basis, BasisView::from(&permit.basis));
    let released: Vec<&str> = permit.released.iter().map(FieldName::as_str).collect();
    let mut shown: Vec<&str> = response.released.keys().map(String::as_str).collect();
    let mut expected = released.clone();
    expected.sort_unstable();
    shown.sort_unstable();
    assert_eq!(shown, expected, "released fields");

    // The values are those the source stored.
    let handover: HandoverBody = example("handover.json");
    for (name, value) in &response.released {
        assert_eq!(Some(value), handover.fields.get(name), "value of {name}");
    }
}

#[test]
fn audit_record_example_chains_correctly_and_records_the_example_disclosure() {
    let record: AuditRecord = example("audit-record.json");
    assert!(
        record.hash_is_valid(),
        "hash should be {}",
        AuditRecord::compute_hash(record.seq, &record.entry, &record.prev_hash)
    );
    let response: DisclosureResponse = example("disclosure-response.json");
    let request: DisclosureRequestBody = example("disclosure-request.json");
    let e = &record.entry;
    assert_eq!(e.kind, Some(AuditKind::Disclosure));
    assert_eq!(e.decision, Some(Outcome::Permit));
    assert_eq!(e.reason, None);
    assert_eq!(e.id, response.disclosure_id);
    assert_eq!(e.purpose.as_deref(), Some(response.purpose.as_str()));
    // Issue 16: the employee comes from the verified actor assertion, not from the body.
    assert_eq!(e.requester_person, None);
    let _ = &request;
    assert_eq!(
        e.actor.as_ref().and_then(|a| a.sub.as_deref()),
        Some("sdd-klantmanager-0815")
    );
    assert_eq!(
        e.source_oin.as_deref(),
        Some(response.basis.source.as_str())
    );
    assert_eq!(
        e.legal_basis.as_deref(),
        Some(response.basis.legal_basis.as_str())
    );
    assert_eq!(
        e.covenant.as_deref(),
        Some(response.basis.covenant.as_str())
    );
    assert_eq!(e.consent_id, response.basis.consent);
    assert_eq!(
        e.processing_activity.as_deref(),
        Some("https://register.drechtsteden.example/verwerkingsactiviteiten/max-ww-bemiddeling"),
        "the example covenant's job-mediation grant names its processing activity"
    );
    assert_eq!(
        e.fields_released,
        response.released.keys().cloned().collect::<Vec<_>>()
    );
    let withheld: Vec<(String, String)> = e
        .fields_withheld
        .iter()
        .map(|w| (w.field.clone(), w.reason.clone()))
        .collect();
    let expected: Vec<(String, String)> = response
        .withheld
        .iter()
        .map(|w| (w.field.to_string(), w.reason.as_str().to_owned()))
        .collect();
    assert_eq!(withheld, expected);
    let pseudonymizer = gateway::crypto::Pseudonymizer::new(EXAMPLE_PSEUDONYM_KEY);
    assert_eq!(
        e.subject_pseudonym.as_deref(),
        Some(pseudonymizer.pseudonym(&request.subject.bsn).as_str()),
        "the record holds the pseudonym of the BSN, never the BSN"
    );
    assert!(!read("examples/audit-record.json").contains(request.subject.bsn.expose()));
}

#[test]
fn examples_name_the_example_covenant_by_its_canonical_hash() {
    let reference = example_covenant().reference();
    let response: DisclosureResponse = example("disclosure-response.json");
    assert_eq!(response.basis.covenant, reference.to_string());
    assert_eq!(response.basis.covenant_hash, reference.hash.to_string());
    assert_eq!(response.basis.covenant_id, reference.id.as_str());
    assert_eq!(response.basis.covenant_version, reference.version);
}

#[test]
fn consent_registered_example_restates_the_example_consent() {
    let claims: ConsentClaims = example("consent-claims.json");
    let registered: ConsentRegistered = example("consent-registered.json");
    let time = |t: i64| {
        DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    assert_eq!(registered.consent_id, claims.jti.as_str());
    assert_eq!(registered.purpose, claims.purpose.as_str());
    assert_eq!(registered.covenant, claims.covenant.as_str());
    assert_eq!(
        registered.recipients,
        claims
            .recipients
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        registered.fields,
        claims
            .fields
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
    assert_eq!(registered.not_before, time(claims.nbf));
    assert_eq!(registered.expires_at, time(claims.exp));
    let revoked: ConsentRevoked = example("consent-revoked.json");
    assert_eq!(revoked.consent_id, claims.jti.as_str());
}

// ---------------------------------------------------------------------------------------------
// Problem details: what the gateway renders

/// Status, content type and body of the response an error renders to.
fn render(error: impl axum::response::IntoResponse) -> (u16, String, Value) {
    let response = error.into_response();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
        .unwrap();
    (
        status,
        content_type,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

/// One of each kind of error the HTTP layer adds itself. The exhaustive `match` stops compiling
/// when `ApiError` gains a variant: add it here, and its reason to `problem-details.schema.json`.
fn every_api_error() -> Vec<ApiError> {
    let errors = vec![
        ApiError::NoClientCertificate,
        ApiError::UnknownOrganisation,
        ApiError::PayloadTooLarge,
        ApiError::Timeout,
        ApiError::MethodNotAllowed,
        ApiError::RateLimited,
    ];
    for e in &errors {
        match e {
            ApiError::Op(_)
            | ApiError::NoClientCertificate
            | ApiError::UnknownOrganisation
            | ApiError::PayloadTooLarge
            | ApiError::MethodNotAllowed
            | ApiError::Timeout
            | ApiError::RateLimited => {}
        }
    }
    errors
}

/// One of each kind of use-case error (exhaustive, like `every_api_error`).
fn every_op_error() -> Vec<OpError> {
    let withheld = vec![Withheld {
        field: "cv".parse().unwrap(),
        reason: WithheldReason::ConsentDoesNotCover,
    }];
    let mut errors = vec![
        OpError::InvalidBsn,
        OpError::Malformed(
            "request body at `purpose` has a value of the wrong type or form".into(),
        ),
        OpError::FieldsRequired,
        OpError::InvalidConsentToken("the token has expired".into()),
        OpError::NotConsentIssuer,
        OpError::DuplicateConsent,
        OpError::AlreadyRevoked,
        OpError::Handover(HandoverRefusal::NotASource {
            purpose: "job-mediation".parse().unwrap(),
        }),
        OpError::Handover(HandoverRefusal::ConsentRequired {
            purpose: "job-mediation".parse().unwrap(),
        }),
        OpError::NotFound,
        OpError::AuditUnavailable,
        OpError::Unavailable,
        OpError::Unauthorized,
        OpError::Forbidden,
        OpError::Internal,
        OpError::InvalidCovenant(vec![CovenantProblem {
            path: "grants[0].fields[2]".into(),
            message: "`monthly_income` is not in the field catalogue".into(),
        }]),
        OpError::VersionConflict("an amendment must be version 2, not 3".into()),
        OpError::Terminated,
        OpError::InvalidTransition("the covenant is not suspended"),
        OpError::SignatureMalformed,
        OpError::SignatureInvalid("the signature does not verify".into()),
        OpError::NotAParty("00000001001234567000".parse().unwrap()),
        OpError::UnknownKey("gorinchem-2026".into()),
        OpError::InvalidActorAssertion(gateway::actor::ActorError::Replayed),
    ];
    for reason in [
        HandoverReason::FieldNotInCatalogue,
        HandoverReason::FieldTypeMismatch,
        HandoverReason::FieldNotGranted,
    ] {
        errors.push(OpError::Handover(HandoverRefusal::Fields {
            reason,
            problems: vec![HandoverFieldProblem {
                field: "monthly_income".into(),
                reason,
                problem: "is not in the field catalogue",
            }],
        }));
    }
    for reason in RefusalReason::ALL {
        errors.push(OpError::Refused {
            reason,
            disclosure_id: "dsc_00000000000000000000000000000001".into(),
            withheld: if reason == RefusalReason::FieldNotGranted {
                withheld.clone()
            } else {
                Vec::new()
            },
        });
    }
    for fault in [
        SourceFault::Unavailable,
        SourceFault::Timeout,
        SourceFault::InvalidAnswer,
    ] {
        errors.push(OpError::Source {
            fault,
            disclosure_id: "dsc_00000000000000000000000000000002".into(),
        });
    }
    for fault in [
        SourceFault::Unavailable,
        SourceFault::Timeout,
        SourceFault::InvalidAnswer,
    ] {
        errors.push(OpError::Source {
            fault,
            disclosure_id: "dsc_00000000000000000000000000000002".into(),
        });
    }
    for e in &errors {
        match e {
            OpError::InvalidBsn
            | OpError::Malformed(_)
            | OpError::FieldsRequired
            | OpError::Refused { .. }
            | OpError::InvalidConsentToken(_)
            | OpError::InvalidActorAssertion(_)
            | OpError::NotConsentIssuer
            | OpError::DuplicateConsent
            | OpError::AlreadyRevoked
            | OpError::Handover(_)
            | OpError::Unauthorized
            | OpError::Forbidden
            | OpError::InvalidCovenant(_)
            | OpError::VersionConflict(_)
            | OpError::Terminated
            | OpError::InvalidTransition(_)
            | OpError::SignatureMalformed
            | OpError::SignatureInvalid(_)
            | OpError::NotAParty(_)
            | OpError::UnknownKey(_)
            | OpError::NotFound
            | OpError::AuditUnavailable
            | OpError::Unavailable
            | OpError::Source { .. }
            | OpError::Internal => {}
        }
    }
    errors
}

#[test]
fn every_error_the_gateway_renders_is_a_valid_problem_details_document() {
    let v = validator("problem-details.schema.json");
    let api = every_api_error()
        .into_iter()
        .map(|e| (format!("{e:?}"), render(e)));
    let admin = every_op_error()
        .into_iter()
        .map(|e| (format!("{e:?}"), render(ApiError::Op(e))));
    for (label, (status, content_type, body)) in api.chain(admin) {
        assert_eq!(content_type, "application/problem+json", "{label}");
        let errors = schema_errors(&v, &body);
        assert!(errors.is_empty(), "{label} renders {body}: {errors:#?}");
        assert_eq!(
            body["status"], status,
            "{label}: body and HTTP status differ"
        );
        assert_eq!(
            body["type"],
            format!(
                "https://poortwachter.example/problems/{}",
                body["reason"].as_str().unwrap()
            ),
            "{label}"
        );
    }
}

#[test]
fn problem_example_is_what_the_gateway_renders_for_a_missing_consent() {
    let example = read_json("examples/problem-consent-required.json");
    let (status, _, body) = render(ApiError::Op(OpError::Refused {
        reason: RefusalReason::ConsentRequired,
        disclosure_id: example["disclosure_id"].as_str().unwrap().to_owned(),
        withheld: Vec::new(),
    }));
    assert_eq!(status, 403);
    // `title` and `detail` are for people and may be reworded; everything else is the contract.
    let members = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(members(&body), members(&example));
    for key in ["type", "status", "reason", "disclosure_id"] {
        assert_eq!(body[key], example[key], "{key}");
    }
}

#[test]
fn every_reason_literal_in_the_gateway_source_is_in_the_problem_schema() {
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let known = consts_of(&schema_docs()["problem-details.schema.json"]["$defs"]["reason"]);
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut unknown = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (_, rest) in text
            .match_indices("reason: \"")
            .map(|(i, _)| text.split_at(i + 9))
        {
            let literal = rest.split('"').next().unwrap_or_default();
            if !known.contains(literal) {
                unknown.push(format!("{}: {literal}", file.display()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "reasons missing from problem-details.schema.json: {unknown:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Enumerations: every Rust variant is in the schema, every schema value parses

/// The `const` values of a `oneOf`/`anyOf` list of `{const, description}`.
fn consts_of(def: &Value) -> BTreeSet<String> {
    def.get("oneOf")
        .or_else(|| def.get("anyOf"))
        .and_then(Value::as_array)
        .expect("a oneOf of consts")
        .iter()
        .filter_map(|alt| alt.get("const").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Serialised names of `variants`; the `match` in each caller fails to compile when a variant
/// is added, so that it is added here (and to the schema) too.
fn names<T: Serialize>(variants: &[T]) -> BTreeSet<String> {
    variants
        .iter()
        .map(|v| to_json(v).as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn schema_enumerations_list_exactly_the_rust_variants() {
    let common = &schema_docs()["common.schema.json"]["$defs"];
    let covenant = &schema_docs()["covenant.schema.json"]["$defs"];
    let audit = &schema_docs()["audit-record.schema.json"];
    let response = &schema_docs()["disclosure-response.schema.json"];

    let legal = [
        LegalBasis::Consent,
        LegalBasis::LegalObligation,
        LegalBasis::PublicTask,
    ];
    for l in legal {
        match l {
            LegalBasis::Consent | LegalBasis::LegalObligation | LegalBasis::PublicTask => {
                assert_eq!(to_json(&l), l.as_str())
            }
        }
    }
    assert_eq!(consts_of(&common["legal-basis"]), names(&legal));

    let roles = [
        PartyRole::Source,
        PartyRole::Recipient,
        PartyRole::SourceAndRecipient,
        PartyRole::Observer,
    ];
    for r in roles {
        match r {
            PartyRole::Source
            | PartyRole::Recipient
            | PartyRole::SourceAndRecipient
            | PartyRole::Observer => {}
        }
    }
    assert_eq!(consts_of(&covenant["party-role"]), names(&roles));

    let withheld = [
        WithheldReason::UnknownField,
        WithheldReason::FieldNotGranted,
        WithheldReason::SpecialCategoryNotGranted,
        WithheldReason::SpecialCategoryNotConsented,
        WithheldReason::ConsentDoesNotCover,
    ];
    for w in withheld {
        match w {
            WithheldReason::UnknownField
            | WithheldReason::FieldNotGranted
            | WithheldReason::SpecialCategoryNotGranted
            | WithheldReason::SpecialCategoryNotConsented
            | WithheldReason::ConsentDoesNotCover => {}
        }
    }
    // The serialised form (responses) and `as_str` (audit records) must be the same word.
    let as_str: BTreeSet<String> = withheld.iter().map(|w| w.as_str().to_owned()).collect();
    assert_eq!(
        names(&withheld),
        as_str,
        "WithheldReason: serde and as_str differ"
    );
    assert_eq!(consts_of(&common["withheld-reason"]), names(&withheld));

    let refusals: BTreeSet<String> = RefusalReason::ALL
        .iter()
        .map(|r| r.as_str().to_owned())
        .collect();
    assert_eq!(
        names(&RefusalReason::ALL),
        refusals,
        "RefusalReason: serde and as_str differ"
    );
    let problem_reasons =
        consts_of(&schema_docs()["problem-details.schema.json"]["$defs"]["reason"]);
    assert!(
        refusals.is_subset(&problem_reasons),
        "refusal reasons missing from problem details"
    );
    for r in [
        "no-client-certificate",
        "unknown-organisation",
        "invalid-bsn",
        "malformed-request",
        "fields-required",
        "audit-unavailable",
        "payload-too-large",
        "not-found",
        "method-not-allowed",
        "duplicate-consent",
        "invalid-consent-token",
        "not-consent-issuer",
        "field-not-in-catalogue",
        "field-type-mismatch",
        "not-a-source",
        "unauthorized",
        "forbidden",
        "internal",
    ] {
        assert!(problem_reasons.contains(r), "DESIGN.md reason {r} missing");
    }

    let kinds = [
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
    ];
    for k in kinds {
        match k {
            AuditKind::Disclosure
            | AuditKind::ConsentRegistered
            | AuditKind::ConsentRevoked
            | AuditKind::ConsentRegistrationRefused
            | AuditKind::ConsentRevocationRefused
            | AuditKind::HandoverStored
            | AuditKind::HandoverRefused
            | AuditKind::HandoverDestroyed
            | AuditKind::AuditRead
            | AuditKind::CovenantAdmin
            | AuditKind::AuditPruned => assert_eq!(to_json(&k), k.as_str()),
        }
    }
    assert_eq!(consts_of(&audit["$defs"]["kind"]), names(&kinds));

    let outcomes = [Outcome::Permit, Outcome::Refuse];
    for o in outcomes {
        match o {
            Outcome::Permit | Outcome::Refuse => assert_eq!(to_json(&o), o.as_str()),
        }
    }
    assert_eq!(
        consts_of(&audit["properties"]["decision"]["anyOf"][0]),
        names(&outcomes)
    );

    let records = [RecordStatus::Found, RecordStatus::NoRecord];
    for r in records {
        match r {
            RecordStatus::Found | RecordStatus::NoRecord => {}
        }
    }
    assert_eq!(
        consts_of(&response["properties"]["record"]),
        names(&records)
    );
}

/// What a refused act leaves in its audit record: every failed check of a consent token the
/// gateway can name, and every reason a handover field can be refused for, is in the schema of
/// exported records (and nothing else is).
#[test]
fn audit_record_schema_lists_every_consent_token_defect_and_handover_refusal() {
    use gateway::consent_token::ConsentTokenError as T;
    use policy::ConsentInadmissible as I;
    let audit = &schema_docs()["audit-record.schema.json"]["$defs"];

    let token_errors = [
        T::Malformed,
        T::WrongType,
        T::AlgorithmNotAllowed,
        T::UnknownKey,
        T::BadSignature,
        T::Expired,
        T::NotYetValid,
        T::IssuedInFuture,
        T::WrongAudience,
        T::Claims,
        T::KeyNotOfIssuer,
    ];
    for e in &token_errors {
        match e {
            T::Malformed
            | T::WrongType
            | T::AlgorithmNotAllowed
            | T::UnknownKey
            | T::BadSignature
            | T::Expired
            | T::NotYetValid
            | T::IssuedInFuture
            | T::WrongAudience
            | T::Claims
            | T::KeyNotOfIssuer => {}
        }
    }
    let inadmissible = [
        I::IssuerNotCaller,
        I::UnknownCovenantOrParties,
        I::NoRecipientOrField,
        I::FieldNotInCatalogue("shoe_size".parse().unwrap()),
    ];
    for e in &inadmissible {
        match e {
            I::IssuerNotCaller
            | I::UnknownCovenantOrParties
            | I::NoRecipientOrField
            | I::FieldNotInCatalogue(_) => {}
        }
    }
    let defects: BTreeSet<String> = token_errors
        .iter()
        .map(|e| e.as_str().to_owned())
        .chain(
            inadmissible
                .iter()
                .filter_map(gateway::ops::consent::inadmissible_defect)
                .map(str::to_owned),
        )
        .collect();
    let listed: BTreeSet<String> = audit["consent-token-defect"]["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect();
    assert_eq!(listed, defects);

    let field_reasons = [
        HandoverReason::NotASource,
        HandoverReason::FieldNotInCatalogue,
        HandoverReason::FieldTypeMismatch,
        HandoverReason::FieldNotGranted,
        HandoverReason::ConsentRequired,
    ];
    for r in field_reasons {
        match r {
            HandoverReason::NotASource
            | HandoverReason::FieldNotInCatalogue
            | HandoverReason::FieldTypeMismatch
            | HandoverReason::FieldNotGranted
            | HandoverReason::ConsentRequired => {}
        }
    }
    // A record refused as a whole before policy looked at it names its fields with these.
    let mut expected = names(&field_reasons);
    expected.extend([
        OpError::InvalidBsn.reason().to_owned(),
        OpError::Malformed(String::new()).reason().to_owned(),
        // Issue 16: an actor assertion refused before the record was looked at.
        OpError::InvalidActorAssertion(gateway::actor::ActorError::Replayed)
            .reason()
            .to_owned(),
    ]);
    assert_eq!(consts_of(&audit["handover-refusal"]), expected);
}

// ---------------------------------------------------------------------------------------------
// Identifiers: the schema patterns accept exactly what the Rust parsers accept

fn assert_agrees<E>(def: &str, samples: &[String], parse: impl Fn(&str) -> Result<(), E>) {
    let v = common_def(def);
    for s in samples {
        assert_eq!(
            v.is_valid(&json!(s)),
            parse(s).is_ok(),
            "{def}: schema and Rust disagree on {s:?}"
        );
    }
}

fn samples(extra: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        " ",
        "a",
        "job-mediation",
        "job_mediation",
        "available_hours_per_week",
        "Job",
        "1abc",
        "-abc",
        "_abc",
        "a b",
        "abc\n",
        "\nabc",
        "é",
        "aé",
        "consent-2026-0001",
        "00000001003214345000",
        "0000000100321434500",
        "000000010032143450001",
        "0000000100321434500x",
        "00000001003214345000\n",
        "０００００００１００３２１４３４５０００",
        "٠٠٠٠٠٠٠١٠٠٣٢١٤٣٤٥٠٠٠",
        "a\tb",
        "a~!",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for len in [63, 64, 65, 127, 128, 129] {
        out.push(format!("a{}", "b".repeat(len - 1)));
    }
    out.extend(extra.iter().map(|s| (*s).to_owned()));
    out
}

#[test]
fn identifier_patterns_accept_exactly_what_the_rust_parsers_accept() {
    let all = samples(&[]);
    assert_agrees("oin", &all, |s| s.parse::<Oin>().map(drop));
    assert_agrees("purpose", &all, |s| s.parse::<Purpose>().map(drop));
    assert_agrees("field-name", &all, |s| s.parse::<FieldName>().map(drop));
    assert_agrees("covenant-id", &all, |s| s.parse::<CovenantId>().map(drop));
    assert_agrees("consent-id", &all, |s| s.parse::<ConsentId>().map(drop));
}

#[test]
fn what_the_gateway_writes_for_hashes_and_references_matches_the_schema() {
    let hash = Sha256Hash::of(b"anything");
    assert!(common_def("sha256").is_valid(&json!(hash.to_string())));
    assert!(common_def("sha256").is_valid(&to_json(&hash)));
    let reference = example_covenant().reference();
    assert!(common_def("covenant-ref").is_valid(&json!(reference.to_string())));
    let now = gateway::timefmt::audit_time(Utc::now());
    assert!(common_def("timestamp").is_valid(&json!(now)));
}

#[test]
fn dates_are_checked_as_calendar_dates_like_the_rust_parser_does() {
    // chrono also accepts `2026-1-1`, `+2026-01-01` and trailing spaces; the schema asks for the
    // one form the gateway writes, `YYYY-MM-DD`.
    let date = common_def("date");
    for s in [
        "2026-01-01",
        "2024-02-29",
        "2026-02-29",
        "2026-02-30",
        "2026-13-01",
        "2026-00-10",
        "2026-01-01T00:00:00",
    ] {
        let rust = serde_json::from_value::<chrono::NaiveDate>(json!(s)).is_ok();
        assert_eq!(
            date.is_valid(&json!(s)),
            rust,
            "schema and chrono disagree on {s:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The BSN 11-check, written out as a schema

/// Weights of the 11-check: 9·d1 + 8·d2 + … + 2·d8 − 1·d9 ≡ 0 (mod 11).
const BSN_WEIGHTS: [i64; 9] = [9, 8, 7, 6, 5, 4, 3, 2, -1];
/// The digits are checked in blocks (first digit, count): 1–2, 3–4, 5–6 and 7–9.
const BSN_BLOCKS: [(usize, usize); 4] = [(0, 2), (2, 2), (4, 2), (6, 3)];

/// A regular expression for the digit strings whose weighted sum leaves `remainder` mod 11.
fn remainder_regex(weights: &[i64], remainder: i64) -> String {
    let w = weights[0].rem_euclid(11);
    if weights.len() == 1 {
        let digits: String = (0..10)
            .filter(|d| (w * d) % 11 == remainder)
            .map(|d| char::from(b'0' + d as u8))
            .collect();
        return match digits.len() {
            0 | 1 => digits,
            _ => format!("[{digits}]"),
        };
    }
    let alternatives: Vec<String> = (0..10)
        .filter_map(|d| {
            let rest = remainder_regex(&weights[1..], (remainder - w * d).rem_euclid(11));
            (!rest.is_empty()).then(|| format!("{d}{rest}"))
        })
        .collect();
    format!("(?:{})", alternatives.join("|"))
}

fn block_def(first: usize, count: usize, remainder: i64) -> String {
    format!(
        "digits-{}-{}-remainder-{remainder}",
        first + 1,
        first + count
    )
}

/// `bsn-eleven-check.schema.json` as generated from the weights.
fn generated_bsn_schema() -> Value {
    let mut defs = serde_json::Map::new();
    let def_ref = |name: &str| json!({ "$ref": format!("#/$defs/{name}") });
    for (first, count) in BSN_BLOCKS {
        for r in 0..11 {
            let skip = if first == 0 {
                String::new()
            } else {
                format!("[0-9]{{{first}}}")
            };
            let regex = remainder_regex(&BSN_WEIGHTS[first..first + count], r);
            defs.insert(
                block_def(first, count, r),
                json!({ "type": "string", "pattern": format!("^{skip}{regex}") }),
            );
        }
    }
    // Halves: digits 1–4 (blocks 0, 1) and digits 5–9 (blocks 2, 3).
    let halves = [("digits-1-4", 0), ("digits-5-9", 2)];
    for (half, b) in halves {
        for s in 0..11 {
            let (f1, c1) = BSN_BLOCKS[b];
            let (f2, c2) = BSN_BLOCKS[b + 1];
            let any: Vec<Value> = (0..11)
                .map(|r| {
                    json!({ "allOf": [
                        def_ref(&block_def(f1, c1, r)),
                        def_ref(&block_def(f2, c2, (s - r).rem_euclid(11))),
                    ] })
                })
                .collect();
            defs.insert(format!("{half}-remainder-{s}"), json!({ "anyOf": any }));
        }
    }
    let any: Vec<Value> = (0..11)
        .map(|s| {
            json!({ "allOf": [
                def_ref(&format!("digits-1-4-remainder-{s}")),
                def_ref(&format!("digits-5-9-remainder-{}", (11 - s) % 11)),
            ] })
        })
        .collect();
    json!({
        "$schema": DRAFT_2020_12,
        "$id": format!("{SCHEMA_BASE}bsn-eleven-check.schema.json"),
        "title": "BSN 11-check (elfproef)",
        "description": "A BSN is 9 digits d1…d9, not all zeros, for which 9·d1 + 8·d2 + 7·d3 + 6·d4 + 5·d5 + 4·d6 + 3·d7 + 2·d8 − 1·d9 is a multiple of 11. The API schemas (`common.schema.json#/$defs/bsn`) ask only for nine digits, so that generators and validators of them stay simple; the gateway applies this rule itself and refuses a number that fails it with `invalid-bsn`. This schema is for a client that wants to check first. JSON Schema cannot add, so the rule is written out: the weighted sum of digits 1–4 leaves some remainder s when divided by 11, and that of digits 5–9 must leave the remainder that makes the total a multiple of 11 (0 when s is 0, else 11 − s); each half is split into blocks of digits whose allowed combinations are listed as patterns. GENERATED by gateway/tests/schemas.rs (generated_bsn_schema); do not edit by hand. That test also checks the schema against the gateway's own BSN parser.",
        "type": "string",
        "pattern": "^[0-9]{9}$",
        "not": { "const": "000000000" },
        "anyOf": any,
        "$defs": defs,
    })
}

/// The generated schema as text: one line per member, per `anyOf` branch and per definition.
fn one_definition_per_line(schema: &Value) -> String {
    let order = [
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "pattern",
        "not",
        "anyOf",
        "$defs",
    ];
    let map = schema.as_object().expect("an object");
    assert_eq!(map.len(), order.len(), "update `order` for new members");
    let members: Vec<String> = order
        .iter()
        .map(|&key| {
            let k = json!(key);
            match &map[key] {
                Value::Array(items) => {
                    let lines: Vec<String> = items.iter().map(|v| format!("    {v}")).collect();
                    format!("  {k}: [\n{}\n  ]", lines.join(",\n"))
                }
                Value::Object(defs) if key == "$defs" => {
                    let lines: Vec<String> = defs
                        .iter()
                        .map(|(name, v)| format!("    {}: {v}", json!(name)))
                        .collect();
                    format!("  {k}: {{\n{}\n  }}", lines.join(",\n"))
                }
                v => format!("  {k}: {v}"),
            }
        })
        .collect();
    format!("{{\n{}\n}}\n", members.join(",\n"))
}

#[test]
fn bsn_eleven_check_schema_is_the_generated_one() {
    let generated = generated_bsn_schema();
    let path = schemas_dir().join("bsn-eleven-check.schema.json");
    if std::env::var(BLESS).as_deref() == Ok("1") {
        std::fs::write(&path, one_definition_per_line(&generated)).unwrap();
    }
    assert!(
        read_json("bsn-eleven-check.schema.json") == generated,
        "bsn-eleven-check.schema.json is out of date: run `{BLESS}=1 cargo test -p gateway --test schemas`"
    );
}

/// A small deterministic generator (splitmix64), so failures reproduce.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The BSN of the API schemas is nine digits, a pattern every generator and validator handles;
/// the 11-check is the gateway's (`invalid-bsn`), and `bsn-eleven-check.schema.json`, referenced
/// by no API schema, states it exactly for a client that wants to check before it calls.
#[test]
fn bsn_schema_accepts_exactly_the_numbers_the_bsn_type_accepts() {
    let v = validator("bsn-eleven-check.schema.json");
    let nine_digits = common_def("bsn");
    let mut candidates: Vec<String> = vec![
        "111222333".into(),
        "123456782".into(),
        "123456789".into(),
        "000000000".into(),
        "12345678".into(),
        "1234567820".into(),
        "12345678a".into(),
        " 11222333".into(),
    ];
    // Every single-digit change of two valid numbers: exactly the errors the 11-check catches.
    for valid in ["111222333", "123456782"] {
        for i in 0..9 {
            for d in b'0'..=b'9' {
                let mut bytes = valid.as_bytes().to_vec();
                bytes[i] = d;
                candidates.push(String::from_utf8(bytes).unwrap());
            }
        }
    }
    let mut state = 0x5eed_u64;
    for _ in 0..4000 {
        candidates.push(format!("{:09}", splitmix(&mut state) % 1_000_000_000));
    }
    // And a valid number for every 8-digit prefix drawn, so that about half are valid.
    for _ in 0..4000 {
        let prefix = splitmix(&mut state) % 100_000_000;
        if let Some(bsn) = (0..10)
            .map(|d| format!("{prefix:08}{d}"))
            .find(|s| s.parse::<policy::Bsn>().is_ok())
        {
            candidates.push(bsn);
        }
    }
    let mut valid = 0;
    for s in &candidates {
        let rust = s.parse::<policy::Bsn>().is_ok();
        valid += usize::from(rust);
        assert_eq!(
            v.is_valid(&json!(s)),
            rust,
            "the 11-check schema and Bsn disagree on {s}"
        );
        assert_eq!(
            nine_digits.is_valid(&json!(s)),
            s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit()),
            "the API's BSN is nine digits: {s}"
        );
    }
    assert!(valid > 3000, "too few valid samples: {valid}");
}

// ---------------------------------------------------------------------------------------------
// Covenant rules the schema states besides the types: they agree with `Covenant::validate`

#[test]
fn covenant_schema_rules_refuse_what_covenant_validate_refuses() {
    let base = read_json("examples/covenant-drechtsteden.json");
    let catalogue = catalogue();
    let schema = validator("covenant.schema.json");
    let one_party = json!([base["parties"][0].clone()]);
    // (what, JSON pointer, new value)
    let mutations = [
        ("version 0", "/version", json!(0)),
        ("blank title", "/title", json!("  ")),
        ("one party", "/parties", one_party),
        ("no grants", "/grants", json!([])),
        ("no recipients", "/grants/0/recipients", json!([])),
        ("no fields", "/grants/0/fields", json!([])),
        (
            "a field twice",
            "/grants/1/fields",
            json!(["ww_end_date", "ww_end_date"]),
        ),
        (
            "consent basis without consent",
            "/grants/0/consent_required",
            json!(false),
        ),
        ("retention 0 days", "/grants/0/retention_days", json!(0)),
        ("blank basis text", "/grants/1/basis_text", json!("")),
    ];
    for (what, pointer, value) in mutations {
        let mut doc = base.clone();
        *doc.pointer_mut(pointer)
            .expect("the example has this member") = value;
        assert!(!schema.is_valid(&doc), "{what}: the schema accepts it");
        let covenant = Covenant::parse(&doc.to_string(), DocumentFormat::Json)
            .unwrap_or_else(|e| panic!("{what}: should parse, and fail validation: {e}"));
        assert!(
            !covenant.validate(&catalogue).is_empty(),
            "{what}: Covenant::validate accepts it"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAPI

/// Every path literal given to `.route(` in `gateway/src/http`.
fn routed_paths() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (i, _) in text.match_indices(".route(") {
            let rest = text[i + ".route(".len()..].trim_start();
            if let Some(literal) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) {
                paths.insert(literal.to_owned());
            }
        }
    }
    assert!(!paths.is_empty(), "no routes found in {}", dir.display());
    paths
}

/// Whether a parameter name identifies a person (a BSN by any name).
fn names_a_subject(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "bsn",
        "subject",
        "burgerservicenummer",
        "sofinummer",
        "citizen",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// What in a route template could carry a subject identifier: a `{parameter}` named for one, or
/// any parameter right after a segment that names one (`/subjects/{id}`).
fn subject_in_template(path: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut previous = "";
    for segment in path.split('/') {
        if let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let param = param.trim_start_matches('*');
            if names_a_subject(param) || names_a_subject(previous) {
                found.push(format!("{path}: path parameter {{{param}}}"));
            }
        } else if segment.starts_with(':') || segment.starts_with('*') {
            found.push(format!(
                "{path}: path parameter {segment} (not an OpenAPI template)"
            ));
        }
        previous = segment;
    }
    found
}

fn yaml_mentions(y: &yaml_rust2::Yaml, needle: &str) -> bool {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) => s.contains(needle),
        Yaml::Array(items) => items.iter().any(|i| yaml_mentions(i, needle)),
        Yaml::Hash(h) => h
            .iter()
            .any(|(k, v)| yaml_mentions(k, needle) || yaml_mentions(v, needle)),
        _ => false,
    }
}

/// Every parameter of every operation in the OpenAPI description, `$ref`s resolved:
/// (METHOD, path, name, in, the parameter itself).
fn openapi_parameters(
    doc: &yaml_rust2::Yaml,
) -> Vec<(String, String, String, String, yaml_rust2::Yaml)> {
    let mut out = Vec::new();
    let paths = doc["paths"].as_hash().expect("openapi.yaml has paths");
    for (path, item) in paths {
        let path = path.as_str().expect("path").to_owned();
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            let op = &item[method];
            if op.is_badvalue() {
                continue;
            }
            let lists = [&item["parameters"], &op["parameters"]];
            for p in lists.into_iter().filter_map(|l| l.as_vec()).flatten() {
                let p = match p["$ref"].as_str() {
                    Some(r) => {
                        let name = r
                            .strip_prefix("#/components/parameters/")
                            .unwrap_or_else(|| panic!("{path}: parameter $ref {r}"));
                        doc["components"]["parameters"][name].clone()
                    }
                    None => p.clone(),
                };
                let name = p["name"].as_str().expect("parameter name").to_owned();
                let place = p["in"].as_str().expect("parameter in").to_owned();
                out.push((method.to_uppercase(), path.clone(), name, place, p));
            }
        }
    }
    out
}

/// No citizen identifier in a URL (DESIGN.md §3): proxies, load balancers, ingresses and browser
/// histories record request lines. Neither the router nor the OpenAPI description may have a
/// path template or a query parameter that carries a subject; the gateway reads queries only
/// through `http::QUERY_PARAMETERS`, which the description must match.
#[test]
fn no_route_template_or_query_parameter_carries_a_subject_identifier() {
    // The checks themselves catch what they are for.
    assert!(!subject_in_template("/v1/handovers/{purpose}/{burgerservicenummer}").is_empty());
    assert!(!subject_in_template("/v1/audit/subjects/{id}").is_empty());
    assert!(!subject_in_template("/v1/persons/:subject").is_empty());
    assert!(!subject_in_template("/v1/persons/{BSN}").is_empty());
    assert!(subject_in_template("/v1/audit/subject-reports").is_empty());
    assert!(names_a_subject("subject") && names_a_subject("BSN") && !names_a_subject("purpose"));

    let mut found = Vec::new();
    // The router: its route templates and the query parameters it reads.
    for path in routed_paths() {
        found.extend(subject_in_template(&path));
    }
    let mut routed_queries: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (method, path, names) in gateway::http::QUERY_PARAMETERS {
        for name in names {
            if names_a_subject(name) {
                found.push(format!("router: {method} {path}?{name}="));
            }
            routed_queries
                .entry((method.to_owned(), path.to_owned()))
                .or_default()
                .insert((*name).to_owned());
        }
    }
    // … and reads no query in another way: one query extractor, always checked against a list
    // named in `QUERY_PARAMETERS`; never the raw URI.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mod_rs = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let table = &mod_rs[mod_rs
        .find("pub const QUERY_PARAMETERS")
        .expect("QUERY_PARAMETERS in http/mod.rs")..];
    let table = &table[..table.find("];").expect("end of QUERY_PARAMETERS")];
    let listed: BTreeSet<&str> = table
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.ends_with("_QUERY"))
        .collect();
    let mut extractors = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().path();
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for forbidden in ["OriginalUri", "extract::RawQuery", ".query()", "uri()"] {
            assert!(
                !text.contains(forbidden),
                "{name} reads the URI ({forbidden})"
            );
        }
        extractors += text.matches("Query<").count();
        for (i, _) in text.match_indices("Params::parse(") {
            let args = &text[i + "Params::parse(".len()..];
            let args = &args[..args.find(')').expect("call ends")];
            let list = args.split(',').nth(1).expect("an allowed list").trim();
            let list = list.rsplit("::").next().unwrap_or(list);
            assert!(
                listed.contains(list),
                "{name}: Params::parse with {list}, which QUERY_PARAMETERS does not list"
            );
        }
    }
    assert_eq!(
        extractors, 1,
        "gateway/src/http reads queries only through its one `QueryPairs` extractor"
    );

    // The OpenAPI description: no path parameter or query parameter carries a subject, and no
    // parameter anywhere in a URL has the BSN's schema.
    let text = read("openapi.yaml");
    let doc = &yaml_rust2::YamlLoader::load_from_str(&text).expect("openapi.yaml is YAML")[0];
    for (path, _) in doc["paths"].as_hash().expect("paths") {
        found.extend(subject_in_template(path.as_str().expect("path")));
    }
    let mut described_queries: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (method, path, name, place, p) in openapi_parameters(doc) {
        if (place == "path" || place == "query") && names_a_subject(&name) {
            found.push(format!(
                "openapi.yaml: {method} {path}: {place} parameter {name}"
            ));
        }
        if yaml_mentions(&p, "$defs/bsn") || yaml_mentions(&p, "bsn-eleven-check") {
            found.push(format!(
                "openapi.yaml: {method} {path}: {place} parameter {name} is a BSN"
            ));
        }
        if place == "query" {
            described_queries
                .entry((method, path))
                .or_default()
                .insert(name);
        }
    }
    assert!(found.is_empty(), "subject identifiers in URLs: {found:#?}");
    assert_eq!(
        routed_queries, described_queries,
        "query parameters read by the router (http::QUERY_PARAMETERS) vs openapi.yaml"
    );
}

#[test]
fn openapi_describes_every_v1_endpoint_and_refers_only_to_existing_schemas() {
    let text = read("openapi.yaml");
    assert!(
        text.starts_with("openapi: 3.1."),
        "openapi.yaml must be OpenAPI 3.1"
    );
    for path in [
        "/v1/consents",
        "/v1/consents/{id}/revoke",
        "/v1/handovers",
        "/v1/disclosures",
        "/v1/audit/records",
        "/v1/audit/records/search",
        "/v1/audit/subject-reports",
        "/v1/audit/verify",
        "/v1/audit/checkpoint-key",
        "/v1/covenants",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            text.lines().any(|l| l == format!("  {path}:")),
            "openapi.yaml has no path {path}"
        );
    }
    // The paths the gateway routes are exactly the paths the description lists.
    let described: BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("  /") && l.ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':').to_owned())
        .collect();
    assert_eq!(
        routed_paths(),
        described,
        "routes in gateway/src/http vs openapi.yaml paths"
    );
    for scheme in ["mutualTLS", "bearer"] {
        assert!(
            text.contains(&format!("type: {scheme}"))
                || text.contains(&format!("scheme: {scheme}"))
        );
    }
    let mut referenced = BTreeSet::new();
    for (i, _) in text.match_indices(".schema.json") {
        let start = text[..i]
            .rfind(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .map_or(0, |s| s + 1);
        referenced.insert(format!("{}.schema.json", &text[start..i]));
    }
    for file in &referenced {
        assert!(
            schema_docs().contains_key(file),
            "openapi.yaml refers to missing {file}"
        );
    }
    for d in Doc::ALL {
        if d != Doc::FieldCatalogue {
            assert!(
                referenced.contains(&d.schema_file()),
                "openapi.yaml never uses {}",
                d.schema_file()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Contract precision: what a schema-driven fuzzer generates from the description, the gateway
// accepts on form (tests/contract/run.sh runs the fuzzer itself)

/// `schemas/openapi.yaml` as JSON.
fn openapi() -> &'static Value {
    fn json_of(y: &yaml_rust2::Yaml) -> Value {
        use yaml_rust2::Yaml;
        match y {
            Yaml::Hash(h) => Value::Object(
                h.iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Yaml::String(s) => s.clone(),
                            Yaml::Integer(i) => i.to_string(),
                            other => panic!("openapi.yaml: a key that is no string: {other:?}"),
                        };
                        (key, json_of(v))
                    })
                    .collect(),
            ),
            Yaml::Array(a) => Value::Array(a.iter().map(json_of).collect()),
            Yaml::String(s) => json!(s),
            Yaml::Integer(i) => json!(i),
            Yaml::Real(r) => json!(r.parse::<f64>().expect("a number")),
            Yaml::Boolean(b) => json!(b),
            Yaml::Null => Value::Null,
            other => panic!("openapi.yaml: unexpected {other:?}"),
        }
    }
    static API: OnceLock<Value> = OnceLock::new();
    API.get_or_init(|| {
        let docs = yaml_rust2::YamlLoader::load_from_str(&read("openapi.yaml"))
            .expect("openapi.yaml is YAML");
        json_of(&docs[0])
    })
}

/// A schema of the description, made standalone: references to its components inlined, to the
/// schema files made absolute (they resolve from memory).
fn standalone(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                if let Some(name) = r.strip_prefix("#/components/schemas/") {
                    return standalone(&openapi()["components"]["schemas"][name]);
                }
                let mut out = map.clone();
                out.insert("$ref".into(), json!(format!("{SCHEMA_BASE}{r}")));
                return Value::Object(out);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), standalone(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(standalone).collect()),
        other => other.clone(),
    }
}

/// The operation with this `operationId`.
fn operation(id: &str) -> &'static Value {
    openapi()["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("a path item").values())
        .find(|op| op["operationId"] == id)
        .unwrap_or_else(|| panic!("no operation {id} in openapi.yaml"))
}

fn openapi_validator(schema: &Value) -> Validator {
    let mut schema = standalone(schema);
    schema["$schema"] = json!(DRAFT_2020_12);
    validator_for_value(&schema).unwrap_or_else(|e| panic!("{schema}: {e}"))
}

/// Schemathesis generated requests from the description that were valid there and refused by the
/// gateway on their form alone: any string as a consent token, a handover record without fields,
/// an empty `from`, a head at seq 0. The description now refuses them too, and still allows what
/// the gateway accepts. The BSN is nine digits (a pattern any generator can fill), the 11-check
/// the gateway's.
#[test]
fn the_description_refuses_what_the_gateway_refuses_on_form_alone() {
    let consent = &operation("registerConsent")["requestBody"]["content"];
    let token = devkit::demo::sign_as_uwv(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs-example"),
        &devkit::demo::demo_consent("consent-1", "111222333", 1_800_000_000).unwrap(),
    )
    .unwrap();
    let json_body = openapi_validator(&consent["application/json"]["schema"]);
    let jose_body = openapi_validator(&consent["application/jose"]["schema"]);
    for bad in ["", "not a token", "a.b", "a.b.c.d", "a..c", " a.b.c"] {
        assert!(!json_body.is_valid(&json!({ "token": bad })), "{bad:?}");
        assert!(!jose_body.is_valid(&json!(bad)), "{bad:?}");
    }
    assert!(json_body.is_valid(&json!({ "token": token })));
    assert!(jose_body.is_valid(&json!(token)));

    let handover = validator("handover.schema.json");
    let record = |fields: &Value| {
        devkit::demo::handover_request("job-mediation", "111222333", &json!({ "fields": fields }))
    };
    assert!(!handover.is_valid(&record(&json!({}))));
    assert!(handover.is_valid(&record(&devkit::demo::demo_handover()["fields"])));

    let bsn = &schema_docs()["common.schema.json"]["$defs"]["bsn"];
    assert_eq!(bsn["pattern"], "^[0-9]{9}$");
    for composite in ["$ref", "anyOf", "allOf", "oneOf", "not"] {
        assert!(
            bsn.get(composite).is_none(),
            "the BSN schema uses {composite}"
        );
    }

    let head = operation("verifyAuditLog")["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "expect_head")
        .expect("expect_head");
    let head = openapi_validator(&head["schema"]);
    let hash = Sha256Hash::of(b"x");
    for s in [
        format!("0:{hash}"),
        format!("1:{hash}"),
        format!("01:{hash}"),
        format!("+1:{hash}"),
        format!("123456789012345678:{hash}"),
        format!("1234567890123456789:{hash}"),
        format!("99999999999999999999:{hash}"),
        format!("1:{}", hash.to_string().to_uppercase()),
        "1:sha256:ab".to_owned(),
    ] {
        let parses = s.parse::<gateway::audit::verify::Head>().is_ok();
        if head.is_valid(&json!(s)) {
            assert!(
                parses,
                "{s}: valid in the description, refused by the gateway"
            );
        }
    }
    assert!(head.is_valid(&json!(format!("1200:{hash}"))));

    for param in ["From", "To"] {
        let time = openapi_validator(&openapi()["components"]["parameters"][param]["schema"]);
        for bad in ["", "yesterday", "2026-13-01", "2026-11-25 10:00"] {
            assert!(!time.is_valid(&json!(bad)), "{param} {bad:?}");
        }
        for good in [
            "2026-11-25",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:00:00.5+01:00",
        ] {
            assert!(time.is_valid(&json!(good)), "{param} {good:?}");
        }
    }
}
