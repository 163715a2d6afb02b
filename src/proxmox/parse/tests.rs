//! Parser tests against the API samples in `tests/fixtures/proxmox/` and hand-made values.

use super::*;
use crate::proxmox::types::{ApiResponse, CloudInitDump};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/proxmox/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config(name: &str) -> GuestConfig {
    serde_json::from_str::<ApiResponse<GuestConfig>>(&fixture(name))
        .unwrap()
        .data
}

fn dump(name: &str) -> CloudInitNetwork {
    let text = serde_json::from_str::<CloudInitDump>(&fixture(name))
        .unwrap()
        .data;
    parse_cloudinit_network(&text).unwrap()
}

fn resources(name: &str) -> (Vec<ClusterResource>, Vec<ParseWarning>) {
    let list: ApiResponse<Vec<Json>> = serde_json::from_str(&fixture(name)).unwrap();
    parse_cluster_resources(&list.data)
}

/// The guest's entry in cluster-resources-vm.json.
fn listed(vmid: u32) -> ClusterResource {
    resources("cluster-resources-vm.json")
        .0
        .into_iter()
        .find(|r| r.vmid == vmid)
        .unwrap()
}

fn resource(kind: GuestKind, vmid: u32) -> ClusterResource {
    ClusterResource {
        id: format!("{}/{vmid}", kind.as_str()),
        kind,
        node: "pve1".into(),
        vmid,
        name: None,
        status: Some("running".into()),
        template: Some(false),
        tags: None,
    }
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn v4(s: &str) -> Ipv4Config {
    Ipv4Config::Static(s.parse().unwrap())
}

fn v6(s: &str) -> Ipv6Config {
    Ipv6Config::Static(s.parse().unwrap())
}

fn ip4(s: &str) -> Option<Ipv4Addr> {
    Some(s.parse().unwrap())
}

fn ip6(s: &str) -> Option<Ipv6Addr> {
    Some(s.parse().unwrap())
}

fn build(res: &ClusterResource, cfg: &str, ifaces: Option<&CloudInitNetwork>) -> ParsedGuest {
    guest_from_config(res, &config(cfg), ifaces.map(|n| n.ifaces.as_slice())).unwrap()
}

fn messages(w: &[ParseWarning]) -> Vec<String> {
    w.iter().map(ToString::to_string).collect()
}

// ----- cluster resources -----------------------------------------------------------------

#[test]
fn cluster_resources_lists_seven_guests_with_flags_and_tags() {
    let (list, warnings) = resources("cluster-resources-vm.json");
    assert!(warnings.is_empty(), "{warnings:?}");
    let ids: Vec<_> = list.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "qemu/100",
            "qemu/101",
            "qemu/102",
            "qemu/103",
            "qemu/9000",
            "lxc/200",
            "lxc/201"
        ]
    );
    let r100 = &list[0];
    assert_eq!(
        (r100.kind, r100.vmid, r100.node.as_str()),
        (GuestKind::Qemu, 100, "pve1")
    );
    assert_eq!(r100.name.as_deref(), Some("web1"));
    assert_eq!(r100.status.as_deref(), Some("running"));
    assert_eq!(r100.tags.as_deref(), Some("prod;web"));
    assert_eq!(r100.template, Some(false));
    let templates: Vec<_> = list
        .iter()
        .filter(|r| r.is_template())
        .map(|r| r.vmid)
        .collect();
    assert_eq!(templates, [9000]);
    let lxc201 = &list[6];
    assert_eq!(
        (lxc201.kind, lxc201.node.as_str()),
        (GuestKind::Lxc, "pve2")
    );
    assert_eq!(lxc201.name.as_deref(), Some("ct-dhcp"));
    assert_eq!(lxc201.tags, None);
    assert_eq!(list[3].status.as_deref(), Some("stopped"));
}

#[test]
fn cluster_resources_typed_list_deserializes_directly() {
    let list: ApiResponse<Vec<ClusterResource>> =
        serde_json::from_str(&fixture("cluster-resources-vm.json")).unwrap();
    assert_eq!(list.data.len(), 7);
    assert_eq!(list.data[5].name.as_deref(), Some("ct-dns"));
}

#[test]
fn cluster_resources_node_offline_guests_have_no_name_and_unknown_status() {
    let (list, warnings) = resources("cluster-resources-node-offline.json");
    assert!(warnings.is_empty());
    assert_eq!(list.len(), 7);
    for r in &list {
        if r.node == "pve2" {
            assert_eq!(r.name, None, "{}", r.id);
            assert_eq!(r.status.as_deref(), Some("unknown"), "{}", r.id);
            assert_eq!(r.template, None, "{}", r.id);
            assert!(!r.is_template());
        } else {
            assert!(r.name.is_some(), "{}", r.id);
        }
    }
    let offline: Vec<_> = list
        .iter()
        .filter(|r| r.name.is_none())
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(offline, ["qemu/102", "qemu/103", "lxc/201"]);
    assert!(list.iter().find(|r| r.vmid == 9000).unwrap().is_template());
}

#[test]
fn cluster_resources_accept_strings_for_numbers_and_skip_other_types() {
    let (list, warnings) = resources("cluster-resources-strings-for-numbers.json");
    let got: Vec<_> = list.iter().map(|r| (r.vmid, r.kind, r.template)).collect();
    assert_eq!(
        got,
        [
            (100, GuestKind::Qemu, Some(false)),
            (9000, GuestKind::Qemu, Some(true)),
            (200, GuestKind::Lxc, Some(true)),
            (201, GuestKind::Lxc, Some(false)),
        ]
    );
    let text = messages(&warnings);
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text[0].starts_with("cluster resource qemu/abc: "),
        "{}",
        text[0]
    );
    assert!(
        text[0].contains("\"abc\" is not a valid VMID"),
        "{}",
        text[0]
    );
    assert!(text[0].ends_with("; guest skipped"));
    assert!(
        text[1].starts_with("cluster resource qemu/300: missing field `node`"),
        "{}",
        text[1]
    );
}

// ----- QEMU netN -------------------------------------------------------------------------

