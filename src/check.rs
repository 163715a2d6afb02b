//! `leazzard check`: with the same environment as `run`, says whether leazzard would work,
//! and what it would publish — then exits 0, or 1 with the reasons. It changes nothing: it
//! only reads the Proxmox API (and binds no port).
//!
//! In order: the configuration (already validated when we get here); every `PROXMOX_HOST`,
//! reached with TLS as configured (`GET /version`, which also tells PVE 8 from 9); the token's
//! privileges (`GET /access/permissions`, and `?path=/vms/{id}` per guest where `/vms` alone
//! does not grant them, as privileges from pool ACLs show only there); then one whole sync,
//! and the records it would give.
//!
//! Invariants: read-only; the token secret never appears in the output (errors of the client
//! never carry it, and the summary names only the token id); every problem is printed as it
//! is found and again in the closing summary, with what to do about it.

use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{Config, TlsMode};
use crate::inventory::Inventory;
use crate::proxmox::client::Attempt;
use crate::proxmox::types::{Permissions, Propagate, VersionInfo};
use crate::proxmox::{fetch_inventory, Client};
use crate::zone::{self, Owner, ZoneConfig};

/// The privileges leazzard needs, where, and what for. The same on PVE 8 and 9: leazzard
/// reads only `/cluster/resources`, guest configs and cloud-init dumps (PROXMOX.md §1).
pub const REQUIRED: &[(&str, &str, &str)] = &[(
    "/vms",
    "VM.Audit",
    "to list the guests and read their configs and cloud-init network dumps",
)];

/// At most this many guests are asked about one by one (`?path=/vms/{id}`).
const PER_GUEST_LIMIT: usize = 200;

/// Collects what went wrong, printing each line as it comes.
#[derive(Default)]
struct Report {
    problems: Vec<String>,
    warnings: usize,
}

impl Report {
    fn ok(&self, text: &str) {
        println!("ok    {text}");
    }

    fn warn(&mut self, text: &str) {
        self.warnings += 1;
        println!("WARN  {text}");
    }

    fn fail(&mut self, text: &str) {
        println!("FAIL  {text}");
        self.problems
            .push(text.lines().next().unwrap_or(text).to_string());
    }

    fn detail(&self, text: &str) {
        for line in text.lines() {
            println!("        {line}");
        }
    }
}

/// How the API's certificate is checked, in words.
pub fn tls_description(mode: &TlsMode) -> String {
    match mode {
        TlsMode::Verify { ca_file: None, .. } => {
            "certificate verified against the public CAs, and its name".into()
        }
        TlsMode::Verify {
            ca_file: Some(path),
            ..
        } => format!(
            "certificate verified against PROXMOX_CA_FILE {}, and its name",
            path.display()
        ),
        TlsMode::Pinned(pins) => format!(
            "certificate pinned by PROXMOX_FINGERPRINT ({} fingerprint{})",
            pins.len(),
            if pins.len() == 1 { "" } else { "s" }
        ),
        TlsMode::Insecure => "certificate NOT checked (VERIFY_SSL=false)".into(),
    }
}

/// What to do about a host that did not answer, judged from the error text.
pub fn host_hint(error: &str, tls: &TlsMode) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("not in proxmox_fingerprint") {
        "the host's certificate is not the one pinned: copy its fingerprint from `pvenode cert info` on that node (pveproxy-ssl.pem if listed, else pve-ssl.pem) into PROXMOX_FINGERPRINT (one per node, comma-separated)"
    } else if e.contains("certificate") || e.contains("unknownissuer") || e.contains("tls") {
        match tls {
            TlsMode::Verify { ca_file: None, .. } => "the certificate is not from a public CA: set PROXMOX_CA_FILE to a copy of /etc/pve/pve-root-ca.pem, or pin it with PROXMOX_FINGERPRINT (`pvenode cert info`)",
            _ => "the certificate was not accepted: check PROXMOX_CA_FILE (the cluster CA, /etc/pve/pve-root-ca.pem) and that the host name you use is in the certificate, or pin it with PROXMOX_FINGERPRINT",
        }
    } else if e.contains("refused") {
        "nothing listens there: is the address right, and pveproxy running (port 8006 unless PROXMOX_HOST says otherwise)?"
    } else if e.contains("timed out") || e.contains("timeout") {
        "no answer in time: a firewall in between, or the wrong address?"
    } else if e.contains("dns error") || e.contains("lookup") || e.contains("resolve") {
        "the host name does not resolve from here: use its address, or fix the resolver"
    } else if e.contains("401") {
        "the token was refused: check API_TOKEN_ID (USER@REALM!TOKENID) and API_TOKEN_SECRET"
    } else {
        "check PROXMOX_HOST and that this machine can reach the node"
    }
}

