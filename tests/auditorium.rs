//! An auditorium (`+u`) over real sockets: a member without a prefix joins
//! unseen by the crowd, is heard when it speaks, and is seen once voiced.

mod common;

use common::{Client, test_config};

#[tokio::test]
async fn the_crowd_does_not_see_a_hidden_join_but_hears_its_messages() {
    let server = rookery::start(test_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register_in(addr, "alice", "#hall").await;
    alice.send("MODE #hall +u").await;
    alice.expect_containing("MODE #hall +u").await;

    let mut bob = Client::register(addr, "bob").await;
    bob.send("JOIN #hall").await;
    let names = bob.expect_containing(" 353 bob ").await;
    assert!(names.ends_with(":@alice bob"), "{names}");
    bob.expect_containing(" 366 bob #hall").await;
    alice.expect_containing(":bob!").await;

    let mut carol = Client::register_in(addr, "carol", "#hall").await;
    let join = alice.expect_containing(" JOIN #hall").await;
    assert!(join.starts_with(":carol!"), "{join}");
    carol.send("PRIVMSG #hall :hello").await;
    // Had bob been sent carol's JOIN, it would come before her message.
    let heard = bob.next_line().await.expect("carol's message");
    assert!(
        heard.starts_with(":carol!") && heard.ends_with("PRIVMSG #hall :hello"),
        "{heard}"
    );

    alice.send("MODE #hall +v carol").await;
    let voiced = bob.next_line().await.expect("the MODE");
    assert!(voiced.ends_with("MODE #hall +v carol"), "{voiced}");
    carol.send("PART #hall").await;
    let part = bob.next_line().await.expect("carol's PART");
    assert!(
        part.starts_with(":carol!") && part.ends_with("PART #hall"),
        "{part}"
    );
}
