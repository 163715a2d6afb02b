//! Lab tests of the DHCP server with real clients (root, `LEAZZARD_LAB_TESTS=1`): udhcpc,
//! dhclient and dhcpcd in guest namespaces with chosen MACs, leazzard and the simulated
//! Proxmox API in a server namespace, all on a bridge of their own.
//!
//! The clients run with a hook script of ours that records what they were given and sets
//! the address, and never touches the machine's resolv.conf.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use leazzard::simulator::{GuestKind, SimGuest};
use support::lab::{enabled, Lab};
use support::{env_for, set, Leazzard, Sim};

const SERVER: &str = "198.18.0.2";
/// `dyn-vm` (qemu 102): `ipconfig0: ip=dhcp`.
const DYN_VM_MAC: &str = "BC:24:11:2E:6C:01";
/// `ct-dhcp` (lxc 201) net0: `ip=dhcp`.
const CT_DHCP_MAC: &str = "BC:24:11:5F:0B:11";

/// What a client was given, from our hook script.
#[derive(Debug, Default, Clone)]
struct Given {
    ip: String,
    router: String,
    dns: String,
    domain: String,
    lease: String,
}

struct Client {
    ns: String,
    dir: PathBuf,
}

impl Client {
    fn new(lab: &mut Lab, role: &str, mac: &str, dir: &Path) -> Client {
        let ns = lab.add_host(role, mac, None);
        let dir = dir.join(role);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("given");
        // One hook for all three clients: dhclient and dhcpcd pass `reason` and `new_*`,
        // udhcpc passes the event as $1 and plain names.
        let script = format!(
            r#"#!/bin/sh
ev="${{reason:-$1}}"
case "$ev" in
  BOUND|REBOOT|RENEW|REBIND|bound|renew)
    a="${{new_ip_address:-$ip}}"
    echo "ip=$a router=${{new_routers:-$router}} dns=${{new_domain_name_servers:-$dns}} domain=${{new_domain_name:-$domain}} lease=${{new_dhcp_lease_time:-$lease}} ev=$ev" >> {out}
    ip addr replace "$a/23" dev "${{interface}}"
    ;;
  PREINIT) ip link set "${{interface}}" up ;;
  RELEASE|EXPIRE|STOP|deconfig) ip addr flush dev "${{interface}}" ;;
esac
exit 0
"#,
            out = out.display()
        );
        let path = dir.join("hook.sh");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Client { ns, dir }
    }

    fn hook(&self) -> String {
        self.dir.join("hook.sh").display().to_string()
    }

    fn last_given(&self) -> Option<Given> {
        let text = std::fs::read_to_string(self.dir.join("given")).ok()?;
        let line = text.lines().last()?;
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .unwrap_or("")
                .to_string()
        };
        Some(Given {
            ip: field("ip"),
            router: field("router"),
            dns: field("dns"),
            domain: field("domain"),
            lease: field("lease"),
        })
    }

    fn udhcpc(&self, lab: &Lab, hostname: &str, request: Option<&str>) -> Output {
        let mut args = vec![
            "timeout", "20", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T", "2", "-s",
        ];
        let hook = self.hook();
        args.push(&hook);
        let host = format!("hostname:{hostname}");
        args.extend(["-x", &host]);
        if let Some(r) = request {
            args.extend(["-r", r]);
        }
        lab.exec(&self.ns, &args)
    }

    fn dhclient(&self, lab: &Lab, hostname: &str) -> Output {
        let lf = self.dir.join("dhclient.leases").display().to_string();
        let pf = self.dir.join("dhclient.pid").display().to_string();
        let conf = self.dir.join("dhclient.conf");
        std::fs::write(&conf, format!("send host-name \"{hostname}\";\nrequest subnet-mask, routers, domain-name-servers, domain-name;\ntimeout 20;\n")).unwrap();
        let conf = conf.display().to_string();
        let hook = self.hook();
        lab.exec(
            &self.ns,
            &[
                "timeout", "30", "dhclient", "-1", "-4", "-v", "-cf", &conf, "-lf", &lf, "-pf",
                &pf, "-sf", &hook, "eth0",
            ],
        )
    }

    fn dhclient_release(&self, lab: &Lab) {
        let lf = self.dir.join("dhclient.leases").display().to_string();
        let pf = self.dir.join("dhclient.pid").display().to_string();
        let hook = self.hook();
        let _ = lab.exec(
            &self.ns,
            &[
                "timeout", "10", "dhclient", "-r", "-lf", &lf, "-pf", &pf, "-sf", &hook, "eth0",
            ],
        );
    }

    fn dhcpcd(&self, lab: &Lab, hostname: &str) -> Output {
        let hook = self.hook();
        let conf = self.dir.join("dhcpcd.conf");
        std::fs::write(
            &conf,
            "option domain_name_servers, domain_name, routers, subnet_mask\nnoipv4ll\nnoipv6rs\n",
        )
        .unwrap();
        let conf = conf.display().to_string();
        lab.exec(
            &self.ns,
            &[
                "timeout", "30", "dhcpcd", "-f", &conf, "-4", "-1", "-B", "-L", "-t", "20", "-h",
                hostname, "-c", &hook, "eth0",
            ],
        )
    }
}

