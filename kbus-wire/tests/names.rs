//! Name validity (§4.1) and binding matching (§4.2) tables.

use kbus_wire::name::{
    binding_matches, is_name_byte, validate_binding_name, validate_message_name, NameError,
    SyntheticName,
};

/// The spec's algorithm, transcribed literally, as a reference.
fn reference_valid(name: &[u8]) -> bool {
    let n = name.len();
    if !(3..=1000).contains(&n) {
        return false;
    }
    if name[0] != b'$' || name[1] != b'.' {
        return false;
    }
    let mut m = n;
    if name[n - 2] == b'.' && (name[n - 1] == b'*' || name[n - 1] == b'%') {
        m = n - 2;
    }
    if name[m - 1] == b'.' {
        return false;
    }
    let mut last_dot = 1;
    for (i, &b) in name.iter().enumerate().take(m).skip(2) {
        if b == b'.' {
            if last_dot == i - 1 {
                return false;
            }
            last_dot = i;
        } else if !(b.is_ascii_alphanumeric()
            || (0xC0..=0xD6).contains(&b)
            || (0xD8..=0xF6).contains(&b)
            || b >= 0xF8)
        {
            return false;
        }
    }
    true
}

#[test]
fn valid_names() {
    for name in [
        "$.A",
        "$.Fred",
        "$.Sensors.Kitchen",
        "$.a.b.c.d",
        "$.KBUS.ReplierBindEvent",
        "$.0",
        "$.x9.Y8",
    ] {
        assert_eq!(validate_binding_name(name.as_bytes()), Ok(()), "{name}");
        assert_eq!(validate_message_name(name.as_bytes()), Ok(()), "{name}");
    }
}

#[test]
fn wildcards_only_as_whole_last_component() {
    for name in ["$.*", "$.%", "$.A.B.*", "$.A.%"] {
        assert_eq!(validate_binding_name(name.as_bytes()), Ok(()), "{name}");
        assert_eq!(
            validate_message_name(name.as_bytes()),
            Err(NameError::WildcardNotAllowed),
            "{name}"
        );
    }
    for name in ["$.A*", "$.*.A", "$.A.**", "$.A..*"] {
        assert!(validate_binding_name(name.as_bytes()).is_err(), "{name}");
        assert!(validate_message_name(name.as_bytes()).is_err(), "{name}");
    }
}

#[test]
fn invalid_names_with_reasons() {
    use NameError::*;
    let table: &[(&[u8], NameError)] = &[
        (b"", TooShort { len: 0 }),
        (b"$", TooShort { len: 1 }),
        (b"$.", TooShort { len: 2 }),
        (b"$..", TrailingDot),
        (b"$.A.", TrailingDot),
        (b"$..A", EmptyComponent { index: 2 }),
        (b"$.A..B", EmptyComponent { index: 4 }),
        (
            b"$.A-B",
            BadByte {
                index: 3,
                byte: b'-',
            },
        ),
        (
            b"$.A B",
            BadByte {
                index: 3,
                byte: b' ',
            },
        ),
        (b"$.A\0", BadByte { index: 3, byte: 0 }),
        (b"Fred", MissingPrefix),
        (b"$Fred", MissingPrefix),
        (b".$Fred", MissingPrefix),
        (
            b"$.A*",
            BadByte {
                index: 3,
                byte: b'*',
            },
        ),
        (
            b"$.*.A",
            BadByte {
                index: 2,
                byte: b'*',
            },
        ),
        (
            b"$.A.**",
            BadByte {
                index: 4,
                byte: b'*',
            },
        ),
        (b"$.A..*", TrailingDot),
        (
            b"$.Caf\xC3\xA9",
            BadByte {
                index: 6,
                byte: 0xA9,
            },
        ),
        (
            b"$.\xD7",
            BadByte {
                index: 2,
                byte: 0xD7,
            },
        ),
        (
            b"$.\xF7",
            BadByte {
                index: 2,
                byte: 0xF7,
            },
        ),
        (
            b"$.\xBF",
            BadByte {
                index: 2,
                byte: 0xBF,
            },
        ),
    ];
    for (name, err) in table {
        assert_eq!(
            validate_binding_name(name),
            Err(*err),
            "{:?}",
            String::from_utf8_lossy(name)
        );
        assert!(!reference_valid(name));
    }
}

#[test]
fn length_limits() {
    let mut long = b"$.".to_vec();
    long.resize(1000, b'a');
    assert_eq!(validate_message_name(&long), Ok(()));
    long.push(b'a');
    assert_eq!(
        validate_message_name(&long),
        Err(NameError::TooLong { len: 1001 })
    );
    // too long wins over bad content, like ENAMETOOLONG
    let junk = vec![b'-'; 2000];
    assert_eq!(
        validate_binding_name(&junk),
        Err(NameError::TooLong { len: 2000 })
    );
}

