//! The caps must fit in the process's file-descriptor limit, or the accept loop would run out of
//! descriptors before the caps ever act. At start the soft limit is raised to the hard limit (as
//! Go's runtime does); when even that leaves too little room, the caps are lowered in proportion
//! and a warning names the keys.

use super::limits::Caps;

/// Descriptors kept for everything that is not a client connection: the listener, the runtime,
/// log and database files; plus [`PER_DATABASE_CONNECTION`] per database connection.
pub const RESERVED: u64 = 64;
/// Descriptors one database connection may hold (SQLite: the database, its WAL and shared
/// memory; PostgreSQL: one socket).
pub const PER_DATABASE_CONNECTION: u64 = 3;

/// Raise the soft limit on open files to the hard limit; the soft limit now in force (`None`:
/// unlimited or unknown).
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            // Some systems cap the soft limit below an unlimited hard limit: keep what we have.
            return getrlimit(Resource::Nofile).current;
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<u64> {
    None
}

/// The caps to use under an open-files limit of `limit` with `reserved` descriptors kept for
/// other uses: the configured ones when they fit, else lowered keeping their proportion (and
/// room for organisations). `Err` carries the lowered caps, to be reported.
pub fn fit(configured: Caps, limit: Option<u64>, reserved: u64) -> Result<Caps, Caps> {
    let Some(limit) = limit else {
        return Ok(configured);
    };
    let room = limit.saturating_sub(reserved).max(2) as usize;
    if configured.max_open <= room {
        return Ok(configured);
    }
    let max_open = room;
    let scaled = (configured.max_unidentified as u128 * max_open as u128
        / configured.max_open as u128) as usize;
    let max_unidentified = scaled.clamp(1, max_open - 1);
    Err(Caps {
        max_open,
        max_unidentified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Caps = Caps {
        max_open: 4096,
        max_unidentified: 512,
    };

    #[test]
    fn connection_caps_are_lowered_in_proportion_below_the_file_descriptor_limit() {
        assert_eq!(fit(DEFAULT, None, 100), Ok(DEFAULT));
        assert_eq!(fit(DEFAULT, Some(1_048_576), 100), Ok(DEFAULT));
        assert_eq!(
            fit(DEFAULT, Some(1024), 88),
            Err(Caps {
                max_open: 936,
                max_unidentified: 117
            })
        );
        // Absurdly low limits still leave one place of each kind.
        assert_eq!(
            fit(DEFAULT, Some(10), 88),
            Err(Caps {
                max_open: 2,
                max_unidentified: 1
            })
        );
    }
}
