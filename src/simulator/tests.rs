//! End-to-end tests of the simulator over real HTTPS: reqwest + rustls trusting only the
//! simulator's CA, and a raw tokio-rustls client where the status line itself matters
//! (reqwest does not expose the reason phrase).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

async fn sample() -> Simulator {
    Simulator::start(Cluster::sample(), SimOptions::default())
        .await
        .expect("simulator starts")
}

fn client(sim: &Simulator, timeout: Duration) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA PEM parses");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(timeout)
        .build()
        .expect("client builds")
}

/// GET with the accepted token; returns status and parsed body (Null when empty).
async fn get(sim: &Simulator, path: &str) -> (u16, Value) {
    let response = client(sim, Duration::from_secs(5))
        .get(format!("{}/api2/json{path}", sim.base_url()))
        .header("Authorization", sim.authorization_header())
        .send()
        .await
        .expect("request succeeds");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (
        status,
        if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).expect("JSON body")
        },
    )
}

/// A raw HTTPS exchange: the whole response text and the server's certificate chain.
async fn raw(
    sim: &Simulator,
    path: &str,
    authorization: Option<&str>,
) -> (String, Vec<CertificateDer<'static>>) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(sim.ca_pem().as_bytes()).expect("CA DER"))
        .expect("CA added");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    let server = ServerName::IpAddress(sim.addr().ip().into());
    let mut tls = connector
        .connect(server, tcp)
        .await
        .expect("TLS handshake verifies against the CA");
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .expect("peer certificates")
        .to_vec();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /api2/json{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\r\n"
    );
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    // The server may close without close_notify; what was read so far is the answer.
    let _ = tls.read_to_end(&mut bytes).await;
    (String::from_utf8_lossy(&bytes).into_owned(), chain)
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

fn names(resources: &Value) -> Vec<String> {
    resources["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn sample_resource_list_has_the_real_shape() {
    let sim = sample().await;
    let (status, body) = get(&sim, "/cluster/resources?type=vm").await;
    assert_eq!(status, 200);
    let guests = body["data"].as_array().expect("data is a list");
    assert!(guests.len() >= 7, "{guests:?}");
    assert!(guests
        .iter()
        .all(|g| g["type"] == "qemu" || g["type"] == "lxc"));
    let template = guests
        .iter()
        .find(|g| g["vmid"] == 9000)
        .expect("template listed");
    assert_eq!(template["template"], 1);
    assert_eq!(template["name"], "ubuntu-2404-tmpl");
    let ct = guests.iter().find(|g| g["vmid"] == 200).expect("ct-dns");
    assert_eq!(
        (
            ct["id"].as_str(),
            ct["node"].as_str(),
            ct["name"].as_str(),
            ct["template"].as_u64()
        ),
        (Some("lxc/200"), Some("pve1"), Some("ct-dns"), Some(0))
    );
    for name in [
        "web1",
        "db1",
        "dyn-vm",
        "manual-vm",
        "ct-dhcp",
        "ct-git",
        "build-01",
    ] {
        assert!(names(&body).contains(&name.to_string()), "{name} missing");
    }
    let (_, all) = get(&sim, "/cluster/resources").await;
    let all = all["data"].as_array().expect("list");
    assert_eq!(all.iter().filter(|e| e["type"] == "node").count(), 2);
    assert_eq!(all.len(), guests.len() + 2);
}

#[tokio::test]
async fn qemu_config_and_cloudinit_dump_match_the_fixtures() {
    let sim = sample().await;
    let (status, config) = get(&sim, "/nodes/pve1/qemu/100/config").await;
    assert_eq!(status, 200);
    assert_eq!(
        config["data"]["ipconfig0"],
        "ip=198.18.0.20/23,gw=198.18.0.1"
    );
    assert_eq!(
        config["data"]["net0"],
        "virtio=BC:24:11:2E:6A:01,bridge=vmbr0,firewall=1"
    );
    let (status, dump) = get(&sim, "/nodes/pve1/qemu/100/cloudinit/dump?type=network").await;
    assert_eq!(status, 200);
    let fixture: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/proxmox/qemu-100-cloudinit-dump-network-v1.json"
    )))
    .expect("fixture");
    assert_eq!(dump, fixture);
    // No stored dump: generated from ipconfig0 like Proxmox does.
    let (_, generated) = get(&sim, "/nodes/pve2/qemu/110/cloudinit/dump?type=network").await;
    assert!(generated["data"]
        .as_str()
        .expect("yaml")
        .contains("address: '198.18.0.22'"));
    let (_, ct) = get(&sim, "/nodes/pve1/lxc/202/config").await;
    assert_eq!(ct["data"]["hostname"], "ct-git");
}

