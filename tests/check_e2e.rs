//! `leazzard check`, the real binary, against the simulated Proxmox API over HTTPS: what the
//! user reads and the exit code, for a good setup, a token without the privilege it needs
//! (PVE 9 and 8 advice), privileges from a pool ACL only, a wrong certificate pin, and one
//! host of two down. The secret never appears in the output.

mod support;

use std::process::Command;

use leazzard::simulator::{Cluster, SimOptions};
use serde_json::{json, Map, Value};
use support::{env_for, set, Sim};

/// Runs `leazzard check` with exactly `env`; its exit code and everything it printed.
fn check(env: &[(String, String)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_leazzard"))
        .arg("check")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run leazzard check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // For the README's sample: LEAZZARD_SHOW_OUTPUT=1 cargo test --test check_e2e -- --nocapture
    if std::env::var_os("LEAZZARD_SHOW_OUTPUT").is_some() {
        eprintln!("--- leazzard check (exit {:?})\n{text}", out.status.code());
    }
    (out.status.code().unwrap_or(-1), text)
}

fn permissions(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn assert_no_secret(sim: &Sim, text: &str) {
    let secret = sim.sim.token_secret();
    assert!(!text.contains(&secret), "the secret leaked:\n{text}");
}

#[test]
fn a_good_setup_passes_and_lists_the_records() {
    let sim = Sim::start();
    let (code, text) = check(&env_for(&sim.sim));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!(
            "ok    https://127.0.0.1:{} answers: Proxmox VE 9.0.11",
            sim.sim.addr().port()
        )),
        "{text}"
    );
    assert!(
        text.contains("certificate pinned by PROXMOX_FINGERPRINT"),
        "{text}"
    );
    assert!(
        text.contains("ok    the token has VM.Audit on /vms"),
        "{text}"
    );
    for (name, addr) in support::SAMPLE_STATIC {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{text}"));
        assert!(line.contains(addr) && line.contains("static"), "{line}");
    }
    assert!(
        text.contains("web1.lab") && text.contains("qemu/100 net0"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("check passed"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert_no_secret(&sim, &text);
    // It changed nothing: only reads were sent.
    assert!(sim
        .sim
        .handle()
        .requests()
        .iter()
        .all(|r| r.method == "GET"));
}

#[test]
fn a_token_without_vm_audit_fails_with_the_pveum_commands() {
    // PVE 9: the token can see nothing.
    let sim = Sim::with(
        Cluster::sample(),
        SimOptions {
            permissions: permissions(json!({"/": {"Sys.Audit": 1}})),
            ..SimOptions::default()
        },
    );
    let (code, text) = check(&env_for(&sim.sim));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL  the token lacks VM.Audit on /vms"),
        "{text}"
    );
    assert!(
        text.contains("pveum acl modify /vms --tokens 'leazzard@pve!dns' --roles Leazzard"),
        "{text}"
    );
    assert!(
        text.contains("pveum acl modify /vms --users leazzard@pve --roles Leazzard"),
        "{text}"
    );
    assert!(
        text.contains("pveum role add Leazzard --privs \"VM.Audit\""),
        "{text}"
    );
    assert!(text.contains("PVE 9: do not add VM.Monitor"), "{text}");
    assert!(text.contains("check failed: 1 problem"), "{text}");
    assert_no_secret(&sim, &text);

    // PVE 8: the same commands, with PVE 8's note.
    let sim8 = Sim::with(
        Cluster::sample(),
        SimOptions {
            permissions: permissions(json!({})),
            version: json!({"version": "8.4.17", "release": "8.4", "repoid": "c8c39014680186a7"}),
            ..SimOptions::default()
        },
    );
    let (code, text) = check(&env_for(&sim8.sim));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Proxmox VE 8.4.17"), "{text}");
    assert!(text.contains("PVE 8: VM.Monitor is not needed"), "{text}");
    assert!(!text.contains("PVE 9:"), "{text}");
}

#[test]
fn vm_audit_from_a_pool_only_is_a_warning_and_exact_per_guest() {
    // VM.Audit on two guests only (as a pool ACL gives it): they are seen and published.
    let sim = Sim::with(
        Cluster::sample(),
        SimOptions {
            permissions: permissions(json!({
                "/vms/100": {"VM.Audit": 1},
                "/vms/101": {"VM.Audit": 1},
            })),
            ..SimOptions::default()
        },
    );
    let (code, text) = check(&env_for(&sim.sim));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("WARN  the token lacks VM.Audit on /vms") && text.contains("on 2 guest(s)"),
        "{text}"
    );
    assert!(
        text.contains("web1.lab") && text.contains("db1.lab"),
        "{text}"
    );
    assert!(!text.contains("app1.lab"), "{text}");
    assert!(
        sim.sim
            .handle()
            .requests()
            .iter()
            .any(|r| r.query.as_deref() == Some("path=/vms/100")),
        "asked per guest"
    );
    assert!(text.contains("check passed with"), "{text}");
}

#[test]
fn a_wrong_fingerprint_fails_and_says_where_to_find_the_right_one() {
    let sim = Sim::start();
    let mut env = env_for(&sim.sim);
    let wrong = ["AB"; 32].join(":");
    set(&mut env, "PROXMOX_FINGERPRINT", Some(&wrong));
    let (code, text) = check(&env);
    assert_eq!(code, 1, "{text}");
    let actual = sim.sim.leaf_fingerprint();
    assert!(
        text.contains(&format!(
            "certificate fingerprint {actual} is not in PROXMOX_FINGERPRINT"
        )),
        "{text}"
    );
    assert!(text.contains("pvenode cert info"), "{text}");
    assert!(text.contains("no PROXMOX_HOST answered"), "{text}");
    assert_no_secret(&sim, &text);
}

#[test]
fn a_host_down_fails_but_the_rest_is_still_checked() {
    let sim = Sim::start();
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut env = env_for(&sim.sim);
    let hosts = format!("127.0.0.1:{},127.0.0.1:{down}", sim.sim.addr().port());
    set(&mut env, "PROXMOX_HOST", Some(&hosts));
    let (code, text) = check(&env);
    assert_eq!(code, 1, "{text}");
    let fail = text
        .lines()
        .find(|l| l.starts_with(&format!("FAIL  https://127.0.0.1:{down}:")))
        .unwrap_or_else(|| panic!("no line for the host down:\n{text}"));
    assert!(fail.contains("refused"), "{fail}");
    assert!(text.contains("pveproxy running"), "{text}");
    // The host that answers is still used: privileges and records are checked.
    assert!(
        text.contains("ok    the token has VM.Audit on /vms"),
        "{text}"
    );
    assert!(text.contains("web1.lab"), "{text}");
    assert!(text.contains("check failed: 1 problem"), "{text}");
    assert_no_secret(&sim, &text);
}
