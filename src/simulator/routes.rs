//! The HTTP side: one TLS connection served by hyper, the pveproxy front (request log,
//! whole-server faults, token check, per-guest faults) and the axum routes that answer from
//! the [`Cluster`](super::Cluster) through `model`.
//!
//! Invariant: the state lock is taken only in synchronous sections (never across `.await`);
//! handlers copy what they need and render outside it where that matters.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, PRAGMA, SERVER,
};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use hyper::body::Incoming;
use hyper::ext::ReasonPhrase;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;

use super::model::{self, GuestKind, SimGuest};
use super::{Fault, GuestFaultKind, Shared};

/// A TLS handshake that takes longer than this is dropped, so idle sockets cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What pveproxy says when pmxcfs (the cluster filesystem) is down.
const PMXCFS_DOWN: &str = "ipcc_send_rec[1] failed: Connection refused";

/// The routes of the implemented endpoints; anything else answers 501 like pveproxy.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api2/json/version", get(version))
        .route("/api2/json/cluster/resources", get(cluster_resources))
        .route("/api2/json/cluster/status", get(cluster_status))
        .route("/api2/json/nodes", get(nodes))
        .route("/api2/json/access/permissions", get(access_permissions))
        .route(
            "/api2/json/nodes/{node}/qemu/{vmid}/config",
            get(qemu_config),
        )
        .route("/api2/json/nodes/{node}/lxc/{vmid}/config", get(lxc_config))
        .route(
            "/api2/json/nodes/{node}/qemu/{vmid}/cloudinit/dump",
            get(cloudinit_dump),
        )
        .fallback(not_implemented)
        .method_not_allowed_fallback(not_implemented)
        .with_state(shared)
}

/// Serves one accepted TCP connection: TLS handshake, then HTTP/1.1 with keep-alive. Ends
/// early on shutdown and on [`Fault::Refuse`] (a stopped pveproxy drops its connections).
pub(super) async fn serve_connection(
    shared: Arc<Shared>,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut fault = shared.fault.subscribe();
    let serve = {
        let shared = shared.clone();
        async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    return tracing::debug!(%peer, error = %err, "simulator TLS handshake failed")
                }
                Err(_) => return tracing::debug!(%peer, "simulator TLS handshake timed out"),
            };
            let service = TowerToHyperService::new(router);
            let front = hyper::service::service_fn(move |request| {
                front(shared.clone(), service.clone(), request)
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(tls), front);
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "simulator connection closed");
            }
        }
    };
    tokio::select! {
        () = serve => {}
        () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {}
        () = async { let _ = fault.wait_for(|f| *f == Fault::Refuse).await; } => {}
    }
}

/// pveproxy's part before the API handler: log, whole-server faults, authentication,
/// per-guest faults. An `Err` makes hyper close the connection without an answer.
async fn front(
    shared: Arc<Shared>,
    router: TowerToHyperService<Router>,
    request: Request<Incoming>,
) -> Result<Response<Body>, io::Error> {
    let path = request.uri().path().to_string();
    shared.record(request.method().as_str(), &path, request.uri().query());
    let fault = *shared.fault.borrow();
    let response = match fault {
        Fault::Hang => return hang(&shared, fault).await,
        // Only reachable in the instant between accept and the fault change.
        Fault::Refuse => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "refusing")),
        Fault::Unauthorized => auth_failure(&shared, "Authentication failed!").await,
        Fault::Status500 => api_error(StatusCode::INTERNAL_SERVER_ERROR, PMXCFS_DOWN),
        Fault::None | Fault::GuestFault(..) => match authenticate(&shared, request.headers()) {
            Err(reason) => auth_failure(&shared, reason).await,
            Ok(()) => match (fault, guest_call(&path)) {
                (Fault::GuestFault(vmid, kind), Some((node, guest_kind, called)))
                    if vmid == called =>
                {
                    match kind {
                        GuestFaultKind::Hang => return hang(&shared, fault).await,
                        GuestFaultKind::Status595 => empty(
                            StatusCode::from_u16(595).unwrap_or(StatusCode::BAD_GATEWAY),
                            "No route to host",
                        ),
                        GuestFaultKind::Status500 => api_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            &lock_timeout(node, guest_kind, vmid),
                        ),
                    }
                }
                // The router's error type is Infallible.
                _ => router
                    .call(request)
                    .await
                    .unwrap_or_else(|never| match never {}),
            },
        },
    };
    let mut response = response;
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("pve-api-daemon/3.0"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=0"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    tracing::debug!(path = %path, status = response.status().as_u16(), "simulator answered");
    Ok(response)
}

