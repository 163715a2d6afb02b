//! The simulated cluster as plain values, and how the API renders it.
//!
//! Invariants: no I/O, no clock, no locks. Every function here turns a [`Cluster`] (plus the
//! per-node staleness flags and the token's permissions) into the JSON `data` the real pveproxy
//! would send, so the shapes can be tested without a socket.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub use crate::inventory::GuestKind;

/// The directory under `/etc/pve/nodes/{node}/` holding a guest's config, as named in the
/// "does not exist" error.
pub(crate) fn config_dir(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Qemu => "qemu-server",
        GuestKind::Lxc => "lxc",
    }
}

/// The config key Proxmox shows as the guest's `name` in `/cluster/resources`.
pub fn name_key(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Qemu => "name",
        GuestKind::Lxc => "hostname",
    }
}

/// One cluster node. The simulator serves every node's API itself; `online` only changes what
/// the cluster-wide lists say and whether calls "proxied" to the node fail with 595.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimNode {
    /// Node name, e.g. `pve1`.
    pub name: String,
    /// Whether corosync sees the node (false: `status: offline`, proxied calls answer 595).
    pub online: bool,
}

impl SimNode {
    /// An online node called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        SimNode {
            name: name.into(),
            online: true,
        }
    }
}

/// One guest as Proxmox stores it: the raw config plus the run state the node broadcasts.
#[derive(Clone, Debug, PartialEq)]
pub struct SimGuest {
    /// Cluster-wide guest id.
    pub vmid: u32,
    /// QEMU VM or LXC container.
    pub kind: GuestKind,
    /// The node that holds the config; calls on any other node answer 500 "does not exist".
    pub node: String,
    /// The config exactly as `GET …/config` returns it (`name`/`hostname`, `netN`,
    /// `ipconfigN`, …). A `digest` is added when missing.
    pub config: Map<String, Value>,
    /// The YAML `cloudinit/dump?type=network` returns; `None`: generated from `netN` and
    /// `ipconfigN` the way Proxmox does for its own (NoCloud v1) network config.
    pub cloudinit_network: Option<String>,
    /// `running`, `stopped`, …
    pub status: String,
    /// Shown as `template: 1` in the resource list.
    pub template: bool,
    /// Semicolon-separated tags as in the resource list (`prod;web`).
    pub tags: Option<String>,
}

impl SimGuest {
    /// A running, non-template guest with the given config; `tags` and `template` are taken
    /// from the config's keys of the same name.
    pub fn new(
        vmid: u32,
        kind: GuestKind,
        node: impl Into<String>,
        config: Map<String, Value>,
    ) -> Self {
        let tags = config
            .get("tags")
            .and_then(Value::as_str)
            .map(str::to_string);
        let template = config
            .get("template")
            .is_some_and(|t| t.as_u64() == Some(1) || t.as_str() == Some("1"));
        SimGuest {
            vmid,
            kind,
            node: node.into(),
            config,
            cloudinit_network: None,
            status: "running".to_string(),
            template,
            tags,
        }
    }

    /// The name the resource list shows: config `name` (QEMU) or `hostname` (LXC), else
    /// Proxmox's defaults `VM {vmid}` / `CT{vmid}`.
    pub fn name(&self) -> String {
        match self.config.get(name_key(self.kind)).and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => match self.kind {
                GuestKind::Qemu => format!("VM {}", self.vmid),
                GuestKind::Lxc => format!("CT{}", self.vmid),
            },
        }
    }

    /// Renames the guest in its config and gives the config a new `digest`, as editing the
    /// file on a real node would.
    pub fn set_name(&mut self, name: &str) {
        self.config
            .insert(name_key(self.kind).to_string(), Value::from(name));
        self.config.remove("digest");
        self.config.insert(
            "digest".to_string(),
            Value::from(config_digest(&self.config)),
        );
    }
}

/// The whole simulated cluster: nodes and guests, in the order the lists show them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cluster {
    /// Nodes; the first is the one "contacted" (`local: 1` in `/cluster/status`).
    pub nodes: Vec<SimNode>,
    /// Guests, in resource-list order.
    pub guests: Vec<SimGuest>,
}

