//! Names and wildcards: `*` vs `%` delivery, invalid names (spec §4).

use kbus_guest_tests::*;

#[test]
fn star_and_percent_deliver_as_in_the_spec_table() {
    let star = open_ro(0);
    let pct = open_ro(0);
    let exact = open_ro(0);
    let s = open_rw(0);
    bind(&star, "$.WcSensors.*", Role::Listener);
    bind(&pct, "$.WcSensors.%", Role::Listener);
    bind(&exact, "$.WcSensors.Kitchen", Role::Listener);

    // (message, star?, percent?, exact?)
    let table = [
        ("$.WcSensors", false, false, false),
        ("$.WcSensors.Kitchen", true, true, true),
        ("$.WcSensors.Kitchen.Toaster", true, false, false),
        ("$.WcSensorsX", false, false, false),
        ("$.WcSensors.K", true, true, false),
    ];
    for (name, want_star, want_pct, want_exact) in table {
        let id = send(&s, &MessageRepr::announcement(name, name.as_bytes()));
        for (k, want, which) in [
            (&star, want_star, "$.WcSensors.*"),
            (&pct, want_pct, "$.WcSensors.%"),
            (&exact, want_exact, "$.WcSensors.Kitchen"),
        ] {
            if want {
                let m = recv(k, &format!("{name} via {which}"));
                assert_eq!(
                    (m.name().to_str().unwrap(), m.id()),
                    (name, id),
                    "{name} via {which}"
                );
            } else {
                assert_empty(k, &format!("{name} must not match {which}"));
            }
        }
    }
}

#[test]
fn dollar_star_matches_everything() {
    // Use device 2 so the catch-all sees only this test's traffic.
    let all = open_ro(2);
    let s = open_rw(2);
    bind(&all, "$.*", Role::Listener);
    for name in ["$.A", "$.WcAll.B.C", "$.KBUS.Anything"] {
        let id = send(&s, &MessageRepr::announcement(name, b""));
        let m = recv(&all, name);
        assert_eq!((m.name().to_str().unwrap(), m.id()), (name, id));
    }
    assert_empty(&all, "one copy each");
}

#[test]
fn invalid_binding_names_are_ebadmsg() {
    let k = open_rw(0);
    for bad in [
        &b"$"[..],
        b"$.",
        b"$..",
        b"$.A.",
        b"$..A",
        b"$.A..B",
        b"$.A-B",
        b"$.A B",
        b"$.A\0B",
        b"Fred",
        b"$.A*",
        b"$.*.A",
        b"$.A.**",
        b"$.A..*",
        b"#.Abc",
        b"$.\x80bc",
    ] {
        for role in [Role::Listener, Role::Replier] {
            let e = expect_errno(
                k.bind(bad, role),
                Errno::BADMSG,
                &format!("bind {:?} as {role:?}", String::from_utf8_lossy(bad)),
            );
            assert!(e.to_string().contains("invalid binding name"), "{e}");
            expect_errno(
                k.unbind(bad, role),
                Errno::BADMSG,
                &format!("unbind {:?}", String::from_utf8_lossy(bad)),
            );
        }
    }
    // Empty name: EBADMSG; over 1000 bytes: ENAMETOOLONG (before content).
    expect_errno(
        k.bind(b"", Role::Listener),
        Errno::BADMSG,
        "bind empty name",
    );
    expect_errno(
        k.unbind(b"", Role::Listener),
        Errno::BADMSG,
        "unbind empty name",
    );
    let long = format!("$.{}", "x".repeat(999));
    expect_errno(
        k.bind(&long, Role::Listener),
        Errno::NAMETOOLONG,
        "bind 1001 bytes",
    );
    expect_errno(
        k.unbind(&long, Role::Listener),
        Errno::NAMETOOLONG,
        "unbind 1001 bytes",
    );
    let junk_long = vec![b'!'; 1001];
    expect_errno(
        k.bind(&junk_long, Role::Listener),
        Errno::NAMETOOLONG,
        "length is checked first",
    );
    // Exactly 1000 bytes is fine.
    let max = format!("$.{}", "x".repeat(998));
    ok(k.bind(&max, Role::Listener), "bind a 1000-byte name");
    ok(k.unbind(&max, Role::Listener), "unbind it");
    // The Ksock is still usable.
    bind(&k, "$.WcNames.Ok", Role::Listener);
    send(&k, &MessageRepr::announcement("$.WcNames.Ok", b""));
    recv(&k, "still usable after bad names");
}

#[test]
fn valid_odd_binding_names_are_accepted() {
    let k = open_ro(0);
    for good in ["$.a", "$.*", "$.%", "$.A.B.*", "$.A.%", "$.WcOdd.0.9z"] {
        ok(k.bind(good, Role::Listener), good);
        ok(k.unbind(good, Role::Listener), good);
    }
    // Latin-1 letters count as alphanumeric (kernel isalnum, spec §4.1).
    ok(k.bind(b"$.Wc\xC0\xFF", Role::Listener), "Latin-1 letters");
    ok(k.unbind(b"$.Wc\xC0\xFF", Role::Listener), "Latin-1 letters");
}