#[test]
fn qemu_net_short_form_for_every_common_model() {
    for model in ["virtio", "e1000", "e1000e", "rtl8139", "vmxnet3"] {
        let net = parse_qemu_net(&format!(
            "{model}=BC:24:11:2E:6A:01,bridge=vmbr0,firewall=1"
        ))
        .unwrap();
        assert_eq!(net.model.as_deref(), Some(model));
        assert_eq!(net.mac, mac("BC:24:11:2E:6A:01"));
        assert_eq!(net.bridge.as_deref(), Some("vmbr0"));
        assert_eq!((net.vlan, net.link_down), (None, false));
    }
}

#[test]
fn qemu_net_macaddr_long_form_and_lowercase_mac() {
    let net = parse_qemu_net("model=virtio,macaddr=bc:24:11:aa:10:01,bridge=vmbr0").unwrap();
    assert_eq!(net.model.as_deref(), Some("virtio"));
    assert_eq!(net.mac.to_string(), "BC:24:11:AA:10:01");
    let only_mac = parse_qemu_net("macaddr=BC:24:11:AA:10:01").unwrap();
    assert_eq!((only_mac.model, only_mac.bridge), (None, None));
}

#[test]
fn qemu_net_model_as_default_key_without_mac() {
    let net = parse_qemu_net("e1000e,macaddr=BC:24:11:AA:10:03,bridge=vmbr0").unwrap();
    assert_eq!(net.model.as_deref(), Some("e1000e"));
    assert_eq!(net.mac, mac("BC:24:11:AA:10:03"));
}

#[test]
fn qemu_net_odd_key_order_and_every_field() {
    let net = parse_qemu_net(
        "bridge=vmbr1,tag=50,link_down=1,rate=10.5,virtio=BC:24:11:AA:10:02,queues=2",
    )
    .unwrap();
    assert_eq!(net.model.as_deref(), Some("virtio"));
    assert_eq!(net.mac, mac("BC:24:11:AA:10:02"));
    assert_eq!(net.bridge.as_deref(), Some("vmbr1"));
    assert_eq!(net.vlan, Some(50));
    assert!(net.link_down);
}

#[test]
fn qemu_net_model_unknown_to_us_and_unknown_keys() {
    let net = parse_qemu_net("virtio-net-ng=BC:24:11:AA:10:09,bridge=vmbr0,newopt=5,").unwrap();
    assert_eq!(net.model.as_deref(), Some("virtio-net-ng"));
    assert_eq!(net.mac, mac("BC:24:11:AA:10:09"));
}

#[test]
fn qemu_net_bad_mac_names_key_value_and_form() {
    let err = parse_qemu_net("virtio=ZZ:24:11:2E:6A:02,bridge=vmbr0")
        .unwrap_err()
        .in_key("net1");
    assert_eq!(
        err.to_string(),
        r#"net1: "virtio=ZZ:24:11:2E:6A:02,bridge=vmbr0" has no valid MAC; expected MODEL=XX:XX:XX:XX:XX:XX,..."#
    );
    assert!(matches!(
        parse_qemu_net("macaddr=BC:24:11:2E:6A"),
        Err(ValueError::BadMac { .. })
    ));
    assert!(matches!(
        parse_qemu_net("virtio=,bridge=vmbr0"),
        Err(ValueError::BadMac { .. })
    ));
}

#[test]
fn qemu_net_without_mac_is_an_error() {
    let err = parse_qemu_net("virtio,bridge=vmbr0").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#""virtio,bridge=vmbr0" has no MAC; expected MODEL=XX:XX:XX:XX:XX:XX,..."#
    );
    assert!(matches!(parse_qemu_net(""), Err(ValueError::NoMac { .. })));
}

#[test]
fn qemu_net_rejects_bad_tag_and_link_down() {
    for tag in ["0", "4095", "-1", "abc", ""] {
        let err = parse_qemu_net(&format!("virtio=BC:24:11:2E:6A:01,tag={tag}")).unwrap_err();
        assert_eq!(
            err,
            ValueError::BadProperty {
                value: format!("virtio=BC:24:11:2E:6A:01,tag={tag}"),
                field: "tag",
                got: tag.into(),
                expected: TAG_FORM,
            }
        );
    }
    assert_eq!(
        parse_qemu_net("virtio=BC:24:11:2E:6A:01,tag=4094")
            .unwrap()
            .vlan,
        Some(4094)
    );
    assert!(
        parse_qemu_net("virtio=BC:24:11:2E:6A:01,link_down=true")
            .unwrap()
            .link_down
    );
    assert!(
        !parse_qemu_net("virtio=BC:24:11:2E:6A:01,link_down=off")
            .unwrap()
            .link_down
    );
    let err = parse_qemu_net("virtio=BC:24:11:2E:6A:01,link_down=2").unwrap_err();
    assert!(
        err.to_string()
            .contains("link_down=\"2\"; expected link_down=0 or link_down=1"),
        "{err}"
    );
}

// ----- QEMU ipconfigN ----------------------------------------------------------------------

#[test]
fn qemu_ipconfig_every_key() {
    let ip =
        parse_qemu_ipconfig("ip=198.18.0.21/23,gw=198.18.0.1,ip6=fd00:18::21/64,gw6=fd00:18::1")
            .unwrap();
    assert_eq!(ip.ipv4, v4("198.18.0.21/23"));
    assert_eq!(ip.gateway4, ip4("198.18.0.1"));
    assert_eq!(ip.ipv6, v6("fd00:18::21/64"));
    assert_eq!(ip.gateway6, ip6("fd00:18::1"));
    // The host part is kept: 198.18.0.21/23 is not its network 198.18.0.0/23.
    assert_eq!(ip.ipv4, v4("198.18.0.21/23"));
    assert_ne!(ip.ipv4, v4("198.18.0.0/23"));
}

#[test]
fn qemu_ipconfig_dynamic_modes_and_absent_keys() {
    let ip = parse_qemu_ipconfig("ip=dhcp,ip6=auto").unwrap();
    assert_eq!((ip.ipv4, ip.ipv6), (Ipv4Config::Dhcp, Ipv6Config::Auto));
    assert_eq!((ip.gateway4, ip.gateway6), (None, None));
    let ip = parse_qemu_ipconfig("ip6=DHCP").unwrap();
    assert_eq!((ip.ipv4, ip.ipv6), (Ipv4Config::Unset, Ipv6Config::Dhcp));
    assert_eq!(parse_qemu_ipconfig("").unwrap(), IpConfig::default());
}

