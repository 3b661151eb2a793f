//! Registered rooms over real sockets: ChanServ REGISTER, a restart on the
//! same database, the founder opped on her return, and a nick taken by
//! someone else getting nothing of hers.

mod common;

use std::net::SocketAddr;

use common::{Client, TempDir, test_config_with_history};

async fn start(dir: &TempDir, extra_toml: &str) -> rookery::ServerHandle {
    let config = test_config_with_history(&dir.join("history.db"), extra_toml);
    rookery::start(config).await.unwrap()
}

/// `nick` connects and logs in to its account with IDENTIFY.
async fn identified(addr: SocketAddr, nick: &str) -> Client {
    let mut client = Client::register(addr, nick).await;
    client.send("PRIVMSG NickServ :IDENTIFY hunter2").await;
    // Not the first NickServ NOTICE: that may be the warning that the
    // nick is owned, sent on connecting.
    client.expect_containing(" 900 ").await;
    client
        .expect_containing(&format!("NOTICE {nick} :You are now logged in as"))
        .await;
    client
}

/// What ChanServ answers `client`'s command.
async fn chanserv(client: &mut Client, command: &str) -> String {
    client.send(&format!("CS {command}")).await;
    client
        .expect_containing(":ChanServ!ChanServ@services. NOTICE")
        .await
}

/// alice founds #room, sets its topic and +R, then the server stops.
async fn founded_room(dir: &TempDir) {
    let server = start(dir, "").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    let answer = chanserv(&mut alice, "REGISTER #room").await;
    assert!(
        answer.ends_with(":#room is now registered to alice."),
        "{answer}"
    );
    alice.send("TOPIC #room :kept across restarts").await;
    alice.expect_containing(" TOPIC #room ").await;
    alice.send("MODE #room +R").await;
    alice.expect_containing(" MODE #room +R").await;
    server.shutdown().await;
}

