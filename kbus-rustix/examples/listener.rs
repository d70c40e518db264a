//! A Listener loop: bind to `$.Sensors.*`, then print every reading as it
//! arrives, in one stack buffer, until a `$.Sensors.Stop`. A thread plays
//! the sensors (including one whose name has a Latin-1 letter, which the
//! kernel accepts).
//!
//! Needs `/dev/kbus0` from kbus.ko (`cargo xtask test` runs it in every
//! guest). Exits non-zero on any failure.

use std::thread;

use kbus_rustix::{message_len, Ksock, MessageRepr, Mode, Name, Role};

/// The longest name and data this Listener expects.
const MAX_NAME: usize = 64;
const MAX_DATA: usize = 64;

fn sensors() -> kbus_rustix::Result<()> {
    let k = Ksock::open(0, Mode::ReadWrite)?;
    for (name, value) in [("$.Sensors.Kitchen", "21.5"), ("$.Sensors.Hall", "19.0")] {
        k.send_msg(&MessageRepr::announcement(name, value.as_bytes()))?;
    }
    let mut cafe = MessageRepr::announcement("", b"23.0");
    cafe.name = Name::from_bytes(b"$.Sensors.Caf\xe9");
    k.send_msg(&cafe)?;
    k.send_msg(&MessageRepr::announcement("$.Sensors.Stop", b""))?;
    Ok(())
}

fn main() -> kbus_rustix::Result<()> {
    let listener = Ksock::open(0, Mode::ReadOnly)?;
    listener.bind("$.Sensors.*", Role::Listener)?;
    let sensors = thread::spawn(sensors);

    let mut buf = [0u8; message_len(MAX_NAME, MAX_DATA)];
    let mut readings = 0;
    loop {
        let m = listener.wait_for_msg(&mut buf)?;
        if m.name() == "$.Sensors.Stop" {
            break;
        }
        // `Display` of a Name decodes Latin-1: "$.Sensors.Café".
        println!(
            "listener: {} = {}",
            m.name(),
            String::from_utf8_lossy(m.data())
        );
        readings += 1;
    }
    sensors.join().expect("sensor thread")?;
    assert_eq!(readings, 3);
    // Draining whatever is queued, without waiting: a lending iterator.
    listener
        .messages(&mut buf)
        .for_each(|m| println!("listener: late {m}"))?;
    Ok(())
}
