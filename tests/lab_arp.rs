//! Lab tests of the ARP watcher (root, `LEAZZARD_LAB_TESTS=1`): a server namespace running
//! leazzard and the simulated Proxmox API, guest namespaces with the MACs of sample guests,
//! joined by a bridge. Guests with hand-set addresses get their Proxmox names from ARP.

mod support;

use std::time::{Duration, Instant};

use support::lab::{enabled, Lab};
use support::{env_for, set, wait_until, Leazzard, Sim};

/// `manual-vm` (qemu 103): no cloud-init, its address only knowable from the wire.
const MANUAL_VM_MAC: &str = "BC:24:11:2E:6D:01";
/// `dyn-vm` (qemu 102): `ip=dhcp`, here with an address set by hand and never a lease.
const DYN_VM_MAC: &str = "BC:24:11:2E:6C:01";
const SERVER: &str = "198.18.0.2";

fn start(lab: &mut Lab, interval_s: &str) -> (Sim, Leazzard, String) {
    let srv = lab.add_host("srv", "BC:24:11:AA:00:02", Some(&format!("{SERVER}/23")));
    let sim = lab.inside(&srv, Sim::start);
    let mut env = env_for(&sim.sim);
    set(&mut env, "ARP_ENABLED", Some("true"));
    set(&mut env, "ARP_CHECK_INTERVAL", Some(interval_s));
    set(&mut env, "DNS_LISTEN", Some(&format!("{SERVER}:53")));
    let lz = Leazzard::start_with(Some(&srv), &[], &env);
    lz.expect_log("ARP watcher started", Duration::from_secs(10));
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], Duration::from_secs(10));
    (sim, lz, srv)
}

fn time_to_answer(lz: &Leazzard, name: &str, want: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    let found = wait_until(within, || {
        (lz.dig(&[name]) == vec![want.to_string()]).then_some(())
    });
    assert!(
        found.is_some(),
        "{name} never became {want}; output:\n{}",
        lz.output()
    );
    t0.elapsed()
}

#[test]
fn a_hand_set_address_is_named_after_one_arp_packet_and_follows_moves() {
    if !enabled("a_hand_set_address_is_named_after_one_arp_packet_and_follows_moves") {
        return;
    }
    let mut lab = Lab::new("arp1");
    // A long sweep interval: the name must come from the guest's own packet, not a sweep.
    let (_sim, lz, _srv) = start(&mut lab, "300");
    let g = lab.add_host("g1", MANUAL_VM_MAC, Some("198.18.0.77/23"));
    assert!(lz.dig(&["manual-vm.lab"]).is_empty());

    // One gratuitous ARP, as a guest sends when it brings its address up.
    let out = lab.exec(
        &g,
        &["arping", "-q", "-U", "-c", "1", "-I", "eth0", "198.18.0.77"],
    );
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "arping: {out:?}"
    );
    let took = time_to_answer(&lz, "manual-vm.lab", "198.18.0.77", Duration::from_secs(5));
    eprintln!(
        "FIGURE arp first packet -> resolvable: {} ms",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(3), "took {took:?} (target 1 s)");
    lz.expect_answer(
        &["-x", "198.18.0.77"],
        &["manual-vm.lab."],
        Duration::from_secs(2),
    );

    // The guest moves to another address: DNS follows.
    assert!(lab
        .exec(&g, &["ip", "addr", "flush", "dev", "eth0"])
        .status
        .success());
    assert!(lab
        .exec(&g, &["ip", "addr", "add", "198.18.0.79/23", "dev", "eth0"])
        .status
        .success());
    let _ = lab.exec(
        &g,
        &["arping", "-q", "-U", "-c", "1", "-I", "eth0", "198.18.0.79"],
    );
    time_to_answer(&lz, "manual-vm.lab", "198.18.0.79", Duration::from_secs(5));
    lz.expect_answer(&["-x", "198.18.0.77"], &[], Duration::from_secs(2));

    // A host Proxmox does not know gets no record, but makes leazzard ask Proxmox early.
    let stranger = lab.add_host("g9", "02:00:00:00:99:01", Some("198.18.0.99/23"));
    let _ = lab.exec(
        &stranger,
        &["arping", "-q", "-U", "-c", "1", "-I", "eth0", "198.18.0.99"],
    );
    lz.expect_log(
        "MAC of no known guest; asking for an early sync",
        Duration::from_secs(5),
    );
    assert!(lz.dig(&["-x", "198.18.0.99"]).is_empty());
}

#[test]
fn a_silent_guest_is_found_by_the_sweep_which_stays_on_the_lab_interface() {
    if !enabled("a_silent_guest_is_found_by_the_sweep_which_stays_on_the_lab_interface") {
        return;
    }
    let mut lab = Lab::new("arp2");
    let srv = lab.add_host("srv", "BC:24:11:AA:00:02", Some(&format!("{SERVER}/23")));
    // A second network on the server, outside NETWORK_CIDR: the sweep must never reach it.
    let (outside, out_dev) = lab.add_outside(&srv, "198.19.7.1/24", "198.19.7.2/24");
    let sim = lab.inside(&srv, Sim::start);
    let mut env = env_for(&sim.sim);
    set(&mut env, "ARP_ENABLED", Some("true"));
    set(&mut env, "ARP_CHECK_INTERVAL", Some("3"));
    set(&mut env, "DNS_LISTEN", Some(&format!("{SERVER}:53")));
    // The guest exists before leazzard starts and never speaks first.
    let _g = lab.add_host("g2", DYN_VM_MAC, Some("198.18.0.78/23"));
    let before = lab.rx_packets(&outside, &out_dev);
    let t0 = Instant::now();
    let lz = Leazzard::start_with(Some(&srv), &[], &env);
    let took = time_to_answer(&lz, "dyn-vm.lab", "198.18.0.78", Duration::from_secs(10));
    eprintln!(
        "FIGURE silent guest -> resolvable after start: {} ms (ARP_CHECK_INTERVAL 3 s)",
        took.as_millis()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(3 + 1 + 3),
        "within ARP_CHECK_INTERVAL + 1 s (+ start-up)"
    );
    // A whole sweep later, nothing arrived on the outside network.
    std::thread::sleep(Duration::from_secs(4));
    let after = lab.rx_packets(&outside, &out_dev);
    assert_eq!(
        after,
        before,
        "the sweep sent {} packets outside the lab interface",
        after - before
    );
}

#[test]
fn without_cap_net_raw_it_runs_on_without_arp() {
    if !enabled("without_cap_net_raw_it_runs_on_without_arp") {
        return;
    }
    let mut lab = Lab::new("arp3");
    let srv = lab.add_host("srv", "BC:24:11:AA:00:02", Some(&format!("{SERVER}/23")));
    let sim = lab.inside(&srv, Sim::start);
    let mut env = env_for(&sim.sim);
    set(&mut env, "ARP_ENABLED", Some("true"));
    set(&mut env, "DNS_LISTEN", Some(&format!("{SERVER}:53")));
    let lz = Leazzard::start_with(
        Some(&srv),
        &["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw"],
        &env,
    );
    lz.expect_log(
        "ARP watcher not started (it needs CAP_NET_RAW",
        Duration::from_secs(10),
    );
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], Duration::from_secs(10));
}
