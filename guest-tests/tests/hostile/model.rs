//! The fuzzer: one model per Ksock of what the module must do, and the
//! random operations checked against it.

use super::*;

/// What we know of a Ksock's outgoing message (spec §5.1, §5.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Out {
    /// Nothing in progress and not sending: SEND must say ENOMSG.
    Idle,
    /// Sending state (a SEND said EAGAIN): `write()` must say EALREADY.
    Sending,
    /// Something written (complete or not), not sending.
    Writing,
    /// Not known (an EFAULT may or may not have discarded it).
    Unknown,
}

/// The current read message as far as we know it.
pub(crate) struct Reading {
    pub(crate) total: usize,
    pub(crate) left: usize,
    pub(crate) bytes: Vec<u8>,
    /// All bytes so far went to good buffers, so `bytes` is the message.
    pub(crate) intact: bool,
}

pub(crate) struct Slot {
    pub(crate) k: Ksock,
    pub(crate) dev: u32,
    pub(crate) id: u32,
    pub(crate) writable: bool,
    pub(crate) out: Out,
    pub(crate) reading: Option<Reading>,
    /// None: not known.
    pub(crate) max_messages: Option<u32>,
    pub(crate) only_once: Option<bool>,
    pub(crate) last_sent: Option<(u32, u32)>,
    /// (raw is_replier, name) of its bindings, oldest first.
    pub(crate) bindings: Vec<(u32, Vec<u8>)>,
}

impl Slot {
    pub(crate) fn open(dev: u32, writable: bool) -> Slot {
        let k = if writable { open_rw(dev) } else { open_ro(dev) };
        let id = ok(k.ksock_id(), "KSOCKID");
        Slot {
            k,
            dev,
            id,
            writable,
            out: Out::Idle,
            reading: None,
            max_messages: Some(100),
            only_once: Some(false),
            last_sent: Some((0, 0)),
            bindings: Vec::new(),
        }
    }
}

/// A Request we received with WANT_YOU_TO_REPLY: (device, id, from, name).
pub(crate) type Pending = (u32, (u32, u32), u32, Vec<u8>);

pub(crate) struct Fuzzer {
    pub(crate) who: String,
    pub(crate) seed: u64,
    pub(crate) rng: Rng,
    pub(crate) arena: Arena,
    pub(crate) slots: Vec<Slot>,
    /// Name and data buffers of pointy messages: kept until every Ksock is
    /// closed, as a pending message may point into them.
    pub(crate) keep: Vec<Box<[u8]>>,
    pub(crate) scratch: Box<[u8; 64]>,
    /// A PageEnd ioctl argument (address, length) to copy back to `scratch`.
    pub(crate) page_end_arg: Option<(usize, usize)>,
    /// Requests to answer (any Ksock of the device may, spec §6.6).
    pub(crate) to_answer: Vec<Pending>,
    /// Ids seen in fuzz messages (for in_reply_to values).
    pub(crate) seen_ids: Vec<(u32, u32)>,
    /// Last serial number a local send returned, per device.
    pub(crate) last_serial: BTreeMap<u32, u32>,
    pub(crate) newdevice_budget: u32,
    pub(crate) trace: Vec<String>,
    pub(crate) step: u64,
    /// (op, outcome) → count, for the summary.
    pub(crate) tally: BTreeMap<(String, String), u64>,
}

impl Fuzzer {
    pub(crate) fn new(who: &str, seed: u64, nslots: usize) -> Fuzzer {
        let mut rng = Rng(mix(seed));
        let slots = (0..nslots)
            .map(|i| Slot::open(DEVICES[i % 3], rng.percent(90)))
            .collect();
        Fuzzer {
            who: who.to_string(),
            seed,
            rng,
            arena: Arena::new(),
            slots,
            keep: Vec::new(),
            scratch: Box::new([0; 64]),
            page_end_arg: None,
            to_answer: Vec::new(),
            seen_ids: Vec::new(),
            last_serial: BTreeMap::new(),
            newdevice_budget: 1,
            trace: Vec::new(),
            step: 0,
            tally: BTreeMap::new(),
        }
    }

    pub(crate) fn note(&mut self, what: String) {
        if self.trace.len() >= 40 {
            self.trace.remove(0);
        }
        self.trace.push(format!("step {}: {what}", self.step));
    }

    #[track_caller]
    pub(crate) fn fail(&self, what: &str) -> ! {
        let mut s = format!(
            "\n{} (seed {:#x}, step {}): {what}\nlast operations:\n",
            self.who, self.seed, self.step
        );
        for t in &self.trace {
            let _ = writeln!(s, "  {t}");
        }
        panic!("{s}");
    }

