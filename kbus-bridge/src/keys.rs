//! KBUS names as Zenoh key expressions.
//!
//! `$.Sensors.Kitchen` is `kbus/Sensors/Kitchen`: the `$.` becomes a
//! prefix chunk, each dot a slash. A binding's wildcard last component
//! becomes a Zenoh wildcard with the same meaning: `$.A.%` (exactly one more
//! component) is `kbus/A/*`, `$.A.*` (one or more) is `kbus/A/*/**`.
//! Name bytes 0xC0–0xFF (the Latin-1 letters KBUS accepts) become the
//! characters U+00C0–U+00FF, and back.
//!
//! Replier bindings are also liveliness tokens,
//! `kbus-replier/<network id>/<binder>/<components>`, where a wildcard last
//! component is spelt `_star` or `_pct` (KBUS components are alphanumeric,
//! so these never clash with a real one).

/// The key prefix of messages.
pub const PREFIX: &str = "kbus";
/// The key prefix of Replier liveliness tokens.
pub const REPLIER_PREFIX: &str = "kbus-replier";

fn components(name: &[u8]) -> Option<Vec<String>> {
    let rest = name.strip_prefix(b"$.")?;
    if rest.is_empty() {
        return None;
    }
    rest.split(|&b| b == b'.')
        .map(|c| {
            if c.is_empty() {
                None
            } else {
                Some(c.iter().map(|&b| char::from(b)).collect())
            }
        })
        .collect()
}

/// The key expression of a message name or binding string.
pub fn name_to_key(name: &[u8]) -> Option<String> {
    let mut parts = components(name)?;
    let last = parts.last_mut()?;
    match last.as_str() {
        "*" => *last = "*/**".into(),
        "%" => *last = "*".into(),
        _ => {}
    }
    Some(format!("{PREFIX}/{}", parts.join("/")))
}

/// The message name of a concrete key (no wildcards).
pub fn key_to_name(key: &str) -> Option<Vec<u8>> {
    let rest = key.strip_prefix(PREFIX)?.strip_prefix('/')?;
    let mut out = b"$".to_vec();
    for c in rest.split('/') {
        if c.is_empty() || c.contains('*') {
            return None;
        }
        out.push(b'.');
        for ch in c.chars() {
            out.push(u8::try_from(u32::from(ch)).ok()?);
        }
    }
    Some(out)
}

/// The liveliness token of binding `name` held by Ksock `binder` behind
/// network id `net`.
pub fn replier_token(net: u32, binder: u32, name: &[u8]) -> Option<String> {
    let mut parts = components(name)?;
    let last = parts.last_mut()?;
    match last.as_str() {
        "*" => *last = "_star".into(),
        "%" => *last = "_pct".into(),
        _ => {}
    }
    Some(format!(
        "{REPLIER_PREFIX}/{net}/{binder}/{}",
        parts.join("/")
    ))
}

/// `(network id, binder, binding string)` of a Replier token.
pub fn parse_replier_token(key: &str) -> Option<(u32, u32, Vec<u8>)> {
    let rest = key.strip_prefix(REPLIER_PREFIX)?.strip_prefix('/')?;
    let mut it = rest.splitn(3, '/');
    let net = it.next()?.parse().ok()?;
    let binder = it.next()?.parse().ok()?;
    let path = it.next()?;
    let mut name = b"$".to_vec();
    for c in path.split('/') {
        name.push(b'.');
        match c {
            "_star" => name.push(b'*'),
            "_pct" => name.push(b'%'),
            _ => {
                for ch in c.chars() {
                    name.push(u8::try_from(u32::from(ch)).ok()?);
                }
            }
        }
    }
    Some((net, binder, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        let cases: &[(&[u8], &str)] = &[
            (b"$.Sensors.Kitchen", "kbus/Sensors/Kitchen"),
            (b"$.Sensors.*", "kbus/Sensors/*/**"),
            (b"$.Sensors.%", "kbus/Sensors/*"),
            (b"$.*", "kbus/*/**"),
            (b"$.%", "kbus/*"),
            (b"$.A", "kbus/A"),
            (b"$.Caf\xe9", "kbus/Caf\u{e9}"),
        ];
        for &(name, key) in cases {
            assert_eq!(name_to_key(name).as_deref(), Some(key));
            if !name.ends_with(b"*") && !name.ends_with(b"%") {
                assert_eq!(key_to_name(key).as_deref(), Some(name));
            }
        }
        assert_eq!(name_to_key(b"$."), None);
        assert_eq!(name_to_key(b"Fred"), None);
        assert_eq!(key_to_name("kbus/A/*"), None);
        assert_eq!(key_to_name("other/A"), None);
    }

    #[test]
    fn replier_tokens() {
        for name in [
            &b"$.Sensors.Kitchen"[..],
            b"$.Sensors.*",
            b"$.%",
            b"$.Caf\xe9.*",
        ] {
            let t = replier_token(7, 3, name).unwrap();
            assert_eq!(parse_replier_token(&t), Some((7, 3, name.to_vec())));
        }
        assert_eq!(
            replier_token(1, 2, b"$.A.*").as_deref(),
            Some("kbus-replier/1/2/A/_star")
        );
    }

    /// The wildcard keys match the same names as the KBUS bindings.
    #[cfg(feature = "zenoh")]
    #[test]
    fn wildcard_meaning() {
        use zenoh::key_expr::KeyExpr;
        let star = KeyExpr::try_from(name_to_key(b"$.Sensors.*").unwrap()).unwrap();
        let pct = KeyExpr::try_from(name_to_key(b"$.Sensors.%").unwrap()).unwrap();
        for (name, s, p) in [
            (&b"$.Sensors"[..], false, false),
            (b"$.Sensors.Kitchen", true, true),
            (b"$.Sensors.Kitchen.Toaster", true, false),
            (b"$.SensorsX", false, false),
        ] {
            let k = KeyExpr::try_from(name_to_key(name).unwrap()).unwrap();
            assert_eq!(star.intersects(&k), s, "{k}");
            assert_eq!(pct.intersects(&k), p, "{k}");
            assert_eq!(kbus_wire::name::binding_matches(b"$.Sensors.*", name), s);
            assert_eq!(kbus_wire::name::binding_matches(b"$.Sensors.%", name), p);
        }
    }
}
