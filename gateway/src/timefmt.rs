//! The time formats of the gateway's records and answers: audit records in RFC 3339 UTC with
//! microseconds, API answers in RFC 3339 UTC with seconds. Formatting only; never reads a clock.

use chrono::{DateTime, Utc};

/// RFC 3339 with microseconds, UTC: the `time` of an audit record.
pub fn audit_time(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// RFC 3339 with seconds, UTC: times in API answers.
pub fn api_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// [`api_time`] of Unix seconds; empty when out of range.
pub fn api_time_of_secs(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(api_time)
        .unwrap_or_default()
}
