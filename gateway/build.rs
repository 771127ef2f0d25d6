//! Embeds ../migrations in the binary: writes `$OUT_DIR/migrations.rs`, a table of
//! (version, description, no_tx, include_str!) read by `store::migrations`. This does what
//! `sqlx::migrate!` does without sqlx's proc-macro crate, which builds a second SQLite (for the
//! host) and a second sqlx: about a minute of every clean build.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(i64, String, bool, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read ../migrations") {
        let path = entry.expect("list ../migrations").path();
        let name = path
            .file_name()
            .unwrap()
            .to_str()
            .expect("UTF-8 migration name")
            .to_string();
        println!("cargo:rerun-if-changed={}", path.display());
        // Same naming as sqlx: <VERSION>_<DESCRIPTION>.sql, underscores read as spaces.
        let (version, rest) = name
            .split_once('_')
            .unwrap_or_else(|| panic!("migration {name:?}: expected <VERSION>_<DESCRIPTION>.sql"));
        let description = rest
            .strip_suffix(".sql")
            .unwrap_or_else(|| panic!("migration {name:?}: expected a .sql file"));
        assert!(
            !description.ends_with(".up") && !description.ends_with(".down"),
            "migration {name:?}: reversible migrations are not supported"
        );
        let version: i64 = version
            .parse()
            .unwrap_or_else(|_| panic!("migration {name:?}: the version must be an integer"));
        let sql = std::fs::read_to_string(&path).expect("read a migration");
        let no_tx = sql.starts_with("-- no-transaction");
        entries.push((version, description.replace('_', " "), no_tx, path));
    }
    entries.sort();
    for pair in entries.windows(2) {
        assert!(
            pair[0].0 != pair[1].0,
            "two migrations with version {}",
            pair[0].0
        );
    }
    let mut code = String::from("&[\n");
    for (version, description, no_tx, path) in &entries {
        writeln!(
            code,
            "    ({version}, {description:?}, {no_tx}, include_str!({:?})),",
            path.canonicalize().expect("canonical migration path")
        )
        .unwrap();
    }
    code.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs");
    std::fs::write(out, code).expect("write migrations.rs");
}
