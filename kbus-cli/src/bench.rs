//! `kbus bench`: message rates on this device, like the old `kspeed`.
//! Results on stdout, a progress line on stderr.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use kbus_rustix::{message_len, MessageRepr, Mode as Open, Role};

use crate::exit::Exit;
use crate::{DeviceArgs, Fail};

/// `--mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One Ksock bound as Listener to its own name: send, read back
    SendRead,
    /// A Request to a Replier thread (its own Ksock), the Reply back
    ReqReply,
    /// Both, one after the other
    All,
}

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Rate counting and the progress line.
struct Meter {
    what: &'static str,
    start: Instant,
    last: Instant,
    n: u64,
}

impl Meter {
    fn new(what: &'static str) -> Meter {
        let now = Instant::now();
        Meter {
            what,
            start: now,
            last: now,
            n: 0,
        }
    }

    /// Count one; redraw the progress line now and then. `false` once
    /// `duration` has passed.
    fn tick(&mut self, duration: Duration) -> bool {
        self.n += 1;
        if self.n % 16 != 0 {
            return true;
        }
        let now = Instant::now();
        if now.duration_since(self.last) >= PROGRESS_EVERY {
            self.last = now;
            let t = now.duration_since(self.start).as_secs_f64();
            eprint!(
                "\r{}: {} in {t:.1} s, {:.0}/s   ",
                self.what,
                self.n,
                self.n as f64 / t
            );
        }
        now.duration_since(self.start) < duration
    }

    fn finish(&self, unit: &str, size: usize) -> Result<(), Fail> {
        let t = self.start.elapsed().as_secs_f64();
        eprint!("\r{:60}\r", "");
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "{:<10} {size:>6} B data: {:>8} {unit} in {t:.2} s = {:.0} {unit}/s",
            self.what,
            self.n,
            self.n as f64 / t
        )?;
        out.flush()?;
        Ok(())
    }
}

fn bench_name(what: &str) -> String {
    format!("$.KbusCli.Bench.{what}.P{}", std::process::id())
}

fn send_read(dev: &DeviceArgs, duration: Duration, size: usize) -> Result<(), Fail> {
    let k = dev.open(Open::ReadWrite)?;
    let name = bench_name("SendRead");
    k.bind(&name, Role::Listener)?;
    let data = vec![0x5a; size];
    let msg = MessageRepr::announcement(&name, &data);
    let mut buf = vec![0u8; message_len(name.len(), size)];
    let mut m = Meter::new("send-read");
    loop {
        k.send_msg(&msg)?;
        let got = k.read_next_msg(&mut buf)?;
        if got.is_none_or(|g| g.data().len() != size) {
            return Err(Fail::new("send-read: the message did not come back"));
        }
        if !m.tick(duration) {
            break;
        }
    }
    m.finish("messages", size)
}

fn req_reply(dev: &DeviceArgs, duration: Duration, size: usize) -> Result<(), Fail> {
    let name = bench_name("ReqReply");
    let replier = dev.open(Open::ReadWrite)?;
    replier.bind(&name, Role::Replier)?;
    let requester = dev.open(Open::ReadWrite)?;
    let stop = AtomicBool::new(false);
    let data = vec![0xa5; size];
    let buf_len = message_len(name.len(), size);
    std::thread::scope(|s| {
        let served = s.spawn(|| -> Result<(), kbus_rustix::Error> {
            let mut buf = vec![0u8; buf_len];
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) =
                    replier.wait_for_msg_timeout(&mut buf, Duration::from_millis(50))?
                {
                    if r.wants_us_to_reply() {
                        replier.send_msg(&MessageRepr::reply_to(&r, r.data())?)?;
                    }
                }
            }
            Ok(())
        });
        let run = || -> Result<(), Fail> {
            let req = MessageRepr::request(&name, &data);
            let mut buf = vec![0u8; buf_len];
            let mut m = Meter::new("req-reply");
            loop {
                let id = requester.send_msg(&req)?;
                let answer = requester.wait_for_msg(&mut buf)?;
                if answer.in_reply_to() != id || answer.is_synthetic() {
                    return Err(Fail::new(format!("req-reply: unexpected answer {answer}")));
                }
                if !m.tick(duration) {
                    break;
                }
            }
            m.finish("round trips", size)
        };
        let r = run();
        stop.store(true, Ordering::Relaxed);
        let s = served.join().expect("replier thread panicked");
        r.and(s.map_err(Fail::from))
    })
}

pub fn run(dev: &DeviceArgs, mode: Mode, duration: Duration, size: usize) -> Result<Exit, Fail> {
    if matches!(mode, Mode::SendRead | Mode::All) {
        send_read(dev, duration, size)?;
    }
    if matches!(mode, Mode::ReqReply | Mode::All) {
        req_reply(dev, duration, size)?;
    }
    Ok(Exit::Ok)
}