/// The `pveum` commands that give `token_id` the privileges in `missing`, for PVE `major`
/// (8 or 9; `None` when unknown). A privilege-separated token (the default) needs the ACL on
/// the user and on the token.
pub fn grant_commands(token_id: &str, missing: &[&str], major: Option<u32>) -> Vec<String> {
    let user = token_id.split('!').next().unwrap_or(token_id);
    let privs = missing.join(" ");
    let mut out = vec![
        format!("pveum role add Leazzard --privs \"{privs}\""),
        format!(
            "    (role exists already? pveum role modify Leazzard --privs \"{privs}\" --append 1)"
        ),
        format!("pveum acl modify /vms --users {user} --roles Leazzard"),
        format!("pveum acl modify /vms --tokens '{token_id}' --roles Leazzard"),
        format!(
            "pveum user token permissions {user} {}",
            token_id.split('!').nth(1).unwrap_or("TOKENID")
        ),
    ];
    match major {
        Some(9..) => out.push(
            "(PVE 9: do not add VM.Monitor, the old README's privilege: it no longer exists, and `pveum role add` fails on it)"
                .into(),
        ),
        Some(8) => out.push(
            "(PVE 8: VM.Monitor is not needed; after an upgrade to 9 it disappears from roles anyway)"
                .into(),
        ),
        _ => {}
    }
    out
}

/// Whether `privilege` holds for everything below `path`: the nearest listed path (`path`
/// itself or an ancestor) grants it with the propagate flag set.
fn propagates(perms: &Permissions, path: &str, privilege: &str) -> bool {
    let mut current = path.trim_end_matches('/');
    loop {
        let key = if current.is_empty() { "/" } else { current };
        if let Some(privileges) = perms.0.get(key) {
            return privileges.get(privilege).is_some_and(|Propagate(p)| *p);
        }
        if current.is_empty() {
            return false;
        }
        current = &current[..current.rfind('/').unwrap_or(0)];
    }
}

