//! End to end, on loopback: the real `leazzard` binary watching a simulated Proxmox API over
//! HTTPS, queried with `dig`. What a user sees: names appear, follow renames, disappear, and
//! keep resolving while the API is failing.

mod support;

use std::time::Duration;

use leazzard::simulator::{Fault, GuestFaultKind};
use support::{assert_sample_resolves, dig_full, env_for, set, static_guest, Leazzard, Sim};

const SOON: Duration = Duration::from_secs(10);

#[test]
fn static_guests_resolve_with_reverse_soa_and_negative_answers() {
    let sim = Sim::start();
    let lz = Leazzard::start(&env_for(&sim.sim));
    assert_sample_resolves(&lz);
    // Every NIC and every guest kind: the LXC's second NIC (172.30.5.10) is outside the lab
    // network and is not published; the template gets no name.
    lz.expect_answer(&["ct-dns.lab"], &["198.18.0.10"], SOON);
    lz.expect_answer(&["-x", "198.18.0.10"], &["ct-dns.lab."], SOON);
    lz.expect_answer(&["-x", "198.18.0.20"], &["web1.lab."], SOON);
    assert!(lz.dig(&["ubuntu-2404-tmpl.lab"]).is_empty());
    // Case does not matter.
    lz.expect_answer(&["WEB1.LAB"], &["198.18.0.20"], SOON);

    let soa = lz.dig(&["lab", "SOA"]);
    assert_eq!(soa.len(), 1, "{soa:?}");
    assert!(
        soa[0].starts_with("leazzard.lab. hostmaster.lab. "),
        "{soa:?}"
    );
    lz.expect_answer(&["lab", "NS"], &["leazzard.lab."], SOON);

    let nx = dig_full(lz.dns, &["nope.lab"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("flags: qr aa"), "authoritative: {nx}");
    assert!(
        nx.contains("IN\tSOA\tleazzard.lab."),
        "SOA in authority: {nx}"
    );

    let nodata = dig_full(lz.dns, &["web1.lab", "AAAA"]);
    assert!(nodata.contains("status: NOERROR"), "{nodata}");
    assert!(nodata.contains("ANSWER: 0"), "{nodata}");
    assert!(nodata.contains("IN\tSOA"), "{nodata}");

    let rev_nx = dig_full(lz.dns, &["-x", "198.18.1.99"]);
    assert!(rev_nx.contains("status: NXDOMAIN"), "{rev_nx}");
    assert!(rev_nx.contains("1.18.198.in-addr.arpa."), "{rev_nx}");

    // The configured TTL (default 30 s) is on every record.
    let ttl = dig_full(lz.dns, &["web1.lab", "+noall", "+answer"]);
    assert!(ttl.contains("\t30\tIN\tA\t198.18.0.20"), "{ttl}");

    // Same answers over TCP.
    lz.expect_answer(&["+tcp", "db1.lab"], &["198.18.0.21"], SOON);
    lz.expect_answer(&["+tcp", "nope.lab"], &[], SOON);
    assert!(!lz.output().contains(&sim.sim.token_secret()));
}

#[test]
fn names_follow_add_rename_and_remove() {
    let sim = Sim::start();
    let handle = sim.sim.handle();
    let lz = Leazzard::start(&env_for(&sim.sim));
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], SOON);

    handle.upsert_guest(static_guest(
        130,
        "fresh",
        "BC:24:11:00:13:01",
        "198.18.0.130",
    ));
    lz.expect_answer(&["fresh.lab"], &["198.18.0.130"], SOON);
    lz.expect_answer(&["-x", "198.18.0.130"], &["fresh.lab."], SOON);

    assert!(handle.rename_guest(130, "renamed"));
    lz.expect_answer(&["renamed.lab"], &["198.18.0.130"], SOON);
    lz.expect_answer(&["fresh.lab"], &[], SOON);
    lz.expect_answer(&["-x", "198.18.0.130"], &["renamed.lab."], SOON);

    // A name given twice: one deterministic winner, the other reachable as NAME-VMID.
    handle.upsert_guest(static_guest(
        131,
        "renamed",
        "BC:24:11:00:13:11",
        "198.18.0.131",
    ));
    lz.expect_answer(&["renamed-131.lab"], &["198.18.0.131"], SOON);
    lz.expect_answer(&["renamed.lab"], &["198.18.0.130"], SOON);
    lz.expect_log("name claimed by more than one guest", SOON);

    assert!(handle.remove_guest(130).is_some());
    assert!(handle.remove_guest(131).is_some());
    lz.expect_answer(&["renamed.lab"], &[], SOON);
    lz.expect_answer(&["-x", "198.18.0.130"], &[], SOON);
    // The SOA serial moved on with the changes.
    let serial = |lz: &Leazzard| -> u64 {
        lz.dig(&["lab", "SOA"])[0]
            .split_whitespace()
            .nth(2)
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = serial(&lz);
    handle.upsert_guest(static_guest(
        132,
        "later",
        "BC:24:11:00:13:21",
        "198.18.0.132",
    ));
    lz.expect_answer(&["later.lab"], &["198.18.0.132"], SOON);
    assert!(serial(&lz) > before);
}