// The sample is built from the same fixtures the parser tests read, so the simulator cannot
// drift from the shapes those tests pin down.
const FIXTURE_RESOURCES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/proxmox/cluster-resources-vm.json"
));
const FIXTURE_CONFIGS: [(u32, &str); 7] = [
    (
        100,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/qemu-100-config-static-ipconfig.json"
        )),
    ),
    (
        101,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/qemu-101-config-static-ipv6.json"
        )),
    ),
    (
        102,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/qemu-102-config-dhcp.json"
        )),
    ),
    (
        103,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/qemu-103-config-no-cloudinit.json"
        )),
    ),
    (
        9000,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/qemu-9000-config-template.json"
        )),
    ),
    (
        200,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/lxc-200-config-static.json"
        )),
    ),
    (
        201,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/lxc-201-config-dhcp.json"
        )),
    ),
];
const FIXTURE_DUMPS: [(u32, &str); 3] = [
    (
        100,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/qemu-100-cloudinit-dump-network-v1.json"
        )),
    ),
    (
        104,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/qemu-104-cloudinit-dump-network-v2-cicustom.json"
        )),
    ),
    (
        105,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/proxmox/qemu-105-cloudinit-dump-network-v2-bare.json"
        )),
    ),
];

impl Cluster {
    /// A small lab on nodes `pve1` and `pve2`: the fixture guests (qemu 100 web1, 101 db1,
    /// 102 dyn-vm, 103 manual-vm, 9000 template; lxc 200 ct-dns, 201 ct-dhcp) with their
    /// fixture configs and qemu-100's cloud-init dump, plus guests with static addresses in
    /// 198.18.0.0/23: qemu 104 app1 and 105 app2 (user `cicustom` network snippets, the v2
    /// fixture dumps), qemu 110 build-01 (198.18.0.22) and lxc 202 ct-git (198.18.0.11).
    pub fn sample() -> Cluster {
        let mut guests = Vec::new();
        for entry in fixture_data(FIXTURE_RESOURCES)
            .as_array()
            .into_iter()
            .flatten()
        {
            let vmid = entry["vmid"]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or_default();
            let kind = if entry["type"] == "lxc" {
                GuestKind::Lxc
            } else {
                GuestKind::Qemu
            };
            let config = FIXTURE_CONFIGS
                .iter()
                .find(|(id, _)| *id == vmid)
                .and_then(|(_, text)| fixture_data(text).as_object().cloned())
                .unwrap_or_default();
            let mut guest =
                SimGuest::new(vmid, kind, entry["node"].as_str().unwrap_or("pve1"), config);
            guest.status = entry["status"].as_str().unwrap_or("running").to_string();
            guest.template = entry["template"] == 1;
            guest.tags = entry["tags"].as_str().map(str::to_string);
            guests.push(guest);
        }
        guests.push(sample_qemu(
            104,
            "pve1",
            json!({"name": "app1", "cicustom": "network=local:snippets/app1-network.yaml",
                   "ide2": "local-lvm:vm-104-cloudinit,media=cdrom",
                   "net0": "virtio=BC:24:11:2E:6E:01,bridge=vmbr0", "memory": "2048", "cores": 2,
                   "ostype": "l26", "scsi0": "local-lvm:vm-104-disk-0,size=16G"}),
        ));
        guests.push(sample_qemu(
            105,
            "pve2",
            json!({"name": "app2", "cicustom": "network=local:snippets/app2-network.yaml",
                   "ide2": "local-lvm:vm-105-cloudinit,media=cdrom",
                   "net0": "virtio=BC:24:11:2E:6F:01,bridge=vmbr0", "memory": "1024", "cores": 1,
                   "ostype": "l26", "scsi0": "local-lvm:vm-105-disk-0,size=16G"}),
        ));
        // 198.18.0.21 is db1's (qemu 101), hence .22 for build-01.
        guests.push(sample_qemu(
            110,
            "pve2",
            json!({"name": "build-01", "ide2": "local-lvm:vm-110-cloudinit,media=cdrom",
                   "ipconfig0": "ip=198.18.0.22/23,gw=198.18.0.1",
                   "net0": "virtio=BC:24:11:2E:71:01,bridge=vmbr0,firewall=1", "memory": 8192,
                   "cores": 8, "ostype": "l26", "scsi0": "local-lvm:vm-110-disk-0,size=100G",
                   "nameserver": "198.18.0.2", "searchdomain": "lab", "tags": "ci"}),
        ));
        let mut git = SimGuest::new(
            202,
            GuestKind::Lxc,
            "pve1",
            to_map(
                json!({"arch": "amd64", "cores": 2, "hostname": "ct-git", "memory": 1024,
                   "net0": "name=eth0,bridge=vmbr0,firewall=1,gw=198.18.0.1,hwaddr=BC:24:11:5F:0C:11,ip=198.18.0.11/23,type=veth",
                   "ostype": "debian", "rootfs": "local-lvm:vm-202-disk-0,size=20G", "swap": 512,
                   "unprivileged": 1}),
            ),
        );
        git.config.insert(
            "digest".to_string(),
            Value::from(config_digest(&git.config)),
        );
        guests.push(git);
        for (vmid, text) in FIXTURE_DUMPS {
            if let Some(guest) = guests.iter_mut().find(|g| g.vmid == vmid) {
                guest.cloudinit_network = fixture_data(text).as_str().map(str::to_string);
            }
        }
        Cluster {
            nodes: vec![SimNode::new("pve1"), SimNode::new("pve2")],
            guests,
        }
    }

