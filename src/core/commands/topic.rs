//! TOPIC: read or change a room's topic, and the 332/333 pair JOIN sends.

use std::time::UNIX_EPOCH;

use super::registration::truncate;
use crate::core::Refusal;
use crate::core::{ClientId, State, Topic};
use crate::history::{HistoryTarget, NewRecord};
use crate::proto::numeric;
use crate::proto::{Folded, Line, Message};

/// `TOPIC <channel> [<topic>]`
///
/// Shows the topic, or sets it (an empty one clears it).
pub fn topic(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let name = message.param(0);
    let folded = state.fold(name);
    let Some(channel) = state.visible_channel(id, &folded) else {
        return Err(Refusal::no_such_channel(name));
    };
    let membership = channel.members.get(&id).copied();
    let Some(text) = message.params.get(1) else {
        send_topic(state, id, &folded, true);
        return Ok(());
    };
    let Some(membership) = membership else {
        return Err(Refusal::not_on_channel(name));
    };
    if channel.modes.topic_ops_only && !membership.op {
        let name = channel.name.clone();
        return Err(Refusal::not_channel_operator(&name));
    }
    let Some((source, account)) = state
        .clients
        .get(&id)
        .map(|client| (client.source.clone(), client.account.clone()))
    else {
        return Ok(());
    };
    let text = truncate(text, state.config.limits.topic_length).to_owned();
    let now = state.clock.now();
    let Some(channel) = state.channels.get_mut(&folded) else {
        return Ok(());
    };
    let line = Line::new(Some(&source), "TOPIC")
        .arg(&channel.name)
        .trailing(&text)
        .finish();
    let display = channel.name.clone();
    channel.topic = (!text.is_empty()).then_some(Topic {
        text: text.clone(),
        set_by: source.clone(),
        set_at: now,
    });
    let msgid = state.next_msgid();
    let mut event = state.broadcast(line).with_msgid(msgid);
    let record = NewRecord {
        target: HistoryTarget::Room(folded.clone()),
        display: &display,
        sender: &source,
        account: account.as_deref(),
        command: "TOPIC",
        text: &text,
    };
    let gate = state.record_history(record, &event);
    event.set_gate(gate);
    state.send_to_members(&folded, &mut event, |_, _| true);
    state.save_room(&folded);
    state.network_room_topic(id, &folded);
    Ok(())
}

/// 332 and 333 when a topic is set; otherwise 331 if `say_none`, else
/// nothing (JOIN sends nothing for a room without a topic).
pub fn send_topic(state: &mut State, id: ClientId, channel: &Folded, say_none: bool) {
    let Some(room) = state.channels.get(channel) else {
        return;
    };
    let name = room.name.clone();
    match room.topic.clone() {
        Some(topic) => {
            state.reply(id, numeric::RPL_TOPIC, &[&name], &topic.text);
            let set_at = topic
                .set_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            let line = state
                .numeric_line(id, numeric::RPL_TOPICWHOTIME)
                .arg(&name)
                .arg(&topic.set_by)
                .arg(&set_at.to_string())
                .finish();
            state.send(id, line);
        }
        None if say_none => {
            state.reply(id, numeric::RPL_NOTOPIC, &[&name], "No topic is set");
        }
        None => {}
    }
}