/// A client logged in to no account tries #room (+R) and gets 477.
async fn assert_a_stranger_is_refused(addr: SocketAddr) {
    let mut stranger = Client::register(addr, "stranger").await;
    stranger.send("JOIN #room").await;
    let refused = stranger.expect_containing(" 477 ").await;
    assert!(
        refused.starts_with(":irc.test 477 stranger #room :"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_registered_room_survives_a_restart_and_ops_its_founder() {
    let dir = TempDir::new("rooms-restart");
    founded_room(&dir).await;

    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    assert_a_stranger_is_refused(addr).await;

    let mut alice = identified(addr, "alice").await;
    alice.send("JOIN #room").await;
    let joined = alice.lines_until(" 366 ").await;
    assert_eq!(joined[0], ":alice!~alice@127.0.0.1 JOIN #room");
    assert_eq!(
        joined[1],
        ":ChanServ!ChanServ@services. MODE #room +o alice"
    );
    assert!(
        joined
            .iter()
            .any(|line| line.ends_with(" 332 alice #room :kept across restarts")),
        "{joined:?}"
    );
    assert!(
        joined.iter().any(|line| line.ends_with(":@alice")),
        "{joined:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_stolen_nick_gets_no_ops_in_the_founders_room() {
    let dir = TempDir::new("rooms-stolen-nick");
    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    chanserv(&mut alice, "REGISTER #room").await;
    alice.send("QUIT :away").await;
    assert!(alice.is_closed().await);

    // Someone takes the nick while alice is away; the room is still there,
    // empty, and its ops are not first come, first served.
    let mut thief = Client::register(addr, "alice").await;
    thief.send("JOIN #room").await;
    thief.send("PING :joined").await;
    let joined = thief.lines_until("PONG").await;
    assert!(
        joined.iter().all(|line| !line.contains(" MODE ")),
        "{joined:?}"
    );
    assert!(
        joined
            .iter()
            .any(|line| line.ends_with(" 353 alice = #room :alice")),
        "{joined:?}"
    );
    thief.send("MODE #room +i").await;
    thief.expect_containing(" 482 ").await;
    let answer = chanserv(&mut thief, "OP #room").await;
    assert!(answer.ends_with(":You must be logged in to an account to do that."));
    server.shutdown().await;
}

#[tokio::test]
async fn access_transfer_and_drop_are_stored() {
    let dir = TempDir::new("rooms-transfer");
    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut bob = Client::with_account(addr, "bob", "hunter2").await;
    let mut carol = Client::with_account(addr, "carol", "hunter2").await;
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    chanserv(&mut alice, "REGISTER #room").await;
    let answer = chanserv(&mut alice, "ACCESS #room ADD carol voice").await;
    assert!(
        answer.ends_with(":carol now gets voice in #room."),
        "{answer}"
    );
    let answer = chanserv(&mut alice, "ACCESS #room ADD nobody op").await;
    assert!(answer.ends_with(":No such account."), "{answer}");
    let answer = chanserv(&mut alice, "TRANSFER #room bob").await;
    assert!(answer.ends_with(":#room now belongs to bob."), "{answer}");
    bob.send("QUIT").await;
    carol.send("QUIT").await;
    alice.send("QUIT").await;
    server.shutdown().await;

    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut carol = identified(addr, "carol").await;
    carol.send("JOIN #room").await;
    carol
        .expect_containing(":ChanServ!ChanServ@services. MODE #room +v carol")
        .await;
    let mut bob = identified(addr, "bob").await;
    let info = chanserv(&mut bob, "INFO #room").await;
    assert!(info.ends_with(":Room: #room"), "{info}");
    let founder = bob.expect_containing("Founder").await;
    assert!(founder.ends_with(":Founder: bob"), "{founder}");
    bob.expect_containing(":Registered: ").await;
    let answer = chanserv(&mut bob, "DROP #room").await;
    assert!(
        answer.ends_with(":#room is no longer registered."),
        "{answer}"
    );
    server.shutdown().await;

    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut bob = identified(addr, "bob").await;
    let info = chanserv(&mut bob, "INFO #room").await;
    assert!(info.ends_with(":#room is not registered."), "{info}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_account_registers_no_more_rooms_than_allowed() {
    let dir = TempDir::new("rooms-limit");
    let server = start(&dir, "accounts.max_rooms_per_account = 1").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("JOIN #one,#two").await;
    alice.expect_containing(" 366 alice #two").await;
    chanserv(&mut alice, "REGISTER #one").await;
    let answer = chanserv(&mut alice, "REGISTER #two").await;
    assert!(
        answer.ends_with(":Your account has registered as many rooms as it may (1)."),
        "{answer}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_account_loses_its_rooms_and_its_access_at_once() {
    let dir = TempDir::new("rooms-dropped-founder");
    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut bob = Client::with_account(addr, "bob", "hunter2").await;
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("JOIN #mine").await;
    alice.expect_containing(" 366 ").await;
    chanserv(&mut alice, "REGISTER #mine").await;
    alice.send("PART #mine").await;
    alice.expect_containing(" PART #mine").await;
    bob.send("JOIN #theirs").await;
    bob.expect_containing(" 366 ").await;
    chanserv(&mut bob, "REGISTER #theirs").await;
    chanserv(&mut bob, "ACCESS #theirs ADD alice op").await;

    alice.send("NS DROP hunter2").await;
    alice.expect_containing("has been dropped").await;
    let info = chanserv(&mut bob, "INFO #mine").await;
    assert!(info.ends_with(":#mine is not registered."), "{info}");
    let listed = chanserv(&mut bob, "ACCESS #theirs LIST").await;
    assert!(listed.ends_with(":Access list of #theirs:"), "{listed}");
    let end = bob.expect_containing("NOTICE").await;
    assert!(end.ends_with(":End of the access list."), "{end}");

    // A new account of the name is owed nothing in bob's room.
    alice.send("NS REGISTER another-password").await;
    alice.expect_containing("created").await;
    alice.send("JOIN #theirs").await;
    alice.send("PING :joined").await;
    let joined = alice.lines_until("PONG").await;
    assert!(
        joined.iter().all(|line| !line.contains(" MODE ")),
        "{joined:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_registered_room_plays_back_after_a_restart() {
    let dir = TempDir::new("rooms-restart-playback");
    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    let mut bob = Client::register(addr, "bob").await;
    for client in [&mut alice, &mut bob] {
        client.send("JOIN #room").await;
        client.expect_containing(" 366 ").await;
    }
    chanserv(&mut alice, "REGISTER #room").await;
    alice.send("PRIVMSG #room :said before the restart").await;
    // bob receives the line once it is stored.
    bob.expect_containing(":said before the restart").await;
    server.shutdown().await;

    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut carol = Client::register(addr, "carol").await;
    carol.send("JOIN #room").await;
    let played = carol.lines_until("End of playback").await;
    assert!(
        played
            .iter()
            .any(|line| line.contains(" PRIVMSG #room :")
                && line.ends_with("said before the restart")),
        "{played:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_registered_room_is_kept_while_accounts_are_off() {
    let dir = TempDir::new("rooms-accounts-off");
    founded_room(&dir).await;

    // Started with accounts off, the room is still there with its +R, so
    // nobody can create it afresh and become its op before a REHASH
    // turns accounts back on.
    let server = start(&dir, "accounts.enabled = false").await;
    let addr = server.local_addrs()[0];
    assert_a_stranger_is_refused(addr).await;
    server.shutdown().await;
}