    /// The guest with this vmid, on whatever node.
    pub fn guest(&self, vmid: u32) -> Option<&SimGuest> {
        self.guests.iter().find(|g| g.vmid == vmid)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&SimNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

fn sample_qemu(vmid: u32, node: &str, config: Value) -> SimGuest {
    let mut config = to_map(config);
    config.insert("boot".to_string(), Value::from("order=scsi0"));
    config.insert("digest".to_string(), Value::from(config_digest(&config)));
    SimGuest::new(vmid, GuestKind::Qemu, node, config)
}

fn to_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The `data` of an embedded fixture; `Null` if it does not parse (the tests check they do).
fn fixture_data(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .map(|mut v| v["data"].take())
        .unwrap_or(Value::Null)
}

/// A stand-in for the SHA-1 digest Proxmox puts in every config: 40 hex digits that change
/// whenever the config does, which is all a client may rely on.
pub(crate) fn config_digest(config: &Map<String, Value>) -> String {
    let mut without = config.clone();
    without.remove("digest");
    let hash = Sha256::digest(Value::Object(without).to_string().as_bytes());
    hash.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

/// What the token may do: path → {privilege → propagate flag}, the shape of
/// `GET /access/permissions` (a key present means granted; `1` also grants on sub-paths).
pub(crate) fn has_privilege(permissions: &Map<String, Value>, path: &str, privilege: &str) -> bool {
    effective_privileges(permissions, path).contains_key(privilege)
}

/// The privileges in force on `path`: its own entry, plus propagated ones from its ancestors.
pub(crate) fn effective_privileges(
    permissions: &Map<String, Value>,
    path: &str,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut ancestors = vec!["/".to_string()];
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        ancestors.push(prefix.clone());
    }
    let Some(own) = ancestors.pop() else {
        return out;
    };
    for ancestor in ancestors {
        for (privilege, flag) in permissions
            .get(&ancestor)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if flag.as_u64() == Some(1) || flag.as_bool() == Some(true) {
                out.insert(privilege.clone(), Value::from(1));
            }
        }
    }
    for (privilege, flag) in permissions
        .get(&own)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        out.entry(privilege.clone()).or_insert_with(|| flag.clone());
    }
    out
}

/// `status` of a node entry: corosync says offline, or up but without fresh stats (stale).
fn node_status(node: &SimNode, stale: &BTreeSet<String>) -> &'static str {
    match (node.online, stale.contains(&node.name)) {
        (false, _) => "offline",
        (true, false) => "online",
        (true, true) => "unknown",
    }
}

/// One `type: node` entry of `/cluster/resources` (stats left out: the default token has no
/// `Sys.Audit`).
pub(crate) fn node_resource(node: &SimNode, stale: &BTreeSet<String>) -> Value {
    let status = node_status(node, stale);
    let mut entry = json!({"id": format!("node/{}", node.name), "type": "node", "node": node.name,
                           "status": status, "cgroup-mode": 2});
    if status == "online" {
        entry["level"] = Value::from("");
    }
    entry
}

