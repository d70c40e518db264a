//! A heap-free Replier: one stack buffer sized for the largest Request,
//! Replies sent zero-copy from the stack, `?` on KBUS and message-building
//! errors alike. A thread sends it a few Requests and checks the answers.
//!
//! Needs `/dev/kbus0` from kbus.ko (`cargo xtask test` runs it in every
//! guest). Exits non-zero on any failure.

use std::thread;

use kbus_rustix::{message_len, Ksock, MessageRepr, Mode, Result, Role};

const NAME: &str = "$.Example.Double";
const REQUESTS: u32 = 5;

/// Answers `REQUESTS` Requests: each carries a little-endian u32, the
/// Reply carries twice that. No allocation anywhere in here.
fn serve(replier: &Ksock) -> Result<()> {
    let mut buf = [0u8; message_len(NAME.len(), 4)];
    for _ in 0..REQUESTS {
        let request = replier.wait_for_msg(&mut buf)?;
        if !request.wants_us_to_reply() {
            continue;
        }
        let n = request
            .data()
            .try_into()
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        let answer = n.wrapping_mul(2).to_le_bytes();
        replier.send_msg(&MessageRepr::reply_to(&request, &answer)?)?;
    }
    Ok(())
}

fn client() -> Result<()> {
    let k = Ksock::open(0, Mode::ReadWrite)?;
    let mut buf = [0u8; message_len(NAME.len(), 4)];
    for i in 0..REQUESTS {
        let id = k.send_msg(&MessageRepr::request(NAME, &(i * 10).to_le_bytes()))?;
        let reply = k.wait_for_msg(&mut buf)?;
        assert_eq!(reply.in_reply_to(), id);
        assert_eq!(reply.data(), (i * 20).to_le_bytes());
        println!("replier: {i} * 10 doubled is {}", i * 20);
    }
    Ok(())
}

fn main() -> Result<()> {
    let replier = Ksock::open(0, Mode::ReadWrite)?;
    replier.bind(NAME, Role::Replier)?;
    let client = thread::spawn(client);
    serve(&replier)?;
    client.join().expect("client thread")
}
