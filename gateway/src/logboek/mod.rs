//! The Logboek Dataverwerkingen export's parts that do no scheduling: how an audit record becomes
//! a log record of the standard (`encode`, pure) and how a batch reaches the organisation's
//! OTLP/HTTP receiver (`receiver`). What is sent never holds a BSN or a field value: the subject
//! travels as the audit record's keyed pseudonym, fields not at all.

pub mod encode;
pub mod receiver;