/// Runs the check; prints a report on stdout.
pub async fn run(config: Config) -> ExitCode {
    let mut report = Report::default();
    println!("leazzard check: reads the Proxmox API, changes nothing");
    let Some(proxmox) = config.proxmox.clone() else {
        report.fail("PROXMOX_HOST is not set; expected a form like https://pve1.example:8006");
        return finish(&report);
    };
    report.ok(&format!(
        "configuration valid: network {}, domain {}, DNS on {}, HTTP on {}",
        config.network,
        config.dns.domain,
        config.dns.listen,
        config
            .http_listen
            .map_or_else(|| "(disabled)".to_string(), |a| a.to_string()),
    ));
    report.ok(&format!(
        "token {}, {}",
        proxmox.token_id,
        tls_description(&proxmox.tls)
    ));
    if matches!(proxmox.tls, TlsMode::Insecure) {
        report.warn("VERIFY_SSL=false: anyone on the path can pose as Proxmox; pin the certificate with PROXMOX_FINGERPRINT instead (`pvenode cert info`)");
    }
    let client = match Client::new(&proxmox) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            report.fail(&e.to_string());
            return finish(&report);
        }
    };

    let mut major = None;
    let mut reachable = 0;
    for host in client.hosts() {
        match client.get_from::<VersionInfo>(host, "/version").await {
            Ok(v) => {
                reachable += 1;
                major = major.or(v.major());
                report.ok(&format!(
                    "{} answers: Proxmox VE {} (release {}); TLS as configured",
                    host.base_url(),
                    v.version,
                    v.release
                ));
            }
            Err(e) => {
                let why = match e {
                    Attempt::Final(e) => e.to_string(),
                    Attempt::NextHost(why) => why,
                };
                report.fail(&format!("{}: {why}", host.base_url()));
                report.detail(host_hint(&why, &proxmox.tls));
            }
        }
    }
    if reachable == 0 {
        report.fail("no PROXMOX_HOST answered; nothing more can be checked");
        return finish(&report);
    }

    check_privileges(&mut report, &client, &proxmox.token_id, major).await;

    match fetch_inventory(client, &Inventory::default()).await {
        Ok(sync) => {
            let zone_config = ZoneConfig {
                domain: config.dns.domain.clone(),
                network: config.network,
                self_addr: None,
                initial_serial: 1,
            };
            let (zone, _) = zone::derive(&sync.inventory, &[], &[], &zone_config, None);
            report.ok(&format!(
                "{} guests read with {} API calls",
                sync.inventory.guests.len(),
                sync.requests
            ));
            for (vmid, why) in &sync.guest_errors {
                report.warn(&format!("guest {vmid} not read: {why}"));
            }
            for w in &sync.warnings {
                report.warn(w);
            }
            for c in &zone.conflicts {
                report.warn(&format!(
                    "name {} claimed by more than one guest: {} keeps it, {} published as {}-VMID",
                    c.label,
                    c.winner
                        .map_or_else(|| "a device".into(), |v| format!("guest {v}")),
                    c.losers
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    c.label
                ));
            }
            println!(
                "Records leazzard would publish now ({}; static addresses only: DHCP leases and ARP add more):",
                zone.records.len()
            );
            if zone.records.is_empty() {
                println!("  (none)");
            }
            for r in &zone.records {
                let owner = match &r.owner {
                    Owner::Guest {
                        vmid, guest, nic, ..
                    } => format!("{}/{vmid} net{nic}", guest.as_str()),
                    Owner::Device { mac } => format!("device {mac}"),
                    Owner::Server => "leazzard".into(),
                };
                println!(
                    "  {:<28} {:<15} {:<7} {owner}",
                    r.fqdn,
                    r.addr.to_string(),
                    r.source.as_str()
                );
            }
        }
        Err(e) => report.fail(&format!("sync: {e}")),
    }
    finish(&report)
}

async fn check_privileges(
    report: &mut Report,
    client: &Client,
    token_id: &str,
    major: Option<u32>,
) {
    let perms = match client.get::<Permissions>("/access/permissions").await {
        Ok(p) => p,
        Err(e) => {
            report.fail(&format!("cannot read the token's permissions: {e}"));
            return;
        }
    };
    let missing: Vec<&(&str, &str, &str)> = REQUIRED
        .iter()
        .filter(|(path, privilege, _)| !propagates(&perms, path, privilege))
        .collect();
    if missing.is_empty() {
        let names: Vec<String> = REQUIRED
            .iter()
            .map(|(path, privilege, _)| format!("{privilege} on {path}"))
            .collect();
        report.ok(&format!("the token has {}", names.join(", ")));
        return;
    }
    // Not on /vms as a whole: pool or per-guest ACLs may still grant it guest by guest; the
    // guests the token can list are exactly those with VM.Audit (PROXMOX.md §1), and asking
    // about each path is the exact test (§3).
    let listed: Vec<serde_json::Value> = client
        .get("/cluster/resources?type=vm")
        .await
        .unwrap_or_default();
    let vmids: Vec<u64> = listed
        .iter()
        .filter_map(|g| g.get("vmid").and_then(serde_json::Value::as_u64))
        .take(PER_GUEST_LIMIT)
        .collect();
    let mut covered = 0;
    for vmid in &vmids {
        let path = format!("/vms/{vmid}");
        if let Ok(p) = client
            .get::<Permissions>(&format!("/access/permissions?path={path}"))
            .await
        {
            if REQUIRED
                .iter()
                .all(|(_, privilege, _)| p.grants(&path, privilege))
            {
                covered += 1;
            }
        }
    }
    let privs: Vec<&str> = missing.iter().map(|(_, p, _)| *p).collect();
    let what: Vec<String> = missing
        .iter()
        .map(|(path, privilege, why)| format!("{privilege} on {path} ({why})"))
        .collect();
    let commands = grant_commands(token_id, &privs, major);
    if covered > 0 {
        report.warn(&format!(
            "the token lacks {} but has it on {covered} guest(s) through pool or per-guest ACLs: leazzard sees only those",
            what.join(", ")
        ));
        report.detail("To see every guest, grant it on /vms (as root on a node):");
    } else {
        report.fail(&format!(
            "the token lacks {}: leazzard cannot see any guest",
            what.join(", ")
        ));
        report.detail("Grant it (as root on a node):");
    }
    report.detail(&commands.join("\n"));
}

