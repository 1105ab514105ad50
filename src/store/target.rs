//! Where the store lives, as given to `--db` (or `DISPO_DB`): a SQLite file (the embedded
//! default) or a PostgreSQL URL (`postgres://` or `postgresql://`), shared by several monitors.
//!
//! A few files live beside a SQLite database (the spill journal, an import's rejects); for a
//! URL they go to the state directory ([`state_dir`]), named after the server and database.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A store location, parsed once at the edge.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgUrl),
}

/// A PostgreSQL connection URL; shown without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    url: String,
}

impl PgUrl {
    /// The URL to connect with (password included: never log it, use `Display`).
    pub fn secret(&self) -> &str {
        &self.url
    }

    /// A file-name-safe name for this database: host, port and database name.
    pub fn slug(&self) -> String {
        let (host, port, db) = match url::Url::parse(&self.url) {
            Ok(u) => {
                // A unix-socket URL carries its directory in `host=` and names no host.
                let q_host = u
                    .query_pairs()
                    .find(|(k, _)| k == "host")
                    .map(|(_, v)| v.into_owned());
                (
                    u.host_str()
                        .filter(|h| !h.is_empty())
                        .map(str::to_owned)
                        .or(q_host)
                        .unwrap_or_else(|| "local".into()),
                    u.port().unwrap_or(5432),
                    u.path().trim_start_matches('/').to_owned(),
                )
            }
            Err(_) => ("pg".into(), 5432, String::new()),
        };
        let raw = format!("pg-{host}-{port}-{db}");
        raw.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.url) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                // Query parameters may hold a password too (`password=`).
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                if !pairs.is_empty() {
                    u.query_pairs_mut().clear().extend_pairs(pairs);
                }
                write!(f, "{u}")
            }
            Err(_) => f.write_str("postgres://(unparsable URL)"),
        }
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a `--db` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(String);

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(TargetError(
                "empty: give a database file or a postgres:// URL".into(),
            ));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            url::Url::parse(s).map_err(|e| {
                TargetError(format!(
                    "not a valid PostgreSQL URL ({e}): write postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                ))
            })?;
            return Ok(Self::Postgres(PgUrl { url: s.to_owned() }));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(TargetError(format!(
                "'{scheme}://' is not a database this tool knows: give a SQLite file path or a postgres:// URL"
            )));
        }
        Ok(Self::Sqlite(PathBuf::from(s)))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "{}", p.display()),
            Self::Postgres(u) => write!(f, "{u}"),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<&Path> for Target {
    fn from(p: &Path) -> Self {
        Self::Sqlite(p.to_owned())
    }
}
impl From<&PathBuf> for Target {
    fn from(p: &PathBuf) -> Self {
        Self::Sqlite(p.clone())
    }
}
impl From<PathBuf> for Target {
    fn from(p: PathBuf) -> Self {
        Self::Sqlite(p)
    }
}
impl From<&Target> for Target {
    fn from(t: &Target) -> Self {
        t.clone()
    }
}

/// Where files that would sit beside a SQLite database go when the store is PostgreSQL:
/// `DISPO_STATE_DIR`, else systemd's `STATE_DIRECTORY`, else the working directory.
pub fn state_dir() -> PathBuf {
    for var in ["DISPO_STATE_DIR", "STATE_DIRECTORY"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            // systemd may list several directories, colon-separated: the first is ours.
            let first = v
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            return PathBuf::from(first);
        }
    }
    PathBuf::from(".")
}

impl Target {
    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// The SQLite file, if it is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(p) => Some(p),
            Self::Postgres(_) => None,
        }
    }

    /// A file beside the database: `<db><suffix>` for SQLite, `<state dir>/<server and
    /// database><suffix>` for PostgreSQL.
    pub fn sibling(&self, suffix: &str) -> PathBuf {
        match self {
            Self::Sqlite(p) => {
                let mut name = p.as_os_str().to_owned();
                name.push(suffix);
                name.into()
            }
            Self::Postgres(u) => state_dir().join(format!("{}{suffix}", u.slug())),
        }
    }

    /// For messages: the absolute path of a file, or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Self::Sqlite(p) => std::path::absolute(p)
                .unwrap_or_else(|_| p.to_owned())
                .display()
                .to_string(),
            Self::Postgres(u) => u.to_string(),
        }
    }

    /// Whether the database may already exist: the file exists (a server is asked when
    /// connecting).
    pub fn exists(&self) -> bool {
        match self {
            Self::Sqlite(p) => p.exists(),
            Self::Postgres(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        let t: Target = "postgres://dispo:s3cret@db.bank:5433/dispo"
            .parse()
            .unwrap();
        assert!(t.is_postgres());
        assert_eq!(t.to_string(), "postgres://dispo:***@db.bank:5433/dispo");
        assert_eq!(
            t.sibling("-spill.jsonl").file_name().unwrap(),
            "pg-db.bank-5433-dispo-spill.jsonl"
        );
        let t: Target = "postgresql:///dispo?host=/run/pg&password=x"
            .parse()
            .unwrap();
        assert!(!t.to_string().contains("password=x"));
        let t: Target = "dispo.db".parse().unwrap();
        assert_eq!(
            t.sibling("-spill.jsonl"),
            PathBuf::from("dispo.db-spill.jsonl")
        );
        assert!("mysql://x/y".parse::<Target>().is_err());
        assert!("".parse::<Target>().is_err());
    }
}