#[test]
fn qemu_ipconfig_errors_name_the_field_and_form() {
    let err = parse_qemu_ipconfig("ip=198.18.0.20,gw=198.18.0.1")
        .unwrap_err()
        .in_key("ipconfig0");
    assert_eq!(
        err.to_string(),
        r#"ipconfig0: "ip=198.18.0.20,gw=198.18.0.1" has ip="198.18.0.20"; expected ip=IPv4/PREFIX (like ip=198.18.0.20/23) or ip=dhcp"#
    );
    // `manual` exists for LXC only.
    assert!(matches!(
        parse_qemu_ipconfig("ip=manual"),
        Err(ValueError::BadProperty { field: "ip", .. })
    ));
    assert!(matches!(
        parse_qemu_ipconfig("ip=dhcp,gw=fd00::1"),
        Err(ValueError::BadProperty { field: "gw", .. })
    ));
    assert!(matches!(
        parse_qemu_ipconfig("ip6=198.18.0.1/23"),
        Err(ValueError::BadProperty { field: "ip6", .. })
    ));
    assert!(matches!(
        parse_qemu_ipconfig("gw6=nope"),
        Err(ValueError::BadProperty { field: "gw6", .. })
    ));
}

// ----- LXC netN --------------------------------------------------------------------------

#[test]
fn lxc_net_static_with_everything() {
    let net = parse_lxc_net(
        "name=eth1,bridge=vmbr2,hwaddr=BC:24:11:5F:0A:12,ip=172.30.5.10/24,gw=172.30.5.1,\
         ip6=fd00:30::10/64,gw6=fd00:30::1,type=veth,tag=7,mtu=1400,firewall=1",
    )
    .unwrap();
    assert_eq!(net.name.as_deref(), Some("eth1"));
    assert_eq!(net.mac, mac("BC:24:11:5F:0A:12"));
    assert_eq!(net.bridge.as_deref(), Some("vmbr2"));
    assert_eq!(net.vlan, Some(7));
    assert_eq!(net.ip.ipv4, v4("172.30.5.10/24"));
    assert_eq!(net.ip.gateway4, ip4("172.30.5.1"));
    assert_eq!(net.ip.ipv6, v6("fd00:30::10/64"));
    assert_eq!(net.ip.gateway6, ip6("fd00:30::1"));
}

#[test]
fn lxc_net_dynamic_and_manual_modes() {
    let net = parse_lxc_net("name=eth0,hwaddr=BC:24:11:5F:0B:11,ip=dhcp,ip6=auto").unwrap();
    assert_eq!(
        (net.ip.ipv4, net.ip.ipv6),
        (Ipv4Config::Dhcp, Ipv6Config::Auto)
    );
    let net = parse_lxc_net("hwaddr=BC:24:11:5F:0B:11,ip=manual,ip6=manual").unwrap();
    assert_eq!(
        (net.ip.ipv4, net.ip.ipv6),
        (Ipv4Config::Manual, Ipv6Config::Manual)
    );
    let net = parse_lxc_net("hwaddr=BC:24:11:5F:0B:11,ip6=dhcp").unwrap();
    assert_eq!(
        (net.ip.ipv4, net.ip.ipv6),
        (Ipv4Config::Unset, Ipv6Config::Dhcp)
    );
}

#[test]
fn lxc_net_errors() {
    let err = parse_lxc_net("name=eth0,bridge=vmbr0")
        .unwrap_err()
        .in_key("net0");
    assert_eq!(
        err.to_string(),
        r#"net0: "name=eth0,bridge=vmbr0" has no MAC; expected name=eth0,hwaddr=XX:XX:XX:XX:XX:XX,..."#
    );
    let err = parse_lxc_net("hwaddr=BC:24:11:5F:0B:11,ip=10.0.0.300/24").unwrap_err();
    assert!(err
        .to_string()
        .contains("expected ip=IPv4/PREFIX (like ip=198.18.0.10/23), ip=dhcp or ip=manual"));
    assert!(matches!(
        parse_lxc_net("hwaddr=BC:24:11:5F:0B"),
        Err(ValueError::BadMac { .. })
    ));
}

// ----- cloud-init dumps ------------------------------------------------------------------

#[test]
fn cloudinit_v1_generated_by_proxmox() {
    let net = dump("qemu-100-cloudinit-dump-network-v1.json");
    assert!(net.warnings.is_empty(), "{:?}", net.warnings);
    assert_eq!(net.ifaces.len(), 2, "the nameserver entry is no interface");
    let eth0 = &net.ifaces[0];
    assert_eq!(eth0.name.as_deref(), Some("eth0"));
    assert_eq!(eth0.mac, Some(mac("BC:24:11:2E:6A:01")));
    assert_eq!(eth0.ip.ipv4, v4("198.18.0.20/23"));
    assert_eq!(eth0.ip.gateway4, ip4("198.18.0.1"));
    assert_eq!(eth0.ip.ipv6, Ipv6Config::Unset);
    let eth1 = &net.ifaces[1];
    assert_eq!(eth1.mac, Some(mac("BC:24:11:2E:6A:02")));
    assert_eq!(
        (eth1.ip.ipv4, eth1.ip.ipv6),
        (Ipv4Config::Dhcp, Ipv6Config::Auto)
    );
    assert_eq!((eth1.ip.gateway4, eth1.ip.gateway6), (None, None));
}

#[test]
fn cloudinit_v2_cicustom_under_network_key() {
    let net = dump("qemu-104-cloudinit-dump-network-v2-cicustom.json");
    assert!(net.warnings.is_empty(), "{:?}", net.warnings);
    assert_eq!(net.ifaces.len(), 1);
    let eth0 = &net.ifaces[0];
    assert_eq!(eth0.name.as_deref(), Some("eth0"));
    assert_eq!(eth0.mac, Some(mac("BC:24:11:2E:6E:01")));
    assert_eq!(eth0.ip.ipv4, v4("198.18.0.30/23"));
    assert_eq!(eth0.ip.ipv6, v6("fd00:18::30/64"));
    assert_eq!(eth0.ip.gateway4, ip4("198.18.0.1"));
    assert_eq!(eth0.ip.gateway6, None);
}

