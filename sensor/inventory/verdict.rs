//! Verdicts: what a host is (an install, managed or not, a KSC server, an update mirror, a
//! resolver, or a host that only visited Kaspersky sites), from its evidence, its learned
//! facts and the operator's asset roles.

use super::assets::{Assets, Role};
use super::host::{Fact, Host};
use super::Inventory;
use crate::rules::Confidence;

/// A host's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    UnmanagedInstall,
    ManagedInstall,
    KscServer,
    UpdateMirror,
    Resolver,
    WebsiteOnly,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::UnmanagedInstall,
        Verdict::ManagedInstall,
        Verdict::KscServer,
        Verdict::UpdateMirror,
        Verdict::Resolver,
        Verdict::WebsiteOnly,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Verdict::UnmanagedInstall => "unmanaged-install",
            Verdict::ManagedInstall => "managed-install",
            Verdict::KscServer => "ksc-server",
            Verdict::UpdateMirror => "update-mirror",
            Verdict::Resolver => "resolver",
            Verdict::WebsiteOnly => "website-only",
        }
    }
}

impl Inventory {
    /// The verdict for a host given the operator's assets, or `None` for a host with neither
    /// evidence nor a role worth reporting.
    pub fn verdict(&self, host: &Host, assets: &Assets) -> Option<Verdict> {
        let role = assets.find(host.ip, host.macs.iter()).map(|a| a.role);
        let learned_ksc = host
            .facts
            .iter()
            .any(|f| matches!(f, Fact::KscServerFor { .. }));
        let learned_mirror = host
            .facts
            .iter()
            .any(|f| matches!(f, Fact::ServedUpdate { .. }));
        let learned_resolver = host
            .facts
            .iter()
            .any(|f| matches!(f, Fact::ForwardedFor { .. } | Fact::AnsweredClients { .. }));
        if role == Some(Role::KscServer) || (role.is_none() && learned_ksc) {
            return Some(Verdict::KscServer);
        }
        if role == Some(Role::UpdateMirror) || (role.is_none() && learned_mirror) {
            return Some(Verdict::UpdateMirror);
        }
        if role == Some(Role::Resolver) || (role.is_none() && learned_resolver) {
            return Some(Verdict::Resolver);
        }
        let strongest = host.strongest()?;
        let managed = role == Some(Role::Endpoint)
            || host
                .facts
                .iter()
                .any(|f| matches!(f, Fact::KscAgentOf { .. } | Fact::UpdatedFromMirror { .. }));
        if managed && strongest >= Confidence::Medium {
            return Some(Verdict::ManagedInstall);
        }
        if strongest >= Confidence::Medium {
            return Some(Verdict::UnmanagedInstall);
        }
        Some(Verdict::WebsiteOnly)
    }
}
