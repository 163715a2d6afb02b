//! ARP over Ethernet for IPv4 (RFC 826): parsing captured frames and building requests.
//!
//! Invariants: pure; never panics on any input (every length is checked).

use std::net::Ipv4Addr;

use crate::inventory::MacAddr;

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv4.
const ETH_P_IP: u16 = 0x0800;
/// Ethernet header + the 28 bytes of an Ethernet/IPv4 ARP body.
pub const FRAME_LEN: usize = 14 + 28;
/// The Ethernet broadcast address.
pub const BROADCAST: MacAddr = MacAddr([0xFF; 6]);

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Who has `target_ip`? Tell `sender_ip`.
    Request,
    /// `sender_ip` is at `sender_mac`.
    Reply,
}

/// One Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    /// Request or reply.
    pub op: Op,
    /// Sender hardware address (from the ARP body, not the Ethernet header).
    pub sender_mac: MacAddr,
    /// Sender protocol address (0.0.0.0 in an RFC 5227 probe).
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

/// Why a frame is not an Ethernet/IPv4 ARP packet we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than an Ethernet header plus an ARP body.
    #[error("frame too short: {0} bytes")]
    TooShort(usize),
    /// The EtherType is not ARP.
    #[error("not ARP: EtherType {0:#06x}")]
    NotArp(u16),
    /// Hardware type is not Ethernet (1) or its address length is not 6.
    #[error("not Ethernet ARP")]
    NotEthernet,
    /// Protocol type is not IPv4 or its address length is not 4.
    #[error("not IPv4 ARP")]
    NotIpv4,
    /// Operation is neither request (1) nor reply (2).
    #[error("unknown ARP operation {0}")]
    UnknownOp(u16),
}