#[test]
fn names_keep_resolving_while_the_api_fails() {
    let sim = Sim::start();
    let handle = sim.sim.handle();
    let lz = Leazzard::start(&env_for(&sim.sim));
    assert_sample_resolves(&lz);

    for fault in [
        Fault::Status500,
        Fault::Refuse,
        Fault::Unauthorized,
        Fault::Hang,
    ] {
        handle.set_fault(fault);
        // Several sync intervals pass in the fault; every name stays.
        std::thread::sleep(Duration::from_millis(2500));
        assert_sample_resolves(&lz);
        handle.set_fault(Fault::None);
    }
    lz.expect_log(
        "Proxmox sync failed; serving the last known inventory",
        SOON,
    );
    lz.expect_log("ipcc_send_rec", SOON); // the 500's message, named with its endpoint
    lz.expect_log("401 Authentication failed!", SOON);
    lz.expect_log("check API_TOKEN_ID", SOON);
    // Recovery: changes show again.
    handle.upsert_guest(static_guest(
        140,
        "after-outage",
        "BC:24:11:00:14:01",
        "198.18.0.140",
    ));
    lz.expect_answer(
        &["after-outage.lab"],
        &["198.18.0.140"],
        Duration::from_secs(30),
    );
    assert!(
        !lz.output().contains(&sim.sim.token_secret()),
        "secret leaked"
    );
}

#[test]
fn one_failing_guest_keeps_its_name_and_others_update() {
    let sim = Sim::start();
    let handle = sim.sim.handle();
    let lz = Leazzard::start(&env_for(&sim.sim));
    assert_sample_resolves(&lz);
    for kind in [
        GuestFaultKind::Status500,
        GuestFaultKind::Status595,
        GuestFaultKind::Hang,
    ] {
        handle.set_fault(Fault::GuestFault(100, kind));
        handle.upsert_guest(static_guest(
            150,
            "neighbour",
            "BC:24:11:00:15:01",
            "198.18.0.150",
        ));
        lz.expect_answer(
            &["neighbour.lab"],
            &["198.18.0.150"],
            Duration::from_secs(25),
        );
        lz.expect_answer(&["web1.lab"], &["198.18.0.20"], SOON);
        assert!(handle.remove_guest(150).is_some());
        lz.expect_answer(&["neighbour.lab"], &[], Duration::from_secs(25));
        lz.expect_answer(&["web1.lab"], &["198.18.0.20"], SOON);
    }
    handle.set_fault(Fault::None);
    lz.expect_log("guest not read; keeping its last known state", SOON);
}

#[test]
fn guests_of_a_down_node_keep_their_names() {
    let sim = Sim::start();
    let handle = sim.sim.handle();
    let lz = Leazzard::start(&env_for(&sim.sim));
    // pve2 holds db1? No: web1/db1 are on pve1; ct-dhcp, dyn-vm, manual-vm on pve2. Give
    // pve2 a static guest to watch.
    let mut g = static_guest(160, "on-pve2", "BC:24:11:00:16:01", "198.18.0.160");
    g.node = "pve2".into();
    handle.upsert_guest(g);
    lz.expect_answer(&["on-pve2.lab"], &["198.18.0.160"], SOON);
    assert!(handle.set_node_online("pve2", false));
    handle.set_node_stale("pve2", true); // listed without name, calls answer 595
    std::thread::sleep(Duration::from_millis(3000));
    lz.expect_answer(&["on-pve2.lab"], &["198.18.0.160"], SOON);
    assert_sample_resolves(&lz);
}

