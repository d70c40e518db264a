//! The fuzz seed corpus (`fuzz/corpus/parse`) holds valid messages. Reads
//! the repository's files, so it runs on the host only (xtask runs the other
//! kbus-wire tests in the guests too).

use kbus_wire::{Layout32, Layout64, Message, ReplierBindEvent};

/// The fuzz seed corpus (little-endian images) holds valid messages.
#[cfg(target_endian = "little")]
#[test]
fn fuzz_seeds_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/parse");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/parse exists") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == "bind-event-data" {
            assert!(ReplierBindEvent::new_checked(&bytes[..]).is_ok());
        } else if file.ends_with("-32") {
            Message::<_, Layout32>::new_checked_in(&bytes[..]).expect(&file);
        } else {
            Message::<_, Layout64>::new_checked_in(&bytes[..]).expect(&file);
        }
        seen += 1;
    }
    assert!(seen >= 10, "seed corpus has {seen} files");
}