fn finish(report: &Report) -> ExitCode {
    if report.problems.is_empty() {
        println!(
            "check passed{}",
            match report.warnings {
                0 => String::new(),
                n => format!(" with {n} warning{}", if n == 1 { "" } else { "s" }),
            }
        );
        ExitCode::SUCCESS
    } else {
        let n = report.problems.len();
        println!(
            "check failed: {n} problem{}:",
            if n == 1 { "" } else { "s" }
        );
        for p in &report.problems {
            println!("  - {p}");
        }
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_commands_name_user_token_and_version() {
        let nine = grant_commands("leazzard@pve!dns", &["VM.Audit"], Some(9)).join("\n");
        assert!(nine.contains("pveum role add Leazzard --privs \"VM.Audit\""));
        assert!(nine.contains("pveum acl modify /vms --users leazzard@pve --roles Leazzard"));
        assert!(nine.contains("pveum acl modify /vms --tokens 'leazzard@pve!dns' --roles Leazzard"));
        assert!(nine.contains("pveum user token permissions leazzard@pve dns"));
        assert!(nine.contains("PVE 9"));
        let eight = grant_commands("leazzard@pve!dns", &["VM.Audit"], Some(8)).join("\n");
        assert!(eight.contains("PVE 8") && !eight.contains("PVE 9:"));
    }

    #[test]
    fn hints_follow_the_error() {
        let pinned = TlsMode::Pinned(vec![[0; 32]]);
        assert!(host_hint(
            "request failed: certificate fingerprint AB:CD is not in PROXMOX_FINGERPRINT",
            &pinned
        )
        .contains("pvenode cert info"));
        assert!(
            host_hint("cannot connect: Connection refused (os error 111)", &pinned)
                .contains("pveproxy running")
        );
        let public = TlsMode::Verify {
            ca_pem: None,
            ca_file: None,
        };
        assert!(
            host_hint("invalid peer certificate: UnknownIssuer", &public)
                .contains("PROXMOX_CA_FILE")
        );
    }

    #[test]
    fn propagation_is_required_on_vms() {
        let perms: Permissions =
            serde_json::from_str(r#"{"/vms": {"VM.Audit": 0}, "/": {"Sys.Audit": 1}}"#).unwrap();
        assert!(!propagates(&perms, "/vms", "VM.Audit"));
        let perms: Permissions = serde_json::from_str(r#"{"/vms": {"VM.Audit": 1}}"#).unwrap();
        assert!(propagates(&perms, "/vms", "VM.Audit"));
        let perms: Permissions = serde_json::from_str(r#"{"/": {"VM.Audit": 1}}"#).unwrap();
        assert!(propagates(&perms, "/vms", "VM.Audit"));
        let perms: Permissions = serde_json::from_str(r#"{"/vms/100": {"VM.Audit": 1}}"#).unwrap();
        assert!(!propagates(&perms, "/vms", "VM.Audit"));
    }
}
