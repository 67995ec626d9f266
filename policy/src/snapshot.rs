//! The world a decision is made against: the catalogue, every covenant version with its
//! administrative state and signatures (indexed for fast lookup), and the consents on record.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::canonical::CovenantRef;
use crate::catalogue::FieldCatalogue;
use crate::consent::ConsentRecord;
use crate::covenant::Covenant;
use crate::ids::{Bsn, CovenantId, Oin, Purpose};

/// What administrators have done to a covenant version (signatures are tracked separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminState {
    /// Not suspended or terminated: active once signed by every party and within validity.
    Open,
    Suspended,
    Terminated,
}

/// The effective state of a covenant version on a given date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CovenantState {
    /// Not every party has signed this exact version.
    Draft,
    /// Signed by all, but `valid_from` is still ahead.
    Pending,
    Active,
    Suspended,
    Terminated,
    Expired,
}

impl CovenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            CovenantState::Draft => "draft",
            CovenantState::Pending => "pending",
            CovenantState::Active => "active",
            CovenantState::Suspended => "suspended",
            CovenantState::Terminated => "terminated",
            CovenantState::Expired => "expired",
        }
    }
}

/// One covenant version as the gateway holds it.
#[derive(Debug, Clone)]
pub struct CovenantEntry {
    pub covenant: Covenant,
    /// `id@version#hash`, computed once.
    pub reference: CovenantRef,
    pub admin: AdminState,
    /// Parties whose signature over `reference.hash` has been verified.
    pub signed_by: BTreeSet<Oin>,
}

impl CovenantEntry {
    pub fn new(covenant: Covenant, admin: AdminState, signed_by: BTreeSet<Oin>) -> Self {
        let reference = covenant.reference();
        CovenantEntry {
            covenant,
            reference,
            admin,
            signed_by,
        }
    }

    /// Whether every party has signed this version.
    pub fn fully_signed(&self) -> bool {
        self.covenant
            .parties
            .iter()
            .all(|p| self.signed_by.contains(&p.oin))
    }

    pub fn state_on(&self, date: NaiveDate) -> CovenantState {
        match self.admin {
            AdminState::Terminated => CovenantState::Terminated,
            AdminState::Suspended => CovenantState::Suspended,
            AdminState::Open if !self.fully_signed() => CovenantState::Draft,
            AdminState::Open if date > self.covenant.valid_until => CovenantState::Expired,
            AdminState::Open if date < self.covenant.valid_from => CovenantState::Pending,
            AdminState::Open => CovenantState::Active,
        }
    }
}

/// Every covenant version, indexed by recipient and by party.
#[derive(Debug, Clone)]
pub struct CovenantSet {
    catalogue: FieldCatalogue,
    entries: Vec<CovenantEntry>,
    /// recipient → purpose → (entry, grant) pairs in (covenant id, version, grant order).
    grants_by_recipient: HashMap<Oin, HashMap<Purpose, Vec<(usize, usize)>>>,
    /// party → entries it is a party to.
    entries_by_party: HashMap<Oin, Vec<usize>>,
    /// covenant id → entries of every version.
    versions: HashMap<CovenantId, Vec<usize>>,
}

impl CovenantSet {
    pub fn new(catalogue: FieldCatalogue, mut entries: Vec<CovenantEntry>) -> Self {
        entries.sort_by(|a, b| {
            (&a.covenant.id, a.covenant.version).cmp(&(&b.covenant.id, b.covenant.version))
        });
        let mut grants_by_recipient: HashMap<Oin, HashMap<Purpose, Vec<(usize, usize)>>> =
            HashMap::new();
        let mut entries_by_party: HashMap<Oin, Vec<usize>> = HashMap::new();
        let mut versions: HashMap<CovenantId, Vec<usize>> = HashMap::new();
        for (e, entry) in entries.iter().enumerate() {
            versions
                .entry(entry.covenant.id.clone())
                .or_default()
                .push(e);
            for party in &entry.covenant.parties {
                entries_by_party
                    .entry(party.oin.clone())
                    .or_default()
                    .push(e);
            }
            for (g, grant) in entry.covenant.grants.iter().enumerate() {
                for recipient in &grant.recipients {
                    let list = grants_by_recipient
                        .entry(recipient.clone())
                        .or_default()
                        .entry(grant.purpose.clone())
                        .or_default();
                    if list.last() != Some(&(e, g)) {
                        list.push((e, g));
                    }
                }
            }
        }
        CovenantSet {
            catalogue,
            entries,
            grants_by_recipient,
            entries_by_party,
            versions,
        }
    }

