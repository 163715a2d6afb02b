//! Helpers of the end-to-end tests: the real `leazzard` binary as a child process, `dig` as
//! the DNS client, bounded waits, and a simulated Proxmox API (from the library) over HTTPS.
//!
//! Every child process is ended by its PID when its guard drops, also when a test fails.

#![allow(dead_code)]

pub mod lab;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leazzard::simulator::{Cluster, GuestKind, SimGuest, SimOptions, Simulator};

/// The leazzard binary under test, with its output captured.
pub struct Leazzard {
    child: Child,
    netns: Option<String>,
    output: Arc<Mutex<String>>,
    /// Where its DNS server listens.
    pub dns: SocketAddr,
    /// Its `DATA_DIR` (kept alive as long as the process, unless given by the test).
    pub data_dir: std::path::PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Environment for leazzard against `sim`: DNS-only, loopback, random port, fast sync,
/// TLS pinned to the simulator's certificate.
pub fn env_for(sim: &Simulator) -> Vec<(String, String)> {
    [
        ("PROXMOX_HOST", format!("127.0.0.1:{}", sim.addr().port())),
        ("API_TOKEN_ID", sim.token_id()),
        ("API_TOKEN_SECRET", sim.token_secret()),
        ("PROXMOX_FINGERPRINT", sim.leaf_fingerprint()),
        ("NETWORK_CIDR", "198.18.0.0/23".into()),
        ("DNS_DOMAIN", "lab".into()),
        ("SYNC_INTERVAL", "1".into()),
        ("DNS_LISTEN", "127.0.0.1:0".into()),
        ("DNS_UPSTREAM", "127.0.0.1:9".into()),
        ("HTTP_LISTEN", String::new()),
        ("DHCP_ENABLED", "false".into()),
        ("ARP_ENABLED", "false".into()),
        ("LOG_LEVEL", "DEBUG".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Sets `key` in `env` (replacing it) or removes it with `None`.
pub fn set(env: &mut Vec<(String, String)>, key: &str, value: Option<&str>) {
    env.retain(|(k, _)| k != key);
    if let Some(v) = value {
        env.push((key.to_string(), v.to_string()));
    }
}

impl Leazzard {
    /// Starts `leazzard run` with exactly `env` (plus a fresh DATA_DIR unless `env` has one)
    /// and waits until its DNS server listens.
    pub fn start(env: &[(String, String)]) -> Leazzard {
        Leazzard::start_with(None, &[], env)
    }

    /// Starts `leazzard run` inside network namespace `netns` (if given), behind `wrapper`
    /// (e.g. `setpriv` to drop a capability), with exactly `env`.
    pub fn start_with(netns: Option<&str>, wrapper: &[&str], env: &[(String, String)]) -> Leazzard {
        let mut tmp = None;
        let data_dir = match env.iter().find(|(k, _)| k == "DATA_DIR") {
            Some((_, d)) => d.into(),
            None => {
                let t = tempfile::tempdir().expect("temp dir");
                let p = t.path().to_path_buf();
                tmp = Some(t);
                p
            }
        };
        let mut argv: Vec<String> = Vec::new();
        if let Some(ns) = netns {
            argv.extend(["ip", "netns", "exec", ns].map(String::from));
        }
        argv.extend(wrapper.iter().map(|s| s.to_string()));
        argv.push(env!("CARGO_BIN_EXE_leazzard").to_string());
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("DATA_DIR", &data_dir)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start leazzard");
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        let mut me = Leazzard {
            child,
            netns: netns.map(str::to_string),
            output,
            dns: "0.0.0.0:0".parse().unwrap(),
            data_dir,
            _tmp: tmp,
        };
        let found = wait_until(Duration::from_secs(20), || {
            let out = me.output();
            out.lines()
                .find(|l| l.contains("DNS server listening"))
                .and_then(|l| l.split("listen=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.parse::<SocketAddr>().ok())
        });
        match found {
            Some(addr) => me.dns = addr,
            None => panic!("leazzard did not start listening; output:\n{}", me.output()),
        }
        me
    }

    /// The process ID (of leazzard itself: `ip netns exec` and `setpriv` exec it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// `dig @leazzard -p PORT args… +short`, answer lines.
    pub fn dig(&self, args: &[&str]) -> Vec<String> {
        dig_in(self.netns.as_deref(), self.dns, args)
    }

    /// Waits (bounded) until `dig args` gives `want` (sorted lines); panics with the output.
    pub fn expect_answer(&self, args: &[&str], want: &[&str], within: Duration) {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        let mut last = Vec::new();
        let ok = wait_until(within, || {
            let mut got = self.dig(args);
            got.sort();
            last = got.clone();
            (got == want).then_some(())
        });
        if ok.is_none() {
            panic!(
                "dig {args:?}: wanted {want:?}, last got {last:?}\nleazzard output:\n{}",
                self.output()
            );
        }
    }

    /// Waits (bounded) until the output contains `text`.
    pub fn expect_log(&self, text: &str, within: Duration) {
        if wait_until(within, || self.output().contains(text).then_some(())).is_none() {
            panic!("log never said {text:?}; output:\n{}", self.output());
        }
    }

    /// Ends the process by its PID (SIGTERM, then SIGKILL if it lingers); returns its exit
    /// status code, if it exited by itself.
    pub fn stop(&mut self) -> Option<i32> {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on the PID of our own child, which we have not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Leazzard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `dig @addr -p port args… +short` with short timeouts; the answer lines.
pub fn dig(server: SocketAddr, args: &[&str]) -> Vec<String> {
    dig_in(None, server, args)
}

/// [`dig`] run inside network namespace `netns`, if given.
pub fn dig_in(netns: Option<&str>, server: SocketAddr, args: &[&str]) -> Vec<String> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "dig"]);
            c
        }
        None => Command::new("dig"),
    };
    let out = cmd
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+time=1", "+tries=1", "+short"])
        .args(args)
        .output()
        .expect("dig (Debian package dnsutils) must be installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(str::to_string)
        .collect()
}

/// The whole `dig` output (for status codes and sections).
pub fn dig_full(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+time=1", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (Debian package dnsutils) must be installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 100 ms until it gives `Some` or `within` passes.
pub fn wait_until<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A simulated Proxmox API with the sample cluster, on its own runtime thread so that tests
/// can stay plain synchronous code (the simulator's handle is sync).
pub struct Sim {
    pub sim: Simulator,
    runtime: tokio::runtime::Runtime,
}

impl Sim {
    /// The sample cluster.
    pub fn start() -> Sim {
        Sim::with(Cluster::sample(), SimOptions::default())
    }

    /// A given cluster and options.
    pub fn with(cluster: Cluster, opts: SimOptions) -> Sim {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = runtime
            .block_on(Simulator::start(cluster, opts))
            .expect("simulator");
        Sim { sim, runtime }
    }

    /// The runtime the simulator runs on (to start other in-process servers beside it).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }
}

/// Every name of the sample cluster with a static address in 198.18.0.0/23.
pub const SAMPLE_STATIC: &[(&str, &str)] = &[
    ("app1.lab", "198.18.0.30"),
    ("app2.lab", "198.18.0.31"),
    ("build-01.lab", "198.18.0.22"),
    ("ct-dns.lab", "198.18.0.10"),
    ("ct-git.lab", "198.18.0.11"),
    ("db1.lab", "198.18.0.21"),
    ("web1.lab", "198.18.0.20"),
];

/// Asserts every sample name resolves (A) right now.
pub fn assert_sample_resolves(lz: &Leazzard) {
    for (name, addr) in SAMPLE_STATIC {
        lz.expect_answer(&[name], &[addr], Duration::from_secs(5));
    }
}

/// A QEMU guest on pve1 with one NIC of `mac` and a static cloud-init address `ip`/23.
pub fn static_guest(vmid: u32, name: &str, mac: &str, ip: &str) -> SimGuest {
    let mut config = serde_json::Map::new();
    config.insert("name".into(), name.into());
    config.insert("net0".into(), format!("virtio={mac},bridge=vmbr0").into());
    config.insert(
        "ipconfig0".into(),
        format!("ip={ip}/23,gw=198.18.0.1").into(),
    );
    config.insert("ide2".into(), "local-lvm:vm-cloudinit,media=cdrom".into());
    SimGuest::new(vmid, GuestKind::Qemu, "pve1", config)
}
