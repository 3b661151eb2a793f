//! Private history by account: a logged-in party's side of a conversation
//! is its account, read from any of its connections and never by whoever
//! merely holds its nick.

use crate::core::testing::HistoryHarness;

/// The texts of the PRIVMSGs among `lines`, without the time a client
/// without server-time gets in front.
fn said(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|line| line.contains(" PRIVMSG "))
        .filter_map(|line| line.split_once(" UTC] ").map(|(_, text)| text))
        .collect()
}

/// The conversations a TARGETS answer lists.
fn targets(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|line| line.split(" CHATHISTORY TARGETS ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .collect()
}

/// alice and bob, each logged in to the account of that name.
fn alice_and_bob() -> HistoryHarness {
    let mut t = HistoryHarness::new();
    for name in ["alice", "bob"] {
        t.h.register(name);
        t.log_in(name, name);
    }
    t
}

#[test]
fn a_logged_in_conversation_is_the_accounts_not_the_nicks() {
    let mut t = alice_and_bob();
    t.h.send("alice", "PRIVMSG bob :secret");
    t.h.send("alice", "QUIT :bye");
    t.h.register("mallory");
    t.h.send("mallory", "NICK alice");
    let latest = "CHATHISTORY LATEST bob * 10";
    assert_eq!(said(&t.query("mallory", latest)), Vec::<&str>::new());
    let all_time = "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10";
    assert_eq!(targets(&t.query("mallory", all_time)), Vec::<&str>::new());
    // alice again, on a new connection under another nick.
    t.h.register("laptop");
    t.log_in("laptop", "alice");
    assert_eq!(said(&t.query("laptop", latest)), ["secret"]);
    assert_eq!(targets(&t.query("laptop", all_time)), ["bob"]);
    assert_eq!(
        said(&t.query("bob", "CHATHISTORY LATEST laptop * 10")),
        ["secret"]
    );
}

#[test]
fn a_conversation_with_someone_offline_reads_their_account_and_their_nick() {
    let mut t = alice_and_bob();
    t.h.register("carol");
    t.h.send("alice", "PRIVMSG carol :as a nick");
    t.log_in("carol", "carol");
    t.h.send("alice", "PRIVMSG carol :as an account");
    t.h.send("carol", "QUIT :bye");
    let lines = t.query("alice", "CHATHISTORY LATEST carol * 10");
    assert_eq!(said(&lines), ["as a nick", "as an account"]);
    // Online and logged in, carol is her account only.
    t.h.register("carol");
    t.log_in("carol", "carol");
    let lines = t.query("alice", "CHATHISTORY LATEST carol * 10");
    assert_eq!(said(&lines), ["as an account"]);
}

#[test]
fn logging_in_leaves_what_was_said_under_the_nick_with_the_nick() {
    let mut t = HistoryHarness::new();
    t.h.register("alice");
    t.h.register("bob");
    t.h.send("bob", "PRIVMSG alice :before");
    t.log_in("alice", "alice");
    t.h.send("bob", "PRIVMSG alice :after");
    let lines = t.query("alice", "CHATHISTORY LATEST bob * 10");
    assert_eq!(said(&lines), ["after"]);
    // bob, never logged in, holds both lines under his nick.
    let lines = t.query("bob", "CHATHISTORY LATEST alice * 10");
    assert_eq!(said(&lines), ["after"], "alice is online: her account only");
    t.h.send("alice", "QUIT :bye");
    let lines = t.query("bob", "CHATHISTORY LATEST alice * 10");
    assert_eq!(said(&lines), ["before", "after"]);
}
