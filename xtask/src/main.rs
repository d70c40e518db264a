//! `cargo xtask`: the KBUS build, test and QEMU rig.
//!
//! Everything arch-specific lives in `targets/<arch>.toml`, the guest image
//! recipe in `qemu/`. Downloads and built images are cached in `$KBUS_CACHE`
//! (default `~/.cache/kbus`), keyed by versions.

// Parts of the target description are used by `run` (next commit).
#![allow(dead_code)]

mod kmod;
mod setup;
mod target;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use target::Arch;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "KBUS build, test and QEMU rig tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install missing host packages, check rust-src, download the Debian
    /// kernel, headers and busybox for the arch (each step cached)
    Setup {
        #[arg(long, value_enum, default_value = "x86_64")]
        arch: Arch,
    },
    /// Build kmod/kbus.ko against the Debian headers (W=1, warnings are
    /// errors) and print its path
    Kmod {
        #[arg(long, value_enum, default_value = "x86_64")]
        arch: Arch,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Setup { arch } => {
            let t = arch.spec()?;
            let k = setup::setup(&t)?;
            println!("kernel {} ({})", k.release, k.version);
            println!("image   {}", k.image.display());
            println!("headers {}", k.headers.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Kmod { arch } => {
            let t = arch.spec()?;
            let k = setup::setup(&t)?;
            let ko = kmod::build(&t, &k)?;
            println!("{}", ko.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