/// One `/nodes` entry, with the fingerprint of the certificate this simulator serves (it
/// serves every node, so every node has the same one).
pub(crate) fn node_index_entry(
    node: &SimNode,
    stale: &BTreeSet<String>,
    fingerprint: &str,
) -> Value {
    let mut entry = node_resource(node, stale);
    if let Some(map) = entry.as_object_mut() {
        map.remove("cgroup-mode");
        map.insert("ssl_fingerprint".to_string(), Value::from(fingerprint));
    }
    entry
}

/// One guest entry of `/cluster/resources`. A `stale` node (no broadcast for over 5 minutes)
/// leaves only what pmxcfs reads from the config: no `name`, no `template`, no stats.
pub(crate) fn guest_resource(guest: &SimGuest, stale: bool) -> Value {
    let kind = guest.kind.as_str();
    let mut entry = json!({"id": format!("{kind}/{}", guest.vmid), "type": kind, "node": guest.node,
                           "vmid": guest.vmid});
    if let Some(tags) = &guest.tags {
        entry["tags"] = Value::from(tags.as_str());
    }
    if stale {
        entry["status"] = Value::from("unknown");
        return entry;
    }
    let running = guest.status == "running";
    let maxmem = config_number(&guest.config, "memory").unwrap_or(512) * 1024 * 1024;
    let maxcpu = config_number(&guest.config, "cores").unwrap_or(1)
        * config_number(&guest.config, "sockets").unwrap_or(1);
    entry["name"] = Value::from(guest.name());
    entry["status"] = Value::from(guest.status.as_str());
    entry["template"] = Value::from(u8::from(guest.template));
    entry["maxmem"] = Value::from(maxmem);
    entry["mem"] = Value::from(if running { maxmem / 3 } else { 0 });
    entry["maxcpu"] = Value::from(maxcpu);
    entry["cpu"] = Value::from(if running { 0.01 } else { 0.0 });
    entry["maxdisk"] = Value::from(root_disk_bytes(guest));
    entry["disk"] = Value::from(0);
    entry["uptime"] = Value::from(if running { 3600 } else { 0 });
    for counter in ["diskread", "diskwrite", "netin", "netout"] {
        entry[counter] = Value::from(0);
    }
    entry
}

