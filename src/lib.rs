//! leazzard: one process that gives every guest of a Proxmox VE cluster a DNS name on its lab
//! network, live. The module list follows the architecture (see `ARCHITECTURE.md`).

pub mod dns;
pub mod inventory;
pub mod zone;
