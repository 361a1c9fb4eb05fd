//! The operators' service (SPEC §12): `clearing serve`. Every route calls
//! the same application-layer use case as the command of the same name and
//! answers with the same JSON. Tokens carry a role; the token's name is the
//! operator recorded with every change it makes.
//!
//! Each request opens the ledger for its own use (the projections brought to
//! the end of the log, so what any process recorded shows up in the next
//! answer) and closes it again, one request at a time: the commands of §10
//! keep working on the same data dir between requests (ADR 13). Between
//! requests a follower thread does the same every `--poll-ms`.

mod api;
mod metrics;
pub mod tokens;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use clearing_app::{AppError, Config, ErrorKind, ReadLedger, Recorder};

pub use tokens::{Need, Role, Token, Tokens};

/// How the service is run.
#[derive(Clone, Debug)]
pub struct Options {
    pub listen: String,
    /// Largest request body accepted (413 above).
    pub body_limit_bytes: usize,
    /// Requests per token per minute (429 above).
    pub requests_per_minute: u32,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// How often the projections are brought to the end of the log
    /// between requests.
    pub poll: Duration,
}

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) tokens: Tokens,
    /// One request at a time uses the ledger's stores.
    ledger: Mutex<()>,
    pub(crate) metrics: metrics_exporter_prometheus::PrometheusHandle,
    rate: Mutex<HashMap<String, (Instant, u32)>>,
    requests_per_minute: u32,
}

/// An error answer: `{"error": "one line"}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        let status = match e.kind() {
            ErrorKind::Input => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl Shared {
    /// Runs `f` on the ledger opened to read, off the async threads.
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ReadLedger) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let s = self.clone();
        blocking(move || {
            let _one = s.ledger.lock().unwrap_or_else(|p| p.into_inner());
            let mut l = s.open()?;
            f(&mut l)
        })
        .await
    }

    /// Runs `f` on the ledger opened to record.
    pub(crate) async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Recorder) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let s = self.clone();
        blocking(move || {
            let _one = s.ledger.lock().unwrap_or_else(|p| p.into_inner());
            let mut r = Recorder::open(s.cfg.live()?)?;
            f(&mut r)
        })
        .await
    }

    /// Opens the ledger (the caller holds `ledger`), caught up, and
    /// records what the catch-up found and applied.
    fn open(&self) -> Result<ReadLedger, AppError> {
        let (l, lag) = ReadLedger::open_measured(&self.cfg)?;
        let topic = self.cfg.topics.name(clearing_app::log::Topic::Events);
        metrics::caught_up(topic, &l, &lag);
        Ok(l)
    }

    /// Brings the projections to the end of the log every `poll` until
    /// `stop`: what other processes record shows up in the projections
    /// (and in the lag) without waiting for a request. A failed catch-up is
    /// logged and tried again at the next poll; requests report it.
    fn follow(&self, poll: Duration, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            {
                let _one = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = self.open() {
                    tracing::warn!(error = %e, "the service's follower could not catch up");
                }
            }
            clearing_app::project::sleep_unless(stop, poll);
        }
    }

    /// Counts a request of `name` against its rate; false past it.
    pub(crate) fn admit(&self, name: &str) -> bool {
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (start, count) = rate.entry(name.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(60) {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= self.requests_per_minute
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

/// Serves until SIGINT or SIGTERM; `listening` hears the bound address
/// once the ledger is caught up and requests are accepted.
pub fn serve(
    cfg: Config,
    tokens: Tokens,
    options: Options,
    listening: impl FnOnce(SocketAddr),
) -> Result<(), AppError> {
    let metrics = metrics::install()?;
    let shared = Arc::new(Shared {
        cfg,
        tokens,
        ledger: Mutex::new(()),
        metrics,
        rate: Mutex::new(HashMap::new()),
        requests_per_minute: options.requests_per_minute,
    });
    // caught up before the first request: /readyz is true from the start
    drop(shared.open()?);
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let (shared, stop, poll) = (shared.clone(), stop.clone(), options.poll);
        std::thread::spawn(move || shared.follow(poll, &stop))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::storage(format!("starting the service: {e}")))?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .map_err(|e| AppError::input(format!("--listen {}: {e}", options.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AppError::storage(e.to_string()))?;
        let app = api::router(shared, &options);
        listening(addr);
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped())
            .await
            .map_err(|e| AppError::storage(format!("serving: {e}")))
    });
    stop.store(true, Ordering::SeqCst);
    let _ = follower.join();
    served
}

/// Resolves on SIGINT or SIGTERM.
async fn stopped() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