/// A config value Proxmox may send as a number or a numeric string (`memory: "2048"`).
fn config_number(config: &Map<String, Value>, key: &str) -> Option<u64> {
    match config.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `size=` of the root disk (`rootfs`, else the first scsi/virtio/sata/ide disk that is not a
/// cdrom), in bytes; 0 when unknown.
fn root_disk_bytes(guest: &SimGuest) -> u64 {
    let disk = guest.config.get("rootfs").or_else(|| {
        ["scsi0", "virtio0", "sata0", "ide0"]
            .iter()
            .find_map(|key| guest.config.get(*key))
    });
    let Some(size) = disk
        .and_then(Value::as_str)
        .and_then(|d| d.split(',').find_map(|p| p.strip_prefix("size=")))
    else {
        return 0;
    };
    let (digits, unit) = size.split_at(
        size.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(size.len()),
    );
    let factor: u64 = match unit {
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => 1,
    };
    digits.parse::<u64>().map_or(0, |n| n * factor)
}

/// Splits a Proxmox property string (`virtio=MAC,bridge=vmbr0,ip=…`) into key/value pairs;
/// a bare item gets an empty value.
fn property_pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(',')
        .map(|item| item.split_once('=').unwrap_or((item, "")))
}

/// The network config Proxmox generates for cloud-init (NoCloud, version 1) from `netN` and
/// `ipconfigN`, in the layout of qemu-server's `nocloud_network`: one `physical` entry per NIC
/// that has an `ipconfigN`, then a `nameserver` entry from `nameserver`/`searchdomain`.
pub(crate) fn generated_cloudinit_network(config: &Map<String, Value>) -> String {
    const MODELS: [&str; 8] = [
        "virtio", "e1000", "e1000e", "rtl8139", "vmxnet3", "ne2k_pci", "pcnet", "i82551",
    ];
    let mut out = String::from("version: 1\nconfig:\n");
    let mut ids: Vec<u32> = config
        .keys()
        .filter_map(|k| k.strip_prefix("net")?.parse().ok())
        .collect();
    ids.sort_unstable();
    for id in ids {
        let (Some(net), Some(ipconfig)) = (
            config.get(&format!("net{id}")).and_then(Value::as_str),
            config.get(&format!("ipconfig{id}")).and_then(Value::as_str),
        ) else {
            continue;
        };
        let mac = property_pairs(net)
            .find(|(k, _)| MODELS.contains(k) || *k == "macaddr")
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default();
        out.push_str(&format!(
            "    - type: physical\n      name: eth{id}\n      mac_address: '{mac}'\n      subnets:\n"
        ));
        let get = |key: &str| {
            property_pairs(ipconfig)
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
        };
        match get("ip") {
            Some("dhcp") => out.push_str("      - type: dhcp4\n"),
            Some(cidr) => {
                let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
                let bits = prefix.parse::<u32>().unwrap_or(32).min(32);
                let mask = Ipv4Addr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0));
                out.push_str(&format!(
                    "      - type: static\n        address: '{addr}'\n        netmask: '{mask}'\n"
                ));
                if let Some(gw) = get("gw") {
                    out.push_str(&format!("        gateway: '{gw}'\n"));
                }
            }
            None => {}
        }
        match get("ip6") {
            Some("dhcp") => out.push_str("      - type: dhcp6\n"),
            Some("auto") => out.push_str("      - type: ipv6_slaac\n"),
            Some(cidr) => {
                out.push_str(&format!(
                    "      - type: static6\n        address: '{cidr}'\n"
                ));
                if let Some(gw) = get("gw6") {
                    out.push_str(&format!("        gateway: '{gw}'\n"));
                }
            }
            None => {}
        }
    }
    let words = |key: &str| -> Vec<String> {
        config
            .get(key)
            .and_then(Value::as_str)
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let (servers, search) = (words("nameserver"), words("searchdomain"));
    if !servers.is_empty() || !search.is_empty() {
        out.push_str("    - type: nameserver\n");
        for (label, items) in [("address", servers), ("search", search)] {
            if !items.is_empty() {
                out.push_str(&format!("      {label}:\n"));
                for item in items {
                    out.push_str(&format!("      - '{item}'\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixture_parses() {
        assert!(fixture_data(FIXTURE_RESOURCES)
            .as_array()
            .is_some_and(|a| a.len() == 7));
        for (vmid, text) in FIXTURE_CONFIGS {
            assert!(fixture_data(text).is_object(), "config of {vmid}");
        }
        for (vmid, text) in FIXTURE_DUMPS {
            assert!(fixture_data(text).is_string(), "dump of {vmid}");
        }
    }

    #[test]
    fn generated_network_matches_proxmox_layout_of_the_fixture() {
        // qemu 100's config and its fixture dump describe the same NICs; the generator must
        // reproduce Proxmox's text for them.
        let cluster = Cluster::sample();
        let web1 = cluster.guest(100).expect("web1");
        assert_eq!(
            Some(generated_cloudinit_network(&web1.config)),
            web1.cloudinit_network
        );
    }

    #[test]
    fn propagation_decides_sub_paths() {
        let perms = to_map(json!({"/vms": {"VM.Audit": 1}, "/storage": {"Datastore.Audit": 0}}));
        assert!(has_privilege(&perms, "/vms/123", "VM.Audit"));
        assert!(has_privilege(&perms, "/vms", "VM.Audit"));
        assert!(!has_privilege(&perms, "/", "Sys.Audit"));
        assert!(has_privilege(&perms, "/storage", "Datastore.Audit"));
        assert!(!has_privilege(&perms, "/storage/local", "Datastore.Audit"));
    }

    #[test]
    fn stale_entry_keeps_only_config_facts() {
        let cluster = Cluster::sample();
        let web1 = cluster.guest(100).expect("web1");
        let entry = guest_resource(web1, true);
        assert_eq!(
            entry,
            json!({"id": "qemu/100", "type": "qemu", "node": "pve1", "vmid": 100,
                                 "tags": "prod;web", "status": "unknown"})
        );
        let fresh = guest_resource(web1, false);
        assert_eq!(fresh["maxmem"], 2_147_483_648u64);
        assert_eq!(fresh["maxdisk"], 34_359_738_368u64);
    }
}
