//! A raw `AF_PACKET` socket bound to the lab interface for ARP frames only.
//!
//! Needs `CAP_NET_RAW`. Reads time out every 250 ms so the reading thread can notice a stop
//! request. Frames this host sent itself are skipped on receive.
//!
//! Invariants: bound to one interface; sends only the frames it is given, there.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::frame::ETH_P_ARP;
use crate::inventory::MacAddr;

/// An ARP socket on one interface.
#[derive(Debug)]
pub struct ArpSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl ArpSocket {
    /// Opens the socket on `ifname`. `PermissionDenied` means CAP_NET_RAW is missing.
    pub fn open(ifname: &str) -> io::Result<ArpSocket> {
        let name = std::ffi::CString::new(ifname)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
        // SAFETY: if_nametoindex reads a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        let ifindex = ifindex as i32;
        let proto = ETH_P_ARP.to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex;
        // SAFETY: bind with a properly initialised sockaddr_ll and its exact size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 250_000,
        };
        // SAFETY: setsockopt with a live timeval and its exact size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ArpSocket { fd, ifindex })
    }

    /// Receives one frame into `buf`: `Ok(Some(len))`, or `Ok(None)` on timeout or for a frame
    /// this host sent.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: recvfrom into a live buffer of the given length, with a sockaddr_ll of the
        // given size for the sender.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        if from.sll_pkttype == libc::PACKET_OUTGOING {
            return Ok(None);
        }
        Ok(Some(n as usize))
    }

    /// Sends one whole Ethernet frame (destination MAC in its first six bytes).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame shorter than an Ethernet header",
            ));
        }
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ARP.to_be();
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: sendto from a live buffer, with a properly initialised sockaddr_ll.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The hardware address of `ifname`, from sysfs.
pub fn interface_mac(ifname: &str) -> io::Result<MacAddr> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/address"))?;
    text.trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
