//! Lab networks for the root-only tests: network namespaces joined by a bridge that lives in
//! a namespace of its own, so nothing touches the machine's own interfaces or namespace.
//!
//! Names: every namespace is `lzt-<tag>-<role>`; links exist only inside them. Addresses
//! come from 198.18.0.0/15. Everything is removed when the [`Lab`] drops, also when a test
//! fails (and leftovers of an earlier crashed run with the same tag are removed first).

use std::process::{Command, Output};
use std::time::Duration;

/// Whether lab tests may run here; says why not, when they may not, on the real stderr
/// (not the test harness's captured one), so a skip is never silent.
pub fn enabled(test: &str) -> bool {
    use std::io::Write;
    let skip = |why: &str| {
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
        false
    };
    if std::env::var("LEAZZARD_LAB_TESTS").as_deref() != Ok("1") {
        return skip("lab test; set LEAZZARD_LAB_TESTS=1 (needs root and network namespaces)");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("lab test needs root (network namespaces)");
    }
    true
}

/// A lab: one bridge namespace and any number of host namespaces plugged into it.
pub struct Lab {
    tag: String,
    namespaces: Vec<String>,
    links: u32,
}

/// Runs `args` and returns its output; panics with the command line if it cannot start.
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Runs `args`, panicking with stderr if it fails.
pub fn must(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    /// A lab whose namespaces are named `lzt-<tag>-*`, with its bridge namespace ready.
    pub fn new(tag: &str) -> Lab {
        let mut lab = Lab {
            tag: tag.to_string(),
            namespaces: Vec::new(),
            links: 0,
        };
        // Leftovers of an earlier run that was killed before it could clean up.
        let listed = run(&["ip", "netns", "list"]);
        let prefix = format!("lzt-{tag}-");
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            if let Some(name) = line
                .split_whitespace()
                .next()
                .filter(|n| n.starts_with(&prefix))
            {
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
        let br = lab.add_namespace("br");
        must(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &br, "link", "set", "br0", "up"]);
        lab
    }

    /// The name of the namespace of `role`.
    pub fn ns(&self, role: &str) -> String {
        format!("lzt-{}-{role}", self.tag)
    }

    fn add_namespace(&mut self, role: &str) -> String {
        let name = self.ns(role);
        must(&["ip", "netns", "add", &name]);
        self.namespaces.push(name.clone());
        must(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        // No IPv6 chatter (router solicitations, MLD) to confuse packet counts.
        let _ = run(&[
            "ip",
            "netns",
            "exec",
            &name,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.disable_ipv6=1",
        ]);
        name
    }

    /// A host `role` on the lab bridge with interface `eth0` of MAC `mac`, and address
    /// `cidr` (e.g. `198.18.0.50/23`) if given. Returns the namespace name.
    pub fn add_host(&mut self, role: &str, mac: &str, cidr: Option<&str>) -> String {
        let ns = self.add_namespace(role);
        self.links += 1;
        let port = format!("p{}", self.links);
        let br = self.ns("br");
        must(&[
            "ip", "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ]);
        must(&["ip", "-n", &br, "link", "set", &port, "master", "br0", "up"]);
        must(&["ip", "-n", &ns, "link", "set", "eth0", "address", mac]);
        if let Some(cidr) = cidr {
            must(&["ip", "-n", &ns, "addr", "add", cidr, "dev", "eth0"]);
        }
        must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        ns
    }

    /// A second network `outside` joined to host `ns` by a direct link `eth1` (address
    /// `cidr` on our side): traffic on it must never come from the lab's services.
    /// Returns the outside namespace and the name of its interface.
    pub fn add_outside(&mut self, ns: &str, cidr: &str, peer_cidr: &str) -> (String, String) {
        let outside = self.add_namespace("out");
        must(&[
            "ip", "-n", ns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns",
            &outside,
        ]);
        must(&["ip", "-n", ns, "addr", "add", cidr, "dev", "eth1"]);
        must(&["ip", "-n", ns, "link", "set", "eth1", "up"]);
        must(&[
            "ip", "-n", &outside, "addr", "add", peer_cidr, "dev", "eth0",
        ]);
        must(&["ip", "-n", &outside, "link", "set", "eth0", "up"]);
        (outside, "eth0".into())
    }

    /// Runs `args` inside namespace `ns`.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// Packets received on `dev` in `ns`, from the kernel's counters.
    pub fn rx_packets(&self, ns: &str, dev: &str) -> u64 {
        let out = run(&["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v[0]["stats64"]["rx"]["packets"].as_u64().unwrap_or(0)
    }

    /// Starts something in namespace `ns` from a thread that has joined it: sockets that
    /// `make` creates (and threads it spawns) live in that namespace.
    pub fn inside<T: Send + 'static>(
        &self,
        ns: &str,
        make: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: setns on this thread with a valid namespace descriptor.
            let rc =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            make()
        })
        .join()
        .expect("thread in namespace")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        // Give the kernel a moment to tear the links down before the next lab reuses names.
        std::thread::sleep(Duration::from_millis(50));
    }
}
