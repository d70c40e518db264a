//! `listen`, `send`, `call` and `reply`.

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kbus_rustix::{
    Errno, ErrorKind, Flags, Ksock, Message, MessageId, MessageRepr, Mode, Name, Role,
};

use crate::data::name_bytes;
use crate::exit::Exit;
use crate::format::{write_message, Format};
use crate::interrupt::{Interrupt, Wait};
use crate::{DeviceArgs, Fail};

/// The name Replier bind events carry.
const BIND_EVENT_NAME: &str = "$.KBUS.ReplierBindEvent";

/// `kbus listen`.
pub struct ListenOpts {
    pub names: Vec<String>,
    pub format: Format,
    pub count: Option<u64>,
    pub timeout: Option<Duration>,
    pub replier_events: bool,
}

/// `kbus send`.
#[derive(Clone, Copy)]
pub struct SendOpts {
    pub urgent: bool,
    pub all_or_wait: bool,
    pub all_or_fail: bool,
    pub timeout: Option<Duration>,
}

/// `kbus call`.
pub struct CallOpts {
    pub timeout: Option<Duration>,
    pub stateful: Option<u32>,
    pub urgent: bool,
    pub format: Format,
}

/// What `kbus reply` answers with.
pub enum Answer {
    Exec(String),
    Echo,
    Static(Vec<u8>),
}

/// `kbus reply`.
pub struct ReplyOpts {
    pub answer: Answer,
    pub count: Option<u64>,
    pub format: Format,
    pub quiet: bool,
}

fn interrupt() -> Result<Interrupt, Fail> {
    Interrupt::install().map_err(|e| Fail::new(format!("cannot handle Ctrl-C: {e}")))
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// NEXTMSG and read it into `buf`, grown as needed; `None` if the queue is
/// empty (another reader got there first).
fn read_next<'b>(k: &Ksock, buf: &'b mut Vec<u8>) -> Result<Option<Message<&'b [u8]>>, Fail> {
    let Some(len) = k.next_msg()? else {
        return Ok(None);
    };
    if buf.len() < len {
        buf.resize(len, 0);
    }
    Ok(k.read_msg(buf)?)
}

/// Print one message and flush (so a pipe sees it at once).
fn print(out: &mut dyn Write, m: &Message<&[u8]>, format: Format) -> Result<(), Fail> {
    write_message(out, m, format)?;
    out.flush()?;
    Ok(())
}

pub fn listen(dev: &DeviceArgs, o: &ListenOpts) -> Result<Exit, Fail> {
    let intr = interrupt()?;
    let k = dev.open(Mode::ReadOnly)?;
    // One copy of each message, however many of our bindings match it.
    k.want_messages_once(true)?;
    for name in &o.names {
        k.bind(name_bytes(name), Role::Listener)
            .map_err(|e| Fail::new(format!("{name}: {e}")))?;
    }
    let mut restore_reporting = false;
    if o.replier_events {
        k.bind(BIND_EVENT_NAME, Role::Listener)?;
        restore_reporting = !k.report_replier_binds(true)?;
    }
    let r = listen_loop(&k, &intr, o);
    if restore_reporting {
        // Best effort: the device-wide setting goes back to off.
        let _ = k.report_replier_binds(false);
    }
    r
}

fn listen_loop(k: &Ksock, intr: &Interrupt, o: &ListenOpts) -> Result<Exit, Fail> {
    let end = deadline(o.timeout);
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 4096];
    let mut seen = 0u64;
    loop {
        if o.count.is_some_and(|n| seen >= n) {
            return Ok(Exit::Ok);
        }
        match intr.wait_readable(k, end)? {
            Wait::Interrupted => return Ok(Exit::Ok),
            Wait::TimedOut => {
                return Ok(match o.count {
                    Some(n) => {
                        eprintln!("kbus: timed out after {seen} of {n} messages");
                        Exit::Timeout
                    }
                    None => Exit::Ok,
                })
            }
            Wait::Ready => {}
        }
        // Drain what is queued: the Listener of bind events must not fill
        // up, or Replier binds on the device fail with EAGAIN.
        while let Some(m) = read_next(k, &mut buf)? {
            print(&mut out, &m, o.format)?;
            seen += 1;
            if o.count.is_some_and(|n| seen >= n) {
                break;
            }
        }
    }
}

