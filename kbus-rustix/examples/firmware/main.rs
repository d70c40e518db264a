//! Tiny static firmware: one Request/Reply round trip over `/dev/kbus0`,
//! `no_std`, no allocator, no C library, `panic = "abort"`.
//!
//! A Replier binds to `$.Firmware.Ping`; a second Ksock sends it a Request,
//! the Replier reads it and replies, and the sender reads the Reply. All
//! buffers are on the stack. Prints one line to stdout and exits 0 on
//! success, 1 (and a line naming the failed step) on any failure.
//!
//! Built by the rig (`cargo xtask sizes`, `cargo xtask test`) for each
//! guest with kbus-rustix's default features off, so nothing pulls in
//! `std` or `alloc`; rustix then makes raw system calls only, and `rt.rs`
//! provides `_start`, `exit_group` and the panic handler:
//!
//! ```text
//! cargo build -p kbus-rustix --example firmware --profile firmware \
//!     --no-default-features --target <T> [-Zbuild-std=core,panic_abort]
//! RUSTFLAGS (CARGO_TARGET_<T>_RUSTFLAGS): the target's usual
//!     -C target-feature=+crt-static [--cfg rustix_use_experimental_asm]
//!     plus -C relocation-model=static -C link-arg=-nostartfiles
//! ```
//!
//! With the default `std` feature (host `cargo test`/`clippy`), the same
//! file builds as an ordinary program whose `main` the C library calls.

#![no_std]
#![no_main]
#![cfg_attr(
    all(not(feature = "std"), any(target_arch = "mips", target_arch = "s390x")),
    feature(asm_experimental_arch)
)]

#[cfg(all(not(feature = "std"), panic = "unwind"))]
compile_error!(
    "without std the firmware example needs panic = \"abort\": build it with --profile firmware"
);

mod rt;

use kbus_rustix::{Error, Ksock, Mode, Role};
use kbus_wire::{Message, MessageId, MessageRepr};

const NAME: &str = "$.Firmware.Ping";
const DEVICE: u32 = 0;

/// Why the round trip failed: the step, and the error if there was one.
struct Fail(&'static str, Option<Error>);

trait Step<T> {
    fn at(self, step: &'static str) -> Result<T, Fail>;
}

impl<T> Step<T> for Result<T, Error> {
    fn at(self, step: &'static str) -> Result<T, Fail> {
        self.map_err(|e| Fail(step, Some(e)))
    }
}

fn check(ok: bool, step: &'static str) -> Result<(), Fail> {
    if ok {
        Ok(())
    } else {
        Err(Fail(step, None))
    }
}

/// Read the next queued message into `buf`; it must be there.
fn next<'b>(k: &Ksock, buf: &'b mut [u8], step: &'static str) -> Result<Message<&'b [u8]>, Fail> {
    k.read_next_msg(buf).at(step)?.ok_or(Fail(step, None))
}

/// The round trip; returns the Request's and the Reply's ids.
fn round_trip() -> Result<(MessageId, MessageId), Fail> {
    let replier = Ksock::open(DEVICE, Mode::ReadWrite).at("open replier")?;
    replier.bind(NAME, Role::Replier).at("bind replier")?;
    let sender = Ksock::open(DEVICE, Mode::ReadWrite).at("open sender")?;

    let req_id = sender
        .send_msg(&MessageRepr::request(NAME, b"ping"))
        .at("send request")?;

    let mut rbuf = [0u8; 128];
    let req = next(&replier, &mut rbuf, "read request")?;
    check(req.id() == req_id, "request id")?;
    check(req.is_request() && req.wants_us_to_reply(), "request flags")?;
    check(req.data() == b"ping", "request data")?;

    let reply = MessageRepr::reply_to(&req, b"pong").map_err(|_| Fail("make reply", None))?;
    let rep_id = replier.send_msg(&reply).at("send reply")?;

    let mut sbuf = [0u8; 128];
    let rep = next(&sender, &mut sbuf, "read reply")?;
    check(rep.is_reply() && rep.id() == rep_id, "reply id")?;
    check(rep.in_reply_to() == req_id, "reply in_reply_to")?;
    check(rep.data() == b"pong", "reply data")?;
    Ok((req_id, rep_id))
    // Both Ksocks close here.
}

fn write_id(id: MessageId) {
    rt::write_out(b"[");
    rt::write_u32(id.network_id);
    rt::write_out(b":");
    rt::write_u32(id.serial_num);
    rt::write_out(b"]");
}

/// Runs the round trip and reports it; the process exit status.
fn firmware_main() -> i32 {
    match round_trip() {
        Ok((req, rep)) => {
            rt::write_out(b"firmware: request ");
            write_id(req);
            rt::write_out(b" \"ping\", reply ");
            write_id(rep);
            rt::write_out(b" \"pong\": ok\n");
            0
        }
        Err(Fail(step, err)) => {
            rt::write_out(b"firmware: FAILED at ");
            rt::write_out(step.as_bytes());
            if let Some(e) = err {
                rt::write_out(b" (");
                rt::write_out(e.op().name().as_bytes());
                if let Some(errno) = e.errno() {
                    rt::write_out(b": errno ");
                    rt::write_u32(errno.raw_os_error().unsigned_abs());
                }
                rt::write_out(b")");
            }
            rt::write_out(b"\n");
            1
        }
    }
}

/// With `std`, the C library's start files call this.
#[cfg(feature = "std")]
#[no_mangle]
extern "C" fn main(_argc: core::ffi::c_int, _argv: *const *const u8) -> core::ffi::c_int {
    firmware_main()
}
