//! The bystanders: a Listener and a Replier per device, on names the
//! fuzzer never sends to or binds exactly, that must keep working exactly.

use super::*;

pub(crate) struct Bystander {
    pub(crate) dev: u32,
    pub(crate) l: Ksock,
    pub(crate) r: Ksock,
    pub(crate) l_id: u32,
    pub(crate) r_id: u32,
    pub(crate) last: u32,
    pub(crate) round: u32,
    pub(crate) data_len: usize,
}

impl Bystander {
    pub(crate) fn new(dev: u32) -> Bystander {
        let l = open_rw(dev);
        let r = open_rw(dev);
        bind(&l, BY_ANN, Role::Listener);
        bind(&r, BY_REQ, Role::Replier);
        let (l_id, r_id) = (ok(l.ksock_id(), "id"), ok(r.ksock_id(), "id"));
        // The largest data that keeps a message within 100 bytes.
        let data_len = (100 - H - 4 - 4) / 4 * 4;
        Bystander {
            dev,
            l,
            r,
            l_id,
            r_id,
            last: 0,
            round: 0,
            data_len,
        }
    }

    pub(crate) fn data(&self, tag: u8) -> Vec<u8> {
        (0..self.data_len)
            .map(|i| tag ^ (self.round as u8).wrapping_add(i as u8))
            .collect()
    }

    /// An Announcement R→L and a Request/Reply L→R→L, all exactly right.
    pub(crate) fn check(&mut self, f: &Fuzzer) {
        self.round += 1;
        let what = format!("bystanders on device {} (round {})", self.dev, self.round);
        let counts = |f: &Fuzzer, k: &Ksock, want: (u32, u32), when: &str| {
            let got = (
                ok(k.num_messages(), "NUMMSGS"),
                ok(k.num_unreplied_to(), "UNREPLIEDTO"),
            );
            if got != want {
                f.fail(&format!(
                    "{what}: {k} {when}: NUMMSGS/UNREPLIEDTO {got:?}, expected {want:?}"
                ));
            }
        };
        counts(f, &self.l, (0, 0), "before");
        counts(f, &self.r, (0, 0), "before");
        for k in [&self.l, &self.r] {
            if ok(k.max_messages(), "MAXMSGS") != 100
                || ok(k.query_want_messages_once(), "MSGONLYONCE")
            {
                f.fail(&format!("{what}: {k}'s settings changed"));
            }
        }
        let ann_data = self.data(0x11);
        let a = match self
            .r
            .send_msg(&MessageRepr::announcement(BY_ANN, &ann_data))
        {
            Ok(id) => id,
            Err(e) => f.fail(&format!("{what}: Announcement: {e}")),
        };
        counts(f, &self.l, (1, 0), "after the Announcement");
        let m = recv(&self.l, &what);
        if (
            m.name().to_str().unwrap(),
            m.data(),
            m.id(),
            m.from(),
            m.flags().bits(),
        ) != (BY_ANN, &ann_data[..], a, self.r_id, 0)
        {
            f.fail(&format!(
                "{what}: Announcement {a} from {} arrived as {m}",
                self.r_id
            ));
        }
        let req_data = self.data(0x22);
        let q = match self.l.send_msg(&MessageRepr::request(BY_REQ, &req_data)) {
            Ok(id) => id,
            Err(e) => f.fail(&format!("{what}: Request: {e}")),
        };
        counts(f, &self.r, (1, 0), "after the Request");
        let m = recv(&self.r, &what);
        if (m.name().to_str().unwrap(), m.data(), m.id(), m.from())
            != (BY_REQ, &req_data[..], q, self.l_id)
            || !m.wants_us_to_reply()
        {
            f.fail(&format!("{what}: Request {q} arrived as {m}"));
        }
        counts(f, &self.r, (0, 1), "after popping the Request");
        let rep_data = self.data(0x33);
        let reply = MessageRepr::reply_to(&m, &rep_data).unwrap();
        let p = match self.r.send_msg(&reply) {
            Ok(id) => id,
            Err(e) => f.fail(&format!("{what}: Reply: {e}")),
        };
        counts(f, &self.r, (0, 0), "after replying");
        counts(f, &self.l, (1, 0), "after the Reply");
        let m = recv(&self.l, &what);
        if (
            m.name().to_str().unwrap(),
            m.data(),
            m.id(),
            m.in_reply_to(),
            m.from(),
        ) != (BY_REQ, &rep_data[..], p, q, self.r_id)
        {
            f.fail(&format!("{what}: Reply {p} arrived as {m}"));
        }
        counts(f, &self.l, (0, 0), "after");
        for id in [a, q, p] {
            if id.network_id != 0 || id.serial_num <= self.last {
                f.fail(&format!("{what}: id {id} not above [0:{}]", self.last));
            }
            self.last = id.serial_num;
        }
    }
}
