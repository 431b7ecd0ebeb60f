//! Errors that stop a build before or while it writes its output. Problems in
//! individual input files are not errors: they are [`Diagnostic`](crate::diag::Diagnostic)s.

use std::io;
use std::path::PathBuf;

/// Errors of the library; each names the path or key it is about.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("source directory {0} does not exist or is not a directory")]
    MissingSource(PathBuf),

    #[error(
        "output directory {out} {relation} the source directory {src}; choose an output outside the source"
    )]
    OutputContainsSource {
        out: PathBuf,
        src: PathBuf,
        relation: &'static str,
    },

    #[error(
        "output directory {0} is not empty and was not written by kiln (no kiln-manifest.json); pass --force to replace its contents"
    )]
    OutputNotOwned(PathBuf),

    #[error("{0} is not a kiln build (no kiln-manifest.json): run `kiln build` first")]
    NotABuild(PathBuf),

    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("deploy to {target}: {message}")]
    Deploy { target: String, message: String },

    /// A flag or setting that cannot work as given (a deploy target without a
    /// bucket, a duration that is not one).
    #[error("{0}")]
    Usage(String),

    #[error("{first} and {second} would both be written to {path}: rename one of them")]
    OutputCollision {
        path: String,
        first: String,
        second: String,
    },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// A problem in `kiln.toml` or in the flags, located at the key when possible.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", location(*line, *col))]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<u32>,
    pub col: Option<u32>,
    pub message: String,
}

fn location(line: Option<u32>, col: Option<u32>) -> String {
    match (line, col) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
