//! The HTTP side of the real binary, against the simulated Proxmox API: `/metrics` read with a
//! Prometheus text-format parser, the JSON API, `/healthz` and `/readyz`, and the status page
//! as headless Chromium renders it (its table read from the DOM). What a user or a scraper
//! sees; the secret appears nowhere.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use leazzard::simulator::{Fault, GuestFaultKind};
use prometheus_parse::{Scrape, Value};
use support::{env_for, set, static_guest, wait_until, Leazzard, Sim};

const SOON: Duration = Duration::from_secs(10);

/// An HTTP answer: status, headers (lowercase names), body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// `GET path` over a fresh connection, HTTP/1.1 with `Connection: close`.
fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect to the HTTP server");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<HashMap<_, _>>();
    // Chunked bodies (axum streams none here, but be safe): undo the framing.
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// Starts leazzard with an HTTP server on a free loopback port; its address.
fn start_with_http(env: &mut Vec<(String, String)>) -> (Leazzard, SocketAddr) {
    set(env, "HTTP_LISTEN", Some("127.0.0.1:0"));
    let lz = Leazzard::start(env);
    let addr = wait_until(SOON, || {
        lz.output()
            .lines()
            .find(|l| l.contains("HTTP server listening"))
            .and_then(|l| l.split("listen=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse::<SocketAddr>().ok())
    })
    .unwrap_or_else(|| panic!("no HTTP server; output:\n{}", lz.output()));
    (lz, addr)
}

fn scrape(addr: SocketAddr) -> (Scrape, String) {
    let answer = get(addr, "/metrics");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let lines = answer.body.lines().map(|l| Ok(l.to_string()));
    let parsed = Scrape::parse(lines).expect("valid Prometheus text format");
    (parsed, answer.body)
}

/// The value of the one sample named `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
        .collect();
    assert!(found.len() <= 1, "{metric} {labels:?}: {found:?}");
    found.first().copied()
}

#[test]
fn metrics_and_json_api_as_a_scraper_and_a_script_see_them() {
    let sim = Sim::start();
    let handle = sim.sim.handle();
    let mut env = env_for(&sim.sim);
    let (lz, http) = start_with_http(&mut env);
    support::assert_sample_resolves(&lz);
    // Then one guest's calls fail (its node unreachable): an API error and a guest error to
    // see; the guest keeps its last known state.
    handle.set_fault(Fault::GuestFault(101, GuestFaultKind::Status595));

    // DNS traffic of several types and outcomes.
    lz.expect_answer(&["nope.lab"], &[], SOON);
    lz.expect_answer(&["web1.lab", "AAAA"], &[], SOON);
    lz.expect_answer(&["-x", "198.18.0.20"], &["web1.lab."], SOON);
    // Upstream is the discard port: forwarding fails, SERVFAIL, counted.
    let _ = lz.dig(&["example.com"]);

    let (m, text) = wait_until(SOON, || {
        let (m, text) = scrape(http);
        let forwarded_error = value(&m, "leazzard_dns_forward_errors_total", &[]) >= Some(1.0);
        let guest_error = value(&m, "leazzard_sync_guest_errors", &[]) >= Some(1.0);
        (forwarded_error && guest_error).then_some((m, text))
    })
    .unwrap_or_else(|| panic!("metrics never showed the failures:\n{}", scrape(http).1));

    // Every sample line was understood by the parser (none silently skipped).
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    let histogram_lines = text
        .lines()
        .filter(|l| l.starts_with("leazzard_sync_duration_seconds_bucket"))
        .count();
    assert_eq!(
        m.samples.len(),
        sample_lines - histogram_lines + 1,
        "unparsed lines in:\n{text}"
    );

    // One info series per published name, with its labels.
    for (name, addr) in support::SAMPLE_STATIC {
        assert_eq!(
            value(
                &m,
                "leazzard_record_info",
                &[("name", name), ("address", addr), ("source", "static")]
            ),
            Some(1.0),
            "{name}"
        );
    }
    assert_eq!(
        value(&m, "leazzard_record_info", &[("name", "web1.lab")]),
        Some(1.0)
    );
    let web1 = m
        .samples
        .iter()
        .find(|s| s.metric == "leazzard_record_info" && s.labels.get("name") == Some("web1.lab"))
        .unwrap();
    assert_eq!(web1.labels.get("vmid"), Some("100"));
    assert_eq!(
        value(&m, "leazzard_records", &[("source", "static")]),
        Some(support::SAMPLE_STATIC.len() as f64)
    );
    assert_eq!(
        value(&m, "leazzard_records", &[("source", "lease")]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "leazzard_records", &[("source", "arp")]),
        Some(0.0)
    );

    // DNS by type and rcode.
    for (qtype, rcode) in [
        ("A", "NOERROR"),
        ("A", "NXDOMAIN"),
        ("AAAA", "NOERROR"),
        ("PTR", "NOERROR"),
    ] {
        let n = value(
            &m,
            "leazzard_dns_queries_total",
            &[("type", qtype), ("rcode", rcode)],
        );
        assert!(n >= Some(1.0), "{qtype} {rcode}: {n:?}");
    }

    // The sync: histogram, results, age, API requests and errors by endpoint and status.
    let count = value(&m, "leazzard_sync_duration_seconds_count", &[]).unwrap();
    assert!(count >= 1.0, "{count}");
    assert_eq!(
        value(&m, "leazzard_sync_duration_seconds", &[]),
        Some(count),
        "+Inf bucket = count"
    );
    assert!(value(&m, "leazzard_syncs_total", &[("result", "ok")]) >= Some(1.0));
    assert_eq!(
        value(&m, "leazzard_syncs_total", &[("result", "failed")]),
        Some(0.0)
    );
    let age = value(&m, "leazzard_sync_last_success_age_seconds", &[]).unwrap();
    assert!((0.0..10.0).contains(&age), "{age}");
    assert!(
        value(
            &m,
            "leazzard_proxmox_api_requests_total",
            &[("endpoint", "/cluster/resources"), ("status", "200")]
        ) >= Some(1.0)
    );
    let config_errors = value(
        &m,
        "leazzard_proxmox_api_errors_total",
        &[
            ("endpoint", "/nodes/:node/qemu/:vmid/config"),
            ("status", "595"),
        ],
    );
    assert!(config_errors >= Some(1.0), "{config_errors:?}");
    assert_eq!(value(&m, "leazzard_guests", &[]), Some(11.0));
    assert!(!text.contains(&sim.sim.token_secret()));

    // JSON for scripts.
    let records: serde_json::Value =
        serde_json::from_str(&get(http, "/api/v1/records").body).unwrap();
    let web1 = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "web1.lab")
        .expect("web1 in /api/v1/records");
    assert_eq!(web1["address"], "198.18.0.20");
    assert_eq!(web1["source"], "static");
    assert_eq!(web1["vmid"], 100);
    assert_eq!(web1["node"], "pve1");
    assert_eq!(web1["ptr"], true);

    let answer = get(http, "/api/v1/guests");
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let guests: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let guests = guests.as_array().unwrap();
    assert_eq!(guests.len(), 11);
    let g100 = guests.iter().find(|g| g["vmid"] == 100).unwrap();
    assert_eq!(g100["names"], serde_json::json!(["web1.lab"]));
    assert_eq!(g100["kind"], "qemu");
    assert_eq!(g100["status"], "running");
    assert_eq!(g100["nics"][0]["address"], "198.18.0.20");
    assert_eq!(g100["nics"][0]["source"], "static");
    assert_eq!(g100["nics"][1]["configured"], "dhcp");
    assert!(g100["nics"][1].get("address").is_none());
    let template = guests.iter().find(|g| g["template"] == true).unwrap();
    assert_eq!(template["names"], serde_json::json!([]));

    let leases = get(http, "/api/v1/leases");
    assert_eq!(leases.status, 200);
    assert_eq!(leases.body, "[]");

    let status: serde_json::Value =
        serde_json::from_str(&get(http, "/api/v1/status").body).unwrap();
    assert_eq!(status["ready"], true);
    assert_eq!(status["sync"]["guest_errors"][0]["vmid"], 101);

    assert_eq!(get(http, "/nope").status, 404);
    for path in [
        "/",
        "/api/v1/records",
        "/api/v1/guests",
        "/api/v1/status",
        "/metrics",
    ] {
        assert!(
            !get(http, path).body.contains(&sim.sim.token_secret()),
            "secret in {path}"
        );
    }
}

