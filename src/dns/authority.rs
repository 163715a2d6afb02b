//! The authoritative side of the DNS server: answers for `DNS_DOMAIN` and the reverse zones
//! of `NETWORK_CIDR`, from one published [`Zone`] snapshot.
//!
//! An [`Authority`] is built once per zone change (in the state task, off the hot path) and
//! then only read. It holds the records as hickory-proto values for the general path, and a
//! hash map of **pre-encoded responses** keyed by (lowercased wire name, type) for the fast
//! path: a hit copies the template, patches in the query's ID, flags and question bytes (the
//! client's letter case, for 0x20 randomisation) and an OPT record when the query had one.
//! DESIGN.md ("The DNS hot path") gives the measurements behind this.
//!
//! Invariants: no I/O; never decides names (that is `zone`); an answer is the same whether it
//! comes from the fast or the general path (tests check both).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, PTR, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use ipnet::Ipv4Net;

use crate::zone::{Zone, NS_LABEL};

/// The largest UDP payload we advertise and answer with over EDNS (the DNS Flag Day 2020
/// value, which avoids IP fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Size of the DNS header.
const HEADER: usize = 12;

/// Answers from one zone snapshot. Cheap to share (`Arc`), never mutated.
pub struct Authority {
    zone: Zone,
    apexes: Vec<Name>,
    rrsets: HashMap<(Name, RecordType), Vec<Record>>,
    names: HashSet<Name>,
    soa: HashMap<Name, Record>,
    templates: HashMap<Box<[u8]>, Box<[u8]>>,
}

/// What the general path decided about a query.
pub enum Answer {
    /// A complete response for a name in our zones.
    Authoritative(Message),
    /// Not one of our zones: forward it (if the client may use us as a resolver).
    NotOurs,
}

impl Authority {
    /// Builds the records and response templates of `zone`, with records valid for `ttl`
    /// seconds.
    pub fn build(zone: Zone, ttl: u32) -> Authority {
        let domain = fqdn(&zone.domain);
        let ns_name = fqdn(&format!("{NS_LABEL}.{}", zone.domain));
        let mut apexes = vec![domain.clone()];
        apexes.extend(reverse_apexes(zone.network));

        let mut rrsets: HashMap<(Name, RecordType), Vec<Record>> = HashMap::new();
        let mut add = |name: Name, rdata: RData| {
            let rtype = rdata.record_type();
            let record = Record::from_rdata(name.clone(), ttl, rdata);
            rrsets.entry((name, rtype)).or_default().push(record);
        };
        let mut soa = HashMap::new();
        for apex in &apexes {
            let rdata = SOA::new(
                ns_name.clone(),
                fqdn(&format!("hostmaster.{}", zone.domain)),
                zone.serial,
                3600,
                600,
                86400,
                ttl,
            );
            soa.insert(
                apex.clone(),
                Record::from_rdata(apex.clone(), ttl, RData::SOA(rdata.clone())),
            );
            add(apex.clone(), RData::SOA(rdata));
            add(apex.clone(), RData::NS(NS(ns_name.clone())));
        }
        for r in &zone.records {
            add(fqdn(&r.fqdn), RData::A(A(r.addr)));
        }
        for (addr, name) in &zone.ptr {
            add(ptr_name(*addr), RData::PTR(PTR(fqdn(name))));
        }
        let names = rrsets.keys().map(|(n, _)| n.clone()).collect();

        let mut authority = Authority {
            zone,
            apexes,
            rrsets,
            names,
            soa,
            templates: HashMap::new(),
        };
        authority.templates = authority.encode_templates();
        authority
    }

    /// The zone this authority answers from.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// The zones we are authoritative for (forward domain first, then the reverse zones).
    pub fn apexes(&self) -> &[Name] {
        &self.apexes
    }

    fn encode_templates(&self) -> HashMap<Box<[u8]>, Box<[u8]>> {
        let mut templates = HashMap::new();
        for ((name, rtype), records) in &self.rrsets {
            let mut msg = Message::new();
            msg.set_message_type(MessageType::Response)
                .set_op_code(OpCode::Query)
                .set_authoritative(true)
                .set_recursion_available(true)
                .add_query(Query::query(name.clone(), *rtype))
                .add_answers(records.iter().cloned());
            // A template we cannot encode is simply left to the general path.
            let (Ok(bytes), Ok(wire)) = (msg.to_vec(), name.to_bytes()) else {
                continue;
            };
            let mut key = wire;
            key.extend_from_slice(&u16::from(*rtype).to_be_bytes());
            templates.insert(key.into_boxed_slice(), bytes.into_boxed_slice());
        }
        templates
    }

