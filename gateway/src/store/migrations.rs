//! The schema migrations in ../migrations, embedded at build time (see build.rs), applied by
//! sqlx's migrator: same table (`_sqlx_migrations`), versions and checksums as
//! `sqlx::migrate!`, so databases created by either open with the other.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// (version, description, no transaction, SQL), in version order.
pub(crate) const EMBEDDED: &[(i64, &str, bool, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// A migrator over the embedded migrations.
pub(crate) fn migrator() -> Migrator {
    Migrator::with_migrations(
        EMBEDDED
            .iter()
            .map(|&(version, description, no_tx, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    no_tx,
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in ../migrations is embedded, with sqlx's version and description.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        let embedded: Vec<String> = EMBEDDED
            .iter()
            .map(|(v, d, _, _)| format!("{v}_{}.sql", d.replace(' ', "_")))
            .collect();
        assert_eq!(files, embedded);
        assert_eq!(EMBEDDED[0].1, "init");
    }

    /// Databases record each applied migration's checksum and refuse to open when it changes:
    /// the init migration's checksum as `sqlx::migrate!` recorded it (read from a database the
    /// earlier build created) must stay.
    #[test]
    fn applied_checksums_are_unchanged() {
        let init = migrator().iter().next().cloned().expect("the init migration");
        assert_eq!(init.version, 20261125000001);
        assert_eq!(
            hex::encode_upper(&init.checksum),
            "3B00614F38B3260063FB45C4D378D562785A3A5BD53DFCEFC960FD69D0758F67782BDE6EEAD6998EED4F677202BDBE54"
        );
    }
}