#[test]
fn healthz_readyz_and_http_listen() {
    let sim = Sim::start();
    let handle = sim.sim.handle();
    handle.set_fault(Fault::Refuse);
    let mut env = env_for(&sim.sim);
    let (lz, http) = start_with_http(&mut env);
    assert_eq!(get(http, "/healthz").status, 200);
    // No sync has read the guest list, no cached inventory: not ready.
    let ready = get(http, "/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("not ready"));
    handle.set_fault(Fault::None);
    wait_until(SOON, || (get(http, "/readyz").status == 200).then_some(()))
        .unwrap_or_else(|| panic!("never ready; output:\n{}", lz.output()));
    drop(lz);

    // HTTP_LISTEN empty: no HTTP server at all.
    let env = env_for(&sim.sim);
    assert_eq!(
        env.iter()
            .find(|(k, _)| k == "HTTP_LISTEN")
            .map(|(_, v)| v.as_str()),
        Some("")
    );
    let lz = Leazzard::start(&env);
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], SOON);
    assert!(
        !lz.output().contains("HTTP server listening"),
        "{}",
        lz.output()
    );
}

/// Debian's chromium, if installed.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    })
}

/// Chromium's DOM of `url` after its scripts ran (virtual time, so no real wait).
fn dump_dom(chromium: &PathBuf, url: &str) -> String {
    let profile = tempfile::tempdir().expect("temp dir");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of each cell of the row `<tr data-vmid="vmid">` of `table_id`.
fn row_cells(dom: &str, table_id: &str, vmid: u32) -> Vec<String> {
    let table = dom
        .split(&format!("<table id=\"{table_id}\""))
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no table {table_id} in the DOM:\n{dom}"));
    let row = table
        .split(&format!("<tr data-vmid=\"{vmid}\""))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row for {vmid}:\n{table}"));
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let mut text = String::new();
            let mut in_tag = true; // the rest of the <td ...> tag comes first
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

#[test]
fn status_page_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not installed, and CI must run the status page test (.ci/run installs it)");
        }
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED status_page_in_headless_chromium: chromium is not installed (apt-get install chromium) ***\n"
        );
        return;
    };
    let sim = Sim::start();
    let handle = sim.sim.handle();
    // A conflict, and a name that must be shown as text, not markup.
    handle.upsert_guest(static_guest(
        130,
        "web1",
        "BC:24:11:00:13:01",
        "198.18.0.130",
    ));
    handle.upsert_guest(static_guest(
        131,
        "<b>bold</b>",
        "BC:24:11:00:13:11",
        "198.18.0.131",
    ));
    let mut env = env_for(&sim.sim);
    let (lz, http) = start_with_http(&mut env);
    lz.expect_answer(&["web1-130.lab"], &["198.18.0.130"], SOON);

    let dom = dump_dom(&chromium, &format!("http://{http}/"));
    // The script ran and swapped in a fresh <main> (the page refreshes without a reload).
    assert!(
        dom.contains("data-refreshes=\""),
        "no refresh happened:\n{dom}"
    );
    let web1 = row_cells(&dom, "guests", 100);
    assert_eq!(web1[0], "web1.lab");
    assert_eq!(&web1[1..5], ["100", "pve1", "qemu", "running"]);
    assert!(
        web1[5].contains("198.18.0.20 static config net0 BC:24:11:2E:6A:01"),
        "{web1:?}"
    );
    assert!(web1[5].contains("dhcp: no lease seen net1"), "{web1:?}");
    let ct = row_cells(&dom, "guests", 200);
    assert_eq!(&ct[..4], ["ct-dns.lab", "200", "pve1", "lxc"]);
    assert!(ct[5].contains("198.18.0.10 static config"), "{ct:?}");
    let loser = row_cells(&dom, "guests", 130);
    assert_eq!(loser[0], "web1-130.lab");
    // The guest named with markup: its name is text, sanitised for DNS.
    let bold = row_cells(&dom, "guests", 131);
    assert_eq!(bold[0], "b-bold-b.lab");
    assert!(!dom.contains("<b>bold</b>"), "markup from a guest name");
    // Sync, conflicts, devices.
    assert!(dom.contains("in sync"), "{dom}");
    assert!(
        dom.contains("<b>web1</b>: guest 100 has it; the others are published as web1-130"),
        "{dom}"
    );
    assert!(dom.contains("id=\"devices-none\""), "{dom}");
    assert!(!dom.contains(&sim.sim.token_secret()));
}
