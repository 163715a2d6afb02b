//! One sync: the guest list, then each guest's config (and cloud-init network dump where the
//! config does not give the address), merged with what was known before.
//!
//! The merge keeps data when the API cannot give it (DESIGN.md, "Data flow"): if the guest
//! list fails the whole sync fails and the caller keeps its last inventory; if one guest's
//! own calls fail or time out, that guest keeps its last known state; only a guest gone from
//! the list is dropped. A guest listed without `name` (its node is down) is still asked for
//! its config, and keeps its last known state when that fails.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::{ApiError, Client};
use super::parse::{
    guest_from_config, needs_cloudinit_dump, parse_cloudinit_network, parse_cluster_resources,
};
use super::types::{ClusterResource, GuestConfig};
use crate::inventory::{Guest, GuestKind, Inventory};

/// Guest calls in flight at once: enough to sync a few hundred guests in seconds, few enough
/// not to load pveproxy.
const CONCURRENCY: usize = 8;
/// A guest whose calls take longer than this keeps its last known state for this sync.
const GUEST_DEADLINE: Duration = Duration::from_secs(15);

/// The result of a sync that reached the guest list.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// The new inventory (fresh guests, plus the last known state of guests whose calls failed).
    pub inventory: Inventory,
    /// Guests whose own calls failed, with why: they kept their last known state (or, never
    /// seen before, are missing until a later sync).
    pub guest_errors: Vec<(u32, String)>,
    /// Parts of configs that could not be read (a broken `netN`, say).
    pub warnings: Vec<String>,
    /// How many API calls were made.
    pub requests: usize,
}

/// Fetches the whole inventory. `previous` is the last good one.
pub async fn fetch_inventory(
    client: Arc<Client>,
    previous: &Inventory,
) -> Result<SyncReport, ApiError> {
    let entries: Vec<Value> = client.get("/cluster/resources?type=vm").await?;
    let (resources, list_warnings) = parse_cluster_resources(&entries);
    let mut report = SyncReport {
        warnings: list_warnings.iter().map(ToString::to_string).collect(),
        requests: 1,
        ..SyncReport::default()
    };
    let known: BTreeMap<u32, &Guest> = previous.guests.iter().map(|g| (g.vmid, g)).collect();

    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for resource in resources {
        let (client, limit) = (client.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let vmid = resource.vmid;
            let fetched = tokio::time::timeout(GUEST_DEADLINE, fetch_guest(&client, &resource))
                .await
                .unwrap_or_else(|_| GuestFetch {
                    result: Err(format!("no answer within {}s", GUEST_DEADLINE.as_secs())),
                    warnings: Vec::new(),
                    requests: 1,
                });
            (vmid, resource, fetched)
        });
    }

    let mut guests = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((vmid, resource, fetched)) = joined else {
            continue;
        };
        report.requests += fetched.requests;
        report.warnings.extend(fetched.warnings);
        match fetched.result {
            Ok(guest) => guests.push(guest),
            Err(why) => {
                if let Some(old) = known.get(&vmid) {
                    let mut kept = (*old).clone();
                    // Where it lives and whether it runs are still news worth taking.
                    kept.node.clone_from(&resource.node);
                    if let Some(status) = &resource.status {
                        kept.status.clone_from(status);
                    }
                    guests.push(kept);
                }
                report.guest_errors.push((vmid, why));
            }
        }
    }
    guests.sort_by_key(|g| g.vmid);
    report.guest_errors.sort();
    report.inventory = Inventory { guests };
    Ok(report)
}

struct GuestFetch {
    result: Result<Guest, String>,
    warnings: Vec<String>,
    requests: usize,
}

async fn fetch_guest(client: &Client, resource: &ClusterResource) -> GuestFetch {
    let kind = resource.kind.as_str();
    let base = format!("/nodes/{}/{kind}/{}", resource.node, resource.vmid);
    let mut fetch = GuestFetch {
        result: Err(String::new()),
        warnings: Vec::new(),
        requests: 1,
    };
    let config: GuestConfig = match client.get(&format!("{base}/config")).await {
        Ok(c) => c,
        Err(e) => {
            fetch.result = Err(e.to_string());
            return fetch;
        }
    };
    let mut ifaces = None;
    if resource.kind == GuestKind::Qemu && needs_cloudinit_dump(&config) {
        fetch.requests += 1;
        let dump: Result<String, ApiError> = client
            .get(&format!("{base}/cloudinit/dump?type=network"))
            .await;
        match dump.map_err(|e| e.to_string()).and_then(|yaml| {
            parse_cloudinit_network(&yaml).map_err(|e| format!("qemu/{}: {e}", resource.vmid))
        }) {
            Ok(network) => {
                fetch.warnings.extend(
                    network
                        .warnings
                        .iter()
                        .map(|w| format!("qemu/{}: {w}", resource.vmid)),
                );
                ifaces = Some(network.ifaces);
            }
            Err(e) => {
                // Without the dump the addresses may be wrong: keep what we knew.
                fetch.result = Err(e);
                return fetch;
            }
        }
    }
    fetch.result = guest_from_config(resource, &config, ifaces.as_deref())
        .map(|parsed| {
            let id = format!("{kind}/{}", resource.vmid);
            fetch
                .warnings
                .extend(parsed.warnings.iter().map(|w| format!("{id}: {w}")));
            parsed.guest
        })
        .map_err(|e| e.to_string());
    fetch
}