#[tokio::test]
async fn bad_token_gets_pveproxys_empty_401() {
    let sim = sample().await;
    let response = client(&sim, Duration::from_secs(5))
        .get(format!("{}/api2/json/version", sim.base_url()))
        .header(
            "Authorization",
            format!("PVEAPIToken={}=wrong", sim.token_id()),
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.text().await.expect("body"), "");
    let bad = format!("PVEAPIToken={}=wrong", sim.token_id());
    let (text, _) = raw(&sim, "/version", Some(&bad)).await;
    assert_eq!(status_line(&text), "HTTP/1.1 401 Authentication failed!");
    assert!(
        text.to_ascii_lowercase().contains("content-length: 0"),
        "{text}"
    );
    assert_eq!(body_of(&text), "");
    let (text, _) = raw(&sim, "/version", None).await;
    assert_eq!(status_line(&text), "HTTP/1.1 401 No ticket");
    // The right token works, with the 3 s-style delay only on failures.
    sim.handle()
        .set_auth_failure_delay(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (text, _) = raw(&sim, "/version", Some(&sim.authorization_header())).await;
    assert_eq!(status_line(&text), "HTTP/1.1 200 OK");
    assert!(started.elapsed() < Duration::from_millis(300));
    let (text, _) = raw(&sim, "/version", Some(&bad)).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(status_line(&text).starts_with("HTTP/1.1 401"));
    // A changed token: the old one fails, the new one works.
    let old = sim.authorization_header();
    sim.handle().set_token("root@pam!other", "s3cret");
    sim.handle().set_auth_failure_delay(Duration::ZERO);
    assert_eq!(
        sim.authorization_header(),
        "PVEAPIToken=root@pam!other=s3cret"
    );
    assert!(status_line(&raw(&sim, "/version", Some(&old)).await.0).starts_with("HTTP/1.1 401"));
    assert_eq!(get(&sim, "/version").await.1["data"]["release"], "9.0");
}

#[tokio::test]
async fn guest_on_another_node_is_a_missing_config_file() {
    let sim = sample().await;
    let (status, body) = get(&sim, "/nodes/pve2/qemu/100/config").await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"data": null, "message": "Configuration file 'nodes/pve2/qemu-server/100.conf' does not exist\n"})
    );
    let (status, body) = get(&sim, "/nodes/pve1/lxc/999/config").await;
    assert_eq!(status, 500);
    assert_eq!(
        body["message"],
        "Configuration file 'nodes/pve1/lxc/999.conf' does not exist\n"
    );
    let (text, _) = raw(
        &sim,
        "/nodes/pve1/qemu/999/config",
        Some(&sim.authorization_header()),
    )
    .await;
    assert_eq!(
        status_line(&text),
        "HTTP/1.1 500 Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"
    );
}

#[tokio::test]
async fn offline_node_answers_595_and_goes_stale() {
    let sim = sample().await;
    let handle = sim.handle();
    assert!(handle.set_node_online("pve2", false));
    let (text, _) = raw(
        &sim,
        "/nodes/pve2/qemu/102/config",
        Some(&sim.authorization_header()),
    )
    .await;
    assert_eq!(status_line(&text), "HTTP/1.1 595 No route to host");
    assert_eq!(body_of(&text), "");
    // The other node still answers; within 5 minutes pve2's guests keep their last state.
    assert_eq!(get(&sim, "/nodes/pve1/qemu/101/config").await.0, 200);
    let (_, list) = get(&sim, "/cluster/resources?type=vm").await;
    assert!(names(&list).contains(&"dyn-vm".to_string()));
    handle.set_node_stale("pve2", true);
    let (_, list) = get(&sim, "/cluster/resources").await;
    let list = list["data"].as_array().expect("list");
    let dyn_vm = list
        .iter()
        .find(|e| e["vmid"] == 102)
        .expect("still listed");
    assert_eq!(
        dyn_vm,
        &json!({"id": "qemu/102", "type": "qemu", "node": "pve2", "vmid": 102, "status": "unknown"})
    );
    let node = list
        .iter()
        .find(|e| e["id"] == "node/pve2")
        .expect("node entry");
    assert_eq!(node["status"], "offline");
    let (_, nodes) = get(&sim, "/nodes").await;
    assert_eq!(nodes["data"][1]["status"], "offline");
    assert_eq!(nodes["data"][0]["ssl_fingerprint"], sim.leaf_fingerprint());
    handle.set_node_online("pve2", true);
    handle.set_node_stale("pve2", false);
    assert_eq!(get(&sim, "/nodes/pve2/qemu/102/config").await.0, 200);
}