#[test]
fn invalid_or_wildcard_message_names_are_ebadmsg() {
    let k = open_rw(0);
    for bad in [
        "$.A.*", "$.A.%", "$.*", "$.A.", "$.A..B", "$.A B", "$.Fred-x",
    ] {
        // Pointy form: checked at SEND.
        let e = expect_errno(
            k.send_msg(&MessageRepr::announcement(bad, b"")),
            Errno::BADMSG,
            &format!("send {bad:?}"),
        );
        assert_eq!(
            e.op(),
            kbus_rustix::Op::Send,
            "pointy names are checked at SEND"
        );
        // Entire form: checked by write() once the name is in.
        let repr = MessageRepr::announcement(bad, b"data");
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit_unvalidated(&mut bytes).expect("emit");
        let e = expect_errno(
            k.send_entire(&bytes),
            Errno::BADMSG,
            &format!("write {bad:?}"),
        );
        assert_eq!(e.op(), kbus_rustix::Op::Write);
        // Nothing is left behind.
        expect_errno(k.send(), Errno::NOMSG, "nothing pending after EBADMSG");
    }
    let long = format!("$.{}", "x".repeat(999));
    let e = expect_errno(
        k.send_msg(&MessageRepr::announcement(&long, b"")),
        Errno::NAMETOOLONG,
        "1001-byte message name",
    );
    assert_eq!(e.op(), kbus_rustix::Op::Write);
}

/// Issue 10: a sender using a Latin-1 name (which the kernel accepts) must
/// not break a `$.*` Listener loop that uses `?`, and what it reads
/// round-trips byte-exact through `MessageRepr`.
#[test]
fn a_latin1_name_does_not_break_a_wildcard_listener_loop() -> Result<(), Error> {
    let l = open_ro(2);
    bind(&l, "$.*", Role::Listener);
    let s = open_rw(2);
    let mut latin1 = MessageRepr::announcement("", b"caf\xe9");
    latin1.name = kbus_rustix::Name::from_bytes(b"$.Latin.Caf\xe9");
    let id = send(&s, &latin1);
    send(&s, &MessageRepr::announcement("$.Latin.Next", b"ascii"));
    let mut buf = [0u8; 256];
    let mut seen = Vec::new();
    l.messages(&mut buf).try_for_each(|m| {
        // parse -> emit gives the bytes the kernel delivered.
        assert_eq!(m.repr().to_vec()?, m.as_bytes(), "{m}");
        seen.push((m.id(), m.name().as_bytes().to_vec(), m.name().to_string()));
        Ok::<(), Error>(())
    })?;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, id);
    assert_eq!(seen[0].1, b"$.Latin.Caf\xe9");
    assert_eq!(seen[0].2, "$.Latin.Café");
    assert_eq!(seen[1].1, b"$.Latin.Next");
    Ok(())
}

/// The module remembers which binding strings the last message name
/// matched (kmod/README.md, "Data structures"): every binding string that
/// comes or goes between two messages of one name must still change who
/// hears the second, for each form (exact, `%`, `*`) and for a Replier.
#[test]
fn a_binding_made_or_dropped_between_two_sends_of_one_name_counts() {
    let name = "$.WcMemo.Kitchen.Toaster";
    let s = open_rw(0);
    let heard = |k: &Ksock, what: &str| {
        let m = recv(k, what);
        assert_eq!(m.name().to_str().unwrap(), name, "{what}");
        assert_empty(k, &format!("{what}: one copy"));
    };
    let exact = open_ro(0);
    bind(&exact, name, Role::Listener);
    send(&s, &MessageRepr::announcement(name, b"1"));
    heard(&exact, "exact, before any wildcard");

    let mut others = Vec::new();
    for string in ["$.WcMemo.Kitchen.%", "$.WcMemo.*", "$.*"] {
        let k = open_ro(0);
        bind(&k, string, Role::Listener);
        send(&s, &MessageRepr::announcement(name, b"2"));
        heard(&exact, &format!("exact, after {string} came"));
        for (k, which) in &others {
            heard(k, &format!("{which}, after {string} came"));
        }
        heard(&k, &format!("{string}, bound after the last send"));
        others.push((k, string));
    }
    while let Some((k, string)) = others.pop() {
        ok(k.unbind(string, Role::Listener), "unbind");
        send(&s, &MessageRepr::announcement(name, b"3"));
        assert_empty(&k, &format!("{string}, unbound before this send"));
        heard(&exact, &format!("exact, after {string} went"));
        for (k, which) in &others {
            heard(k, &format!("{which}, after {string} went"));
        }
    }

    // A Request finds a Replier bound since the last send, and then not.
    let request = MessageRepr::request(name, b"?");
    expect_errno(s.send_msg(&request), Errno::ADDRNOTAVAIL, "no Replier yet");
    let r = open_rw(0);
    bind(&r, "$.WcMemo.%", Role::Replier);
    expect_errno(s.send_msg(&request), Errno::ADDRNOTAVAIL, "% is one level");
    bind(&r, "$.WcMemo.Kitchen.%", Role::Replier);
    send(&s, &request);
    let m = recv(&r, "the Request, to the Replier bound since");
    assert!(m.wants_us_to_reply(), "{m}");
    heard(&exact, "exact, the Request");
    ok(
        r.unbind("$.WcMemo.Kitchen.%", Role::Replier),
        "unbind the Replier",
    );
    expect_errno(
        s.send_msg(&request),
        Errno::ADDRNOTAVAIL,
        "the Replier went",
    );
    assert_empty(&exact, "no copy of a Request that was not sent");
}
