//! MAP: the servers of the network with their user counts.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::numeric;

/// `MAP`
///
/// One 006 RPL_MAP line per server, this one first, then the other nodes
/// by name, drawn as UnrealIRCd draws a flat map (every node is one hop
/// away through NATS): `:a.test 006 alice :a.test  (3)`, then
/// `|-b.test  (1)` and `` `-c.test  (2)`` for the last; then 007
/// RPL_MAPEND. UnrealIRCd's numbers: InspIRCd 4 uses ircu's 015 and 017
/// instead, older InspIRCd 006 and 007. For everyone, as on both, showing
/// the servers LINKS shows; an operator also sees each server's node name
/// (`[network] node`), as UnrealIRCd shows opers the server ids.
pub fn map(state: &mut State, id: ClientId, _: &Message) -> Result<(), Refusal> {
    let oper = state.clients.get(&id).is_some_and(|c| c.modes.oper);
    let local_users = state
        .clients
        .values()
        .filter(|client| client.registered && client.remote.is_none())
        .count();
    let this = state.network_node_name().unwrap_or_default().to_owned();
    let mut rows = vec![(state.server_name().to_owned(), this, local_users)];
    rows.extend(state.network_nodes());
    let last = rows.len() - 1;
    let drawn: Vec<(String, String, usize)> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (server, node, users))| {
            let branch = match i {
                0 => "",
                i if i == last => "`-",
                _ => "|-",
            };
            (format!("{branch}{server}"), node, users)
        })
        .collect();
    // The counts line up in one column, as on UnrealIRCd.
    let width = drawn.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
    for (name, node, users) in drawn {
        let mut text = format!("{name:<width$}  ({users})");
        if oper && !node.is_empty() {
            text.push_str(&format!(" [node {node}]"));
        }
        state.reply(id, numeric::RPL_MAP, &[], &text);
    }
    state.reply(id, numeric::RPL_MAPEND, &[], "End of /MAP");
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    #[test]
    fn a_lone_server_maps_itself_with_its_users() {
        let mut h = Harness::new();
        h.register("alice");
        h.register("bob");
        h.send("alice", "MAP");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 006 alice :irc.test  (2)",
                ":irc.test 007 alice :End of /MAP"
            ]
        );
    }
}