// Multi-threaded, as the integration tests may run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_fires_the_client_timeout_then_recovers() {
    let sim = sample().await;
    sim.handle().set_fault(Fault::Hang);
    let error = client(&sim, Duration::from_millis(300))
        .get(format!("{}/api2/json/version", sim.base_url()))
        .header("Authorization", sim.authorization_header())
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error:?}");
    sim.handle().set_fault(Fault::None);
    assert_eq!(get(&sim, "/version").await.0, 200);
}

#[tokio::test]
async fn refuse_closes_the_port_and_none_reopens_it() {
    let sim = sample().await;
    let warm = client(&sim, Duration::from_secs(5));
    let url = format!("{}/api2/json/version", sim.base_url());
    warm.get(&url)
        .header("Authorization", sim.authorization_header())
        .send()
        .await
        .expect("up");
    sim.handle().set_fault(Fault::Refuse);
    assert!(!sim.handle().is_listening());
    let refused = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let error = client(&sim, Duration::from_secs(5))
        .get(&url)
        .send()
        .await
        .expect_err("refused");
    assert!(error.is_connect(), "{error:?}");
    // From a plain thread, as sync test code would: the port is open again on return.
    let handle = sim.handle();
    std::thread::spawn(move || handle.set_fault(Fault::None))
        .join()
        .expect("thread");
    assert!(sim.handle().is_listening());
    let response = warm
        .get(&url)
        .header("Authorization", sim.authorization_header())
        .send()
        .await
        .expect("back");
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn fingerprint_is_the_served_leaf_in_pvenode_format() {
    let sim = sample().await;
    let fingerprint = sim.leaf_fingerprint();
    assert_eq!(fingerprint.len(), 95);
    assert!(fingerprint.split(':').all(|pair| pair.len() == 2
        && pair
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())));
    let (_, chain) = raw(&sim, "/version", Some(&sim.authorization_header())).await;
    assert_eq!(chain.len(), 1, "pve-ssl.pem is served without the CA");
    assert_eq!(tls::fingerprint(&chain[0]), fingerprint);
    let digest = Sha256::digest(chain[0].as_ref());
    assert_eq!(
        fingerprint,
        digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    );
}

#[tokio::test]
async fn rename_remove_and_upsert_show_in_the_resource_list() {
    let sim = sample().await;
    let handle = sim.handle();
    assert!(handle.rename_guest(100, "web1-new"));
    assert!(handle.rename_guest(200, "ct-dns2"));
    assert!(handle.remove_guest(101).is_some());
    let mut config = serde_json::Map::new();
    config.insert("name".into(), json!("fresh"));
    config.insert(
        "net0".into(),
        json!("virtio=BC:24:11:AA:00:01,bridge=vmbr0"),
    );
    handle.upsert_guest(SimGuest::new(150, GuestKind::Qemu, "pve1", config));
    let (_, list) = get(&sim, "/cluster/resources?type=vm").await;
    let names = names(&list);
    for present in ["web1-new", "ct-dns2", "fresh"] {
        assert!(names.contains(&present.to_string()), "{present}: {names:?}");
    }
    for gone in ["web1", "db1", "ct-dns"] {
        assert!(!names.contains(&gone.to_string()), "{gone}: {names:?}");
    }
    let (_, config) = get(&sim, "/nodes/pve1/lxc/200/config").await;
    assert_eq!(config["data"]["hostname"], "ct-dns2");
    assert_eq!(get(&sim, "/nodes/pve1/qemu/101/config").await.0, 500);
    assert!(!handle.rename_guest(4242, "nope"));
}

// Multi-threaded, as the integration tests may run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_server_and_guest_faults() {
    let sim = sample().await;
    let handle = sim.handle();
    handle.set_fault(Fault::Status500);
    let (status, body) = get(&sim, "/cluster/resources").await;
    assert_eq!((status, body["data"].clone()), (500, Value::Null));
    assert!(body["message"].as_str().expect("message").ends_with('\n'));
    handle.set_fault(Fault::Unauthorized);
    assert_eq!(get(&sim, "/version").await, (401, Value::Null));
    handle.set_fault(Fault::GuestFault(100, GuestFaultKind::Status595));
    assert_eq!(
        get(&sim, "/nodes/pve1/qemu/100/config").await,
        (595, Value::Null)
    );
    assert_eq!(
        get(&sim, "/nodes/pve1/qemu/100/cloudinit/dump?type=network")
            .await
            .0,
        595
    );
    assert_eq!(get(&sim, "/nodes/pve1/qemu/101/config").await.0, 200);
    handle.set_fault(Fault::GuestFault(200, GuestFaultKind::Status500));
    assert_eq!(get(&sim, "/nodes/pve1/lxc/200/config").await.0, 500);
    handle.set_fault(Fault::GuestFault(101, GuestFaultKind::Hang));
    let hung = client(&sim, Duration::from_millis(200))
        .get(format!(
            "{}/api2/json/nodes/pve1/qemu/101/config",
            sim.base_url()
        ))
        .header("Authorization", sim.authorization_header())
        .send()
        .await
        .expect_err("hangs");
    assert!(hung.is_timeout());
    assert_eq!(get(&sim, "/cluster/resources").await.0, 200);
    handle.set_fault(Fault::None);
    assert_eq!(get(&sim, "/nodes/pve1/qemu/101/config").await.0, 200);
}

