//! The initramfs image (cached): a newc cpio archive with busybox and the init script.

use crate::setup::Kernel;
use crate::target::Target;
use crate::util::{cache_dir, scratch_beside, step, workspace_root, Fnv};
use anyhow::{Context, Result};
use std::fs;
use std::path::PathBuf;

/// Bump when the image layout made by this file changes.
const RECIPE_VERSION: &str = "1";

// ---------------------------------------------------------------- initramfs

/// A minimal `newc` cpio writer (the format the kernel unpacks).
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Cpio {
        Cpio {
            out: Vec::new(),
            ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime: fixed, so the image is reproducible
            u32::try_from(data.len()).expect("initramfs file under 4 GiB"),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).expect("short name"),
            0, // check
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, (0, 0), &[]);
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | mode, (0, 0), data);
    }

    fn char_dev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020_600, (major, minor), &[]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        // Pad to 512 bytes like cpio(1) does.
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

fn recipe_file(name: &str) -> Result<String> {
    let p = workspace_root().join("qemu").join(name);
    fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
}

/// The kernel command line from `qemu/cmdline` (comment lines dropped).
pub fn kernel_cmdline(t: &Target) -> Result<String> {
    let text = recipe_file("cmdline")?;
    let line: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut line = line.join(" ").replace("{console}", &t.qemu.console);
    if !t.qemu.extra_cmdline.is_empty() {
        line.push(' ');
        line.push_str(&t.qemu.extra_cmdline);
    }
    Ok(line)
}

/// The initramfs for `t`/`k`, built once and cached in
/// `$KBUS_CACHE/initramfs/<arch>/<release>_<version>-<recipe hash>.cpio`.
pub fn initramfs(t: &Target, k: &Kernel) -> Result<PathBuf> {
    let init = recipe_file("init")?;
    let conf = format!(
        "# Written by cargo xtask from targets/{}.toml\nRIG_9P_OPTIONS='{}'\n",
        t.arch, t.guest.ninep_options
    );
    let mut h = Fnv::new();
    h.add(RECIPE_VERSION.as_bytes())
        .add(init.as_bytes())
        .add(conf.as_bytes())
        .add(k.busybox_version.as_bytes());
    for m in &k.modules {
        h.add(m.to_string_lossy().as_bytes());
    }
    let path = cache_dir()?
        .join("initramfs")
        .join(t.arch.name())
        .join(format!(
            "{}_{}-{}.cpio",
            k.release,
            k.version.replace([':', '/'], "_"),
            h.hex()
        ));
    if path.exists() {
        return Ok(path);
    }
    step(format!("building the {} initramfs", t.arch));
    let mut c = Cpio::new();
    for d in [
        "bin",
        "dev",
        "etc",
        "lib",
        "lib/modules",
        "mnt",
        "proc",
        "root",
        "sys",
        "tmp",
    ] {
        c.dir(d);
    }
    c.char_dev("dev/console", 5, 1);
    c.char_dev("dev/null", 1, 3);
    c.file("init", 0o755, init.as_bytes());
    c.file("etc/rig.conf", 0o644, conf.as_bytes());
    let bb = fs::read(&k.busybox).with_context(|| format!("reading {}", k.busybox.display()))?;
    c.file("bin/busybox", 0o755, &bb);
    let mut order = String::new();
    for m in &k.modules {
        let name = m.file_name().context("module name")?.to_string_lossy();
        let data = fs::read(m).with_context(|| format!("reading {}", m.display()))?;
        c.file(&format!("lib/modules/{name}"), 0o644, &data);
        order.push_str(&name);
        order.push('\n');
    }
    c.file("lib/modules/load-order", 0o644, order.as_bytes());
    let bytes = c.finish();

    let dir = path.parent().context("initramfs dir")?;
    fs::create_dir_all(dir)?;
    let tmp = scratch_beside(&path);
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parsed `newc` entry: the 13 header fields, the name and the data.
    struct Entry {
        fields: [u32; 13],
        name: String,
        data: Vec<u8>,
    }

    /// Parse a whole `newc` archive, checking the magic and the 4-byte
    /// alignment of every name and data section.
    fn parse(mut buf: &[u8]) -> Vec<Entry> {
        let total = buf.len();
        let mut entries = Vec::new();
        loop {
            assert_eq!((total - buf.len()) % 4, 0, "header not aligned");
            assert_eq!(&buf[..6], b"070701");
            let mut fields = [0u32; 13];
            for (i, f) in fields.iter_mut().enumerate() {
                let hex = std::str::from_utf8(&buf[6 + 8 * i..14 + 8 * i]).unwrap();
                assert!(hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                *f = u32::from_str_radix(hex, 16).unwrap();
            }
            let namesize = fields[11] as usize;
            let name_end = 110 + namesize;
            assert_eq!(buf[name_end - 1], 0, "name not NUL-terminated");
            let name = std::str::from_utf8(&buf[110..name_end - 1])
                .unwrap()
                .to_owned();
            let data_start = name_end.next_multiple_of(4);
            assert!(buf[name_end..data_start].iter().all(|&b| b == 0));
            let filesize = fields[6] as usize;
            let data_end = data_start + filesize;
            let data = buf[data_start..data_end].to_vec();
            let next = data_end.next_multiple_of(4);
            assert!(buf[data_end..next].iter().all(|&b| b == 0));
            buf = &buf[next..];
            let done = name == "TRAILER!!!";
            entries.push(Entry { fields, name, data });
            if done {
                // Only zero padding after the trailer.
                assert!(buf.iter().all(|&b| b == 0));
                return entries;
            }
        }
    }

    #[test]
    fn cpio_newc() {
        let mut c = Cpio::new();
        c.dir("dev");
        c.char_dev("dev/console", 5, 1);
        c.file("init", 0o755, b"#!/bin/sh\necho hi\n");
        c.file("e", 0o644, b"");
        let out = c.finish();
        assert_eq!(out.len() % 512, 0);

        let e = parse(&out);
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init", "e", "TRAILER!!!"]);
        for (i, e) in e.iter().enumerate() {
            // ino counts up from 1; uid, gid, mtime, devmajor/minor, check are 0;
            // nlink 1; namesize includes the NUL.
            assert_eq!(e.fields[0], i as u32 + 1);
            assert_eq!(e.fields[2..6], [0, 0, 1, 0]);
            assert_eq!(e.fields[7..9], [0, 0]);
            assert_eq!(e.fields[11] as usize, e.name.len() + 1);
            assert_eq!(e.fields[12], 0);
            assert_eq!(e.fields[6] as usize, e.data.len());
        }
        assert_eq!(e[0].fields[1], 0o040_755);
        assert_eq!(e[1].fields[1], 0o020_600);
        assert_eq!(e[1].fields[9..11], [5, 1]);
        assert_eq!(e[2].fields[1], 0o100_755);
        assert_eq!(e[2].data, b"#!/bin/sh\necho hi\n");
        assert_eq!(e[3].fields[1], 0o100_644);
        assert!(e[3].data.is_empty());
        assert_eq!(e[4].fields[1], 0);
        assert_eq!(e[4].fields[9..11], [0, 0]);
    }
}
