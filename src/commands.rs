//! The three commands: `run` (the service), `demo` (the service against a simulated Proxmox
//! on loopback) and `check` (validate, reach Proxmox, print what would be published).
//!
//! Exit codes: 0 success; 1 a runtime failure (`check` found a problem, the service could not
//! start); 2 a configuration error, printed as one line naming the variable.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::{
    Command, Config, ConfigError, ProxmoxConfig, ProxmoxHost, RawConfig, Secret, TlsMode,
};
use crate::daemon::{self, Daemon};
use crate::simulator::{Cluster, GuestKind, SimGuest, SimOptions, Simulator};

/// Runs `command` to completion.
pub fn execute(command: Command) -> ExitCode {
    let (raw, kind) = match &command {
        Command::Run(r) => (r, Kind::Run),
        Command::Demo(r) => (r, Kind::Demo),
        Command::Check(r) => (r, Kind::Check),
    };
    // The demo's default ports may be taken on a desktop (5353 is mDNS's); only those it
    // chose itself may move.
    let demo_defaults = (raw.dns_listen.is_none(), raw.http_listen.is_none());
    let config = match resolve(raw, kind) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("leazzard: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config, kind);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("leazzard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match kind {
            Kind::Run => daemon::run(config).await.map(|_| ExitCode::SUCCESS),
            Kind::Demo => demo(config, demo_defaults).await.map(|_| ExitCode::SUCCESS),
            Kind::Check => Ok(crate::check::run(config).await),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors that name a variable are configuration errors: exit 2, as for
            // a wrong value.
            let text = format!("{e:#}");
            eprintln!("leazzard: {text}");
            let is_config = crate::config::VARIABLES
                .iter()
                .any(|v| text.starts_with(&format!("{v}:")));
            if is_config {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Run,
    Demo,
    Check,
}

fn resolve(raw: &RawConfig, kind: Kind) -> Result<Config, ConfigError> {
    match kind {
        Kind::Demo => raw.resolve_demo(),
        Kind::Run | Kind::Check => raw.resolve(),
    }
}

fn init_logging(config: &Config, kind: Kind) {
    use tracing_subscriber::EnvFilter;
    // `check` prints its own report; its log says only what went wrong.
    let level = if kind == Kind::Check {
        "warn"
    } else {
        config.log_level.as_filter()
    };
    let filter = EnvFilter::new(format!(
        "{level},hyper=warn,reqwest=warn,rustls=warn,h2=warn"
    ));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .try_init();
}

/// `leazzard demo`: the real service, watching a simulated Proxmox cluster on loopback.
async fn demo(mut config: Config, (dns_default, http_default): (bool, bool)) -> anyhow::Result<()> {
    if dns_default && std::net::UdpSocket::bind(config.dns.listen).is_err() {
        tracing::warn!(
            port = config.dns.listen.port(),
            "the demo's DNS port is taken; using a free one (set DNS_LISTEN to choose)"
        );
        config.dns.listen.set_port(0);
    }
    if let Some(http) = config.http_listen.as_mut().filter(|_| http_default) {
        if std::net::TcpListener::bind(*http).is_err() {
            tracing::warn!(
                port = http.port(),
                "the demo's HTTP port is taken; using a free one (set HTTP_LISTEN to choose)"
            );
            http.set_port(0);
        }
    }
    let mut simulator = None;
    if config.proxmox.is_none() {
        let sim = Simulator::start(Cluster::sample(), SimOptions::default()).await?;
        let pin = parse_fingerprint(&sim.leaf_fingerprint())
            .ok_or_else(|| anyhow::anyhow!("simulator fingerprint unreadable"))?;
        config.proxmox = Some(ProxmoxConfig {
            hosts: vec![ProxmoxHost {
                host: "127.0.0.1".into(),
                port: sim.addr().port(),
            }],
            token_id: sim.token_id(),
            token_secret: Secret::new(sim.token_secret()),
            tls: TlsMode::Pinned(vec![pin]),
        });
        tracing::info!(url = %sim.base_url(), fingerprint = %sim.leaf_fingerprint(), "simulated Proxmox API started");
        simulator = Some(sim);
    }
    let domain = config.dns.domain.clone();
    let daemon = Daemon::start(config).await?;
    for _ in 0..100 {
        if daemon.sync_status.load().last_attempt.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    print_banner(&daemon, &domain);

    // Show a live change: a guest appears in the simulated cluster a little later.
    if let Some(sim) = &simulator {
        let handle = sim.handle();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            let mut config = serde_json::Map::new();
            config.insert("name".into(), "demo-new".into());
            config.insert(
                "net0".into(),
                "virtio=BC:24:11:2E:70:01,bridge=vmbr0".into(),
            );
            config.insert("ipconfig0".into(), "ip=198.18.0.70/23,gw=198.18.0.1".into());
            config.insert(
                "ide2".into(),
                "local-lvm:vm-120-cloudinit,media=cdrom".into(),
            );
            handle.upsert_guest(SimGuest::new(120, GuestKind::Qemu, "pve1", config));
            println!("\n[demo] the simulated cluster just created VM 120 'demo-new' (198.18.0.70); it resolves after the next sync (SYNC_INTERVAL).\n");
        });
    }
    daemon::wait_for_signal().await;
    daemon.stop().await;
    if let Some(sim) = simulator {
        sim.shutdown().await;
    }
    Ok(())
}

fn print_banner(daemon: &Daemon, domain: &str) {
    let addr = daemon.dns_addr();
    let zone = daemon.zone();
    println!();
    println!(
        "leazzard demo: DNS on {addr}, watching a simulated Proxmox cluster. Ctrl-C stops it."
    );
    println!("Published now ({} records):", zone.records.len());
    for r in &zone.records {
        println!("  {:<28} {:<15} {}", r.fqdn, r.addr, r.source);
    }
    let first = zone
        .records
        .first()
        .map_or_else(|| format!("web1.{domain}"), |r| r.fqdn.clone());
    let first_addr = zone
        .records
        .first()
        .map_or_else(|| "198.18.0.20".to_string(), |r| r.addr.to_string());
    if let Some(http) = daemon.http_addr() {
        println!("Status page: http://{http}/  (also /metrics, /api/v1/guests)");
    }
    println!("Try:");
    println!("  dig @{} -p {} {first} +short", addr.ip(), addr.port());
    println!(
        "  dig @{} -p {} -x {first_addr} +short",
        addr.ip(),
        addr.port()
    );
    println!(
        "  dig @{} -p {} {domain} SOA +short",
        addr.ip(),
        addr.port()
    );
    println!();
}

fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}
