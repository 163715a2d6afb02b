//! A simulated Proxmox API with a generated cluster, for benchmarks and manual tests.
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/simulate [GUESTS] [--network CIDR] [--hosts FILE]
//! ```
//!
//! Starts `leazzard::simulator::Simulator` on 127.0.0.1 (a free port) with GUESTS guests
//! (default 1000, or `SIM_GUESTS`) spread over three nodes: `bench-0001`, `bench-0002`, …,
//! every third one an LXC container (`hostname`, `net0: …,hwaddr=…,ip=…`), the others QEMU
//! VMs (`name`, `net0: virtio=…`, static `ipconfig0: ip=…`). Addresses are consecutive from
//! the 10th host address of the network (`--network` or `SIM_NETWORK`, default
//! 198.18.0.0/22); MACs are `BC:24:11:xx:xx:xx`.
//!
//! Prints exactly one line to stdout, then runs until SIGTERM, SIGINT or stdin closes:
//!
//! ```text
//! URL=https://127.0.0.1:PORT HOST=127.0.0.1:PORT TOKEN_ID=… TOKEN_SECRET=… FINGERPRINT=AB:… GUESTS=1000
//! ```
//!
//! With `--hosts FILE` (or `SIM_HOSTS`) it first writes the published names as an
//! `/etc/hosts`-style file (`ADDRESS NAME`, one a line, names without domain), so a benchmark
//! can feed the same names to other DNS servers.

use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::process::ExitCode;

use ipnet::Ipv4Net;
use leazzard::simulator::{Cluster, GuestKind, SimGuest, SimNode, SimOptions, Simulator};
use serde_json::{Map, Value};

const NODES: [&str; 3] = ["pve1", "pve2", "pve3"];
/// The first guest gets the network address + this (leaving room for a gateway and friends).
const FIRST_HOST: u32 = 10;

struct Args {
    guests: u32,
    network: Ipv4Net,
    hosts: Option<String>,
}

fn usage(why: &str) -> ExitCode {
    eprintln!("simulate: {why}");
    eprintln!("usage: simulate [GUESTS] [--network CIDR] [--hosts FILE]  (env SIM_GUESTS, SIM_NETWORK, SIM_HOSTS)");
    ExitCode::from(2)
}

fn parse_args() -> Result<Args, String> {
    let mut guests = std::env::var("SIM_GUESTS").ok();
    let mut network = std::env::var("SIM_NETWORK").ok();
    let mut hosts = std::env::var("SIM_HOSTS").ok().filter(|s| !s.is_empty());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--network" => network = Some(args.next().ok_or("--network needs a CIDR")?),
            "--hosts" => hosts = Some(args.next().ok_or("--hosts needs a file name")?),
            "-h" | "--help" => return Err("help".into()),
            other if !other.starts_with('-') => guests = Some(other.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let guests: u32 = guests
        .as_deref()
        .unwrap_or("1000")
        .parse()
        .map_err(|_| "GUESTS must be a number, e.g. 1000".to_string())?;
    let network: Ipv4Net = network
        .as_deref()
        .unwrap_or("198.18.0.0/22")
        .parse()
        .map_err(|_| "the network must be IPv4 CIDR, e.g. 198.18.0.0/22".to_string())?;
    let network = network.trunc();
    let room =
        (1u64 << (32 - u32::from(network.prefix_len()))).saturating_sub(u64::from(FIRST_HOST) + 1);
    if guests == 0 || u64::from(guests) > room {
        return Err(format!(
            "{guests} guests do not fit in {network} (1 to {room}, starting at host .{FIRST_HOST})"
        ));
    }
    Ok(Args {
        guests,
        network,
        hosts,
    })
}

/// The name, address and MAC of guest number `i` (0-based).
fn guest_facts(i: u32, width: usize, network: Ipv4Net) -> (String, Ipv4Addr, String) {
    let name = format!("bench-{:0width$}", i + 1);
    let addr = Ipv4Addr::from(u32::from(network.network()) + FIRST_HOST + i);
    let m = i.to_be_bytes();
    let mac = format!("BC:24:11:{:02X}:{:02X}:{:02X}", m[1], m[2], m[3]);
    (name, addr, mac)
}

fn build_cluster(args: &Args) -> (Cluster, Vec<(Ipv4Addr, String)>) {
    let width = args.guests.to_string().len().max(4);
    let prefix = args.network.prefix_len();
    let gw = Ipv4Addr::from(u32::from(args.network.network()) + 1);
    let mut guests = Vec::with_capacity(args.guests as usize);
    let mut hosts = Vec::with_capacity(args.guests as usize);
    for i in 0..args.guests {
        let (name, addr, mac) = guest_facts(i, width, args.network);
        let vmid = 1000 + i;
        let node = NODES[i as usize % NODES.len()];
        let mut config = Map::new();
        let kind = if i % 3 == 2 {
            config.insert("hostname".into(), Value::from(name.as_str()));
            config.insert("arch".into(), "amd64".into());
            config.insert("cores".into(), 1.into());
            config.insert("memory".into(), 512.into());
            config.insert(
                "net0".into(),
                format!("name=eth0,bridge=vmbr0,gw={gw},hwaddr={mac},ip={addr}/{prefix},type=veth")
                    .into(),
            );
            config.insert(
                "rootfs".into(),
                format!("local-lvm:vm-{vmid}-disk-0,size=8G").into(),
            );
            GuestKind::Lxc
        } else {
            config.insert("name".into(), Value::from(name.as_str()));
            config.insert("cores".into(), 1.into());
            config.insert("memory".into(), "1024".into());
            config.insert("ostype".into(), "l26".into());
            config.insert("net0".into(), format!("virtio={mac},bridge=vmbr0").into());
            config.insert(
                "ipconfig0".into(),
                format!("ip={addr}/{prefix},gw={gw}").into(),
            );
            config.insert(
                "ide2".into(),
                format!("local-lvm:vm-{vmid}-cloudinit,media=cdrom").into(),
            );
            config.insert(
                "scsi0".into(),
                format!("local-lvm:vm-{vmid}-disk-0,size=16G").into(),
            );
            GuestKind::Qemu
        };
        guests.push(SimGuest::new(vmid, kind, node, config));
        hosts.push((addr, name));
    }
    let cluster = Cluster {
        nodes: NODES.iter().map(|n| SimNode::new(*n)).collect(),
        guests,
    };
    (cluster, hosts)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(why) if why == "help" => return usage("a simulated Proxmox API for benchmarks"),
        Err(why) => return usage(&why),
    };
    let (cluster, hosts) = build_cluster(&args);
    if let Some(path) = &args.hosts {
        let text: String = hosts.iter().map(|(a, n)| format!("{a} {n}\n")).collect();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("simulate: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("simulate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let sim = match Simulator::start(cluster, SimOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("simulate: cannot start the simulator: {e}");
                return ExitCode::FAILURE;
            }
        };
        let line = format!(
            "URL={} HOST={} TOKEN_ID={} TOKEN_SECRET={} FINGERPRINT={} GUESTS={}\n",
            sim.base_url(),
            sim.addr(),
            sim.token_id(),
            sim.token_secret(),
            sim.leaf_fingerprint(),
            args.guests
        );
        let mut out = std::io::stdout().lock();
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
        drop(out);

        // stdin closing (the parent went away) ends us, like a signal does.
        let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = String::new();
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
            let _ = eof_tx.send(());
        });
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("simulate: cannot watch SIGTERM: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = eof_rx => {}
        }
        sim.shutdown().await;
        ExitCode::SUCCESS
    })
}