    /// The hot path: answers a plain query (one question, class IN, no answer/authority
    /// records, at most an OPT record) for a name and type that exist, by copying a
    /// pre-encoded response into `out`. Returns `false`, with `out` unspecified, whenever the
    /// general path must decide instead.
    pub fn fast_answer(&self, query: &[u8], out: &mut Vec<u8>, max_udp: Option<usize>) -> bool {
        let Some(q) = FastQuery::parse(query) else {
            return false;
        };
        let mut key = [0u8; 258];
        let name = &query[q.qname.clone()];
        key[..name.len()].copy_from_slice(name);
        key[..name.len()].make_ascii_lowercase();
        key[name.len()..name.len() + 2].copy_from_slice(&q.qtype.to_be_bytes());
        let Some(template) = self.templates.get(&key[..name.len() + 2]) else {
            return false;
        };
        out.clear();
        out.extend_from_slice(template);
        out[0..2].copy_from_slice(&query[0..2]);
        // Copy RD and CD from the query, as the general path does.
        out[2] = (out[2] & !0x01) | (query[2] & 0x01);
        out[3] = (out[3] & !0x10) | (query[3] & 0x10);
        out[HEADER..HEADER + name.len()].copy_from_slice(name);
        if let Some(opt) = &q.opt {
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
            // Extended RCODE 0, version 0, the DO bit copied as RFC 3225 asks, no options.
            out.extend_from_slice(&[0, 0, opt.flags_hi & 0x80, 0, 0, 0]);
            out[10..12].copy_from_slice(&1u16.to_be_bytes());
        }
        let limit = max_udp.map(|m| m.min(q.udp_limit()));
        limit.is_none_or(|l| out.len() <= l)
    }

    /// The general path: a complete authoritative response for `query` when it names one of
    /// our zones, else [`Answer::NotOurs`]. The caller has checked the opcode and that there
    /// is exactly one question.
    pub fn answer(&self, query: &Message) -> Answer {
        let Some(question) = query.queries().first() else {
            return Answer::NotOurs;
        };
        let qname = question.name().to_lowercase();
        let Some(apex) = self
            .apexes
            .iter()
            .filter(|a| a.zone_of(&qname))
            .max_by_key(|a| a.num_labels())
        else {
            return Answer::NotOurs;
        };
        let mut msg = response_to(query);
        msg.set_authoritative(true);
        msg.add_query(question.clone());
        if !matches!(question.query_class(), DNSClass::IN | DNSClass::ANY) {
            msg.set_authoritative(false);
            msg.set_response_code(ResponseCode::Refused);
            return Answer::Authoritative(msg);
        }
        let qtype = question.query_type();
        let found: Vec<Record> = if qtype == RecordType::ANY {
            self.rrsets
                .iter()
                .filter(|((n, _), _)| *n == qname)
                .flat_map(|(_, rs)| rs.iter().cloned())
                .collect()
        } else {
            self.rrsets
                .get(&(qname.clone(), qtype))
                .cloned()
                .unwrap_or_default()
        };
        if !found.is_empty() {
            msg.add_answers(found);
        } else {
            if !self.names.contains(&qname) {
                msg.set_response_code(ResponseCode::NXDomain);
            }
            if let Some(soa) = self.soa.get(apex) {
                msg.add_name_server(soa.clone());
            }
        }
        Answer::Authoritative(msg)
    }
}

/// A response skeleton for `query`: same ID, opcode, RD and CD; RA set (we resolve for
/// allowed clients); an OPT record when the query had one.
pub fn response_to(query: &Message) -> Message {
    let mut msg = Message::new();
    msg.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_checking_disabled(query.checking_disabled())
        .set_recursion_available(true);
    if let Some(edns) = query.extensions() {
        let mut ours = Edns::new();
        ours.set_max_payload(EDNS_PAYLOAD);
        ours.set_dnssec_ok(edns.flags().dnssec_ok);
        msg.set_edns(ours);
    }
    msg
}

/// The reverse zones of `net`: the octet-aligned networks that cover it exactly
/// (198.18.0.0/23 → `0.18.198.in-addr.arpa.` and `1.18.198.in-addr.arpa.`). A network longer
/// than /24 gets its whole /24 (classless delegation is not worth it in a lab).
pub fn reverse_apexes(net: Ipv4Net) -> Vec<Name> {
    let prefix = net.prefix_len().max(8);
    let aligned = (prefix.div_ceil(8) * 8).min(24);
    let octets = usize::from(aligned / 8);
    let net = Ipv4Net::new(net.network(), prefix.min(aligned)).map_or(net, |n| n.trunc());
    let Ok(subnets) = net.subnets(aligned) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sub in subnets.take(256) {
        let o = sub.network().octets();
        let labels: Vec<String> = o[..octets].iter().rev().map(u8::to_string).collect();
        out.push(fqdn(&format!("{}.in-addr.arpa", labels.join("."))));
    }
    out
}