    pub fn catalogue(&self) -> &FieldCatalogue {
        &self.catalogue
    }

    pub fn entries(&self) -> &[CovenantEntry] {
        &self.entries
    }

    pub(crate) fn entry(&self, e: usize) -> &CovenantEntry {
        &self.entries[e]
    }

    /// The (entry, grant) pairs naming `oin` as recipient for `purpose`.
    pub(crate) fn grants_for(&self, oin: &Oin, purpose: &Purpose) -> &[(usize, usize)] {
        self.grants_by_recipient
            .get(oin)
            .and_then(|by_purpose| by_purpose.get(purpose))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(crate) fn entries_for_party(&self, oin: &Oin) -> &[usize] {
        self.entries_by_party
            .get(oin)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The version of this covenant in force on `date`: the highest version that is active.
    /// A newer version that is not yet signed by all does not displace an active older one.
    pub fn in_force(&self, id: &CovenantId, date: NaiveDate) -> Option<&CovenantEntry> {
        self.versions.get(id)?.iter().rev().find_map(|&e| {
            let entry = &self.entries[e];
            (entry.state_on(date) == CovenantState::Active).then_some(entry)
        })
    }

    /// Whether entry `e` is the version of its covenant in force on `date`.
    pub(crate) fn is_in_force(&self, e: usize, date: NaiveDate) -> bool {
        let entry = &self.entries[e];
        self.in_force(&entry.covenant.id, date)
            .is_some_and(|f| std::ptr::eq(f, entry))
    }

    /// Covenants that a source may store handover data under for `purpose`: the grants in force
    /// on `date` where `source` is the source, in (party index, grant) order. A handover is held
    /// under the first ([`crate::accept_handover`]).
    pub fn grants_from_source<'a, 'q>(
        &'a self,
        source: &'q Oin,
        purpose: &'q Purpose,
        date: NaiveDate,
    ) -> impl Iterator<Item = (&'a CovenantEntry, &'a crate::covenant::Grant)> + use<'a, 'q> {
        self.entries_for_party(source)
            .iter()
            .filter(move |&&e| self.is_in_force(e, date))
            .flat_map(move |&e| {
                let entry = &self.entries[e];
                entry
                    .covenant
                    .grants
                    .iter()
                    .filter(move |g| &g.source == source && &g.purpose == purpose)
                    .map(move |g| (entry, g))
            })
    }
}

/// The consents on record, by subject. The gateway may fill one with only the consents of the
/// subject of the request at hand.
#[derive(Debug, Clone, Default)]
pub struct ConsentBook {
    by_subject: HashMap<Bsn, Vec<ConsentRecord>>,
}

impl ConsentBook {
    pub fn new(records: impl IntoIterator<Item = ConsentRecord>) -> Self {
        let mut by_subject: HashMap<Bsn, Vec<ConsentRecord>> = HashMap::new();
        for r in records {
            by_subject.entry(r.claims.sub).or_default().push(r);
        }
        ConsentBook { by_subject }
    }

    pub fn for_subject(&self, subject: &Bsn) -> &[ConsentRecord] {
        self.by_subject
            .get(subject)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.by_subject.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_subject.is_empty()
    }
}

/// Everything `decide` looks at besides the request and the time.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub covenants: &'a CovenantSet,
    pub consents: &'a ConsentBook,
}
