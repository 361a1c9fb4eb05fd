//! The application's one error type: what went wrong, in one line, and of
//! which kind, so that each front end can say it its way (an exit status,
//! an HTTP status) without parsing the message.

use clearing_log::LogError;
use clearing_producer::{ProducerError, WriteError};
use clearing_projector::ProjectorError;
use clearing_recon::ReconError;

/// Of which kind an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong (a file, a line, an argument): the message names
    /// the field. Fix the input and try again.
    Input,
    /// What was asked for does not exist.
    NotFound,
    /// The ledger's state forbids the step (a replayed dir is read-only, a
    /// batch cannot be approved by its preparer, …).
    Conflict,
    /// The log cannot be reached or did not acknowledge: the same step run
    /// again later can complete.
    Unavailable,
    /// A store or file of the ledger could not be read or written.
    Storage,
}

/// An error of the application layer: a kind and a one-line reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    kind: ErrorKind,
    message: String,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AppError {
        AppError {
            kind,
            message: message.into(),
        }
    }

    pub fn input(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::Input, message)
    }

    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::Conflict, message)
    }

    pub fn storage(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::Storage, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether running the same step again later can help.
    pub fn retryable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }

    /// The same error, its reason prefixed by what was being done.
    pub fn context(self, what: impl std::fmt::Display) -> AppError {
        AppError {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }
}

/// `result.context("doing X")` on anything that converts into an
/// `AppError`.
pub trait Context<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, AppError>;
}

impl<T, E: Into<AppError>> Context<T> for Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, AppError> {
        self.map_err(|e| e.into().context(what))
    }
}

impl From<LogError> for AppError {
    fn from(e: LogError) -> AppError {
        let kind = match e {
            LogError::Broker(_) => ErrorKind::Unavailable,
            LogError::NoSuchPartition { .. } => ErrorKind::Input,
            LogError::Storage { .. } | LogError::File(_) | LogError::Corrupt { .. } => {
                ErrorKind::Storage
            }
        };
        AppError::new(kind, e.to_string())
    }
}

impl From<WriteError> for AppError {
    fn from(e: WriteError) -> AppError {
        match e {
            WriteError::Log(e) => e.into(),
            WriteError::Poisoned => AppError::conflict(e.to_string()),
            WriteError::CatchUp(clearing_consumer::ConsumeError::Log(e)) => {
                AppError::from(e).context("catching up the write model")
            }
            other => AppError::storage(other.to_string()),
        }
    }
}

impl From<ProducerError> for AppError {
    fn from(e: ProducerError) -> AppError {
        match e {
            ProducerError::Input(_) => AppError::input(e.to_string()),
            ProducerError::NoFeeSchedule => AppError::conflict(e.to_string()),
            ProducerError::Read { .. } => AppError::storage(e.to_string()),
            ProducerError::Publish { ref error, .. } => {
                let kind = AppError::from_write_kind(error);
                AppError::new(kind, e.to_string())
            }
            ProducerError::Write(w) => (*w).into(),
        }
    }
}

impl AppError {
    fn from_write_kind(e: &WriteError) -> ErrorKind {
        match e {
            WriteError::Log(LogError::Broker(_)) => ErrorKind::Unavailable,
            WriteError::Poisoned => ErrorKind::Conflict,
            _ => ErrorKind::Storage,
        }
    }
}

impl From<clearing_producer::InputError> for AppError {
    fn from(e: clearing_producer::InputError) -> AppError {
        AppError::input(e.to_string())
    }
}

impl From<ProjectorError> for AppError {
    fn from(e: ProjectorError) -> AppError {
        AppError::storage(e.to_string())
    }
}

impl<E: Into<AppError> + std::error::Error> From<clearing_consumer::ConsumeError<E>> for AppError {
    fn from(e: clearing_consumer::ConsumeError<E>) -> AppError {
        match e {
            clearing_consumer::ConsumeError::Log(l) => l.into(),
            clearing_consumer::ConsumeError::Handler(h) => h.into(),
        }
    }
}

impl From<ReconError> for AppError {
    fn from(e: ReconError) -> AppError {
        match e {
            ReconError::File(_) | ReconError::WrongDate { .. } => AppError::input(e.to_string()),
            ReconError::NoSchedule => AppError::conflict(e.to_string()),
            ReconError::Projector(p) => p.into(),
        }
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> AppError {
        AppError::storage(e.to_string())
    }
}

impl From<clearing_core::money::Overflow> for AppError {
    fn from(e: clearing_core::money::Overflow) -> AppError {
        AppError::storage(e.to_string())
    }
}