fn start(lab: &mut Lab, extra: &[(&str, &str)]) -> (Sim, Leazzard, tempfile::TempDir) {
    let srv = lab.add_host("srv", "BC:24:11:AA:00:02", Some(&format!("{SERVER}/23")));
    let sim = lab.inside(&srv, Sim::start);
    let dir = tempfile::tempdir().unwrap();
    let mut env = env_for(&sim.sim);
    set(&mut env, "DHCP_ENABLED", Some("true"));
    set(&mut env, "ARP_ENABLED", Some("true"));
    set(
        &mut env,
        "DHCP_RANGE",
        Some("198.18.0.100,198.18.0.199,255.255.254.0,12h"),
    );
    set(&mut env, "DHCP_OPTION", Some("option:router,198.18.0.1"));
    set(&mut env, "DNS_LISTEN", Some(&format!("{SERVER}:53")));
    set(
        &mut env,
        "DATA_DIR",
        Some(dir.path().join("data").to_str().unwrap()),
    );
    for (k, v) in extra {
        set(&mut env, k, Some(v));
    }
    let lz = Leazzard::start_with(Some(&srv), &[], &env);
    lz.expect_log("DHCP server listening", Duration::from_secs(10));
    lz.expect_answer(&["web1.lab"], &["198.18.0.20"], Duration::from_secs(10));
    (sim, lz, dir)
}

fn in_range(ip: &str) -> bool {
    let a: std::net::Ipv4Addr = ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    let o = a.octets();
    o[..3] == [198, 18, 0] && (100..=199).contains(&o[3])
}

fn assert_options(g: &Given) {
    assert!(in_range(&g.ip), "address in the range: {g:?}");
    assert_eq!(g.router, "198.18.0.1", "{g:?}");
    assert_eq!(g.dns, SERVER, "our own address as DNS server: {g:?}");
    assert_eq!(g.domain, "lab", "{g:?}");
    assert_eq!(g.lease, "43200", "12h: {g:?}");
}

/// Polls `dig` (every few ms, so the figure means something) until `name` is `want`.
fn time_to_answer(lz: &Leazzard, name: &str, want: &str) -> Duration {
    time_to_answer_within(lz, name, want, Duration::from_secs(5))
}

