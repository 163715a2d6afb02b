//! The status page: one server-rendered HTML page (`/`) whose `<main>` the embedded script
//! replaces every few seconds with a fresh copy from `?part=main`, so the page stays live
//! without a full reload. No external assets: the CSS and the script are embedded in the
//! binary (`include_str!`) and inlined, so the page works in an offline lab. Links are
//! relative, so the page also works behind a reverse proxy on a sub-path.
//!
//! Invariants: pure rendering of a [`StatusView`]; every text that comes from outside
//! (guest names, tags, errors, hostnames) is HTML-escaped.

use std::fmt::Write;

use super::api::{GuestView, StatusView};

const STYLE: &str = include_str!("assets/page.css");
const SCRIPT: &str = include_str!("assets/page.js");

/// Escapes `text` for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn render_page(status: &StatusView) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>leazzard · {domain}</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>leazzard</h1><span id="live" class="live" title="refreshes every 5 seconds">live</span></header>
<main id="main">
{main}</main>
<footer>JSON: <a href="api/v1/guests">guests</a> · <a href="api/v1/records">records</a> · <a href="api/v1/leases">leases</a> · <a href="api/v1/status">status</a> · <a href="metrics">metrics</a> · leazzard {version}</footer>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        domain = escape(&status.domain),
        main = render_main(status),
        version = env!("CARGO_PKG_VERSION"),
    )
}

