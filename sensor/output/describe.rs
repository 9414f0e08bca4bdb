//! Report and event wording for what the inventory learned: a sentence per fact, a label per
//! update-file magic. Kept here so that the inventory holds data and the output stage words it.

use crate::inventory::Fact;
use crate::proto::update::UpdateMagic;

/// The sentence a report gives for a learned fact.
pub fn describe_fact(fact: &Fact) -> String {
    match fact {
        Fact::KscAgentOf { server, port } => {
            format!("talks to Kaspersky Security Center {server} on agent port {port}")
        }
        Fact::KscServerFor { client, port } => {
            format!(
                "receives Kaspersky Security Center agent connections (port {port}) from {client}"
            )
        }
        Fact::ServedUpdate { client, magic } => {
            format!(
                "served a Kaspersky update file ({}) over HTTP to {client}",
                magic_label(*magic)
            )
        }
        Fact::UpdatedFromMirror { server } => {
            format!("downloads Kaspersky update files from internal mirror {server}")
        }
        Fact::ForwardedFor { client } => {
            format!("forwarded {client}'s Kaspersky lookup to an upstream resolver")
        }
        Fact::AnsweredClients { clients } => {
            format!("received Kaspersky lookups from {clients} clients")
        }
        Fact::QueriedPublicResolver { resolver } => {
            format!("sent Kaspersky lookups straight to public resolver {resolver}")
        }
    }
}

/// How an update file's magic is written in events and reports: the bytes themselves.
pub fn magic_label(magic: UpdateMagic) -> &'static str {
    match magic {
        UpdateMagic::Klzf => "KLZF",
        UpdateMagic::Kld2 => "KLD2",
        UpdateMagic::Diff => "DIFF",
    }
}