fn time_to_answer_within(lz: &Leazzard, name: &str, want: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if lz.dig(&[name]) == vec![want.to_string()] {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{name} never became {want}; output:\n{}", lz.output());
}

#[test]
fn three_real_clients_get_leases_and_guests_get_their_proxmox_names() {
    if !enabled("three_real_clients_get_leases_and_guests_get_their_proxmox_names") {
        return;
    }
    let mut lab = Lab::new("dh1");
    let (_sim, lz, dir) = start(&mut lab, &[]);

    // udhcpc on dyn-vm's MAC, sending the useless hostname "ubuntu".
    let c1 = Client::new(&mut lab, "g1", DYN_VM_MAC, dir.path());
    let out = c1.udhcpc(&lab, "ubuntu", None);
    let g1 = c1
        .last_given()
        .unwrap_or_else(|| panic!("udhcpc got no lease: {out:?}\n{}", lz.output()));
    assert_options(&g1);
    let took = time_to_answer(&lz, "dyn-vm.lab", &g1.ip);
    eprintln!(
        "FIGURE udhcpc bound -> dyn-vm.lab resolvable: {} ms",
        took.as_millis()
    );
    assert!(
        lz.dig(&["ubuntu.lab"]).is_empty(),
        "a guest is never named by its DHCP hostname"
    );
    lz.expect_answer(&["-x", &g1.ip], &["dyn-vm.lab."], Duration::from_secs(2));
    // Renew: the same address again.
    let _ = c1.udhcpc(&lab, "ubuntu", Some(&g1.ip));
    assert_eq!(c1.last_given().unwrap().ip, g1.ip, "sticky address");

    // dhclient on ct-dhcp's MAC, sending "localhost".
    let c2 = Client::new(&mut lab, "g2", CT_DHCP_MAC, dir.path());
    let out = c2.dhclient(&lab, "localhost");
    let g2 = c2
        .last_given()
        .unwrap_or_else(|| panic!("dhclient got no lease: {out:?}\n{}", lz.output()));
    assert_options(&g2);
    assert_ne!(g2.ip, g1.ip);
    time_to_answer(&lz, "ct-dhcp.lab", &g2.ip);
    // dhclient again with its lease file: INIT-REBOOT, same address.
    let _ = c2.dhclient(&lab, "localhost");
    assert_eq!(c2.last_given().unwrap().ip, g2.ip);

    // dhcpcd on a device Proxmox does not know: named by its DHCP hostname.
    let c3 = Client::new(&mut lab, "g3", "02:00:00:00:33:01", dir.path());
    let out = c3.dhcpcd(&lab, "printer-1");
    let g3 = c3
        .last_given()
        .unwrap_or_else(|| panic!("dhcpcd got no lease: {out:?}\n{}", lz.output()));
    assert_options(&g3);
    time_to_answer(&lz, "printer-1.lab", &g3.ip);

    // RELEASE ends the lease at once (the name then lives on only while ARP still sees the
    // address, as for any hand-set address).
    c2.dhclient_release(&lab);
    lz.expect_log(
        &format!(
            "record removed name=ct-dhcp.lab addr={} source=lease",
            g2.ip
        ),
        Duration::from_secs(5),
    );
}

#[test]
fn static_addresses_are_never_offered_and_a_guest_gone_static_loses_its_lease() {
    if !enabled("static_addresses_are_never_offered_and_a_guest_gone_static_loses_its_lease") {
        return;
    }
    let mut lab = Lab::new("dh2");
    let (sim, lz, dir) = start(&mut lab, &[("DHCP_RANGE", "198.18.0.100,198.18.0.103,12h")]);
    let handle = sim.sim.handle();
    // Two guests hold .100 and .101 statically.
    for (vmid, last, mac) in [
        (170, 100, "BC:24:11:00:17:00"),
        (171, 101, "BC:24:11:00:17:01"),
    ] {
        let mut config = serde_json::Map::new();
        config.insert("name".into(), format!("fixed-{vmid}").into());
        config.insert("net0".into(), format!("virtio={mac},bridge=vmbr0").into());
        config.insert("ipconfig0".into(), format!("ip=198.18.0.{last}/23").into());
        handle.upsert_guest(SimGuest::new(vmid, GuestKind::Qemu, "pve1", config));
    }
    lz.expect_answer(
        &["fixed-171.lab"],
        &["198.18.0.101"],
        Duration::from_secs(10),
    );

    let c1 = Client::new(&mut lab, "g1", DYN_VM_MAC, dir.path());
    let c2 = Client::new(&mut lab, "g2", CT_DHCP_MAC, dir.path());
    let _ = c1.udhcpc(&lab, "a", None);
    let _ = c2.dhclient(&lab, "b");
    let (a, b) = (c1.last_given().unwrap().ip, c2.last_given().unwrap().ip);
    let mut got = vec![a.clone(), b];
    got.sort();
    assert_eq!(
        got,
        vec!["198.18.0.102", "198.18.0.103"],
        "only the non-static addresses"
    );

    // dyn-vm's config moves to a static address: DNS follows and its lease is released.
    let mut guest = handle.cluster().guest(102).cloned().unwrap();
    guest
        .config
        .insert("ipconfig0".into(), "ip=198.18.0.150/23".into());
    handle.upsert_guest(guest);
    lz.expect_answer(&["dyn-vm.lab"], &["198.18.0.150"], Duration::from_secs(10));
    lz.expect_log(
        "leases of guests now configured statically released",
        Duration::from_secs(10),
    );
}

#[test]
fn a_crash_right_after_the_ack_loses_no_lease() {
    if !enabled("a_crash_right_after_the_ack_loses_no_lease") {
        return;
    }
    let mut lab = Lab::new("dh3");
    let (sim, mut lz, dir) = start(&mut lab, &[]);
    let c1 = Client::new(&mut lab, "g1", CT_DHCP_MAC, dir.path());
    let _ = c1.dhclient(&lab, "x");
    let ip = c1.last_given().expect("lease").ip;
    // kill -9 at once: the ACK was only sent after the lease was on disk.
    // SAFETY: kill(2) on our own child's PID.
    unsafe {
        libc::kill(lz.pid() as i32, libc::SIGKILL);
    }
    let _ = lz.stop();
    sim.sim
        .handle()
        .set_fault(leazzard::simulator::Fault::Refuse);
    let srv = lab.ns("srv");
    let mut env = env_for(&sim.sim);
    set(&mut env, "DHCP_ENABLED", Some("true"));
    set(
        &mut env,
        "DHCP_RANGE",
        Some("198.18.0.100,198.18.0.199,255.255.254.0,12h"),
    );
    set(&mut env, "DNS_LISTEN", Some(&format!("{SERVER}:53")));
    set(
        &mut env,
        "DATA_DIR",
        Some(dir.path().join("data").to_str().unwrap()),
    );
    lz = Leazzard::start_with(Some(&srv), &[], &env);
    // The name is back from the lease store and the inventory cache, with Proxmox down.
    time_to_answer(&lz, "ct-dhcp.lab", &ip);
    // The client comes back with its lease: the same address is confirmed.
    let _ = c1.dhclient(&lab, "x");
    assert_eq!(c1.last_given().unwrap().ip, ip);
}

#[test]
fn malformed_packets_leave_it_answering_and_old_dnsmasq_leases_are_imported() {
    if !enabled("malformed_packets_leave_it_answering_and_old_dnsmasq_leases_are_imported") {
        return;
    }
    let mut lab = Lab::new("dh4");
    let import = tempfile::NamedTempFile::new().unwrap();
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    std::fs::write(
        import.path(),
        format!("{expiry} bc:24:11:2e:6c:01 198.18.0.140 ubuntu *\n{expiry} 02:00:00:00:44:01 198.18.0.141 nas 01:02:00:00:00:44:01\n"),
    )
    .unwrap();
    let (_sim, lz, dir) = start(
        &mut lab,
        &[("DHCP_IMPORT_LEASES", import.path().to_str().unwrap())],
    );
    lz.expect_log("dnsmasq leases imported", Duration::from_secs(5));
    time_to_answer(&lz, "dyn-vm.lab", "198.18.0.140");
    time_to_answer(&lz, "nas.lab", "198.18.0.141");

    // 2,000 malformed packets at port 67.
    let g = lab.add_host("junk", "02:00:00:00:99:09", Some("198.18.0.250/23"));
    lab.inside(&g, || {
        let s = std::net::UdpSocket::bind("198.18.0.250:68").unwrap();
        let mut seed: u32 = 12345;
        for i in 0..2000u32 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let len = (seed >> 16) as usize % 600;
            let mut p: Vec<u8> = (0..len)
                .map(|j| (seed.wrapping_add(j as u32 * 7919) >> 8) as u8)
                .collect();
            if i % 3 == 0 && p.len() > 240 {
                // Mostly valid header and magic cookie, then garbage options.
                p[0] = 1;
                p[1] = 1;
                p[2] = 6;
                p[236..240].copy_from_slice(&[99, 130, 83, 99]);
            }
            let _ = s.send_to(&p, "198.18.0.2:67");
        }
    });
    let c1 = Client::new(&mut lab, "g1", CT_DHCP_MAC, dir.path());
    let out = c1.udhcpc(&lab, "y", None);
    let g = c1
        .last_given()
        .unwrap_or_else(|| panic!("no lease after the junk: {out:?}\n{}", lz.output()));
    assert_options(&g);
    assert!(lz.output().lines().all(|l| !l.contains("panicked")));
}

