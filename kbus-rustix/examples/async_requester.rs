//! An async requester (feature `tokio`): ten Requests in flight at once on
//! one `AsyncKsock`, each awaiting its own Reply, while a plain thread
//! plays the Replier.
//!
//! Needs `/dev/kbus0` from kbus.ko (`cargo xtask test` runs it in every
//! guest, built with `--features tokio`). Exits non-zero on any failure.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use kbus_rustix::tokio::{runtime, AsyncKsock};
use kbus_rustix::{Ksock, MessageRepr, Mode, Result, Role};

const NAME: &str = "$.Example.Upper";
const REQUESTS: usize = 10;

/// Answers each Request with its data in upper case.
fn replier(k: Ksock) -> Result<()> {
    let mut buf = [0u8; 256];
    for _ in 0..REQUESTS {
        let request = k.wait_for_msg(&mut buf)?;
        let upper = request.data().to_ascii_uppercase();
        k.send_msg(&MessageRepr::reply_to(&request, &upper)?)?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let r = Ksock::open(0, Mode::ReadWrite)?;
    r.bind(NAME, Role::Replier)?;
    let replier = thread::spawn(move || replier(r));

    runtime()?.block_on(async {
        let k = Arc::new(AsyncKsock::new(Ksock::open(0, Mode::ReadWrite)?)?);
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let k = k.clone();
                kbus_rustix::tokio::spawn(async move {
                    let word = format!("word {i}");
                    let request = MessageRepr::request(NAME, word.as_bytes());
                    let reply = k.request(&request, Some(Duration::from_secs(10))).await?;
                    assert_eq!(reply.data(), word.to_uppercase().as_bytes());
                    println!(
                        "async_requester: {word} -> {}",
                        String::from_utf8_lossy(reply.data())
                    );
                    Ok::<(), kbus_rustix::Error>(())
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task")?;
        }
        Ok::<(), kbus_rustix::Error>(())
    })?;
    replier.join().expect("replier thread")
}