impl ArpPacket {
    /// Parses a whole Ethernet frame (as an `AF_PACKET` `SOCK_RAW` socket delivers it).
    /// Trailing padding (frames are padded to 60 bytes) is ignored.
    pub fn parse(frame: &[u8]) -> Result<ArpPacket, FrameError> {
        if frame.len() < FRAME_LEN {
            return Err(FrameError::TooShort(frame.len()));
        }
        let be = |i: usize| u16::from_be_bytes([frame[i], frame[i + 1]]);
        let ethertype = be(12);
        if ethertype != ETH_P_ARP {
            return Err(FrameError::NotArp(ethertype));
        }
        let arp = &frame[14..FRAME_LEN];
        let be = |i: usize| u16::from_be_bytes([arp[i], arp[i + 1]]);
        if be(0) != 1 || arp[4] != 6 {
            return Err(FrameError::NotEthernet);
        }
        if be(2) != ETH_P_IP || arp[5] != 4 {
            return Err(FrameError::NotIpv4);
        }
        let op = match be(6) {
            1 => Op::Request,
            2 => Op::Reply,
            other => return Err(FrameError::UnknownOp(other)),
        };
        let mac = |i: usize| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&arp[i..i + 6]);
            MacAddr(m)
        };
        let ip = |i: usize| Ipv4Addr::new(arp[i], arp[i + 1], arp[i + 2], arp[i + 3]);
        Ok(ArpPacket {
            op,
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// A broadcast request "who has `target`? tell `sender_ip`" from `sender_mac`.
    /// With `sender_ip` 0.0.0.0 it is an RFC 5227 probe (asks without claiming an address).
    pub fn request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: Op::Request,
            sender_mac,
            sender_ip,
            target_mac: MacAddr([0; 6]),
            target_ip: target,
        }
    }

    /// The packet as an Ethernet frame: requests to broadcast, replies to the target.
    pub fn to_frame(&self) -> [u8; FRAME_LEN] {
        let mut f = [0u8; FRAME_LEN];
        let dst = match self.op {
            Op::Request => BROADCAST,
            Op::Reply => self.target_mac,
        };
        f[0..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&self.sender_mac.0);
        f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        f[14..16].copy_from_slice(&1u16.to_be_bytes());
        f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
        f[18] = 6;
        f[19] = 4;
        let op: u16 = match self.op {
            Op::Request => 1,
            Op::Reply => 2,
        };
        f[20..22].copy_from_slice(&op.to_be_bytes());
        f[22..28].copy_from_slice(&self.sender_mac.0);
        f[28..32].copy_from_slice(&self.sender_ip.octets());
        f[32..38].copy_from_slice(&self.target_mac.0);
        f[38..42].copy_from_slice(&self.target_ip.octets());
        f
    }

    /// The (MAC, address) this packet shows to be in use, if any: every request and reply
    /// tells the sender's pair (gratuitous ones too); a probe (sender 0.0.0.0) tells none.
    pub fn sighting(&self) -> Option<(MacAddr, Ipv4Addr)> {
        let unusable = self.sender_ip.is_unspecified()
            || self.sender_ip.is_broadcast()
            || self.sender_mac == BROADCAST
            || self.sender_mac.0 == [0; 6]
            || self.sender_mac.0[0] & 1 == 1; // a multicast sender is a lie
        (!unusable).then_some((self.sender_mac, self.sender_ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(last: u8) -> MacAddr {
        MacAddr([0xBC, 0x24, 0x11, 0, 0, last])
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_request_and_reply() {
        let req = ArpPacket::request(mac(1), ip("198.18.0.2"), ip("198.18.0.50"));
        let frame = req.to_frame();
        assert_eq!(&frame[0..6], &[0xFF; 6]);
        assert_eq!(ArpPacket::parse(&frame).unwrap(), req);
        let reply = ArpPacket {
            op: Op::Reply,
            sender_mac: mac(50),
            sender_ip: ip("198.18.0.50"),
            target_mac: mac(1),
            target_ip: ip("198.18.0.2"),
        };
        let frame = reply.to_frame();
        assert_eq!(&frame[0..6], &mac(1).0);
        let parsed = ArpPacket::parse(&frame).unwrap();
        assert_eq!(parsed, reply);
        assert_eq!(parsed.sighting(), Some((mac(50), ip("198.18.0.50"))));
    }

    #[test]
    fn padding_is_ignored() {
        let req = ArpPacket::request(mac(1), ip("198.18.0.2"), ip("198.18.0.50"));
        let mut padded = req.to_frame().to_vec();
        padded.resize(60, 0);
        assert_eq!(ArpPacket::parse(&padded).unwrap(), req);
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let good = ArpPacket::request(mac(1), ip("198.18.0.2"), ip("198.18.0.50")).to_frame();
        for n in 0..FRAME_LEN {
            assert_eq!(ArpPacket::parse(&good[..n]), Err(FrameError::TooShort(n)));
        }
        let mut ipv4 = good;
        ipv4[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(ArpPacket::parse(&ipv4), Err(FrameError::NotArp(0x0800)));
        let mut tokenring = good;
        tokenring[15] = 6;
        assert_eq!(ArpPacket::parse(&tokenring), Err(FrameError::NotEthernet));
        let mut long_hw = good;
        long_hw[18] = 8;
        assert_eq!(ArpPacket::parse(&long_hw), Err(FrameError::NotEthernet));
        let mut ipv6 = good;
        ipv6[16..18].copy_from_slice(&0x86DDu16.to_be_bytes());
        assert_eq!(ArpPacket::parse(&ipv6), Err(FrameError::NotIpv4));
        let mut plen = good;
        plen[19] = 16;
        assert_eq!(ArpPacket::parse(&plen), Err(FrameError::NotIpv4));
        let mut rarp = good;
        rarp[21] = 3;
        assert_eq!(ArpPacket::parse(&rarp), Err(FrameError::UnknownOp(3)));
    }

    #[test]
    fn probes_and_odd_senders_tell_nothing() {
        let probe = ArpPacket::request(mac(1), Ipv4Addr::UNSPECIFIED, ip("198.18.0.50"));
        assert_eq!(probe.sighting(), None);
        let mut multicast = ArpPacket::request(mac(1), ip("198.18.0.9"), ip("198.18.0.50"));
        multicast.sender_mac.0[0] = 0x01;
        assert_eq!(multicast.sighting(), None);
        let gratuitous = ArpPacket::request(mac(7), ip("198.18.0.7"), ip("198.18.0.7"));
        assert_eq!(gratuitous.sighting(), Some((mac(7), ip("198.18.0.7"))));
    }
}