#[test]
fn a_restart_during_an_outage_serves_the_cached_inventory() {
    let sim = Sim::start();
    let handle = sim.sim.handle();
    let data = tempfile::tempdir().unwrap();
    let mut env = env_for(&sim.sim);
    set(&mut env, "DATA_DIR", Some(data.path().to_str().unwrap()));
    let mut lz = Leazzard::start(&env);
    assert_sample_resolves(&lz);
    assert_eq!(lz.stop(), Some(0), "SIGTERM ends it cleanly");
    assert!(data.path().join("inventory.json").exists());

    handle.set_fault(Fault::Refuse);
    let lz = Leazzard::start(&env);
    assert_sample_resolves(&lz);
    lz.expect_log("serving the cached inventory", SOON);
    handle.set_fault(Fault::None);
}

#[test]
fn tls_modes_verify_ca_insecure_pin_and_wrong_pin() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("pve-root-ca.pem");
    std::fs::write(&ca, sim.sim.ca_pem()).unwrap();

    // PROXMOX_CA_FILE: the chain is checked against Proxmox's own CA (the leaf names 127.0.0.1).
    let mut env = env_for(&sim.sim);
    set(&mut env, "PROXMOX_FINGERPRINT", None);
    set(&mut env, "PROXMOX_CA_FILE", Some(ca.to_str().unwrap()));
    let lz = Leazzard::start(&env);
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], SOON);
    drop(lz);

    // VERIFY_SSL=false, as the old tool's users have it.
    let mut env = env_for(&sim.sim);
    set(&mut env, "PROXMOX_FINGERPRINT", None);
    set(&mut env, "VERIFY_SSL", Some("false"));
    let lz = Leazzard::start(&env);
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], SOON);
    drop(lz);

    // Default verification without the CA: a self-signed certificate is refused.
    let mut env = env_for(&sim.sim);
    set(&mut env, "PROXMOX_FINGERPRINT", None);
    let lz = Leazzard::start(&env);
    lz.expect_log("Proxmox sync failed", SOON);
    assert!(lz.dig(&["web1.lab"]).is_empty());
    drop(lz);

    // A wrong pin is refused and says which fingerprint it saw.
    let mut env = env_for(&sim.sim);
    let wrong = vec!["AB"; 32].join(":");
    set(&mut env, "PROXMOX_FINGERPRINT", Some(&wrong));
    let lz = Leazzard::start(&env);
    lz.expect_log("is not in PROXMOX_FINGERPRINT", SOON);
    lz.expect_log(&sim.sim.leaf_fingerprint(), SOON);
    assert!(lz.dig(&["web1.lab"]).is_empty());
}

#[test]
fn fails_over_to_the_next_proxmox_host() {
    let sim = Sim::start();
    // A port nothing listens on, first in the list.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let mut env = env_for(&sim.sim);
    let hosts = format!("127.0.0.1:{dead_port},127.0.0.1:{}", sim.sim.addr().port());
    set(&mut env, "PROXMOX_HOST", Some(&hosts));
    let lz = Leazzard::start(&env);
    assert_sample_resolves(&lz);
}

#[test]
fn a_wrong_value_stops_the_start_with_one_line_and_exit_2() {
    let sim = Sim::start();
    for (key, value) in [
        ("NETWORK_CIDR", "10.0.0"),
        ("SYNC_INTERVAL", "often"),
        ("PROXMOX_HOST", "http://pve1"),
        ("DHCP_RANGE", "198.18.0.100"),
        ("API_TOKEN_ID", "no-realm"),
    ] {
        let mut env = env_for(&sim.sim);
        set(&mut env, key, Some(value));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leazzard"))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(key), "names {key}: {err}");
        assert!(err.contains("expected"), "gives the expected form: {err}");
        assert!(!err.contains(&sim.sim.token_secret()));
    }
    // The old container's short network form is accepted.
    let mut env = env_for(&sim.sim);
    set(&mut env, "NETWORK_CIDR", Some("198.18.0/23"));
    let lz = Leazzard::start(&env);
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], SOON);
}

#[test]
fn a_port_already_in_use_is_an_error_not_a_silent_split() {
    let sim = Sim::start();
    let first = Leazzard::start(&env_for(&sim.sim));
    let mut env = env_for(&sim.sim);
    set(&mut env, "DNS_LISTEN", Some(&first.dns.to_string()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leazzard"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("DATA_DIR", first.data_dir.join("second"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("DNS_LISTEN: cannot listen on"), "{err}");
    assert!(err.contains("in use"), "{err}");
}