/// Never answers: waits until the fault that hangs this request is lifted, then drops the
/// connection, so hung requests do not outlive the test step that made them.
async fn hang(shared: &Shared, fault: Fault) -> Result<Response<Body>, io::Error> {
    let mut changes = shared.fault.subscribe();
    // An Err means the simulator is gone; either way the request ends unanswered.
    let _ = changes.wait_for(|now| *now != fault).await.map(drop);
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "hung request released",
    ))
}

/// `/api2/json/nodes/{node}/{qemu|lxc}/{vmid}/…`: a call about one guest.
fn guest_call(path: &str) -> Option<(&str, GuestKind, u32)> {
    let mut parts = path.strip_prefix("/api2/json/nodes/")?.split('/');
    let node = parts.next()?;
    let kind = match parts.next()? {
        "qemu" => GuestKind::Qemu,
        "lxc" => GuestKind::Lxc,
        _ => return None,
    };
    let vmid = parts.next()?.parse().ok()?;
    parts.next().filter(|rest| !rest.is_empty())?;
    Some((node, kind, vmid))
}

/// A plausible 500 for one guest's call: the config lock timed out.
fn lock_timeout(node: &str, kind: GuestKind, vmid: u32) -> String {
    match kind {
        GuestKind::Qemu => format!(
            "can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout (node {node})"
        ),
        GuestKind::Lxc => format!(
            "can't lock file '/run/lock/lxc/pve-config-{vmid}.lock' - got timeout (node {node})"
        ),
    }
}

/// Checks `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`; the error is the reason
/// phrase pveproxy would send (`No ticket` when there is no credential at all).
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<(), &'static str> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err("No ticket");
    };
    let state = shared.state();
    let expected = format!("PVEAPIToken={}={}", state.token_id, state.token_secret);
    if value.as_bytes() == expected.as_bytes() {
        Ok(())
    } else {
        Err("Authentication failed!")
    }
}