/// The PTR owner name of `addr` (`20.0.18.198.in-addr.arpa.`).
pub fn ptr_name(addr: Ipv4Addr) -> Name {
    let o = addr.octets();
    fqdn(&format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]))
}

/// `name` as a lowercase fully qualified hickory name. The zone only ever holds valid
/// labels, so a failure here is a bug upstream; it degrades to the root name rather than
/// panicking in the server.
fn fqdn(name: &str) -> Name {
    let mut n = Name::from_ascii(name)
        .map(|n| n.to_lowercase())
        .unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

/// The few facts of a query the fast path needs, found by scanning the header and question
/// only (the general path parses everything with hickory-proto).
struct FastQuery {
    qname: std::ops::Range<usize>,
    qtype: u16,
    opt: Option<FastOpt>,
}

struct FastOpt {
    payload: u16,
    flags_hi: u8,
}

impl FastQuery {
    fn parse(q: &[u8]) -> Option<FastQuery> {
        if q.len() < HEADER + 5 {
            return None;
        }
        let be = |i: usize| u16::from_be_bytes([q[i], q[i + 1]]);
        // QR=0, opcode QUERY, no TC; one question, nothing in answer/authority.
        if q[2] & 0xFA != 0 || be(4) != 1 || be(6) != 0 || be(8) != 0 || be(10) > 1 {
            return None;
        }
        let mut i = HEADER;
        loop {
            let len = usize::from(*q.get(i)?);
            if len == 0 {
                i += 1;
                break;
            }
            // Compression pointers or extended labels never appear in a plain question.
            if len > 63 || i + 1 + len > q.len() {
                return None;
            }
            i += 1 + len;
        }
        let qname = HEADER..i;
        if qname.len() > 255 || i + 4 > q.len() {
            return None;
        }
        let qtype = be(i);
        if be(i + 2) != u16::from(DNSClass::IN) {
            return None;
        }
        i += 4;
        let opt = if be(10) == 1 {
            // The one additional record must be an OPT at the root: 0, type 41, class =
            // payload size, TTL = ext-rcode, version, flags; then RDLEN and options.
            if q.len() < i + 11 || q[i] != 0 || be(i + 1) != 41 || q[i + 6] != 0 {
                return None;
            }
            let rdlen = usize::from(be(i + 9));
            if q.len() != i + 11 + rdlen {
                return None;
            }
            Some(FastOpt {
                payload: be(i + 3),
                flags_hi: q[i + 7],
            })
        } else if q.len() != i {
            return None;
        } else {
            None
        };
        if qtype == u16::from(RecordType::ANY) || qtype == u16::from(RecordType::AXFR) {
            return None;
        }
        Some(FastQuery { qname, qtype, opt })
    }

    /// The largest response the client accepts over UDP.
    fn udp_limit(&self) -> usize {
        match &self.opt {
            Some(o) => usize::from(o.payload.clamp(512, EDNS_PAYLOAD)),
            None => 512,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::MacAddr;
    use crate::zone::{Owner, Record as ZoneRecord, Source};
    use std::collections::BTreeMap;

    fn zone() -> Zone {
        let rec = |fqdn: &str, addr: &str, vmid| ZoneRecord {
            fqdn: fqdn.into(),
            addr: addr.parse().unwrap(),
            source: Source::Static,
            owner: Owner::Guest {
                vmid,
                guest: crate::inventory::GuestKind::Qemu,
                node: "pve1".into(),
                nic: 0,
                mac: MacAddr([0xbc, 0x24, 0x11, 0, 0, vmid as u8]),
            },
        };
        let records = vec![
            rec("multi.lab", "198.18.0.31", 31),
            rec("multi.lab", "198.18.1.31", 31),
            rec("web1.lab", "198.18.0.20", 100),
        ];
        let ptr: BTreeMap<Ipv4Addr, String> =
            records.iter().map(|r| (r.addr, r.fqdn.clone())).collect();
        Zone {
            domain: "lab".into(),
            network: "198.18.0.0/23".parse().unwrap(),
            serial: 7,
            records,
            ptr,
            conflicts: vec![],
        }
    }

    fn query(name: &str, rtype: RecordType, edns: bool) -> Message {
        let mut m = Message::new();
        m.set_id(0xBEEF).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(4096);
            e.set_dnssec_ok(true);
            m.set_edns(e);
        }
        m
    }

    fn general(auth: &Authority, q: &Message) -> Message {
        match auth.answer(q) {
            Answer::Authoritative(m) => m,
            Answer::NotOurs => panic!("not ours: {q:?}"),
        }
    }

    #[test]
    fn reverse_zones_cover_the_network() {
        let names = |n: &str| -> Vec<String> {
            reverse_apexes(n.parse().unwrap())
                .iter()
                .map(|n| n.to_string())
                .collect()
        };
        assert_eq!(
            names("198.18.0.0/23"),
            vec!["0.18.198.in-addr.arpa.", "1.18.198.in-addr.arpa."]
        );
        assert_eq!(names("198.18.7.128/25"), vec!["7.18.198.in-addr.arpa."]);
        assert_eq!(names("10.0.0.0/16"), vec!["0.10.in-addr.arpa."]);
        assert_eq!(names("10.0.0.0/8"), vec!["10.in-addr.arpa."]);
        assert_eq!(names("198.18.0.0/15").len(), 2);
    }

    #[test]
    fn fast_path_equals_general_path() {
        let auth = Authority::build(zone(), 30);
        for (name, rtype) in [
            ("web1.lab.", RecordType::A),
            ("WeB1.LaB.", RecordType::A),
            ("multi.lab.", RecordType::A),
            ("20.0.18.198.in-addr.arpa.", RecordType::PTR),
            ("lab.", RecordType::SOA),
            ("lab.", RecordType::NS),
        ] {
            for edns in [false, true] {
                let q = query(name, rtype, edns);
                let bytes = q.to_vec().unwrap();
                let mut out = Vec::new();
                assert!(
                    auth.fast_answer(&bytes, &mut out, Some(65535)),
                    "{name} {rtype}"
                );
                let fast = Message::from_vec(&out).unwrap();
                let slow = Message::from_vec(&general(&auth, &q).to_vec().unwrap()).unwrap();
                assert_eq!(fast.id(), 0xBEEF);
                assert_eq!(fast.queries()[0].name().to_string(), name, "case kept");
                assert_eq!(fast.header(), slow.header(), "{name} {rtype} edns={edns}");
                let set = |m: &Message| {
                    let mut v: Vec<String> = m
                        .answers()
                        .iter()
                        .map(|r| r.to_string().to_lowercase())
                        .collect();
                    v.sort();
                    v
                };
                assert_eq!(set(&fast), set(&slow));
                assert_eq!(fast.extensions().is_some(), edns);
                if edns {
                    assert!(fast.extensions().as_ref().unwrap().flags().dnssec_ok);
                }
            }
        }
    }

    #[test]
    fn names_and_types_that_do_not_exist() {
        let auth = Authority::build(zone(), 30);
        let m = general(&auth, &query("nope.lab.", RecordType::A, false));
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert!(m.authoritative());
        assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
        let m = general(&auth, &query("web1.lab.", RecordType::AAAA, false));
        assert_eq!(m.response_code(), ResponseCode::NoError);
        assert!(m.answers().is_empty());
        assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
        let m = general(
            &auth,
            &query("99.0.18.198.in-addr.arpa.", RecordType::PTR, false),
        );
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert_eq!(
            m.name_servers()[0].name().to_string(),
            "0.18.198.in-addr.arpa."
        );
        let mut out = Vec::new();
        let bytes = query("nope.lab.", RecordType::A, false).to_vec().unwrap();
        assert!(!auth.fast_answer(&bytes, &mut out, None));
    }

    #[test]
    fn other_names_are_not_ours() {
        let auth = Authority::build(zone(), 30);
        for name in [
            "example.com.",
            "lab.example.com.",
            "5.5.18.198.in-addr.arpa.",
        ] {
            assert!(
                matches!(
                    auth.answer(&query(name, RecordType::A, false)),
                    Answer::NotOurs
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn soa_serial_and_ttl_come_from_the_zone() {
        let auth = Authority::build(zone(), 45);
        let m = general(&auth, &query("lab.", RecordType::SOA, false));
        let RData::SOA(soa) = m.answers()[0].data() else {
            panic!()
        };
        assert_eq!(soa.serial(), 7);
        assert_eq!(m.answers()[0].ttl(), 45);
    }

    #[test]
    fn fast_path_refuses_odd_queries() {
        let auth = Authority::build(zone(), 30);
        let mut out = Vec::new();
        let good = query("web1.lab.", RecordType::A, false).to_vec().unwrap();
        // Truncated at every length: never a panic, never an answer.
        for n in 0..good.len() {
            assert!(!auth.fast_answer(&good[..n], &mut out, None), "len {n}");
        }
        let mut response = good.clone();
        response[2] |= 0x80;
        assert!(!auth.fast_answer(&response, &mut out, None));
        let mut chaos = good.clone();
        let l = chaos.len();
        chaos[l - 1] = 3;
        assert!(!auth.fast_answer(&chaos, &mut out, None));
        let any = query("web1.lab.", RecordType::ANY, false).to_vec().unwrap();
        assert!(!auth.fast_answer(&any, &mut out, None));
    }
}