fn ago(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// The part that refreshes: summary, sync, guests, devices, conflicts.
pub fn render_main(status: &StatusView) -> String {
    let mut out = String::new();
    let sync = &status.sync;
    let (state, state_class) = match (&sync.error, &sync.last_success) {
        (Some(_), _) => ("sync failing", "bad"),
        (None, Some(_)) => ("in sync", "ok"),
        (None, None) => ("waiting for the first sync", "warn"),
    };
    let _ = write!(
        out,
        r#"<section id="summary" class="cards">
<div class="card"><b>{domain}</b><span>domain</span></div>
<div class="card"><b>{network}</b><span>network</span></div>
<div class="card"><b>{guests}</b><span>guests</span></div>
<div class="card"><b>{records}</b><span>names</span></div>
<div class="card"><b>{serial}</b><span>serial</span></div>
<div class="card {state_class}" id="sync-state"><b>{state}</b><span>Proxmox</span></div>
</section>
"#,
        domain = escape(&status.domain),
        network = escape(&status.network),
        guests = status.guests.len(),
        records = status.records,
        serial = status.serial,
    );

    let down: Vec<_> = status.components.iter().filter(|c| !c.running).collect();
    if !down.is_empty() {
        out.push_str("<section id=\"notices\">");
        for c in down {
            let _ = write!(
                out,
                "<p class=\"notice\"><b>{} not running.</b> {}</p>",
                c.name.to_uppercase(),
                escape(c.problem.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</section>\n");
    }

    out.push_str("<section id=\"sync\"><h2>Last sync</h2><dl>");
    match &sync.last_attempt {
        Some(at) => {
            let _ = write!(
                out,
                "<dt>finished</dt><dd><time datetime=\"{at}\">{at}</time></dd><dt>took</dt><dd id=\"sync-duration\">{:.0} ms</dd>",
                sync.duration_seconds * 1000.0,
                at = escape(at),
            );
        }
        None => out.push_str("<dt>finished</dt><dd>not yet</dd>"),
    }
    if let (Some(ok), Some(age)) = (&sync.last_success, sync.last_success_age_seconds) {
        let _ = write!(
            out,
            "<dt>last good</dt><dd><time datetime=\"{ok}\">{}</time></dd>",
            ago(age),
            ok = escape(ok),
        );
    }
    let _ = write!(
        out,
        "<dt>syncs</dt><dd>{} ok, {} failed</dd>",
        sync.ok_total, sync.failed_total
    );
    match &sync.error {
        Some(e) => {
            let _ = write!(
                out,
                "<dt>error</dt><dd class=\"error\" id=\"sync-error\">{}</dd>",
                escape(e)
            );
        }
        None => out.push_str("<dt>errors</dt><dd id=\"sync-error\">none</dd>"),
    }
    out.push_str("</dl>");
    if !sync.guest_errors.is_empty() {
        out.push_str("<ul class=\"errors\" id=\"guest-errors\">");
        for e in &sync.guest_errors {
            let _ = write!(
                out,
                "<li>guest {}: {} <small>(keeps its last known state)</small></li>",
                e.vmid,
                escape(&e.error)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>\n");

    let _ = write!(
        out,
        "<section><h2>Guests ({})</h2>\n<table id=\"guests\"><thead><tr><th>Name</th><th>VMID</th><th>Node</th><th>Kind</th><th>Status</th><th>Addresses</th></tr></thead><tbody>\n",
        status.guests.len()
    );
    for g in &status.guests {
        guest_row(&mut out, g);
    }
    if status.guests.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"muted\">no guests (yet)</td></tr>");
    }
    out.push_str("</tbody></table></section>\n");

    let _ = writeln!(
        out,
        "<section><h2>Devices outside Proxmox ({})</h2>",
        status.devices.len()
    );
    if status.devices.is_empty() {
        out.push_str("<p class=\"muted\" id=\"devices-none\">none seen</p>");
    } else {
        out.push_str("<table id=\"devices\"><thead><tr><th>Name</th><th>Address</th><th>Source</th><th>MAC</th></tr></thead><tbody>\n");
        for d in &status.devices {
            let _ = writeln!(
                out,
                "<tr><td data-label=\"Name\">{}</td><td data-label=\"Address\">{}</td><td data-label=\"Source\"><span class=\"src {src}\">{src}</span></td><td data-label=\"MAC\"><code>{}</code></td></tr>",
                d.name.as_deref().map_or_else(|| "<span class=\"muted\">unnamed</span>".to_string(), escape),
                d.address,
                d.mac,
                src = d.source,
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>\n");

    if !status.conflicts.is_empty() {
        out.push_str("<section><h2>Name conflicts</h2><ul id=\"conflicts\">");
        for c in &status.conflicts {
            let winner = c
                .winner
                .map_or_else(|| "a device".to_string(), |v| format!("guest {v}"));
            let losers: Vec<String> = c
                .losers
                .iter()
                .map(|v| format!("{}-{v}", escape(&c.label)))
                .collect();
            let _ = write!(
                out,
                "<li><b>{}</b>: {winner} has it; the others are published as {}</li>",
                escape(&c.label),
                losers.join(", ")
            );
        }
        out.push_str("</ul></section>\n");
    }
    out
}

fn guest_row(out: &mut String, g: &GuestView) {
    let name = if g.names.is_empty() {
        let proxmox = g.proxmox_name.as_deref().unwrap_or("(no name)");
        let why = if g.template {
            "template: no name"
        } else {
            "no address: not published"
        };
        format!("{} <small class=\"muted\">{why}</small>", escape(proxmox))
    } else {
        g.names
            .iter()
            .map(|n| format!("<b>{}</b>", escape(n)))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let status = if g.template { "template" } else { &g.status };
    let mut addresses = String::new();
    for n in &g.nics {
        let _ = write!(addresses, "<li>");
        match (n.address, n.source) {
            (Some(addr), Some(src)) => {
                let _ = write!(
                    addresses,
                    "{addr} <span class=\"src {src}\">{}</span>",
                    source_text(src)
                );
                if let Some(until) = &n.lease_expires {
                    let _ = write!(addresses, " <small>until {}</small>", escape(until));
                }
            }
            _ => {
                let why = match n.configured.as_str() {
                    c if c.starts_with("static") => "outside the network",
                    "dhcp" => "no lease seen",
                    _ => "not seen by ARP",
                };
                let _ = write!(
                    addresses,
                    "<span class=\"muted\">{}: {why}</span>",
                    escape(&n.configured)
                );
            }
        }
        let _ = write!(
            addresses,
            " <small>net{} <code>{}</code></small></li>",
            n.index, n.mac
        );
    }
    let _ = writeln!(
        out,
        "<tr data-vmid=\"{vmid}\"><td data-label=\"Name\" class=\"name\">{name}</td><td data-label=\"VMID\">{vmid}</td><td data-label=\"Node\">{node}</td><td data-label=\"Kind\">{kind}</td><td data-label=\"Status\"><span class=\"status {status_class}\">{status}</span></td><td data-label=\"Addresses\"><ul class=\"addrs\">{addresses}</ul></td></tr>",
        vmid = g.vmid,
        node = escape(&g.node),
        kind = g.kind.as_str(),
        status_class = escape(status),
        status = escape(status),
    );
}

/// What the page says for a source.
fn source_text(source: &str) -> &'static str {
    match source {
        "static" => "static config",
        "lease" => "DHCP lease",
        "arp" => "ARP",
        _ => "server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::api::{NicView, SyncView};
    use crate::inventory::GuestKind;

    fn status(guests: Vec<GuestView>) -> StatusView {
        StatusView {
            ready: true,
            domain: "lab".into(),
            network: "198.18.0.0/23".into(),
            serial: 7,
            records: 1,
            sync: SyncView {
                last_attempt: Some("2026-08-01T12:00:00Z".into()),
                last_success: None,
                last_success_age_seconds: None,
                duration_seconds: 0.04,
                error: Some("GET /cluster/resources: 500 <boom>".into()),
                guest_errors: vec![],
                ok_total: 0,
                failed_total: 1,
            },
            guests,
            devices: vec![],
            conflicts: vec![],
            components: vec![],
        }
    }

    #[test]
    fn outside_text_is_escaped() {
        let g = GuestView {
            vmid: 100,
            proxmox_name: Some("<script>alert(1)</script>".into()),
            names: vec![],
            kind: GuestKind::Qemu,
            node: "pve\"1".into(),
            status: "running".into(),
            template: false,
            tags: vec![],
            nics: vec![NicView {
                index: 0,
                mac: "BC:24:11:00:00:01".parse().unwrap(),
                bridge: None,
                configured: "dhcp".into(),
                address: None,
                source: None,
                name: None,
                lease_expires: None,
            }],
        };
        let html = render_page(&status(vec![g]));
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("pve&quot;1"));
        assert!(html.contains("500 &lt;boom&gt;"));
        assert!(html.contains("sync failing"));
        assert!(html.contains("no address: not published"));
    }
}