#[test]
fn cloudinit_v2_bare_at_top_level() {
    let net = dump("qemu-105-cloudinit-dump-network-v2-bare.json");
    assert!(net.warnings.is_empty(), "{:?}", net.warnings);
    assert_eq!(net.ifaces.len(), 1);
    let ens18 = &net.ifaces[0];
    assert_eq!(ens18.name.as_deref(), Some("ens18"));
    assert_eq!(ens18.mac, Some(mac("BC:24:11:2E:6F:01")));
    assert_eq!(ens18.ip.ipv4, v4("198.18.0.31/23"));
    assert_eq!(ens18.ip.gateway4, ip4("198.18.0.1"));
    assert_eq!(ens18.ip.ipv6, Ipv6Config::Unset);
}

#[test]
fn cloudinit_empty_dump_has_no_interfaces() {
    assert_eq!(
        dump("qemu-113-cloudinit-dump-empty.json"),
        CloudInitNetwork::default()
    );
    for text in [
        "",
        "  \n",
        "---\n",
        "~\n",
        "network:\n  version: 2\n",
        "version: 1\nconfig: disabled\n",
        "{}",
    ] {
        assert_eq!(
            parse_cloudinit_network(text).unwrap(),
            CloudInitNetwork::default(),
            "{text:?}"
        );
    }
}

#[test]
fn cloudinit_v1_cidr_address_numeric_netmask_and_damaged_entries() {
    let net = dump("qemu-114-cloudinit-dump-network-v1-cidr-address.json");
    let names: Vec<_> = net
        .ifaces
        .iter()
        .map(|i| i.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        names,
        ["eth0", "eth1", "eth3"],
        "eth2 has a bad MAC, bond0 is no ethernet"
    );
    let eth0 = &net.ifaces[0];
    assert_eq!(eth0.ip.ipv4, v4("198.18.0.40/23"));
    assert_eq!(eth0.ip.gateway4, ip4("198.18.0.1"));
    assert_eq!(eth0.ip.ipv6, v6("fd00:18::40/64"));
    assert_eq!(eth0.ip.gateway6, ip6("fd00:18::1"));
    let eth1 = &net.ifaces[1];
    assert_eq!(eth1.mac, Some(mac("BC:24:11:AA:14:02")));
    assert_eq!(eth1.ip.ipv4, v4("172.30.6.40/24"));
    assert_eq!(eth1.ip.ipv6, Ipv6Config::Dhcp);
    // eth3's static subnet is broken, so its later dhcp subnet decides.
    assert_eq!(net.ifaces[2].ip.ipv4, Ipv4Config::Dhcp);
    assert_eq!(
        messages(&net.warnings),
        [
            r#"cloud-init eth2: mac_address: "not-a-mac" is not valid; expected a MAC address like bc:24:11:2e:6a:01; ignored"#,
            r#"cloud-init eth3: subnets[0].address: "198.18.0.999" is not valid; expected an IP address, optionally with /PREFIX (like 198.18.0.20/23); ignored"#,
            "cloud-init eth3: subnets[1].type: \"carrier-pigeon\" is not valid; expected static, static6, dhcp, dhcp4, \
             dhcp6, ipv6_slaac, ipv6_dhcpv6-stateless, ipv6_dhcpv6-stateful or manual; ignored",
        ]
    );
}

