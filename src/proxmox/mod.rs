//! Everything leazzard knows about the Proxmox VE API: the response types (`types`), the pure
//! parsers that turn guest configs and cloud-init dumps into the `Inventory` (`parse`), the
//! HTTP client with TLS and failover (`client`, `tls`), and one sync of the whole inventory
//! (`sync`).
//!
//! Invariants: `types` and `parse` do no I/O; only `client` talks to the network. Nothing here
//! knows DNS or DHCP rules.

pub mod client;
pub mod parse;
pub mod sync;
pub mod tls;
pub mod types;

pub use client::{ApiError, Client};
pub use sync::{fetch_inventory, SyncReport};
