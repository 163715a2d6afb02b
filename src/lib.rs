//! leazzard: one process that gives every guest of a Proxmox VE cluster a DNS name on its lab
//! network, live. It is the network's DNS server (authoritative for the lab domain and its
//! reverse zone, a caching forwarder for the rest) and watches the Proxmox API.
//!
//! The module list follows the architecture (`ARCHITECTURE.md`, `DESIGN.md`): configuration,
//! the Proxmox side, the naming rules, the protocol servers, and the wiring.

pub mod arp;
pub mod check;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod dhcp;
pub mod dns;
pub mod http;
pub mod inventory;
pub mod netif;
pub mod proxmox;
pub mod simulator;
pub mod zone;
