//! Serde types for the Proxmox VE API responses leazzard reads: the guest list
//! (`/cluster/resources?type=vm`), guest configs, cloud-init dumps, `/version` and
//! `/access/permissions`.
//!
//! Invariants: no I/O, no policy. Deserialization is lenient where Proxmox releases differ
//! (numbers and booleans sent as strings on older releases, fields missing while a node is
//! down) and ignores unknown fields, so a new Proxmox release does not break a sync.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::inventory::GuestKind;

/// The envelope of every Proxmox API answer: `{"data": ...}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ApiResponse<T> {
    /// The payload.
    pub data: T,
}

/// One guest of `GET /cluster/resources?type=vm`.
///
/// Deserializing an entry of another type (`node`, `storage`, ...) fails on `type`; use
/// [`crate::proxmox::parse::parse_cluster_resources`] on the raw list to skip those.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ClusterResource {
    /// `qemu/100`, `lxc/200`.
    pub id: String,
    /// `qemu` or `lxc` (the `type` field).
    #[serde(rename = "type")]
    pub kind: GuestKind,
    /// The node the guest lives on.
    pub node: String,
    /// The guest's VMID (a string on older releases).
    #[serde(deserialize_with = "lenient::u32_from_any")]
    pub vmid: u32,
    /// The guest's name (an LXC's hostname). Absent when its node has been down for more than
    /// five minutes, or for a guest created since its node's last broadcast (PROXMOX.md §4).
    #[serde(default)]
    pub name: Option<String>,
    /// `running`, `stopped`, `unknown` (node down), ...
    #[serde(default)]
    pub status: Option<String>,
    /// Whether the guest is a template; `None` when not reported (node down).
    #[serde(default, deserialize_with = "lenient::opt_bool_from_any")]
    pub template: Option<bool>,
    /// Proxmox tags as one string (`prod;web`).
    #[serde(default)]
    pub tags: Option<String>,
}

impl ClusterResource {
    /// True when Proxmox says this guest is a template; false when it says no or nothing.
    pub fn is_template(&self) -> bool {
        self.template.unwrap_or(false)
    }
}

/// A guest's config (`GET /nodes/{node}/{qemu|lxc}/{vmid}/config`): arbitrary keys whose values
/// are strings or numbers.
pub type GuestConfig = serde_json::Map<String, serde_json::Value>;

/// `GET /nodes/{node}/qemu/{vmid}/cloudinit/dump?type=network`: the YAML text cloud-init gets.
pub type CloudInitDump = ApiResponse<String>;

/// `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct VersionInfo {
    /// Full version of pve-manager, e.g. `8.4.17`.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub version: String,
    /// Major.minor release, e.g. `8.4`.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub release: String,
    /// The git commit the release was built from (16 hex digits).
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub repoid: String,
    /// The default console, set only when `datacenter.cfg` names one.
    #[serde(default)]
    pub console: Option<String>,
}

impl VersionInfo {
    /// The major release (8, 9), which decides privilege names (`VM.Monitor` vs
    /// `VM.GuestAgent.*`). `None` when `release` does not start with a number.
    pub fn major(&self) -> Option<u32> {
        let release = if self.release.is_empty() {
            &self.version
        } else {
            &self.release
        };
        release.split('.').next()?.trim().parse().ok()
    }
}

/// `GET /access/permissions`: ACL path → privilege → propagate flag. A privilege listed at a
/// path is granted there; its flag says whether it also holds below that path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Permissions(pub BTreeMap<String, BTreeMap<String, Propagate>>);

/// The value of one privilege in [`Permissions`]: `1` = propagates to sub-paths, `0` = not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Propagate(pub bool);

impl<'de> Deserialize<'de> for Propagate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::bool_from_any(d).map(Propagate)
    }
}

impl Permissions {
    /// Whether `privilege` holds on `path` (e.g. `/vms/100`, `VM.Audit`).
    ///
    /// The answer lists effective privileges per ACL path, so the nearest listed path decides:
    /// the path itself grants what it lists; an ancestor grants what it lists with propagate
    /// set. This is a close approximation for `check`, not Proxmox's full ACL evaluation.
    pub fn grants(&self, path: &str, privilege: &str) -> bool {
        let mut current = path.trim_end_matches('/');
        let mut exact = true;
        loop {
            let key = if current.is_empty() { "/" } else { current };
            if let Some(privileges) = self.0.get(key) {
                return match privileges.get(privilege) {
                    Some(Propagate(propagates)) => exact || *propagates,
                    None => false,
                };
            }
            if current.is_empty() {
                return false;
            }
            current = match current.rfind('/') {
                Some(i) => &current[..i],
                None => "",
            };
            exact = false;
        }
    }
}

