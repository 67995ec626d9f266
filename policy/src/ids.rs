//! Identifier types parsed once at the edge: `Oin`, `Bsn`, `Purpose`, `FieldName`, `CovenantId`,
//! `ConsentId`. A value of one of these types is always valid; a `Bsn` never prints in full.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an identifier could not be parsed. Never carries the rejected input: it may be a BSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an OIN is exactly 20 digits")]
    Oin,
    #[error("a BSN is exactly 9 digits and passes the 11-check")]
    Bsn,
    #[error("a {0} is 1 to 64 characters: lowercase letters, digits, '-' and '_', starting with a letter")]
    Name(&'static str),
    #[error("a consent id is 1 to 128 printable ASCII characters without spaces")]
    ConsentId,
}

/// Organisatie-identificatienummer: 20 decimal digits.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Oin(String);

impl Oin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Oin {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Oin(s.to_owned()))
        } else {
            Err(IdError::Oin)
        }
    }
}

impl TryFrom<String> for Oin {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<Oin> for String {
    fn from(o: Oin) -> String {
        o.0
    }
}

impl fmt::Display for Oin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Oin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oin({})", self.0)
    }
}

/// Burgerservicenummer: 9 digits passing the 11-check. `Debug` and `Display` show only the last
/// two digits (`*******42`); use [`Bsn::expose`] where the whole number is really needed
/// (pseudonymisation, storage keys), never for logs.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Bsn([u8; 9]);

impl Bsn {
    /// The full nine digits. Call only to pseudonymise, encrypt or compare; never to log.
    pub fn expose(&self) -> &str {
        // The array only ever holds ASCII digits (checked in `from_str`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The 11-check (elfproef): 9·d1 + 8·d2 + … + 2·d8 − 1·d9 ≡ 0 (mod 11), and not all zeros.
    fn passes_eleven_check(digits: &[u8; 9]) -> bool {
        let mut sum: i32 = 0;
        for (i, d) in digits.iter().enumerate() {
            let v = i32::from(d - b'0');
            let weight = if i == 8 { -1 } else { 9 - i as i32 };
            sum += weight * v;
        }
        sum % 11 == 0 && digits.iter().any(|&d| d != b'0')
    }
}

impl FromStr for Bsn {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        if bytes.len() != 9 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(IdError::Bsn);
        }
        let mut digits = [0u8; 9];
        digits.copy_from_slice(bytes);
        if Bsn::passes_eleven_check(&digits) {
            Ok(Bsn(digits))
        } else {
            Err(IdError::Bsn)
        }
    }
}

impl TryFrom<String> for Bsn {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

/// Serialises the full number: only document types (consent claims, requests) hold a `Bsn`,
/// and those are never logged.
impl Serialize for Bsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl fmt::Display for Bsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "*******{}{}", self.0[7] as char, self.0[8] as char)
    }
}

impl fmt::Debug for Bsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bsn({self})")
    }
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                if is_name(s) {
                    Ok($name(s.to_owned()))
                } else {
                    Err(IdError::Name($what))
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

name_type!(
    /// A processing purpose (doelbinding), e.g. `job-mediation`.
    Purpose,
    "purpose"
);
name_type!(
    /// The name of a field in the field catalogue, e.g. `available_hours_per_week`.
    FieldName,
    "field name"
);
name_type!(
    /// The stable id of a covenant across its versions, e.g. `drechtsteden-max-ww`.
    CovenantId,
    "covenant id"
);

/// The `jti` of a consent token.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConsentId(String);

impl ConsentId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ConsentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(ConsentId(s.to_owned()))
        } else {
            Err(IdError::ConsentId)
        }
    }
}

impl TryFrom<String> for ConsentId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}

impl From<ConsentId> for String {
    fn from(v: ConsentId) -> String {
        v.0
    }
}

impl fmt::Display for ConsentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConsentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsentId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsn_eleven_check_accepts_valid_and_rejects_invalid() {
        assert!("111222333".parse::<Bsn>().is_ok());
        assert!("123456782".parse::<Bsn>().is_ok());
        assert_eq!("123456789".parse::<Bsn>(), Err(IdError::Bsn));
        assert_eq!("000000000".parse::<Bsn>(), Err(IdError::Bsn));
        assert_eq!("12345678".parse::<Bsn>(), Err(IdError::Bsn));
        assert_eq!("12345678a".parse::<Bsn>(), Err(IdError::Bsn));
        assert_eq!("1234567820".parse::<Bsn>(), Err(IdError::Bsn));
    }

    #[test]
    fn bsn_debug_and_display_never_show_the_whole_number() {
        let number: Bsn = "123456782".parse().unwrap();
        assert_eq!(number.to_string(), "*******82");
        assert_eq!(format!("{number:?}"), "Bsn(*******82)");
        assert!(!format!("{number:?}{number}").contains("1234567"));
        assert_eq!(number.expose(), "123456782");
    }

    #[test]
    fn oin_is_twenty_digits() {
        assert!("00000001003214345000".parse::<Oin>().is_ok());
        assert!("0000000100321434500".parse::<Oin>().is_err());
        assert!("0000000100321434500x".parse::<Oin>().is_err());
    }

    #[test]
    fn names_are_lowercase_slugs() {
        assert!("job-mediation".parse::<Purpose>().is_ok());
        assert!("available_hours_per_week".parse::<FieldName>().is_ok());
        assert!("Job".parse::<Purpose>().is_err());
        assert!("".parse::<FieldName>().is_err());
        assert!("1abc".parse::<CovenantId>().is_err());
        assert!("a b".parse::<ConsentId>().is_err());
    }

    #[test]
    fn serde_rejects_invalid_identifiers() {
        assert!(serde_json::from_str::<Bsn>("\"123456789\"").is_err());
        let bsn: Bsn = serde_json::from_str("\"123456782\"").unwrap();
        assert_eq!(serde_json::to_string(&bsn).unwrap(), "\"123456782\"");
    }
}