#[test]
fn latin1_letters_accepted_like_the_kernel() {
    for b in 0u8..=255 {
        let expected = b.is_ascii_alphanumeric()
            || (0xC0..=0xD6).contains(&b)
            || (0xD8..=0xF6).contains(&b)
            || b >= 0xF8;
        assert_eq!(is_name_byte(b), expected, "{b:#x}");
        let name = [b'$', b'.', b];
        assert_eq!(validate_message_name(&name).is_ok(), expected, "{b:#x}");
    }
    assert_eq!(validate_message_name(b"$.Caf\xE9"), Ok(()));
}

#[test]
fn agrees_with_reference_on_all_short_names() {
    // Every name of length 3..=5 over a small alphabet covering each class.
    let alphabet = b"$.*%aZ9-\xC0\xD7\xFF\x80";
    let mut count = 0;
    for len in 3..=5u32 {
        let total = alphabet.len().pow(len);
        for mut k in 0..total {
            let mut name = Vec::new();
            for _ in 0..len {
                name.push(alphabet[k % alphabet.len()]);
                k /= alphabet.len();
            }
            let valid = reference_valid(&name);
            assert_eq!(validate_binding_name(&name).is_ok(), valid, "{name:?}");
            let sendable = valid && !matches!(name.last(), Some(b'*' | b'%'));
            assert_eq!(validate_message_name(&name).is_ok(), sendable, "{name:?}");
            count += 1;
        }
    }
    assert!(count > 100_000);
}

#[test]
fn matching_table() {
    let bindings = ["$.Sensors.*", "$.Sensors.%", "$.Sensors.Kitchen"];
    let table: &[(&str, [bool; 3])] = &[
        ("$.Sensors", [false, false, false]),
        ("$.Sensors.Kitchen", [true, true, true]),
        ("$.Sensors.Kitchen.Toaster", [true, false, false]),
        ("$.SensorsX", [false, false, false]),
    ];
    for (name, expected) in table {
        for (binding, want) in bindings.iter().zip(expected) {
            assert_eq!(
                binding_matches(binding.as_bytes(), name.as_bytes()),
                *want,
                "{binding} vs {name}"
            );
        }
    }
}

#[test]
fn matching_edge_cases() {
    // `$.*` matches every sendable name; `$.%` only one-component names
    for name in ["$.A", "$.Fred", "$.A.B.C", "$.KBUS.ReplierBindEvent"] {
        assert!(binding_matches(b"$.*", name.as_bytes()), "{name}");
    }
    assert!(binding_matches(b"$.%", b"$.Fred"));
    assert!(!binding_matches(b"$.%", b"$.A.B"));
    // the byte after the prefix need not be a dot boundary for `*` (§4.2 is a
    // plain prefix test) — but with a valid binding it always is a dot
    assert!(binding_matches(b"$.A.*", b"$.A.B"));
    assert!(!binding_matches(b"$.A.*", b"$.A."[..3].as_ref()));
    // exact match needs equal length
    assert!(!binding_matches(b"$.Fred", b"$.Freddy"));
    assert!(!binding_matches(b"$.Freddy", b"$.Fred"));
    // empty inputs never panic
    assert!(binding_matches(b"", b""));
    assert!(!binding_matches(b"*", b""));
    assert!(binding_matches(b"*", b"x"));
    assert!(!binding_matches(b"%", b"."));
}

#[test]
fn synthetic_names() {
    use SyntheticName::*;
    let table = [
        ("$.KBUS.Replier.GoneAway", ReplierGoneAway, true),
        ("$.KBUS.Replier.Ignored", ReplierIgnored, true),
        ("$.KBUS.Replier.Unbound", ReplierUnbound, true),
        ("$.KBUS.Replier.Disappeared", ReplierDisappeared, true),
        ("$.KBUS.ErrorSending", ErrorSending, true),
        ("$.KBUS.UnbindEventsLost", UnbindEventsLost, false),
        ("$.KBUS.ReplierBindEvent", ReplierBindEvent, false),
        ("$.KBUS.Replier.NotSameKsock", ReplierNotSameKsock, true),
    ];
    for (name, kind, reply_like) in table {
        assert_eq!(validate_message_name(name.as_bytes()), Ok(()), "{name}");
        assert_eq!(SyntheticName::from_name(name.as_bytes()), Some(kind));
        assert_eq!(kind.as_str(), name);
        assert_eq!(kind.is_reply_like(), reply_like, "{name}");
    }
    assert_eq!(
        SyntheticName::from_name(b"$.KBUS.RemoteError.Timeout"),
        Some(RemoteError)
    );
    assert!(!RemoteError.is_from_module());
    assert!(ReplierGoneAway.is_from_module());
    for other in [
        "$.KBUS.RemoteError.",
        "$.KBUS.Other",
        "$.KBUS",
        "$.Fred",
        "$.KBUS.Replier",
    ] {
        assert_eq!(SyntheticName::from_name(other.as_bytes()), None, "{other}");
    }
}