/// Deserialize helpers for values whose JSON type varies between Proxmox releases.
mod lenient {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    /// A scalar as Proxmox may send it.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(String),
    }

    pub fn u32_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Int(n) => {
                u32::try_from(n).map_err(|_| D::Error::custom(format!("{n} is not a valid VMID")))
            }
            Scalar::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| D::Error::custom(format!("{s:?} is not a valid VMID"))),
            Scalar::Bool(_) | Scalar::Float(_) => {
                Err(D::Error::custom("expected a VMID (a whole number)"))
            }
        }
    }

    pub fn bool_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Scalar::deserialize(d)? {
            Scalar::Bool(b) => Ok(b),
            Scalar::Int(n) => Ok(n != 0),
            Scalar::Float(f) => Ok(f != 0.0),
            Scalar::Str(s) => crate::proxmox::parse::parse_bool(&s).ok_or_else(|| {
                D::Error::custom(format!("{s:?} is not a boolean; expected 0 or 1"))
            }),
        }
    }

    pub fn opt_bool_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(deserialize_with = "bool_from_any")] bool);
        Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(b)| b))
    }

    pub fn string_from_any<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(match Scalar::deserialize(d)? {
            Scalar::Str(s) => s,
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/proxmox/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn version_pve8_with_console() {
        let v: ApiResponse<VersionInfo> =
            serde_json::from_str(&fixture("version-pve8.json")).unwrap();
        assert_eq!(v.data.version, "8.4.17");
        assert_eq!(v.data.release, "8.4");
        assert_eq!(v.data.repoid, "c8c39014680186a7");
        assert_eq!(v.data.console.as_deref(), Some("xtermjs"));
        assert_eq!(v.data.major(), Some(8));
    }

    #[test]
    fn version_pve9_without_console() {
        let v: ApiResponse<VersionInfo> =
            serde_json::from_str(&fixture("version-pve9.json")).unwrap();
        assert_eq!(v.data.version, "9.0.11");
        assert_eq!(v.data.release, "9.0");
        assert_eq!(v.data.repoid.len(), 16);
        assert_eq!(v.data.console, None);
        assert_eq!(v.data.major(), Some(9));
    }

    #[test]
    fn version_release_as_number_is_accepted() {
        let v: ApiResponse<VersionInfo> =
            serde_json::from_str(r#"{"data":{"version":"7.4-3","release":7.4,"repoid":"abc"}}"#)
                .unwrap();
        assert_eq!(v.data.release, "7.4");
        assert_eq!(v.data.major(), Some(7));
    }

    #[test]
    fn permissions_token_with_vm_audit_on_vms() {
        let p: ApiResponse<Permissions> =
            serde_json::from_str(&fixture("access-permissions-token.json")).unwrap();
        let p = p.data;
        assert!(p.grants("/vms", "VM.Audit"));
        assert!(p.grants("/vms/100", "VM.Audit"));
        // Propagated from /vms (flag 1).
        assert!(p.grants("/vms/101", "VM.Audit"));
        assert!(!p.grants("/", "Sys.Audit"));
        assert!(!p.grants("/nodes/pve1", "Sys.Audit"));
        assert!(!p.grants("/vms/100", "VM.Monitor"));
        assert!(!p.grants("/vms/100", "VM.GuestAgent.Audit"));
    }

    #[test]
    fn permissions_root_path_empty_grants_nothing() {
        let p: ApiResponse<Permissions> =
            serde_json::from_str(&fixture("access-permissions-token-path-root.json")).unwrap();
        assert_eq!(p.data.0.len(), 1);
        assert!(p.data.0["/"].is_empty());
        assert!(!p.data.grants("/", "Sys.Audit"));
        assert!(!p.data.grants("/vms/100", "VM.Audit"));
    }

    #[test]
    fn permissions_without_propagate_do_not_reach_sub_paths() {
        let p: Permissions =
            serde_json::from_str(r#"{"/vms": {"VM.Audit": 0}, "/": {"Sys.Audit": "1"}}"#).unwrap();
        assert!(p.grants("/vms", "VM.Audit"));
        assert!(!p.grants("/vms/100", "VM.Audit"));
        assert!(p.grants("/nodes/pve1", "Sys.Audit"));
        // The nearest listed path decides: /vms is listed, without Sys.Audit.
        assert!(!p.grants("/vms/100", "Sys.Audit"));
    }

    #[test]
    fn cluster_resource_rejects_a_non_numeric_vmid() {
        let r = serde_json::from_str::<ClusterResource>(
            r#"{"id":"qemu/x","type":"qemu","node":"pve1","vmid":"x"}"#,
        );
        let err = r.unwrap_err().to_string();
        assert!(err.contains("\"x\" is not a valid VMID"), "{err}");
    }

    #[test]
    fn cluster_resource_rejects_a_bad_template_flag() {
        let r = serde_json::from_str::<ClusterResource>(
            r#"{"id":"qemu/1","type":"qemu","node":"pve1","vmid":1,"template":"maybe"}"#,
        );
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("\"maybe\" is not a boolean"));
    }

    #[test]
    fn cluster_resource_null_template_is_unknown() {
        let r: ClusterResource = serde_json::from_str(
            r#"{"id":"lxc/1","type":"lxc","node":"pve1","vmid":1,"template":null}"#,
        )
        .unwrap();
        assert_eq!(r.template, None);
        assert!(!r.is_template());
        assert_eq!(r.kind, GuestKind::Lxc);
    }

    #[test]
    fn cloudinit_dump_is_a_string() {
        let d: CloudInitDump =
            serde_json::from_str(&fixture("qemu-105-cloudinit-dump-network-v2-bare.json")).unwrap();
        assert!(d.data.starts_with("version: 2\n"));
    }
}