#[tokio::test]
async fn permissions_gate_like_pveproxy() {
    let sim = sample().await;
    let (_, perms) = get(&sim, "/access/permissions").await;
    assert_eq!(perms["data"], json!({"/vms": {"VM.Audit": 1}}));
    assert_eq!(
        get(&sim, "/access/permissions?path=/").await.1["data"],
        json!({"/": {}})
    );
    let (status, body) = get(&sim, "/cluster/status").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Permission check failed (/, Sys.Audit)\n"))
    );
    // Only /vms/100 audited: the list shrinks silently, other configs answer 403.
    let mut only_web1 = serde_json::Map::new();
    only_web1.insert("/vms/100".into(), json!({"VM.Audit": 1}));
    only_web1.insert("/".into(), json!({"Sys.Audit": 1}));
    sim.handle().set_permissions(only_web1);
    let (_, list) = get(&sim, "/cluster/resources?type=vm").await;
    assert_eq!(names(&list), vec!["web1".to_string()]);
    assert_eq!(get(&sim, "/nodes/pve1/qemu/101/config").await.0, 403);
    let (status, cluster) = get(&sim, "/cluster/status").await;
    assert_eq!(
        (status, cluster["data"][1]["ip"].as_str()),
        (200, Some("198.18.0.5"))
    );
}

#[tokio::test]
async fn unknown_paths_and_bad_parameters() {
    let sim = sample().await;
    let auth = sim.authorization_header();
    let (text, _) = raw(
        &sim,
        "/nodes/pve1/qemu/100/agent/network-get-interfaces",
        Some(&auth),
    )
    .await;
    assert_eq!(status_line(&text), "HTTP/1.1 501 Method 'GET /nodes/pve1/qemu/100/agent/network-get-interfaces' not implemented");
    assert_eq!(body_of(&text), r#"{"data":null}"#);
    let (status, body) = get(&sim, "/nodes/pve1/qemu/abc/config").await;
    assert_eq!(
        (status, body["errors"]["vmid"].as_str()),
        (400, Some("value does not look like a valid VM ID"))
    );
    assert_eq!(
        get(&sim, "/nodes/pve1/qemu/100/cloudinit/dump").await.0,
        400
    );
    assert_eq!(get(&sim, "/nodes/nosuch/qemu/100/config").await.0, 500);
}

#[tokio::test]
async fn request_log_counts_by_path_prefix() {
    let sim = sample().await;
    get(&sim, "/cluster/resources?type=vm").await;
    get(&sim, "/nodes/pve1/qemu/100/config").await;
    get(&sim, "/nodes/pve1/qemu/101/config").await;
    let handle = sim.handle();
    assert_eq!(handle.request_count("/api2/json/nodes/pve1/qemu/"), 2);
    assert_eq!(handle.request_count("/api2/json/cluster/resources"), 1);
    let first = &handle.requests()[0];
    assert_eq!(
        (first.method.as_str(), first.query.as_deref()),
        ("GET", Some("type=vm"))
    );
    handle.clear_requests();
    assert_eq!(handle.request_count("/"), 0);
}

#[tokio::test]
async fn shutdown_and_drop_leave_no_tasks_or_port() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline = metrics.num_alive_tasks();
    let sim = sample().await;
    let addr = sim.addr();
    // A keep-alive connection, so a connection task is alive at drop time.
    let auth = sim.authorization_header();
    let _ = raw(&sim, "/version", Some(&auth)).await;
    let idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(metrics.num_alive_tasks() > baseline);
    drop(sim);
    for _ in 0..100 {
        if metrics.num_alive_tasks() == baseline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metrics.num_alive_tasks(), baseline);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    drop(idle);

    let sim = sample().await;
    let addr = sim.addr();
    let handle = sim.handle();
    sim.shutdown().await;
    assert_eq!(metrics.num_alive_tasks(), baseline);
    // A handle that outlives the server cannot re-open the port.
    handle.set_fault(Fault::None);
    assert!(!handle.is_listening());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