#[test]
fn a_guest_created_after_the_last_sync_is_named_at_its_first_lease() {
    if !enabled("a_guest_created_after_the_last_sync_is_named_at_its_first_lease") {
        return;
    }
    let mut lab = Lab::new("dh5");
    // Proxmox is asked only every 5 minutes: the name must come from the early sync that an
    // unknown MAC's DHCPDISCOVER asks for.
    let (sim, lz, dir) = start(&mut lab, &[("SYNC_INTERVAL", "300")]);
    let mut config = serde_json::Map::new();
    config.insert("name".into(), "brand-new".into());
    config.insert(
        "net0".into(),
        "virtio=BC:24:11:00:18:01,bridge=vmbr0".into(),
    );
    config.insert("ipconfig0".into(), "ip=dhcp".into());
    sim.sim
        .handle()
        .upsert_guest(SimGuest::new(180, GuestKind::Qemu, "pve1", config));
    let c = Client::new(&mut lab, "g1", "BC:24:11:00:18:01", dir.path());
    let t0 = Instant::now();
    let out = c.udhcpc(&lab, "ubuntu", None);
    let g = c
        .last_given()
        .unwrap_or_else(|| panic!("no lease: {out:?}"));
    let t = time_to_answer_within(&lz, "brand-new.lab", &g.ip, Duration::from_secs(20));
    eprintln!(
        "FIGURE new guest: DISCOVER -> brand-new.lab resolvable: {} ms",
        (t0.elapsed()).as_millis()
    );
    let _ = t;
}

