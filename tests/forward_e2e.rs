//! End to end: names outside the lab domain are forwarded to `DNS_UPSTREAM` and cached.
//! The upstream is a second, real DNS server on loopback (leazzard's own server, serving a
//! zone `corp.test`), so every query crosses real sockets twice.

mod support;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use leazzard::dns::{Access, Authority, DnsServer, DnsShared, Forwarder};
use leazzard::zone::{Owner, Record, Source, Zone};
use support::{dig_full, env_for, set, Leazzard, Sim};

fn upstream_zone() -> Zone {
    let records = vec![Record {
        fqdn: "www.corp.test".into(),
        addr: "198.19.0.80".parse().unwrap(),
        source: Source::Static,
        owner: Owner::Server,
    }];
    Zone {
        domain: "corp.test".into(),
        network: "198.19.0.0/24".parse().unwrap(),
        serial: 1,
        records,
        ptr: Default::default(),
        conflicts: vec![],
    }
}

#[test]
fn other_names_are_forwarded_and_cached() {
    let sim = Sim::start();
    let shared = Arc::new(DnsShared {
        authority: ArcSwap::from_pointee(Authority::build(upstream_zone(), 300)),
        forwarder: Forwarder::new(vec![]),
        access: Access {
            network: "198.19.0.0/24".parse().unwrap(),
        },
        stats: Default::default(),
    });
    let upstream = sim
        .runtime()
        .block_on(DnsServer::start("127.0.0.1:0".parse().unwrap(), shared))
        .unwrap();
    let up_addr = upstream.local_addr();

    let mut env = env_for(&sim.sim);
    set(&mut env, "DNS_UPSTREAM", Some(&up_addr.to_string()));
    let lz = Leazzard::start(&env);
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], Duration::from_secs(10));
    lz.expect_answer(&["www.corp.test"], &["198.19.0.80"], Duration::from_secs(5));
    let full = dig_full(lz.dns, &["www.corp.test"]);
    assert!(
        full.contains("flags: qr rd ra;"),
        "recursive answer, not authoritative: {full}"
    );
    let nx = dig_full(lz.dns, &["nothing.corp.test"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    // Over TCP too.
    lz.expect_answer(
        &["+tcp", "www.corp.test"],
        &["198.19.0.80"],
        Duration::from_secs(5),
    );

    // The upstream goes away: the cached answer is still served, with its TTL counting down.
    sim.runtime().block_on(upstream.stop());
    std::thread::sleep(Duration::from_millis(1100));
    let cached = dig_full(lz.dns, &["www.corp.test", "+noall", "+answer"]);
    assert!(cached.contains("198.19.0.80"), "{cached}");
    let ttl: u32 = cached
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    assert!(ttl > 0 && ttl < 300, "TTL counted down: {cached}");

    // A name never asked before now fails cleanly (SERVFAIL), and lab names are unaffected.
    let fail = dig_full(lz.dns, &["other.corp.test", "+time=4"]);
    assert!(fail.contains("status: SERVFAIL"), "{fail}");
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], Duration::from_secs(2));
}