pub fn send(dev: &DeviceArgs, name: &str, data: &[u8], o: SendOpts) -> Result<Exit, Fail> {
    let intr = interrupt()?;
    let k = dev.open(Mode::ReadWrite)?;
    let name = name_bytes(name);
    let mut repr = MessageRepr::announcement("", data);
    repr.name = Name::from_bytes(&name);
    repr.flags.set(Flags::URGENT, o.urgent);
    repr.flags.set(Flags::ALL_OR_WAIT, o.all_or_wait);
    repr.flags.set(Flags::ALL_OR_FAIL, o.all_or_fail);
    let id = match k.send_msg(&repr) {
        Ok(id) => id,
        Err(e) if e.is(Errno::AGAIN) && o.all_or_wait => {
            let id = e.message_id().unwrap_or(MessageId::ZERO);
            match intr.wait_writable(&k, deadline(o.timeout))? {
                Wait::Ready => id,
                w => {
                    let _ = k.discard();
                    let (exit, why) = if w == Wait::TimedOut {
                        (Exit::Timeout, "timed out")
                    } else {
                        (Exit::Interrupted, "interrupted")
                    };
                    return Err(Fail::with(
                        exit,
                        format!("{why} waiting for room in every recipient's queue; message {id} discarded"),
                    ));
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = io::stdout().lock();
    writeln!(out, "{id}")?;
    out.flush()?;
    Ok(Exit::Ok)
}

pub fn call(dev: &DeviceArgs, name: &str, data: &[u8], o: &CallOpts) -> Result<Exit, Fail> {
    let intr = interrupt()?;
    let k = dev.open(Mode::ReadWrite)?;
    let name_b = name_bytes(name);
    let mut repr = MessageRepr::request("", data);
    repr.name = Name::from_bytes(&name_b);
    repr.flags.set(Flags::URGENT, o.urgent);
    if let Some(to) = o.stateful {
        repr.to = to;
    }
    let id = k
        .send_msg(&repr)
        .map_err(|e| Fail::with(Exit::for_request_error(&e), format!("{name}: {e}")))?;
    let end = deadline(o.timeout);
    let mut buf = vec![0u8; 4096];
    loop {
        match intr.wait_readable(&k, end)? {
            Wait::Interrupted => return Err(Fail::with(Exit::Interrupted, "interrupted")),
            Wait::TimedOut => {
                return Err(Fail::with(
                    Exit::Timeout,
                    format!("{name}: no answer to Request {id} in time"),
                ))
            }
            Wait::Ready => {}
        }
        while let Some(m) = read_next(&k, &mut buf)? {
            if m.in_reply_to() != id {
                continue; // not ours (cannot happen: we bind nothing)
            }
            let exit = Exit::for_answer(m.is_synthetic(), m.name_bytes());
            if exit != Exit::Ok {
                return Err(Fail::with(
                    exit,
                    format!("{name}: no Reply: KBUS answered {}", m.name()),
                ));
            }
            let mut out = io::stdout().lock();
            match o.format {
                Format::Data => out.write_all(m.data())?,
                f => write_message(&mut out, &m, f)?,
            }
            out.flush()?;
            return Ok(Exit::Ok);
        }
    }
}

pub fn reply(dev: &DeviceArgs, name: &str, o: &ReplyOpts) -> Result<Exit, Fail> {
    let intr = interrupt()?;
    let k = dev.open(Mode::ReadWrite)?;
    k.bind(name_bytes(name), Role::Replier)
        .map_err(|e| Fail::new(format!("{name}: {e}")))?;
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; 4096];
    let mut answered = 0u64;
    loop {
        if o.count.is_some_and(|n| answered >= n) {
            return Ok(Exit::Ok);
        }
        match intr.wait_readable(&k, None)? {
            Wait::Interrupted => return Ok(Exit::Ok),
            Wait::TimedOut => unreachable!("no deadline"),
            Wait::Ready => {}
        }
        while let Some(m) = read_next(&k, &mut buf)? {
            if !o.quiet {
                print(&mut out, &m, o.format)?;
            }
            if !m.wants_us_to_reply() {
                continue;
            }
            let data = match &o.answer {
                Answer::Echo => m.data().to_vec(),
                Answer::Static(d) => d.clone(),
                Answer::Exec(cmd) => run_exec(cmd, &m)?,
            };
            let reply = MessageRepr::reply_to(&m, &data).map_err(kbus_rustix::Error::from)?;
            match k.send_msg(&reply) {
                Ok(_) => {}
                // The requester has gone, or is no longer waiting: theirs
                // to worry about; go on serving.
                Err(e) if matches!(e.kind(), ErrorKind::Os(_)) => {
                    eprintln!("kbus: reply to {}: {e}", m.id());
                }
                Err(e) => return Err(e.into()),
            }
            answered += 1;
            if o.count.is_some_and(|n| answered >= n) {
                return Ok(Exit::Ok);
            }
        }
    }
}

/// Run `cmd` with `sh -c`, the Request's data on its stdin; its stdout is
/// the Reply's data. A failing command is reported on stderr, and its
/// output is still the answer (the requester must get one).
fn run_exec(cmd: &str, m: &Message<&[u8]>) -> Result<Vec<u8>, Fail> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("KBUS_NAME", m.name().to_string())
        .env("KBUS_ID", m.id().to_string())
        .env("KBUS_FROM", m.from().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Fail::new(format!("--exec: cannot run sh -c {cmd:?}: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let data = m.data();
    // Feed stdin from a thread while reading stdout here: a command that
    // writes before reading all its input cannot deadlock us.
    let output = std::thread::scope(|s| {
        s.spawn(move || {
            // A command that does not read its input closes the pipe: fine.
            let _ = stdin.write_all(data);
        });
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).map(|_| v)
    })?;
    let status = child.wait()?;
    if !status.success() {
        eprintln!(
            "kbus: --exec {cmd:?} for {}: {status}; its output is the Reply",
            m.id()
        );
    }
    Ok(output)
}
