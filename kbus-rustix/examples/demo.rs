//! A Replier, a Listener and a Sender exchange an Announcement, a Request and
//! its Reply; then a Replier that dies before reading leaves its Request
//! answered by `$.KBUS.Replier.GoneAway`. Every message is printed.
//!
//! Needs `/dev/kbus0` from kbus.ko: `cargo xtask demo` runs it in the
//! x86_64 guest. Exits non-zero on any unexpected outcome.
//!
//! Usage: `demo [DEVICE]` (default 0).

use std::process::ExitCode;

use kbus_rustix::{Ksock, Mode, Role};
use kbus_wire::name::REPLIER_GONE_AWAY;
use kbus_wire::{Message, MessageRepr};

type BoxError = Box<dyn std::error::Error>;

fn check(ok: bool, what: &str) -> Result<(), BoxError> {
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected: {what}").into())
    }
}

/// Read the next message into `buf`, or fail if there is none.
fn expect_msg<'b>(who: &str, k: &Ksock, buf: &'b mut [u8]) -> Result<Message<&'b [u8]>, BoxError> {
    match k.read_next_msg(buf)? {
        Some(m) => {
            println!("  {who:>8} got  {m}");
            Ok(m)
        }
        None => Err(format!("{who} ({k}) expected a message, its queue is empty").into()),
    }
}

fn expect_nothing(who: &str, k: &Ksock) -> Result<(), BoxError> {
    let n = k.num_messages()?;
    check(
        n == 0,
        &format!("{who} has {n} unexpected message(s) queued"),
    )
}

fn run(device: u32) -> Result<(), BoxError> {
    let mut buf = [0u8; 1024];

    let replier = Ksock::open(device, Mode::ReadWrite)?;
    let listener = Ksock::open(device, Mode::ReadOnly)?;
    let sender = Ksock::open(device, Mode::ReadWrite)?;
    replier.bind("$.Demo.Time", Role::Replier)?;
    listener.bind("$.Demo.*", Role::Listener)?;
    println!("Replier:  {replier}, bound as Replier to $.Demo.Time");
    println!("Listener: {listener}, bound as Listener to $.Demo.*");
    println!("Sender:   {sender}");
    let sender_id = sender.ksock_id()?;
    let replier_id = replier.ksock_id()?;

    println!("\n1. An Announcement goes to the Listener only");
    let hello = MessageRepr::announcement("$.Demo.Hello", b"hello, KBUS");
    let id = sender.send_msg(&hello)?;
    println!("    Sender sent {hello} -> id {id}");
    let m = expect_msg("Listener", &listener, &mut buf)?;
    check(
        m.id() == id && m.data() == b"hello, KBUS",
        "the Announcement's contents",
    )?;
    check(m.from() == sender_id, "the Announcement's sender")?;
    expect_nothing("Replier", &replier)?;

    println!(
        "\n2. A Request goes to the Replier (and a copy to the Listener); the Reply comes back"
    );
    let request = MessageRepr::request("$.Demo.Time", b"what time is it?");
    let req_id = sender.send_msg(&request)?;
    println!("    Sender sent {request} -> id {req_id}");
    let m = expect_msg("Listener", &listener, &mut buf)?;
    check(
        m.id() == req_id && !m.wants_us_to_reply(),
        "the Listener's copy",
    )?;
    let mut rbuf = [0u8; 1024];
    let req = expect_msg("Replier", &replier, &mut rbuf)?;
    check(
        req.id() == req_id && req.wants_us_to_reply(),
        "the Replier's copy",
    )?;
    let reply = MessageRepr::reply_to(&req, b"tea time")?;
    let reply_id = replier.send_msg(&reply)?;
    println!("    Replier sent {reply} -> id {reply_id}");
    let m = expect_msg("Sender", &sender, &mut buf)?;
    check(
        m.is_reply() && m.in_reply_to() == req_id && m.id() == reply_id,
        "the Reply's ids",
    )?;
    check(
        m.from() == replier_id && m.data() == b"tea time",
        "the Reply's contents",
    )?;
    let m = expect_msg("Listener", &listener, &mut buf)?;
    check(m.id() == reply_id, "the Listener's copy of the Reply")?;
    check(replier.num_unreplied_to()? == 0, "the Replier has answered")?;

    println!("\n3. A Replier that dies before reading its Request");
    let doomed = Ksock::open(device, Mode::ReadWrite)?;
    let doomed_id = doomed.ksock_id()?;
    doomed.bind("$.Demo.Doomed", Role::Replier)?;
    println!("Doomed:   {doomed}, bound as Replier to $.Demo.Doomed");
    let request = MessageRepr::request("$.Demo.Doomed", b"are you there?");
    let req_id = sender.send_msg(&request)?;
    println!("    Sender sent {request} -> id {req_id}");
    let m = expect_msg("Listener", &listener, &mut buf)?;
    check(m.id() == req_id, "the Listener's copy")?;
    drop(doomed);
    println!("    Doomed closed without reading");
    let m = expect_msg("Sender", &sender, &mut buf)?;
    check(m.name() == REPLIER_GONE_AWAY, "the answer is GoneAway")?;
    check(
        m.is_synthetic()
            && m.in_reply_to() == req_id
            && m.from() == doomed_id
            && m.to() == sender_id,
        "GoneAway's fields",
    )?;

    expect_nothing("Sender", &sender)?;
    expect_nothing("Listener", &listener)?;
    expect_nothing("Replier", &replier)?;
    Ok(())
}

fn main() -> ExitCode {
    let device = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: demo [DEVICE]: {e}");
            return ExitCode::from(2);
        }
    };
    match run(device) {
        Ok(()) => {
            println!("\nKBUS demo: every message arrived as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("KBUS demo FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
