//! The HTTP server (`HTTP_LISTEN`, default `0.0.0.0:9153`): what a person or a monitoring
//! system sees of leazzard.
//!
//! | path | what |
//! |---|---|
//! | `/` | the status page ([`page`]): guests, addresses and their sources, devices, conflicts, the sync |
//! | `/metrics` | Prometheus text format ([`metrics`]) |
//! | `/api/v1/records`, `/api/v1/guests`, `/api/v1/leases`, `/api/v1/status` | JSON for scripts ([`api`]) |
//! | `/healthz` | 200 while the process runs |
//! | `/readyz` | 200 once the zone holds what Proxmox said (a sync or the on-disk cache), else 503 |
//!
//! Invariants: http owns no state of its own. Every answer is computed from snapshots and
//! counters owned elsewhere ([`Sources`]), read when the request comes; nothing here can make
//! the DNS server or the sync wait. The token secret is never in `Sources`, so no page can
//! show it.

pub mod api;
pub mod metrics;
pub mod page;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::arp::ArpStats;
use crate::daemon::{Inputs, SyncStatus};
use crate::dns::DnsShared;
use crate::proxmox::client::ApiStats;
use metrics::DhcpReport;

/// Everything the HTTP server reads: shared snapshots and counters, owned by the daemon,
/// the DNS server, the Proxmox client, the ARP watcher and (later) the DHCP server.
#[derive(Clone)]
pub struct Sources {
    /// The DNS server's shared state: the published zone and the DNS counters.
    pub dns: Arc<DnsShared>,
    /// The Proxmox sync's status.
    pub sync: Arc<ArcSwap<SyncStatus>>,
    /// The inputs of the published zone.
    pub inputs: Arc<ArcSwap<Inputs>>,
    /// The Proxmox API request counters.
    pub api: Arc<ApiStats>,
    /// ARP counters, when the watcher runs.
    pub arp: Option<Arc<ArpStats>>,
    /// DHCP counters and pool, when the DHCP server runs.
    pub dhcp: Option<Arc<dyn DhcpReport>>,
    /// The parts the configuration asked for, and whether they run (ARP without
    /// CAP_NET_RAW does not): shown on the page and as `leazzard_component_up`.
    pub components: Vec<Component>,
}

/// One part of leazzard the configuration asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Component {
    /// `dns`, `dhcp`, `arp`.
    pub name: &'static str,
    /// Whether it runs.
    pub running: bool,
    /// Why not, and what it costs the user, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A running HTTP server. Call [`HttpServer::stop`] to end it.
pub struct HttpServer {
    local: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Binds `listen` (port 0 picks one) and starts serving. Must be called within a Tokio
    /// runtime.
    pub async fn start(listen: SocketAddr, sources: Sources) -> io::Result<HttpServer> {
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let (shutdown, mut stopped) = watch::channel(false);
        let app = router(sources);
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "HTTP server ended");
            }
        });
        tracing::info!(listen = %local, "HTTP server listening");
        Ok(HttpServer {
            local,
            shutdown,
            task,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting and ends open connections (waiting at most 2 s for requests in
    /// flight).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// The routes, over `sources`.
pub fn router(sources: Sources) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/records", get(api_records))
        .route("/api/v1/guests", get(api_guests))
        .route("/api/v1/leases", get(api_leases))
        .route("/api/v1/status", get(api_status))
        .fallback(not_found)
        .with_state(Arc::new(sources))
}

type Shared = State<Arc<Sources>>;

fn status_view(sources: &Sources) -> api::StatusView {
    let authority = sources.dns.authority.load();
    let mut view = api::status(
        &sources.inputs.load(),
        authority.zone(),
        &sources.sync.load(),
    );
    view.components.clone_from(&sources.components);
    view
}

/// `?part=main` asks for the refreshing part of the page only.
#[derive(serde::Deserialize)]
struct PageQuery {
    part: Option<String>,
}

async fn status_page(State(sources): Shared, Query(q): Query<PageQuery>) -> Response {
    let status = status_view(&sources);
    let html = match q.part.as_deref() {
        Some("main") => page::render_main(&status),
        _ => page::render_page(&status),
    };
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

async fn metrics_text(State(sources): Shared) -> Response {
    (
        [
            (CONTENT_TYPE, metrics::CONTENT_TYPE),
            (CACHE_CONTROL, "no-store"),
        ],
        metrics::render(&sources),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(sources): Shared) -> Response {
    if api::ready(&sources.sync.load(), &sources.inputs.load()) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no sync has read the Proxmox guest list yet and there is no cached inventory\n",
        )
            .into_response()
    }
}

async fn api_records(State(sources): Shared) -> Json<Vec<api::RecordView>> {
    Json(api::records(sources.dns.authority.load().zone()))
}

async fn api_guests(State(sources): Shared) -> Json<Vec<api::GuestView>> {
    let authority = sources.dns.authority.load();
    Json(api::guests(&sources.inputs.load(), authority.zone()))
}

async fn api_leases(State(sources): Shared) -> Json<Vec<api::LeaseView>> {
    let authority = sources.dns.authority.load();
    Json(api::leases(&sources.inputs.load(), authority.zone()))
}

async fn api_status(State(sources): Shared) -> Json<api::StatusView> {
    Json(status_view(&sources))
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "not found; try /, /metrics, /api/v1/guests, /api/v1/records, /api/v1/leases, /api/v1/status, /healthz, /readyz\n",
    )
}
