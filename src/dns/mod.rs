//! The DNS server: authoritative for the lab domain and its reverse zones (answered from the
//! published `Zone` snapshot), and a caching forwarder for every other name, for clients of
//! the lab network only.
//!
//! - `authority`: records and pre-encoded answers built from one `Zone` (pure).
//! - `forward`: upstream resolution and cache.
//! - `server`: UDP and TCP sockets.
//!
//! This module never decides names: that is `zone`.

pub mod authority;
pub mod forward;
pub mod server;

pub use authority::Authority;
pub use forward::Forwarder;
pub use server::{Access, DnsServer, DnsShared, DnsStats};