#[test]
fn an_address_someone_answers_for_is_never_offered() {
    if !enabled("an_address_someone_answers_for_is_never_offered") {
        return;
    }
    let mut lab = Lab::new("dh6");
    // A long sweep interval: the sweep reaches .100 only after a minute, so what keeps the
    // squatter's address from the client is the probe before the offer.
    let (_sim, lz, dir) = start(
        &mut lab,
        &[
            ("DHCP_RANGE", "198.18.0.100,198.18.0.101,12h"),
            ("ARP_CHECK_INTERVAL", "300"),
        ],
    );
    // A host that set .100 by hand and has said nothing since.
    let _squatter = lab.add_host("sq", "02:00:00:00:66:01", Some("198.18.0.100/23"));
    let c = Client::new(&mut lab, "g1", DYN_VM_MAC, dir.path());
    // The client even asks for .100.
    let out = c.udhcpc(&lab, "x", Some("198.18.0.100"));
    let g = c
        .last_given()
        .unwrap_or_else(|| panic!("no lease: {out:?}\n{}", lz.output()));
    assert_eq!(g.ip, "198.18.0.101", "{}", lz.output());
    lz.expect_log(
        "address answered an ARP probe; offering another",
        Duration::from_secs(2),
    );
}

#[test]
fn systemd_networkd_gets_a_lease_and_the_guest_its_name() {
    if !enabled("systemd_networkd_gets_a_lease_and_the_guest_its_name") {
        return;
    }
    let networkd = "/lib/systemd/systemd-networkd";
    assert!(
        Path::new(networkd).exists(),
        "{networkd} missing (Debian package systemd)"
    );
    let mut lab = Lab::new("dh7");
    let (_sim, lz, dir) = start(&mut lab, &[]);
    let ns = lab.add_host("nd", DYN_VM_MAC, None);
    // networkd reads /etc/systemd/network and keeps state in /run/systemd/netif: give it its
    // own in a private mount namespace, and a read-only /sys so it does not wait for udev.
    let conf = dir.path().join("networkd");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        conf.join("10-eth0.network"),
        "[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n\n[DHCPv4]\nHostname=ubuntu\nUseDNS=no\nUseDomains=no\n",
    )
    .unwrap();
    let script = format!(
        "mount --bind {conf} /etc/systemd/network && mkdir -p /run/systemd/netif && \
         mount -t tmpfs -o mode=0755 tmpfs /run/systemd/netif && \
         chown systemd-network:systemd-network /run/systemd/netif && \
         mount -o remount,bind,ro /sys && exec {networkd}",
        conf = conf.display()
    );
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &ns, "unshare", "-m", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let leased = support::wait_until(Duration::from_secs(30), || {
        let out = lab.exec(&ns, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .find_map(|w| w.strip_suffix("/23").map(str::to_string))
            .filter(|ip| in_range(ip))
    });
    // Stop networkd by its PID (unshare and sh exec it) before asserting.
    let _ = child.kill();
    let _ = child.wait();
    let ip = leased.unwrap_or_else(|| panic!("systemd-networkd got no lease\n{}", lz.output()));
    time_to_answer(&lz, "dyn-vm.lab", &ip);
    assert!(lz.dig(&["ubuntu.lab"]).is_empty());
}