    pub(crate) fn tally(&mut self, op: Call, r: &Result<usize, Errno>) {
        let outcome = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => en(*e),
        };
        *self.tally.entry((op.to_string(), outcome)).or_default() += 1;
    }

    /// Check a result against the spec's table; `bad` = some pointer the
    /// operation must use was bad, so it must fail; EFAULT is allowed only
    /// if `may_fault`.
    #[track_caller]
    pub(crate) fn judge(
        &mut self,
        op: impl Into<Call>,
        args: &str,
        r: &Result<usize, Errno>,
        must_fail: bool,
        may_fault: bool,
    ) {
        let op = op.into();
        self.tally(op, r);
        match r {
            Ok(v) if must_fail => self.fail(&format!(
                "{op} {args}: succeeded ({v}) with a bad pointer; expected an error"
            )),
            Ok(_) => {}
            Err(e) => {
                if !allowed(op).contains(e) {
                    self.fail(&format!(
                        "{op} {args}: unexpected errno {} (allowed: {})",
                        en(*e),
                        allowed(op)
                            .iter()
                            .map(|&e| en(e))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                if *e == Errno::FAULT && !may_fault {
                    self.fail(&format!("{op} {args}: EFAULT with only good pointers"));
                }
            }
        }
    }

    // ---- random pieces ----

    pub(crate) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.below(xs.len() as u64) as usize]
    }

    pub(crate) fn ptr_kind(&mut self, good_percent: u64) -> Ptr {
        if self.rng.percent(good_percent) {
            return if self.rng.percent(85) {
                Ptr::Good
            } else {
                Ptr::PageEnd
            };
        }
        self.pick(&[
            Ptr::ReadOnly,
            Ptr::Null,
            Ptr::One,
            Ptr::Kernel,
            Ptr::NonCanonical,
            Ptr::Hole,
            Ptr::Straddle,
        ])
    }

    /// What `place` really does for `len` bytes: the arena's pages hold at
    /// most a page, so longer PageEnd buffers are Good and longer ReadOnly
    /// ones become a kernel address.
    pub(crate) fn fit(&self, kind: Ptr, len: usize) -> Ptr {
        match kind {
            Ptr::PageEnd if len > self.arena.page => Ptr::Good,
            Ptr::ReadOnly if len > self.arena.page => Ptr::Kernel,
            k => k,
        }
    }

    /// An address with `bytes` at it, as `kind` says. Good buffers are
    /// kept in `self.keep` (they must live until their Ksock closes).
    pub(crate) fn place(&mut self, kind: Ptr, bytes: &[u8]) -> usize {
        let page = self.arena.page;
        match kind {
            Ptr::Good => {
                let b: Box<[u8]> = bytes.into();
                let a = b.as_ptr() as usize;
                self.keep.push(b);
                a
            }
            Ptr::PageEnd if bytes.len() <= page => self.arena.place_rw(bytes, 0),
            Ptr::PageEnd => self.place(Ptr::Good, bytes),
            Ptr::ReadOnly if bytes.len() <= page => self.arena.place_ro(bytes),
            Ptr::ReadOnly => KERNEL_ADDR,
            Ptr::Null => 0,
            Ptr::One => 1,
            Ptr::Kernel => KERNEL_ADDR,
            Ptr::NonCanonical => NONCANON_ADDR,
            Ptr::Hole => self.arena.hole(),
            Ptr::Straddle => {
                let n = bytes.len().min(page);
                let past = 1 + self.rng.below(n.max(1) as u64) as usize;
                self.arena.place_rw(&bytes[..n], past.min(n))
            }
        }
    }

    pub(crate) fn send_name(&mut self) -> Vec<u8> {
        match self.rng.below(20) {
            0 => {
                // A long valid name: "$.F" then letters.
                let n = self.pick(&[4usize, 999, 1000, 500]);
                let mut v = b"$.F".to_vec();
                v.resize(n, b'x');
                v
            }
            1 => self
                .pick(&[
                    &b"$.F*"[..],
                    b"$.F.*",
                    b"$.F..a",
                    b"$.F.",
                    b"$.Fa b",
                    b"$.F\xc0\xff",
                    b"$.F\x80",
                    b"$.Fa\0",
                ])
                .to_vec(),
            _ => self.pick(&SEND_NAMES).as_bytes().to_vec(),
        }
    }

    pub(crate) fn bind_name(&mut self) -> Vec<u8> {
        let mut v = match self.rng.below(10) {
            0..=3 => self.pick(&SEND_NAMES).as_bytes().to_vec(),
            4..=6 => self.pick(&BIND_NAMES).as_bytes().to_vec(),
            7 => self.send_name(),
            8 => {
                let n = self.rng.below(12) as usize;
                (0..n).map(|_| self.rng.next() as u8).collect()
            }
            _ => {
                let mut v = self.pick(&SEND_NAMES).as_bytes().to_vec();
                let i = self.rng.below(v.len() as u64) as usize;
                v[i] = self.pick(&[b'.', b'*', b'%', b'$', 0, 0xc5, b' ', b'F']);
                v
            }
        };
        // Never exactly a bystander name.
        if v == BY_ANN.as_bytes() || v == BY_REQ.as_bytes() {
            v = b"$.F.a".to_vec();
        }
        v
    }

    pub(crate) fn data(&mut self) -> Vec<u8> {
        let n = match self.rng.below(200) {
            0..=39 => 0,
            40..=139 => self.rng.below(17),
            140..=189 => self.rng.below(300),
            190..=198 => self.rng.below(5000),
            _ => 100_000 + self.rng.below(309_000),
        } as usize;
        let x = self.rng.next() as u8;
        (0..n).map(|i| x.wrapping_add(i as u8)).collect()
    }

    pub(crate) fn random_id(&mut self) -> (u32, u32) {
        match self.rng.below(10) {
            0..=6 => (0, 0),
            7 | 8 if !self.seen_ids.is_empty() => self.pick(&self.seen_ids.clone()),
            _ => (self.rng.next() as u32, self.rng.next() as u32),
        }
    }

    pub(crate) fn hdr(&mut self) -> Hdr {
        let mut flags = 0u32;
        for (bit, pct) in [
            (1, 25),
            (8, 15),
            (0x100, 10),
            (0x200, 10),
            (4, 5),
            (2, 5),
            (0x8000_0000, 5),
        ] {
            if self.rng.percent(pct) {
                flags |= bit;
            }
        }
        let id = if self.rng.percent(10) {
            (1 + self.rng.below(1000) as u32, self.rng.next() as u32)
        } else {
            (
                0,
                if self.rng.percent(10) {
                    self.rng.next() as u32
                } else {
                    0
                },
            )
        };
        let to = match self.rng.below(10) {
            0..=6 => 0,
            7 => self.rng.below(20) as u32,
            _ => self.rng.next() as u32,
        };
        Hdr {
            id,
            in_reply_to: self.random_id(),
            to,
            from: self.rng.next() as u32,
            orig_from: (self.rng.below(3) as u32, self.rng.below(3) as u32),
            final_to: (0, self.rng.below(3) as u32),
            extra: if self.rng.percent(10) {
                self.rng.next() as u32
            } else {
                0
            },
            flags,
        }
    }

    // ---- operations ----

    pub(crate) fn slot_index(&mut self) -> usize {
        self.rng.below(self.slots.len() as u64) as usize
    }

    /// Write `bytes` in 1..4 chunks, some from bad buffers.
    pub(crate) fn write_chunks(&mut self, i: usize, bytes: &[u8], what: &str) {
        let chunks = 1 + self.rng.below(4) as usize;
        let mut cuts: Vec<usize> = (1..chunks)
            .map(|_| self.rng.below(bytes.len() as u64 + 1) as usize)
            .collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        for w in cuts.windows(2) {
            let part = &bytes[w[0]..w[1]];
            let kind = self.ptr_kind(92);
            let kind = self.fit(kind, part.len());
            let kind = if kind == Ptr::Straddle && part.len() < 2 {
                Ptr::Good
            } else {
                kind
            };
            let addr = self.place(kind, part);
            let args = format!("{what}, {} bytes at {kind:?}", part.len());
            self.note(format!("write ksock {} ({args})", self.slots[i].id));
            let r = raw::write(self.slots[i].k.as_fd(), addr, part.len());
            self.after_write(i, &args, kind, part.len(), r);
            if r.is_err() && self.rng.percent(60) {
                return;
            }
        }
    }

    pub(crate) fn after_write(
        &mut self,
        i: usize,
        args: &str,
        kind: Ptr,
        len: usize,
        r: Result<usize, Errno>,
    ) {
        let s = &self.slots[i];
        let (writable, out) = (s.writable, s.out);
        let bad = !kind.readable() && len > 0;
        // The module either fails before reaching bad bytes or faults on
        // them, except on padding bytes, which it skips without reading
        // (at most 4 in a row): so a wholly bad buffer of more than 4 bytes
        // must fail; a straddling one may end in skipped padding.
        let must = bad && kind != Ptr::Straddle && len > 4;
        self.judge(Op::Write, args, &r, must, bad || (len == 0 && !kind.good()));
        match r {
            Ok(n) if n != len => self.fail(&format!("write {args}: returned {n}, not {len}")),
            Err(Errno::BADF) if writable => {
                self.fail(&format!("write {args}: EBADF on a read/write Ksock"))
            }
            Err(e) if !writable && e != Errno::BADF => self.fail(&format!(
                "write {args}: {} on a read-only Ksock (expected EBADF)",
                en(e)
            )),
            Err(Errno::ALREADY) if out != Out::Sending && out != Out::Unknown => self.fail(
                &format!("write {args}: EALREADY, but the Ksock is not sending ({out:?})"),
            ),
            Err(e)
                if out == Out::Sending
                    && e != Errno::ALREADY
                    && !(e == Errno::FAULT && kind.kernel_half()) =>
            {
                self.fail(&format!(
                    "write {args}: {} in sending state (expected EALREADY)",
                    en(e)
                ))
            }
            Ok(_) if out == Out::Sending => {
                self.fail(&format!("write {args}: succeeded in sending state"))
            }
            _ => {}
        }
        let s = &mut self.slots[i];
        s.out = match r {
            _ if !writable => out,
            Ok(_) if out == Out::Unknown => Out::Unknown,
            Ok(_) => Out::Writing,
            Err(Errno::ALREADY) => Out::Sending,
            Err(Errno::FAULT) => Out::Unknown,
            Err(_) => Out::Idle,
        };
    }

    /// A message, valid or with one thing wrong, entire or pointy.
    pub(crate) fn op_write_message(&mut self) {
        let i = self.slot_index();
        let mut h = self.hdr();
        let name = self.send_name();
        let data = self.data();
        let pointy = self.rng.percent(30);
        let mut what = format!(
            "{} {:?} data {} flags {:#x} irt {:?} to {}",
            if pointy { "pointy" } else { "entire" },
            String::from_utf8_lossy(&name[..name.len().min(20)]),
            data.len(),
            h.flags,
            h.in_reply_to,
            h.to
        );
        if self.rng.percent(3) {
            h.flags |= 0x300;
        }
        let mut bytes = if pointy {
            let nk = self.ptr_kind(85);
            let dk = if data.is_empty() {
                Ptr::Null
            } else {
                let k = self.ptr_kind(85);
                self.fit(k, data.len())
            };
            let np = self.place(nk, &name);
            let dp = if data.is_empty() {
                0
            } else {
                self.place(dk, &data)
            };
            let _ = write!(what, " name at {nk:?} data at {dk:?}");
            header(&h, name.len() as u32, data.len() as u32, np, dp)
        } else {
            entire_bytes(&h, &name, &data)
        };
        if self.rng.percent(30) {
            let m = self.mutate(&mut bytes);
            let _ = write!(what, " mutated: {m}");
        }
        self.write_chunks(i, &bytes, &what);
        if self.rng.percent(80) {
            self.op_send_on(i);
        }
    }

    pub(crate) fn mutate(&mut self, b: &mut Vec<u8>) -> String {
        let len = b.len();
        match self.rng.below(10) {
            0 => {
                let off = 4 * self.rng.below((H / 4) as u64) as usize;
                let rnd = self.rng.next() as u32;
                let v = self.pick(&[
                    0,
                    1,
                    3,
                    0xFFFF_FFFF,
                    1000,
                    1001,
                    0x7FFF_FFFF,
                    0x8000_0000,
                    rnd,
                ]);
                set_u32(b, off, v);
                format!("u32 at {off} = {v:#x}")
            }
            1 => {
                let off = self.rng.below(len as u64) as usize;
                let v = self.rng.next() as u8;
                b[off] = v;
                format!("byte {off} = {v:#x}")
            }
            2 => {
                let n = self.rng.below(len as u64) as usize;
                b.truncate(n);
                format!("truncated to {n}")
            }
            3 => {
                let n = 1 + self.rng.below(8) as usize;
                for _ in 0..n {
                    b.push(self.rng.next() as u8);
                }
                format!("{n} bytes appended")
            }
            4 => {
                let v = self.pick(&[
                    0,
                    1001,
                    0xFFFF_FFFF,
                    1000,
                    u32_at(b, 52).wrapping_add(1),
                    u32_at(b, 52).wrapping_sub(1),
                ]);
                set_u32(b, 52, v);
                format!("name_len = {v:#x}")
            }
            5 => {
                let v = self.pick(&[
                    0xFFFF_FFFF,
                    0x7FFF_FFFF,
                    409_500,
                    u32_at(b, 56).wrapping_add(1),
                    u32_at(b, 56).wrapping_sub(1),
                    0,
                ]);
                set_u32(b, 56, v);
                format!("data_len = {v:#x}")
            }
            6 => {
                let off = self.pick(&[0, END_GUARD_OFF, len - 4]);
                set_u32(
                    b,
                    off,
                    self.pick(&[START, END, 0]) ^ (self.rng.below(2) as u32),
                );
                format!("guard at {off} broken")
            }
            7 | 8 => {
                let kind = self.pick(&[
                    Ptr::Null,
                    Ptr::One,
                    Ptr::Kernel,
                    Ptr::NonCanonical,
                    Ptr::Hole,
                    Ptr::Straddle,
                    Ptr::ReadOnly,
                ]);
                let off = self.pick(&[NAME_PTR_OFF, DATA_PTR_OFF]);
                let filler = vec![b'F'; 16];
                let addr = self.place(kind, &filler);
                set_ptr(b, off, addr);
                format!("pointer at {off} = {kind:?} {addr:#x}")
            }
            _ => {
                let mut more = entire_bytes(&Hdr::default(), b"$.F.a", b"x");
                b.append(&mut more);
                "a second message appended".into()
            }
        }
    }

    pub(crate) fn op_write_garbage(&mut self) {
        let i = self.slot_index();
        let n = self.pick(&[0usize, 1, 3, 4, H - 1, H, H + 1, 200, 5000]);
        let mut b: Vec<u8> = (0..n).map(|_| self.rng.next() as u8).collect();
        if n >= H && self.rng.percent(50) {
            set_u32(&mut b, 0, START);
            set_u32(&mut b, END_GUARD_OFF, END);
        }
        self.write_chunks(i, &b, "random bytes");
    }

    /// A raw ioctl: returns the result and the scratch buffer's contents.
    pub(crate) fn ioctl(&mut self, i: usize, cmd: Opcode, arg: usize) -> Result<usize, Errno> {
        let r = raw::ioctl(self.slots[i].k.as_fd(), cmd, arg).map(|v| v as usize);
        if let Some((a, n)) = self.page_end_arg.take() {
            if a == arg {
                let v = self.arena.read_rw(a, n);
                self.scratch[..n].copy_from_slice(&v);
            }
        }
        r
    }

    /// Put `bytes` in the scratch buffer (Good), or elsewhere as `kind`
    /// says. After the next ioctl the scratch buffer holds what the kernel
    /// wrote for both good kinds (PageEnd is copied back from the arena).
    pub(crate) fn arg(&mut self, kind: Ptr, bytes: &[u8]) -> usize {
        self.scratch.fill(0xAA);
        self.page_end_arg = None;
        match kind {
            Ptr::Good => {
                self.scratch[..bytes.len()].copy_from_slice(bytes);
                self.scratch.as_mut_ptr() as usize
            }
            Ptr::PageEnd => {
                let a = self.arena.place_rw(bytes, 0);
                self.page_end_arg = Some((a, bytes.len()));
                a
            }
            _ => self.place(kind, bytes),
        }
    }

    pub(crate) fn op_send_on(&mut self, i: usize) {
        let kind = self.ptr_kind(90);
        self.send_with(i, kind);
    }

    pub(crate) fn send_with(&mut self, i: usize, kind: Ptr) {
        let arg = self.arg(kind, &[0; 8]);
        let (id, out, dev) = (self.slots[i].id, self.slots[i].out, self.slots[i].dev);
        self.note(format!("SEND ksock {id} arg {kind:?} ({out:?})"));
        let r = self.ioctl(i, exact(Op::Send), arg);
        let args = format!("on ksock {id} (arg {kind:?}, state {out:?})");
        self.judge(
            Op::Send,
            &args,
            &r,
            !kind.good(),
            !kind.good() || out != Out::Sending,
        );
        if let Ok(v) = r {
            if v != 0 {
                self.fail(&format!("SEND {args}: returned {v}"));
            }
        }
        if kind.kernel_half() {
            return; // refused before the module saw it
        }
        match (out, r) {
            (Out::Idle, Err(Errno::NOMSG)) => {}
            (Out::Idle, r) => self.fail(&format!(
                "SEND {args}: nothing written, expected ENOMSG, got {r:?}"
            )),
            (Out::Sending, Err(e)) if [Errno::NOMSG, Errno::INVAL, Errno::BADMSG].contains(&e) => {
                self.fail(&format!("SEND {args}: {} for a pending message", en(e)))
            }
            (Out::Writing, Err(Errno::NOMSG)) => {
                self.fail(&format!("SEND {args}: ENOMSG after a write"))
            }
            _ => {}
        }
        let got = if kind.good() {
            Some((u32_at(&self.scratch[..], 0), u32_at(&self.scratch[..], 4)))
        } else {
            None
        };
        let s = &mut self.slots[i];
        s.out = match r {
            Err(Errno::AGAIN) => Out::Sending,
            Err(Errno::FAULT) => Out::Unknown,
            _ => Out::Idle,
        };
        match r {
            Ok(_) | Err(Errno::AGAIN) => s.last_sent = got,
            Err(Errno::NOMSG | Errno::INVAL | Errno::BADMSG | Errno::NOLCK) => {}
            Err(_) => s.last_sent = None,
        }
        if let (Ok(_), Some(id)) = (r, got) {
            if id.0 == 0 && out == Out::Writing {
                let last = self.last_serial.entry(dev).or_insert(0);
                if id.1 <= *last {
                    let l = *last;
                    self.fail(&format!(
                        "SEND {args}: id [0:{}] not above the last one [0:{l}]",
                        id.1
                    ));
                }
                *last = id.1;
            }
            if self.seen_ids.len() < 64 {
                self.seen_ids.push(id);
            }
        }
    }

    pub(crate) fn op_send(&mut self) {
        let i = self.slot_index();
        self.op_send_on(i);
    }

    pub(crate) fn op_discard(&mut self) {
        let i = self.slot_index();
        self.note(format!("DISCARD ksock {}", self.slots[i].id));
        let arg = self.rng.next() as usize;
        let r = self.ioctl(i, exact(Op::Discard), arg);
        self.judge(Op::Discard, "", &r, false, false);
        if r != Ok(0) {
            self.fail(&format!("DISCARD returned {r:?}"));
        }
        self.slots[i].out = Out::Idle;
    }

    pub(crate) fn op_poll(&mut self) {
        let i = self.slot_index();
        self.note(format!("poll ksock {}", self.slots[i].id));
        let r = self.slots[i].k.poll(Ready::BOTH, Some(Duration::ZERO));
        let got = match r {
            Ok(g) => g,
            Err(e) => self.fail(&format!("poll: {e}")),
        };
        *self
            .tally
            .entry((Op::Poll.to_string(), "ok".into()))
            .or_default() += 1;
        if !self.slots[i].writable {
            if got.writable {
                self.fail("poll: a read-only Ksock is writable");
            }
            return;
        }
        let s = &mut self.slots[i];
        s.out = match (got.writable, s.out) {
            // A pending send was retried and finished, one way or another.
            (true, Out::Sending) => Out::Idle,
            (true, out) => out,
            (false, _) => Out::Sending,
        };
    }

    /// NEXTMSG and/or reads of random sizes into good and bad buffers.
    pub(crate) fn op_read(&mut self) {
        let i = self.slot_index();
        if self.slots[i].reading.is_none() || self.rng.percent(30) {
            let kind = self.ptr_kind(90);
            self.nextmsg(i, kind);
        }
        for _ in 0..1 + self.rng.below(3) {
            self.read_some(i);
        }
    }

    pub(crate) fn nextmsg(&mut self, i: usize, kind: Ptr) {
        let arg = self.arg(kind, &[0; 4]);
        let id = self.slots[i].id;
        self.note(format!("NEXTMSG ksock {id} arg {kind:?}"));
        let r = self.ioctl(i, exact(Op::NextMsg), arg);
        let args = format!("on ksock {id} (arg {kind:?})");
        self.judge(Op::NextMsg, &args, &r, !kind.good(), !kind.good());
        if kind.kernel_half() {
            return;
        }
        let len = u32_at(&self.scratch[..], 0) as usize;
        match r {
            Ok(0) if kind.good() && len != 0 => {
                self.fail(&format!("NEXTMSG {args}: returned 0 with length {len}"))
            }
            Ok(0) => self.slots[i].reading = None,
            Ok(1) => {
                if len < H + 8 || len % 4 != 0 {
                    self.fail(&format!("NEXTMSG {args}: length {len}"));
                }
                self.slots[i].reading = Some(Reading {
                    total: len,
                    left: len,
                    bytes: Vec::new(),
                    intact: true,
                });
            }
            Ok(v) => self.fail(&format!("NEXTMSG {args}: returned {v}")),
            Err(_) => {
                // The old message is dropped; a new one popped (or not)
                // and its length lost: LENLEFT tells.
                self.slots[i].reading = None;
                self.resync(i);
            }
        }
    }

    pub(crate) fn lenleft(&mut self, i: usize) -> usize {
        let arg = self.arg(Ptr::Good, &[0; 4]);
        let r = self.ioctl(i, exact(Op::LenLeft), arg);
        self.judge(Op::LenLeft, "", &r, false, false);
        u32_at(&self.scratch[..], 0) as usize
    }

    /// After an EFAULT, learn the read position from LENLEFT.
    pub(crate) fn resync(&mut self, i: usize) {
        let left = self.lenleft(i);
        let new = match self.slots[i].reading.take() {
            _ if left == 0 => None,
            Some(rd) if left > rd.left => self.fail(&format!(
                "LENLEFT {left} after a failed read, {} before",
                rd.left
            )),
            Some(rd) => Some(Reading {
                left,
                intact: false,
                ..rd
            }),
            None => Some(Reading {
                total: left,
                left,
                bytes: Vec::new(),
                intact: false,
            }),
        };
        self.slots[i].reading = new;
    }

    pub(crate) fn read_some(&mut self, i: usize) {
        let left = self.slots[i].reading.as_ref().map_or(0, |r| r.left);
        let n = self.pick(&[0usize, 1, 3, 4, H, 256, 4096, left, left + 8, 500_000]);
        let kind = self.ptr_kind(85);
        let mut buf = vec![0u8; if kind.good() { n } else { 0 }];
        let addr = match kind {
            Ptr::Good => buf.as_mut_ptr() as usize,
            Ptr::PageEnd if n <= self.arena.page => self.arena.place_rw(&vec![0; n], 0),
            Ptr::PageEnd => {
                buf = vec![0u8; n];
                buf.as_mut_ptr() as usize
            }
            k => self.place(k, &vec![0u8; n.min(64)]),
        };
        let kind = if kind == Ptr::PageEnd && n > self.arena.page {
            Ptr::Good
        } else {
            kind
        };
        let id = self.slots[i].id;
        self.note(format!(
            "read ksock {id} {n} bytes at {kind:?} (left {left})"
        ));
        let r = raw::read(self.slots[i].k.as_fd(), addr, n);
        let args = format!("of {n} bytes at {kind:?} on ksock {id} (left {left})");
        let bad = !kind.good();
        // Straddle: good up to the hole, so only a longer copy must fail.
        let room = if kind == Ptr::Straddle {
            self.arena.hole() - addr
        } else {
            0
        };
        // Spec 14.7: a read that faults after copying some bytes returns
        // the count copied (the arch's copy may stop a little short of the
        // hole); one that copies nothing fails with EFAULT.
        let want = n.min(left);
        let faults = bad && want > room;
        self.judge(Op::Read, &args, &r, faults && room == 0, bad);
        match r {
            Ok(got) => {
                if faults && (got == 0 || got > room) {
                    self.fail(&format!(
                        "read {args}: returned {got}, expected a partial count of 1..={room}"
                    ));
                } else if !faults && got != want {
                    self.fail(&format!("read {args}: returned {got}, expected {want}"));
                }
                if got == 0 {
                    return;
                }
                let bytes: Vec<u8> = if kind != Ptr::Good {
                    // PageEnd or a Straddle that did not reach the hole:
                    // the bytes are in the arena's read/write page.
                    self.arena.read_rw(addr, got)
                } else {
                    buf[..got].to_vec()
                };
                let dev = self.slots[i].dev;
                let mut rd = self.slots[i].reading.take().unwrap();
                rd.left -= got;
                rd.bytes.extend_from_slice(&bytes);
                if rd.left > 0 {
                    self.slots[i].reading = Some(rd);
                } else if rd.intact {
                    if let Err(e) = check_received(&rd.bytes, rd.total) {
                        self.fail(&format!("message read on ksock {id}: {e}"));
                    }
                    self.received(dev, &rd.bytes);
                }
            }
            Err(_) => self.resync(i),
        }
        // LENLEFT agrees with the model.
        if let Some(left) = self.slots[i].reading.as_ref().map(|r| r.left) {
            let l = self.lenleft(i);
            if l != left {
                self.fail(&format!("LENLEFT {l}, expected {left}"));
            }
        }
    }

    pub(crate) fn received(&mut self, dev: u32, b: &[u8]) {
        let name_len = u32_at(b, 52) as usize;
        let name = &b[H..H + name_len];
        if !name.starts_with(b"$.F") {
            return;
        }
        let id = (u32_at(b, 4), u32_at(b, 8));
        if self.seen_ids.len() < 64 {
            self.seen_ids.push(id);
        }
        if u32_at(b, 48) & 2 != 0 && self.to_answer.len() < 16 {
            self.to_answer.push((dev, id, u32_at(b, 24), name.to_vec()));
        }
    }

    /// Reply to a Request received (from any Ksock of its device).
    pub(crate) fn op_reply(&mut self) {
        if self.to_answer.is_empty() {
            return self.op_read();
        }
        let j = self.rng.below(self.to_answer.len() as u64) as usize;
        let (dev, id, from, name) = self.to_answer.swap_remove(j);
        let Some(i) =
            (0..self.slots.len()).find(|&i| self.slots[i].dev == dev && self.slots[i].writable)
        else {
            return;
        };
        if self.slots[i].out == Out::Sending {
            return;
        }
        let h = Hdr {
            in_reply_to: id,
            to: from,
            flags: if self.rng.percent(20) { 0x100 } else { 0 },
            ..Hdr::default()
        };
        let data = self.data();
        let bytes = entire_bytes(&h, &name, &data);
        if self.slots[i].out != Out::Idle {
            self.op_discard_on(i);
        }
        self.write_chunks(i, &bytes, &format!("Reply to {id:?} of {from}"));
        self.send_with(i, Ptr::Good);
    }

    pub(crate) fn op_discard_on(&mut self, i: usize) {
        let r = self.ioctl(i, exact(Op::Discard), 0);
        self.judge(Op::Discard, "", &r, false, false);
        self.slots[i].out = Out::Idle;
    }

    pub(crate) fn op_bind(&mut self, unbind: bool) {
        let i = self.slot_index();
        let name = if unbind && !self.slots[i].bindings.is_empty() && self.rng.percent(60) {
            let b = &self.slots[i].bindings;
            let (raw, name) = b[self.rng.below(b.len() as u64) as usize].clone();
            return self.bind_call(i, unbind, raw, name);
        } else {
            self.bind_name()
        };
        let raw = self.pick(&[0, 0, 1, 1, 2, 0xFFFF_FFFF]);
        self.bind_call(i, unbind, raw, name);
    }

    pub(crate) fn bind_struct(&mut self, first: u32, name: &[u8]) -> (Vec<u8>, String, Ptr, u32) {
        let nk = self.ptr_kind(85);
        let np = self.place(nk, name);
        let len = match self.rng.below(12) {
            0 => 0,
            1 => 1001,
            2 => 0xFFFF_FFFF,
            3 => name.len() as u32 + 1,
            _ => name.len() as u32,
        };
        let mut s = vec![0u8; 8 + PTR];
        set_u32(&mut s, 0, first);
        set_u32(&mut s, 4, len);
        set_ptr(&mut s, 8, np);
        let desc = format!(
            "{first:#x} {:?} len {len} at {nk:?}",
            String::from_utf8_lossy(&name[..name.len().min(30)])
        );
        (s, desc, nk, len)
    }

    pub(crate) fn bind_call(&mut self, i: usize, unbind: bool, raw: u32, name: Vec<u8>) {
        let (st, desc, nk, len) = self.bind_struct(raw, &name);
        let kind = self.ptr_kind(90);
        let arg = self.arg(kind, &st);
        let op = if unbind { Op::Unbind } else { Op::Bind };
        let id = self.slots[i].id;
        let args = format!("ksock {id} {desc}, struct at {kind:?}");
        self.note(format!("{} {args}", op));
        let r = self.ioctl(i, exact(op), arg);
        self.after_bind(i, op, &args, r, kind, nk, len, raw, &name);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn after_bind(
        &mut self,
        i: usize,
        op: Op,
        args: &str,
        r: Result<usize, Errno>,
        kind: Ptr,
        nk: Ptr,
        len: u32,
        raw: u32,
        name: &[u8],
    ) {
        let (name_must, name_may) = name_faults(nk, len, name.len());
        let must_fail = !kind.readable() || name_must;
        self.judge(op, args, &r, must_fail, !kind.good() || name_may);
        if let Ok(v) = r {
            if v != 0 {
                self.fail(&format!("{} {args}: returned {v}", op));
            }
            if len as usize != name.len() {
                // Bound (len + 1) bytes: the name is followed by whatever
                // came next; we cannot model it, so unbind it again below.
                return self.fail_soft_unknown(i);
            }
            let s = &mut self.slots[i];
            if op == Op::Bind {
                s.bindings.push((raw, name.to_vec()));
            } else if let Some(j) = s.bindings.iter().rposition(|(r, n)| *r == raw && n == name) {
                s.bindings.remove(j);
            } else {
                self.fail(&format!(
                    "UNBIND {args}: succeeded, but that was never bound"
                ));
            }
        }
    }

    /// A BIND of `len + 1` bytes succeeded: the extra byte came from memory
    /// after the name, which we do not model; close and reopen the Ksock.
    pub(crate) fn fail_soft_unknown(&mut self, i: usize) {
        self.reopen(i);
    }

    pub(crate) fn reopen(&mut self, i: usize) {
        let dev = self.pick(&DEVICES);
        let writable = self.rng.percent(90);
        let old = self.slots[i].id;
        self.slots[i] = Slot::open(dev, writable);
        let s = &self.slots[i];
        self.note(format!(
            "closed ksock {old}, opened ksock {} on {dev} ({})",
            s.id,
            if writable { "rw" } else { "ro" }
        ));
    }

    pub(crate) fn op_close(&mut self) {
        let i = self.slot_index();
        self.reopen(i);
    }

    /// Any nr 0..=20, the right or a wrong direction/size/type, any argument.
    pub(crate) fn op_ioctl(&mut self) {
        let i = self.slot_index();
        let nr = if self.rng.percent(3) {
            0xFF
        } else {
            self.rng.below(21) as u8
        };
        let cmd = match self.rng.below(10) {
            0..=5 => IOCTLS
                .iter()
                .find(|e| e.0 == nr)
                .map_or_else(|| code(nr, Direction::ReadWrite), |e| code(e.0, e.1)),
            6 | 7 => {
                let dir = self.pick(&[
                    Direction::None,
                    Direction::Read,
                    Direction::Write,
                    Direction::ReadWrite,
                ]);
                let size = self.pick(&[0usize, 1, 2, 4, 8, 12, 16, 0x1FFF]);
                opcode::from_components(dir, b'k', nr, size)
            }
            8 => {
                let ty = self.pick(&[b'j', b'l', b'K', 0xA5]);
                opcode::from_components(Direction::ReadWrite, ty, nr, PTR)
            }
            _ => {
                (self.rng.next() as Opcode & !0xFFFF)
                    | (u32::from(b'k') << 8) as Opcode
                    | Opcode::from(nr)
            }
        };
        let Some(op) = which_ioctl(cmd) else {
            return self.bad_ioctl(i, cmd);
        };
        match op {
            Op::Bind | Op::Unbind => {
                let name = self.bind_name();
                let raw = self.pick(&[0, 1, 2]);
                self.bind_call(i, op == Op::Unbind, raw, name)
            }
            Op::Send => self.op_send_on(i),
            Op::Discard => self.op_discard(),
            Op::NextMsg => {
                let kind = self.ptr_kind(85);
                self.nextmsg(i, kind)
            }
            _ => self.simple_ioctl(i, op),
        }
    }

    pub(crate) fn bad_ioctl(&mut self, i: usize, cmd: Opcode) {
        let kind = self.ptr_kind(50);
        let arg = self.arg(kind, &[0; 16]);
        let args = format!("code {cmd:#010x} arg {kind:?}");
        self.note(format!("ioctl ksock {} {args}", self.slots[i].id));
        let r = self.ioctl(i, cmd, arg);
        self.judge(Call::BadIoctl, &args, &r, true, kind.kernel_half());
        // Spec §3.10: type/nr first, then access_ok, then the exact code.
        let rw_bits = opcode::from_components(Direction::ReadWrite, 0, 0, 0);
        let (ty, nr) = ((cmd >> 8) & 0xFF, cmd & 0xFF);
        let want = if ty != Opcode::from(b'k') || nr > 18 {
            Errno::NOTTY
        } else if cmd & rw_bits != 0 && kind.kernel_half() {
            Errno::FAULT
        } else {
            Errno::NOTTY
        };
        if r != Err(want) {
            self.fail(&format!("ioctl {args}: {r:?}, expected {}", en(want)));
        }
    }

    /// The u32-argument ioctls and REPLIER.
    pub(crate) fn simple_ioctl(&mut self, i: usize, op: Op) {
        let mut kind = self.ptr_kind(85);
        let rnd = self.rng.next() as u32;
        let val: u32 = match op {
            Op::MaxMessages => self.pick(&[0, 1, 2, 3, 5, 100, 1000, rnd & 0xFFF]),
            Op::MessagesOnce | Op::Verbose | Op::ReportReplierBinds => {
                self.pick(&[0, 1, 0xFFFF_FFFF, 0xFFFF_FFFF, 2, 0xFFFF_FFFE, rnd])
            }
            // Mostly back to the default, so that most messages fit.
            Op::MaxMessageSize if self.rng.percent(50) => DEF_MAX_MSG_SIZE,
            Op::MaxMessageSize => {
                self.pick(&[0, 1, 2, 99, 100, 101, 1000, DEF_MAX_MSG_SIZE + 1, rnd])
            }
            _ => rnd,
        };
        if op == Op::NewDevice {
            if self.newdevice_budget == 0 {
                kind = Ptr::Kernel; // refused before anything happens
            } else if !kind.kernel_half() {
                self.newdevice_budget -= 1;
            }
        }
        let (bytes, desc, nk, len, name) = if op == Op::FindReplier {
            let name = self.bind_name();
            let (s, d, nk, len) = self.bind_struct(val, &name);
            (s, d, nk, len, name)
        } else {
            let mut v = val.to_ne_bytes().to_vec();
            if op == Op::LastSent {
                v.extend_from_slice(&[0; 4]); // a kbus_msg_id
            }
            (v, format!("{val:#x}"), Ptr::Good, 0, Vec::new())
        };
        let arg = self.arg(kind, &bytes);
        let id = self.slots[i].id;
        let name_s = op;
        let args = format!("ksock {id} {desc} at {kind:?}");
        self.note(format!("{name_s} {args}"));
        let r = self.ioctl(i, exact(op), arg);
        let no_arg = matches!(op, Op::Reset);
        let (name_must, name_may) = if op == Op::FindReplier {
            name_faults(nk, len, name.len())
        } else {
            (false, false)
        };
        let must_fail = !no_arg && !kind.good() || name_must;
        let may_fault = !no_arg && !kind.good() || name_may;
        self.judge(name_s, &args, &r, must_fail, may_fault);
        let Ok(ret) = r else {
            // A setting may have changed before the result failed to copy.
            if r == Err(Errno::FAULT) {
                match op {
                    Op::MaxMessages => self.slots[i].max_messages = None,
                    Op::MessagesOnce => self.slots[i].only_once = None,
                    _ => {}
                }
            }
            return;
        };
        let out = u32_at(&self.scratch[..], 0);
        let expect_ret = usize::from(op == Op::FindReplier && out != 0);
        if ret != expect_ret {
            self.fail(&format!(
                "{name_s} {args}: returned {ret}, expected {expect_ret}"
            ));
        }
        let last_word = u32_at(&self.scratch[..], 4);
        let s = &mut self.slots[i];
        let mismatch = |what: String| -> Option<String> { Some(what) };
        let problem = match op {
            Op::KsockId if out != s.id => mismatch(format!("id {out}, expected {}", s.id)),
            Op::LenLeft => {
                let left = s.reading.as_ref().map_or(0, |r| r.left) as u32;
                (out != left).then(|| format!("{out} left, expected {left}"))
            }
            Op::LastSent => {
                let got = (out, last_word);
                match s.last_sent {
                    Some(want) if want != got => mismatch(format!("{got:?}, expected {want:?}")),
                    _ => {
                        s.last_sent = Some(got);
                        None
                    }
                }
            }
            Op::MaxMessages => {
                if val != 0 {
                    s.max_messages = Some(val);
                }
                match s.max_messages {
                    Some(m) if m != out => mismatch(format!("limit {out}, expected {m}")),
                    _ => {
                        s.max_messages = Some(out);
                        None
                    }
                }
            }
            Op::MessagesOnce => {
                let prev = s.only_once;
                if val <= 1 {
                    s.only_once = Some(val == 1);
                }
                match prev {
                    Some(p) if u32::from(p) != out => {
                        mismatch(format!("previous {out}, expected {}", u32::from(p)))
                    }
                    _ if out > 1 => mismatch(format!("previous {out}")),
                    _ => None,
                }
            }
            Op::Verbose | Op::ReportReplierBinds => (out > 1).then(|| format!("previous {out}")),
            Op::MaxMessageSize => match val {
                0 => (!(100..=DEF_MAX_MSG_SIZE).contains(&out)).then(|| format!("current {out}")),
                1 => (out != DEF_MAX_MSG_SIZE).then(|| format!("absolute {out}")),
                v => (out != v).then(|| format!("set {v}, got {out}")),
            },
            Op::NewDevice => (!(3..=255).contains(&out)).then(|| format!("device {out}")),
            _ => None,
        };
        if let Some(p) = problem {
            self.fail(&format!("{name_s} {args}: {p}"));
        }
    }

    /// A queue limit, MSGONLYONCE or REPORTREPLIERBINDS setting (small
    /// queue limits make full queues, EBUSY, ENOLCK and sending state).
    pub(crate) fn op_setting(&mut self) {
        let i = self.slot_index();
        let op = self.pick(&[
            Op::MaxMessages,
            Op::MaxMessages,
            Op::MaxMessages,
            Op::MessagesOnce,
            Op::ReportReplierBinds,
            Op::MaxMessageSize,
        ]);
        self.simple_ioctl(i, op);
    }

    /// One random operation.
    pub(crate) fn step(&mut self) {
        self.step += 1;
        match self.rng.below(100) {
            0..=23 => self.op_write_message(),
            24..=26 => self.op_write_garbage(),
            27..=31 => self.op_send(),
            32..=33 => self.op_discard(),
            34..=51 => self.op_read(),
            52..=60 => self.op_bind(false),
            61..=64 => self.op_bind(true),
            65..=78 => self.op_ioctl(),
            79..=83 => self.op_setting(),
            84..=91 => self.op_reply(),
            92..=98 => self.op_poll(),
            _ => self.op_close(),
        }
    }

    /// `/proc/kbus/bindings` lists exactly the bindings the model expects
    /// for every Ksock of this process on devices 0..2 (`extra` adds the
    /// bystanders').
    pub(crate) fn check_bindings(&self, extra: &[(u32, u32, u32, &str)]) {
        let pid = my_tid();
        let mut want: Vec<(u32, u32, bool, Vec<u8>)> = Vec::new();
        for s in &self.slots {
            for (r, n) in &s.bindings {
                want.push((s.dev, s.id, *r != 0, n.clone()));
            }
        }
        for (dev, id, r, n) in extra {
            want.push((*dev, *id, *r != 0, n.as_bytes().to_vec()));
        }
        want.sort();
        let mut got = proc_bindings(|p| p == pid);
        got.sort();
        if got != want {
            let show = |v: &[(u32, u32, bool, Vec<u8>)]| {
                v.iter()
                    .map(|(d, i, r, n)| {
                        format!(
                            "{d}:{i}:{}:{}",
                            if *r { 'R' } else { 'L' },
                            String::from_utf8_lossy(n)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            self.fail(&format!(
                "/proc/kbus/bindings for pid {pid}:\n  got  {}\n  want {}",
                show(&got),
                show(&want)
            ));
        }
    }

    pub(crate) fn summary(&self) -> String {
        let mut s = String::new();
        let mut last = "";
        for ((op, outcome), n) in &self.tally {
            if op != last {
                let _ = write!(s, "\n  {op}:");
                last = op;
            }
            let _ = write!(s, " {outcome} {n}");
        }
        s
    }
}

/// This thread's kernel pid (TID): what the module records for a Ksock's
/// opener (spec §2.3); libtest runs each test on a thread of its own.
pub(crate) fn my_tid() -> u64 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    let tid = link.file_name().expect("TID").to_str().expect("UTF-8");
    tid.parse().expect("a number")
}

/// Bindings on devices 0..2 of openers `pid_ok` accepts:
/// (device, ksock id, replier, name).
pub(crate) fn proc_bindings(pid_ok: impl Fn(u64) -> bool) -> Vec<(u32, u32, bool, Vec<u8>)> {
    let text = std::fs::read("/proc/kbus/bindings").expect("/proc/kbus/bindings");
    let mut v = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        // "%3u: %8u %8lu  %c  %.*s"
        let head = String::from_utf8_lossy(&line[..line.len().min(26)]).to_string();
        let mut it = head.split_whitespace();
        let dev: u32 = it.next().unwrap().trim_end_matches(':').parse().unwrap();
        let id: u32 = it.next().unwrap().parse().unwrap();
        let pid: u64 = it.next().unwrap().parse().unwrap();
        let r = it.next().unwrap() == "R";
        if dev > 2 || !pid_ok(pid) {
            continue;
        }
        v.push((dev, id, r, line[27..].to_vec()));
    }
    v
}
