//! The README's example, as a program: a Replier answers a Request from a
//! second Ksock, with stack buffers and only `kbus_rustix` imported.
//!
//! Needs `/dev/kbus0` from kbus.ko (`cargo xtask test` runs it in every
//! guest). Exits non-zero on any failure.

use kbus_rustix::{Ksock, MessageRepr, Mode, Role};

fn main() -> kbus_rustix::Result<()> {
    let replier = Ksock::open(0, Mode::ReadWrite)?;
    replier.bind("$.Sensors.Kitchen", Role::Replier)?;

    let sender = Ksock::open(0, Mode::ReadWrite)?;
    let id = sender.send_msg(&MessageRepr::request("$.Sensors.Kitchen", b"temperature?"))?;

    let mut buf = [0u8; 512]; // no heap needed to read
    let request = replier
        .read_next_msg(&mut buf)?
        .expect("queued by the send");
    replier.send_msg(&MessageRepr::reply_to(&request, b"21.5")?)?;

    let mut buf = [0u8; 512];
    let reply = sender
        .read_next_msg(&mut buf)?
        .expect("queued by the Reply");
    assert_eq!((reply.in_reply_to(), reply.data()), (id, &b"21.5"[..]));
    println!("readme: {request}\nreadme: {reply}");
    Ok(())
}