/// pveproxy's 401: after the configured delay, an empty body, the reason phrase only, and the
/// connection closed.
async fn auth_failure(shared: &Shared, reason: &str) -> Response<Body> {
    let delay = shared.state().auth_failure_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = empty(StatusCode::UNAUTHORIZED, reason);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn with_reason(mut response: Response<Body>, reason: &str) -> Response<Body> {
    // A reason phrase may not hold CR/LF or other control bytes; then hyper's default stays.
    if let Ok(reason) = ReasonPhrase::try_from(reason.to_string()) {
        response.extensions_mut().insert(reason);
    }
    response
}

/// A response with no body (hyper sends `Content-Length: 0`) and the given reason phrase.
fn empty(status: StatusCode, reason: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    with_reason(response, reason)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

/// `200 {"data": …}`.
fn api_ok(data: Value) -> Response<Body> {
    json_response(StatusCode::OK, &json!({ "data": data }))
}

/// `{"data": null, "message": "…\n"}`, reason phrase = the message's first line.
fn api_error(status: StatusCode, message: &str) -> Response<Body> {
    let message = message.trim_end_matches('\n');
    let reason = message.lines().next().unwrap_or_default();
    with_reason(
        json_response(
            status,
            &json!({"data": null, "message": format!("{message}\n")}),
        ),
        reason,
    )
}

/// 400 `Parameter verification failed.` with the per-parameter `errors`.
fn parameter_error(parameter: &str, problem: &str) -> Response<Body> {
    let body = json!({"data": null, "errors": {parameter: problem}, "message": "Parameter verification failed.\n"});
    with_reason(
        json_response(StatusCode::BAD_REQUEST, &body),
        "Parameter verification failed.",
    )
}

fn permission_denied(path: &str, privilege: &str) -> Response<Body> {
    api_error(
        StatusCode::FORBIDDEN,
        &format!("Permission check failed ({path}, {privilege})"),
    )
}

async fn not_implemented(method: Method, uri: Uri) -> Response<Body> {
    let Some(api_path) = uri.path().strip_prefix("/api2/json") else {
        return empty(StatusCode::NOT_FOUND, "Not Found");
    };
    let reason = format!("Method '{method} {api_path}' not implemented");
    with_reason(
        json_response(StatusCode::NOT_IMPLEMENTED, &json!({"data": null})),
        &reason,
    )
}

async fn version(State(shared): State<Arc<Shared>>) -> Response<Body> {
    api_ok(shared.state().version.clone())
}

async fn cluster_resources(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response<Body> {
    let kind = query.get("type").map(String::as_str);
    let (with_nodes, with_guests) = match kind {
        None => (true, true),
        Some("vm") => (false, true),
        Some("node") => (true, false),
        // Real types this simulator has nothing of.
        Some("storage" | "sdn" | "pool") => (false, false),
        Some(other) => {
            let problem = format!(
                "value '{other}' does not have a value in the enumeration 'vm, storage, node, sdn'"
            );
            return parameter_error("type", &problem);
        }
    };
    let state = shared.state();
    let mut entries = Vec::new();
    if with_nodes {
        entries.extend(
            state
                .cluster
                .nodes
                .iter()
                .map(|n| model::node_resource(n, &state.stale)),
        );
    }
    if with_guests {
        // Guests the token may not audit are left out silently, never a 403.
        entries.extend(
            state
                .cluster
                .guests
                .iter()
                .filter(|g| {
                    model::has_privilege(
                        &state.permissions,
                        &format!("/vms/{}", g.vmid),
                        "VM.Audit",
                    )
                })
                .map(|g| model::guest_resource(g, state.stale.contains(&g.node))),
        );
    }
    drop(state);
    api_ok(Value::Array(entries))
}

async fn cluster_status(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let state = shared.state();
    if !model::has_privilege(&state.permissions, "/", "Sys.Audit") {
        return permission_denied("/", "Sys.Audit");
    }
    let nodes = &state.cluster.nodes;
    let online = nodes.iter().filter(|n| n.online).count();
    let mut entries = vec![
        json!({"type": "cluster", "id": "cluster", "name": "lab", "nodes": nodes.len(),
                                  "quorate": u8::from(online * 2 > nodes.len()), "version": nodes.len() + 2}),
    ];
    for (index, node) in nodes.iter().enumerate() {
        // Nodes get 198.18.0.5, .6, … in list order; the first is the one "contacted".
        entries.push(json!({"type": "node", "id": format!("node/{}", node.name), "name": node.name,
                            "nodeid": index + 1, "ip": format!("198.18.0.{}", 5 + index),
                            "local": u8::from(index == 0), "online": u8::from(node.online), "level": ""}));
    }
    api_ok(Value::Array(entries))
}

async fn nodes(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let state = shared.state();
    let entries = state
        .cluster
        .nodes
        .iter()
        .map(|n| model::node_index_entry(n, &state.stale, &shared.fingerprint))
        .collect();
    api_ok(Value::Array(entries))
}

async fn access_permissions(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response<Body> {
    let state = shared.state();
    match query.get("path") {
        None => api_ok(Value::Object(state.permissions.clone())),
        Some(path) => {
            let mut only = Map::new();
            only.insert(
                path.clone(),
                Value::Object(model::effective_privileges(&state.permissions, path)),
            );
            api_ok(Value::Object(only))
        }
    }
}

/// The checks in pveproxy's order for a call about one guest on one node: parameters,
/// permission (on the contacted node, so before proxying), the node (unknown: hostname
/// lookup fails; down: 595), then the config file on that node.
fn load_guest(
    shared: &Shared,
    kind: GuestKind,
    node: &str,
    vmid: &str,
) -> Result<SimGuest, Box<Response<Body>>> {
    let vmid = match vmid.parse::<u32>() {
        Ok(id) if (100..=999_999_999).contains(&id) => id,
        _ => {
            return Err(Box::new(parameter_error(
                "vmid",
                "value does not look like a valid VM ID",
            )))
        }
    };
    let state = shared.state();
    let acl_path = format!("/vms/{vmid}");
    if !model::has_privilege(&state.permissions, &acl_path, "VM.Audit") {
        return Err(Box::new(permission_denied(&acl_path, "VM.Audit")));
    }
    match state.cluster.node(node) {
        None => {
            let message = format!("hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known");
            return Err(Box::new(api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &message,
            )));
        }
        Some(n) if !n.online => {
            return Err(Box::new(empty(
                StatusCode::from_u16(595).unwrap_or(StatusCode::BAD_GATEWAY),
                "No route to host",
            )));
        }
        Some(_) => {}
    }
    match state
        .cluster
        .guests
        .iter()
        .find(|g| g.vmid == vmid && g.node == node && g.kind == kind)
    {
        Some(guest) => Ok(guest.clone()),
        None => {
            let message = format!(
                "Configuration file 'nodes/{node}/{}/{vmid}.conf' does not exist",
                super::model::config_dir(kind)
            );
            Err(Box::new(api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &message,
            )))
        }
    }
}

/// The config as `GET …/config` returns it: `template: 1` for templates, `cipassword`
/// masked, a `digest` always present.
fn render_config(guest: &SimGuest) -> Value {
    let mut config = guest.config.clone();
    if guest.template {
        config.insert("template".to_string(), Value::from(1));
    }
    if guest.kind == GuestKind::Qemu && config.contains_key("cipassword") {
        config.insert("cipassword".to_string(), Value::from("**********"));
    }
    if !config.contains_key("digest") {
        config.insert(
            "digest".to_string(),
            Value::from(model::config_digest(&guest.config)),
        );
    }
    Value::Object(config)
}

async fn qemu_config(
    State(shared): State<Arc<Shared>>,
    Path((node, vmid)): Path<(String, String)>,
) -> Response<Body> {
    match load_guest(&shared, GuestKind::Qemu, &node, &vmid) {
        Ok(guest) => api_ok(render_config(&guest)),
        Err(response) => *response,
    }
}

async fn lxc_config(
    State(shared): State<Arc<Shared>>,
    Path((node, vmid)): Path<(String, String)>,
) -> Response<Body> {
    match load_guest(&shared, GuestKind::Lxc, &node, &vmid) {
        Ok(guest) => api_ok(render_config(&guest)),
        Err(response) => *response,
    }
}

async fn cloudinit_dump(
    State(shared): State<Arc<Shared>>,
    Path((node, vmid)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response<Body> {
    let kind = match query.get("type").map(String::as_str) {
        None => return parameter_error("type", "property is missing and it is not optional"),
        Some(kind @ ("network" | "user" | "meta")) => kind,
        Some(other) => {
            let problem = format!(
                "value '{other}' does not have a value in the enumeration 'user, network, meta'"
            );
            return parameter_error("type", &problem);
        }
    };
    let guest = match load_guest(&shared, GuestKind::Qemu, &node, &vmid) {
        Ok(guest) => guest,
        Err(response) => return *response,
    };
    let text = match kind {
        "network" => guest
            .cloudinit_network
            .clone()
            .unwrap_or_else(|| model::generated_cloudinit_network(&guest.config)),
        "user" => format!(
            "#cloud-config\nhostname: {}\nmanage_etc_hosts: true\nchpasswd:\n  expire: False\n",
            guest.name()
        ),
        _ => format!("instance-id: {}\n", model::config_digest(&guest.config)),
    };
    api_ok(Value::String(text))
}