#[test]
fn cloudinit_v1_bad_netmask_is_named() {
    let yaml =
        "version: 1\nconfig:\n- type: physical\n  name: eth0\n  subnets:\n  - type: static\n    \
                address: 198.18.0.5\n    netmask: 255.0.255.0\n";
    let net = parse_cloudinit_network(yaml).unwrap();
    assert_eq!(net.ifaces[0].mac, None);
    assert_eq!(net.ifaces[0].ip.ipv4, Ipv4Config::Unset);
    assert!(messages(&net.warnings)[0]
        .starts_with(r#"cloud-init eth0: subnets[0].netmask: "255.0.255.0" is not valid"#));
    let no_mask =
        "config:\n- type: physical\n  subnets:\n  - {type: static, address: 198.18.0.6}\n";
    assert_eq!(
        parse_cloudinit_network(no_mask).unwrap().ifaces[0].ip.ipv4,
        v4("198.18.0.6/32")
    );
}

#[test]
fn cloudinit_v2_address_maps_routes_flags_and_damaged_entries() {
    let net = dump("qemu-115-cloudinit-dump-network-v2-mixed.json");
    assert_eq!(net.ifaces.len(), 3, "bonds are no ethernets");
    let nomac = &net.ifaces[0];
    assert_eq!((nomac.name.as_deref(), nomac.mac), (Some("nomac"), None));
    assert_eq!(
        (nomac.ip.ipv4, nomac.ip.ipv6),
        (Ipv4Config::Dhcp, Ipv6Config::Dhcp),
        "`dhcp4: yes` is true"
    );
    let withaddr = &net.ifaces[1];
    assert_eq!(withaddr.mac, Some(mac("BC:24:11:AA:15:02")));
    assert_eq!(
        withaddr.ip.ipv4,
        v4("198.18.0.50/23"),
        "static beats dhcp4, first address wins"
    );
    assert_eq!(
        withaddr.ip.gateway4,
        ip4("198.18.0.1"),
        "the default route, not 10.0.0.0/8"
    );
    assert_eq!(withaddr.ip.ipv6, Ipv6Config::Auto);
    assert_eq!(withaddr.ip.gateway6, ip6("fd00:18::1"));
    let setmac = &net.ifaces[2];
    assert_eq!(setmac.mac, Some(mac("BC:24:11:AA:15:03")));
    assert_eq!(setmac.ip.ipv4, Ipv4Config::Unset);
    assert_eq!(
        messages(&net.warnings),
        [
            r#"cloud-init withaddr: addresses[2]: "not-an-address" is not valid; expected an IP address, optionally with /PREFIX (like 198.18.0.20/23); ignored"#,
            r#"cloud-init setmac: dhcp4: "maybe" is not valid; expected true or false; ignored"#,
        ]
    );
}

#[test]
fn cloudinit_documents_that_are_no_network_config_are_errors() {
    let err = parse_cloudinit_network("version: 2\nethernets: [eth0\n").unwrap_err();
    assert!(matches!(err, ParseError::CloudInitYaml { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("cloud-init network dump is not valid YAML: "));
    for (yaml, says) in [
        ("- eth0\n", "the document is a list, not a mapping"),
        ("version: 3\nethernets: {}\n", "version 3 is not supported"),
        (
            "version: 1\nconfig: 5\n",
            "`config` is a number, not a list",
        ),
        (
            "network:\n  version: 2\n  ethernets: [eth0]\n",
            "`ethernets` is a list, not a mapping",
        ),
    ] {
        let err = parse_cloudinit_network(yaml).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cloud-init network dump: {says}; expected network config version 1 (a `config:` list) \
                 or 2 (an `ethernets:` map)"
            ),
            "{yaml:?}"
        );
    }
}

#[test]
fn cloudinit_alias_bomb_is_refused_not_expanded() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let err = parse_cloudinit_network(&yaml).unwrap_err();
    assert!(
        err.to_string().contains("repetition limit exceeded"),
        "{err}"
    );
}

// ----- guests ----------------------------------------------------------------------------

#[test]
fn qemu_100_two_nics_from_ipconfig() {
    let ci = dump("qemu-100-cloudinit-dump-network-v1.json");
    for with_dump in [None, Some(&ci)] {
        let parsed = build(
            &listed(100),
            "qemu-100-config-static-ipconfig.json",
            with_dump,
        );
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        let g = parsed.guest;
        assert_eq!(
            (g.vmid, g.kind, g.node.as_str()),
            (100, GuestKind::Qemu, "pve1")
        );
        assert_eq!(g.name.as_deref(), Some("web1"));
        assert_eq!(g.status, "running");
        assert!(!g.template);
        assert_eq!(g.tags, ["prod", "web"]);
        assert_eq!(
            g.nics,
            [
                Nic {
                    index: 0,
                    mac: mac("BC:24:11:2E:6A:01"),
                    bridge: Some("vmbr0".into()),
                    vlan: None,
                    ipv4: v4("198.18.0.20/23"),
                    gateway4: ip4("198.18.0.1"),
                    ipv6: Ipv6Config::Unset,
                    gateway6: None,
                    link_down: false,
                },
                Nic {
                    index: 1,
                    mac: mac("BC:24:11:2E:6A:02"),
                    bridge: Some("vmbr1".into()),
                    vlan: Some(20),
                    ipv4: Ipv4Config::Dhcp,
                    gateway4: None,
                    ipv6: Ipv6Config::Auto,
                    gateway6: None,
                    link_down: false,
                },
            ]
        );
    }
}

#[test]
fn qemu_101_static_ipv6_with_gateways() {
    let g = build(&listed(101), "qemu-101-config-static-ipv6.json", None).guest;
    assert_eq!(g.name.as_deref(), Some("db1"));
    assert_eq!(g.tags, Vec::<String>::new());
    let [nic] = g.nics.as_slice() else {
        panic!("{:?}", g.nics)
    };
    assert_eq!(nic.mac, mac("BC:24:11:2E:6B:01"));
    assert_eq!(nic.ipv4, v4("198.18.0.21/23"));
    assert_eq!(nic.gateway4, ip4("198.18.0.1"));
    assert_eq!(nic.ipv6, v6("fd00:18::21/64"));
    assert_eq!(nic.gateway6, ip6("fd00:18::1"));
}

#[test]
fn qemu_102_dhcp() {
    let g = build(&listed(102), "qemu-102-config-dhcp.json", None).guest;
    assert_eq!(
        (g.name.as_deref(), g.node.as_str()),
        (Some("dyn-vm"), "pve2")
    );
    let [nic] = g.nics.as_slice() else {
        panic!("{:?}", g.nics)
    };
    assert_eq!(
        (nic.mac, nic.ipv4, nic.ipv6),
        (
            mac("BC:24:11:2E:6C:01"),
            Ipv4Config::Dhcp,
            Ipv6Config::Unset
        )
    );
}

#[test]
fn qemu_103_without_cloudinit_is_unset_with_link_and_tag() {
    let cfg = config("qemu-103-config-no-cloudinit.json");
    assert!(!needs_cloudinit_dump(&cfg));
    let g = build(&listed(103), "qemu-103-config-no-cloudinit.json", None).guest;
    assert_eq!(g.status, "stopped");
    assert_eq!(g.nics.len(), 2);
    let (n0, n1) = (&g.nics[0], &g.nics[1]);
    assert_eq!(
        (n0.mac, n0.vlan, n0.link_down),
        (mac("BC:24:11:2E:6D:01"), None, false)
    );
    assert_eq!(
        (n1.mac, n1.vlan, n1.bridge.as_deref()),
        (mac("BC:24:11:2E:6D:02"), Some(30), Some("vmbr0"))
    );
    for n in &g.nics {
        assert_eq!(
            (n.ipv4, n.ipv6, n.gateway4),
            (Ipv4Config::Unset, Ipv6Config::Unset, None)
        );
    }
}

#[test]
fn qemu_9000_template_from_config_or_list() {
    let g = build(&listed(9000), "qemu-9000-config-template.json", None).guest;
    assert!(g.template);
    assert_eq!(g.name.as_deref(), Some("ubuntu-2404-tmpl"));
    assert_eq!(g.nics[0].mac, mac("BC:24:11:00:90:00"));
    // The config alone says so ...
    let g = build(
        &resource(GuestKind::Qemu, 9000),
        "qemu-9000-config-template.json",
        None,
    )
    .guest;
    assert!(g.template);
    // ... and the list alone says so.
    let mut cfg = config("qemu-9000-config-template.json");
    cfg.remove("template");
    let g = guest_from_config(&listed(9000), &cfg, None).unwrap().guest;
    assert!(g.template);
    let g = guest_from_config(&resource(GuestKind::Qemu, 9000), &cfg, None)
        .unwrap()
        .guest;
    assert!(!g.template);
}

#[test]
fn lxc_200_two_static_nics() {
    let g = build(&listed(200), "lxc-200-config-static.json", None).guest;
    assert_eq!(
        (g.kind, g.name.as_deref()),
        (GuestKind::Lxc, Some("ct-dns"))
    );
    assert_eq!(g.tags, ["infra"]);
    assert_eq!(
        g.nics,
        [
            Nic {
                index: 0,
                mac: mac("BC:24:11:5F:0A:11"),
                bridge: Some("vmbr0".into()),
                vlan: None,
                ipv4: v4("198.18.0.10/23"),
                gateway4: ip4("198.18.0.1"),
                ipv6: Ipv6Config::Unset,
                gateway6: None,
                link_down: false,
            },
            Nic {
                index: 1,
                mac: mac("BC:24:11:5F:0A:12"),
                bridge: Some("vmbr2".into()),
                vlan: None,
                ipv4: v4("172.30.5.10/24"),
                gateway4: None,
                ipv6: v6("fd00:30::10/64"),
                gateway6: None,
                link_down: false,
            },
        ]
    );
}

#[test]
fn lxc_201_dhcp_and_manual() {
    let g = build(&listed(201), "lxc-201-config-dhcp.json", None).guest;
    assert_eq!(g.name.as_deref(), Some("ct-dhcp"));
    let (n0, n1) = (&g.nics[0], &g.nics[1]);
    assert_eq!(
        (n0.mac, n0.ipv4, n0.ipv6, n0.vlan),
        (
            mac("BC:24:11:5F:0B:11"),
            Ipv4Config::Dhcp,
            Ipv6Config::Auto,
            None
        )
    );
    assert_eq!(
        (n1.mac, n1.ipv4, n1.ipv6, n1.vlan),
        (
            mac("BC:24:11:5F:0B:12"),
            Ipv4Config::Manual,
            Ipv6Config::Unset,
            Some(40)
        )
    );
}

#[test]
fn lxc_202_odd_order_lowercase_mac_and_a_broken_nic() {
    let parsed = build(
        &resource(GuestKind::Lxc, 202),
        "lxc-202-config-odd.json",
        None,
    );
    let g = parsed.guest;
    assert_eq!(g.name.as_deref(), Some("ct-odd"));
    assert!(g.template, "template: 1 in the config");
    assert_eq!(g.tags, ["a", "b"]);
    assert_eq!(g.nics.iter().map(|n| n.index).collect::<Vec<_>>(), [0, 2]);
    let n0 = &g.nics[0];
    assert_eq!(n0.mac.to_string(), "BC:24:11:5F:0C:11");
    assert_eq!(
        (n0.ipv4, n0.gateway4, n0.ipv6),
        (v4("198.18.0.12/23"), ip4("198.18.0.1"), Ipv6Config::Manual)
    );
    assert!(n0.link_down);
    let n2 = &g.nics[1];
    assert_eq!((n2.vlan, n2.bridge.as_deref()), (Some(4094), Some("vmbr3")));
    assert_eq!(
        (n2.ipv6, n2.gateway6),
        (v6("fd00:18::12/64"), ip6("fd00:18::1"))
    );
    assert_eq!(
        messages(&parsed.warnings),
        [
            r#"net1: "name=eth1,bridge=vmbr0,hwaddr=BC:24:11:5F:0C,ip=dhcp,type=veth" has no valid MAC; expected name=eth0,hwaddr=XX:XX:XX:XX:XX:XX,...; NIC skipped"#
        ]
    );
}

#[test]
fn qemu_104_cicustom_snippet_overrides_ipconfig() {
    let cfg = config("qemu-104-config-cicustom.json");
    assert!(needs_cloudinit_dump(&cfg));
    let ci = dump("qemu-104-cloudinit-dump-network-v2-cicustom.json");
    let g = guest_from_config(&resource(GuestKind::Qemu, 104), &cfg, Some(&ci.ifaces))
        .unwrap()
        .guest;
    let nic = &g.nics[0];
    assert_eq!(
        nic.ipv4,
        v4("198.18.0.30/23"),
        "the snippet, not ipconfig0's dhcp"
    );
    assert_eq!(nic.gateway4, ip4("198.18.0.1"));
    assert_eq!(nic.ipv6, v6("fd00:18::30/64"));
    // Without the dump, ipconfig0 is all there is.
    let g = guest_from_config(&resource(GuestKind::Qemu, 104), &cfg, None)
        .unwrap()
        .guest;
    assert_eq!(g.nics[0].ipv4, Ipv4Config::Dhcp);
}

#[test]
fn qemu_105_no_ipconfig_takes_the_dump_by_mac() {
    let cfg = config("qemu-105-config-cloudinit-no-ipconfig.json");
    assert!(
        needs_cloudinit_dump(&cfg),
        "cloud-init drive on scsi1, no ipconfig0"
    );
    let ci = dump("qemu-105-cloudinit-dump-network-v2-bare.json");
    let g = guest_from_config(&resource(GuestKind::Qemu, 105), &cfg, Some(&ci.ifaces))
        .unwrap()
        .guest;
    let nic = &g.nics[0];
    assert_eq!(
        nic.mac,
        mac("BC:24:11:2E:6F:01"),
        "the dump's lower-case MAC matched"
    );
    assert_eq!(
        (nic.ipv4, nic.gateway4),
        (v4("198.18.0.31/23"), ip4("198.18.0.1"))
    );
    // A dump for other MACs gives nothing.
    let other = dump("qemu-100-cloudinit-dump-network-v1.json");
    let g = guest_from_config(&resource(GuestKind::Qemu, 105), &cfg, Some(&other.ifaces))
        .unwrap()
        .guest;
    assert_eq!(g.nics[0].ipv4, Ipv4Config::Unset);
}

#[test]
fn qemu_110_long_forms_sorted_by_index() {
    let cfg = config("qemu-110-config-macaddr-long-form.json");
    assert!(needs_cloudinit_dump(&cfg), "net1 has no ipconfig1");
    let parsed = guest_from_config(&resource(GuestKind::Qemu, 110), &cfg, None).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let g = parsed.guest;
    assert_eq!(g.tags, ["lab", "web", "test"]);
    assert_eq!(
        g.nics.iter().map(|n| n.index).collect::<Vec<_>>(),
        [0, 1, 2, 10]
    );
    let macs: Vec<_> = g.nics.iter().map(|n| n.mac.to_string()).collect();
    assert_eq!(
        macs,
        [
            "BC:24:11:AA:10:01",
            "BC:24:11:AA:10:02",
            "BC:24:11:AA:10:03",
            "BC:24:11:AA:10:0A"
        ]
    );
    assert_eq!(
        (g.nics[0].ipv4, g.nics[0].gateway4),
        (v4("198.18.0.110/23"), ip4("198.18.0.1"))
    );
    let n1 = &g.nics[1];
    assert_eq!(
        (n1.bridge.as_deref(), n1.vlan, n1.link_down),
        (Some("vmbr1"), Some(50), true)
    );
    assert_eq!(n1.ipv4, Ipv4Config::Unset);
    let n2 = &g.nics[2];
    assert_eq!(
        (n2.ipv4, n2.ipv6, n2.gateway6),
        (Ipv4Config::Dhcp, v6("fd00:18::110/64"), ip6("fd00:18::1"))
    );
    assert_eq!(
        g.nics[3].ipv4,
        Ipv4Config::Dhcp,
        "ipconfig10 belongs to net10"
    );
}

#[test]
fn qemu_111_broken_nics_are_skipped_and_named() {
    let parsed = build(
        &resource(GuestKind::Qemu, 111),
        "qemu-111-config-broken-nic.json",
        None,
    );
    let g = &parsed.guest;
    assert_eq!(g.nics.iter().map(|n| n.index).collect::<Vec<_>>(), [0, 3]);
    assert_eq!(g.nics[0].ipv4, v4("198.18.0.111/23"));
    assert_eq!(g.nics[1].mac, mac("BC:24:11:AA:11:04"));
    assert_eq!(g.nics[1].ipv4, Ipv4Config::Unset, "ipconfig3 is broken");
    assert_eq!(
        messages(&parsed.warnings),
        [
            r#"net1: "virtio=ZZ:24:11:AA:11:02,bridge=vmbr0" has no valid MAC; expected MODEL=XX:XX:XX:XX:XX:XX,...; NIC skipped"#,
            r#"net2: "e1000=BC:24:11:AA:11:03,bridge=vmbr0,tag=5000" has tag="5000"; expected tag=N with N from 1 to 4094; NIC skipped"#,
            "ipconfig3: \"ip=198.18.0.300/23\" has ip=\"198.18.0.300/23\"; expected ip=IPv4/PREFIX (like ip=198.18.0.20/23) \
             or ip=dhcp; the NIC's address comes from the cloud-init dump if it has one, else stays unset",
        ]
    );
    // The dump fills in for the broken ipconfig3.
    let ci = parse_cloudinit_network(
        "version: 2\nethernets:\n  eth3:\n    match: {macaddress: 'bc:24:11:aa:11:04'}\n    addresses: [198.18.0.114/23]\n",
    )
    .unwrap();
    let g = build(
        &resource(GuestKind::Qemu, 111),
        "qemu-111-config-broken-nic.json",
        Some(&ci),
    )
    .guest;
    assert_eq!(g.nics[1].ipv4, v4("198.18.0.114/23"));
}

#[test]
fn qemu_112_no_readable_nic_is_an_error() {
    let err = guest_from_config(
        &resource(GuestKind::Qemu, 112),
        &config("qemu-112-config-all-nics-broken.json"),
        None,
    )
    .unwrap_err();
    let ParseError::NoUsableNic { guest, errors } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(guest, "qemu/112");
    assert_eq!(errors.len(), 2);
    assert_eq!(
        err.to_string(),
        "qemu/112: none of its 2 NICs could be read: \
         net0: \"virtio=BC:24:11:AA:12,bridge=vmbr0\" has no valid MAC; expected MODEL=XX:XX:XX:XX:XX:XX,...; \
         net1: \"bridge=vmbr0,firewall=1\" has no MAC; expected MODEL=XX:XX:XX:XX:XX:XX,..."
    );
}

#[test]
fn guest_without_nics_is_fine() {
    let cfg: GuestConfig = serde_json::from_str(r#"{"name": "lonely", "memory": 512}"#).unwrap();
    let parsed = guest_from_config(&resource(GuestKind::Qemu, 120), &cfg, None).unwrap();
    assert!(parsed.guest.nics.is_empty());
    assert!(parsed.warnings.is_empty());
    assert_eq!(parsed.guest.name.as_deref(), Some("lonely"));
}

#[test]
fn net_value_that_is_not_text_is_skipped() {
    let cfg: GuestConfig = serde_json::from_str(
        r#"{"net0": {"model": "virtio"}, "net1": "virtio=BC:24:11:AA:13:01", "netfoo": "x", "net": "y"}"#,
    )
    .unwrap();
    let parsed = guest_from_config(&resource(GuestKind::Qemu, 121), &cfg, None).unwrap();
    assert_eq!(
        parsed
            .guest
            .nics
            .iter()
            .map(|n| n.index)
            .collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(
        messages(&parsed.warnings),
        [
            r#"net0: {"model":"virtio"} is not text; expected MODEL=XX:XX:XX:XX:XX:XX,...; NIC skipped"#
        ]
    );
}

#[test]
fn name_falls_back_to_the_list_and_may_be_unknown() {
    let cfg: GuestConfig = serde_json::from_str(r#"{"net0": "virtio=BC:24:11:AA:13:01"}"#).unwrap();
    let mut res = resource(GuestKind::Qemu, 122);
    assert_eq!(
        guest_from_config(&res, &cfg, None).unwrap().guest.name,
        None
    );
    res.name = Some("from-list".into());
    assert_eq!(
        guest_from_config(&res, &cfg, None)
            .unwrap()
            .guest
            .name
            .as_deref(),
        Some("from-list")
    );
    // An LXC's name is `hostname`; QEMU's `name` key means nothing there.
    let cfg: GuestConfig =
        serde_json::from_str(r#"{"name": "wrong", "net0": "name=eth0,hwaddr=BC:24:11:AA:13:02"}"#)
            .unwrap();
    let mut res = resource(GuestKind::Lxc, 123);
    res.name = Some("ct-list".into());
    assert_eq!(
        guest_from_config(&res, &cfg, None)
            .unwrap()
            .guest
            .name
            .as_deref(),
        Some("ct-list")
    );
}

#[test]
fn node_offline_entry_still_builds_a_guest_from_its_config() {
    let (list, _) = resources("cluster-resources-node-offline.json");
    let r102 = list.iter().find(|r| r.vmid == 102).unwrap();
    let g = build(r102, "qemu-102-config-dhcp.json", None).guest;
    assert_eq!(g.name.as_deref(), Some("dyn-vm"));
    assert_eq!(g.status, "unknown");
    assert!(!g.template);
    let mut r = r102.clone();
    r.status = None;
    assert_eq!(
        build(&r, "qemu-102-config-dhcp.json", None).guest.status,
        "unknown"
    );
}

#[test]
fn ipconfig_beats_a_differing_dump_per_family() {
    let ci = parse_cloudinit_network(
        "version: 1\nconfig:\n- type: physical\n  mac_address: 'bc:24:11:2e:6b:01'\n  subnets:\n  - type: dhcp\n",
    )
    .unwrap();
    let g = build(&listed(101), "qemu-101-config-static-ipv6.json", Some(&ci)).guest;
    assert_eq!(g.nics[0].ipv4, v4("198.18.0.21/23"));
    // qemu-102's ipconfig0 says nothing of IPv6: the dump's IPv6 fills that in, and only that.
    let ci = parse_cloudinit_network(
        "version: 2\nethernets:\n  e:\n    match: {macaddress: 'BC:24:11:2E:6C:01'}\n    \
         addresses: ['fd00:18::102/64']\n    gateway6: 'fd00:18::1'\n    gateway4: 198.18.0.9\n",
    )
    .unwrap();
    let g = build(&listed(102), "qemu-102-config-dhcp.json", Some(&ci)).guest;
    let nic = &g.nics[0];
    assert_eq!(
        (nic.ipv4, nic.gateway4),
        (Ipv4Config::Dhcp, None),
        "no gateway borrowed from the dump"
    );
    assert_eq!(
        (nic.ipv6, nic.gateway6),
        (v6("fd00:18::102/64"), ip6("fd00:18::1"))
    );
}

#[test]
fn needs_cloudinit_dump_cases() {
    assert!(!needs_cloudinit_dump(&config(
        "qemu-100-config-static-ipconfig.json"
    )));
    assert!(!needs_cloudinit_dump(&config(
        "qemu-101-config-static-ipv6.json"
    )));
    assert!(!needs_cloudinit_dump(&config("qemu-102-config-dhcp.json")));
    assert!(!needs_cloudinit_dump(&config(
        "qemu-9000-config-template.json"
    )));
    let json = |s: &str| serde_json::from_str::<GuestConfig>(s).unwrap();
    // cicustom without a network snippet: ipconfig0 still decides.
    assert!(!needs_cloudinit_dump(&json(
        r#"{"cicustom": "user=local:snippets/u.yaml", "net0": "virtio=BC:24:11:AA:13:01", "ipconfig0": "ip=dhcp"}"#
    )));
    // ... and without ipconfig0 the dump is wanted even without a drive.
    assert!(needs_cloudinit_dump(&json(
        r#"{"cicustom": "user=local:snippets/u.yaml", "net0": "virtio=BC:24:11:AA:13:01"}"#
    )));
    // ipconfig0 with IPv6 only gives no IPv4.
    assert!(needs_cloudinit_dump(&json(
        r#"{"sata1": "local:vm-1-cloudinit,media=cdrom", "net0": "virtio=BC:24:11:AA:13:01", "ipconfig0": "ip6=auto"}"#
    )));
    // A broken ipconfig0 gives no IPv4 either.
    assert!(needs_cloudinit_dump(&json(
        r#"{"ide0": "local:vm-1-cloudinit", "net0": "virtio=BC:24:11:AA:13:01", "ipconfig0": "ip=bogus"}"#
    )));
    // A drive but no NIC: nothing to learn.
    assert!(!needs_cloudinit_dump(&json(
        r#"{"ide2": "local:vm-1-cloudinit,media=cdrom"}"#
    )));
    // A disk that is not the cloud-init drive does not count.
    assert!(!needs_cloudinit_dump(&json(
        r#"{"virtio0": "local:vm-1-cloudinit", "net0": "virtio=BC:24:11:AA:13:01"}"#
    )));
}

// ----- small pieces ----------------------------------------------------------------------

#[test]
fn tags_split_on_every_separator_proxmox_accepts() {
    assert_eq!(split_tags("prod;web"), ["prod", "web"]);
    assert_eq!(split_tags(" a,b c;;a ;"), ["a", "b", "c"]);
    assert!(split_tags("").is_empty());
    assert!(split_tags(" ; , ").is_empty());
}

#[test]
fn booleans_as_proxmox_writes_them() {
    for t in ["1", "yes", "ON", "true", " True "] {
        assert_eq!(parse_bool(t), Some(true), "{t}");
    }
    for f in ["0", "no", "off", "FALSE"] {
        assert_eq!(parse_bool(f), Some(false), "{f}");
    }
    assert_eq!(parse_bool("2"), None);
    assert_eq!(parse_bool(""), None);
}

#[test]
fn ip_config_or_keeps_each_family_from_one_source() {
    let ours = parse_qemu_ipconfig("ip=198.18.0.5/23,gw6=fd00::1").unwrap();
    let theirs = parse_qemu_ipconfig("ip=dhcp,gw=198.18.0.1,ip6=fd00::5/64,gw6=fd00::99").unwrap();
    let got = ours.or(theirs);
    assert_eq!((got.ipv4, got.gateway4), (v4("198.18.0.5/23"), None));
    assert_eq!(
        (got.ipv6, got.gateway6),
        (v6("fd00::5/64"), ip6("fd00::99"))
    );
    // Neither configures IPv4: a lone gateway is kept.
    let lone = parse_qemu_ipconfig("gw=198.18.0.1")
        .unwrap()
        .or(IpConfig::default());
    assert_eq!(
        (lone.ipv4, lone.gateway4),
        (Ipv4Config::Unset, ip4("198.18.0.1"))
    );
}

#[test]
fn cloudinit_v1_subnet_types_map_to_modes() {
    for (kind, ipv4, ipv6) in [
        ("dhcp", Ipv4Config::Dhcp, Ipv6Config::Unset),
        ("dhcp4", Ipv4Config::Dhcp, Ipv6Config::Unset),
        ("dhcp6", Ipv4Config::Unset, Ipv6Config::Dhcp),
        ("ipv6_dhcpv6-stateful", Ipv4Config::Unset, Ipv6Config::Dhcp),
        ("ipv6_slaac", Ipv4Config::Unset, Ipv6Config::Auto),
        ("ipv6_dhcpv6-stateless", Ipv4Config::Unset, Ipv6Config::Auto),
        ("manual", Ipv4Config::Manual, Ipv6Config::Unset),
        ("static6", Ipv4Config::Unset, v6("fd00::7/64")),
    ] {
        let yaml = format!(
            "version: 1\nconfig:\n- type: physical\n  subnets:\n  - type: {kind}\n    address: 'fd00::7/64'\n"
        );
        let net = parse_cloudinit_network(&yaml).unwrap();
        assert!(net.warnings.is_empty(), "{kind}: {:?}", net.warnings);
        assert_eq!(
            (net.ifaces[0].ip.ipv4, net.ifaces[0].ip.ipv6),
            (ipv4, ipv6),
            "{kind}"
        );
    }
}
