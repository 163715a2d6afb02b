//! This host's network interfaces: which one holds an address inside the lab network.
//! DHCP and ARP serve on it, and its address is published as `leazzard.<domain>`.
//!
//! Invariants: reads the kernel's interface list only; changes nothing.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// An IPv4 address held by an interface of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The interface name (`eth0`, `vmbr0`).
    pub name: String,
    /// The address.
    pub addr: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

/// Every IPv4 address of every interface that is up.
pub fn ipv4_addresses() -> std::io::Result<Vec<InterfaceAddr>> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs; every
    // pointer is checked for null before use and only read while the list is alive.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null()
                || i32::from((*ifa.ifa_addr).sa_family) != libc::AF_INET
                || ifa.ifa_flags & (libc::IFF_UP as u32) == 0
            {
                continue;
            }
            let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            let prefix = if ifa.ifa_netmask.is_null() {
                32
            } else {
                let mask = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                u32::from_be(mask.sin_addr.s_addr).count_ones() as u8
            };
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            out.push(InterfaceAddr { name, addr, prefix });
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

/// The interface holding an address inside `network` (the one named `wanted`, if given).
pub fn lab_interface(network: Ipv4Net, wanted: Option<&str>) -> Option<InterfaceAddr> {
    pick(ipv4_addresses().ok()?, network, wanted)
}

fn pick(
    addrs: Vec<InterfaceAddr>,
    network: Ipv4Net,
    wanted: Option<&str>,
) -> Option<InterfaceAddr> {
    addrs
        .into_iter()
        .filter(|a| wanted.is_none_or(|w| a.name == w))
        .find(|a| network.contains(&a.addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed() {
        let addrs = ipv4_addresses().unwrap();
        assert!(
            addrs
                .iter()
                .any(|a| a.addr == Ipv4Addr::LOCALHOST && a.prefix == 8),
            "{addrs:?}"
        );
    }

    #[test]
    fn picks_the_interface_in_the_network() {
        let a = |name: &str, addr: &str| InterfaceAddr {
            name: name.into(),
            addr: addr.parse().unwrap(),
            prefix: 23,
        };
        let net = "198.18.0.0/23".parse().unwrap();
        let list = vec![
            a("lo", "127.0.0.1"),
            a("eth0", "10.1.1.1"),
            a("vmbr0", "198.18.1.2"),
        ];
        assert_eq!(pick(list.clone(), net, None).unwrap().name, "vmbr0");
        assert_eq!(pick(list.clone(), net, Some("eth0")), None);
        assert_eq!(pick(list, "203.0.113.0/24".parse().unwrap(), None), None);
    }
}
