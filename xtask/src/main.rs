//! `cargo xtask`: the KBUS build, test and QEMU rig.
//!
//! Everything arch-specific lives in `targets/<arch>.toml`, the guest image
//! recipe in `qemu/`. Downloads and built images are cached in `$KBUS_CACHE`
//! (default `~/.cache/kbus`), keyed by versions.

mod cross;
mod guest;
mod kmod;
mod setup;
mod target;
mod tasks;
mod util;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use guest::{Payload, Work};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
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
    /// Boot the guest, load kbus.ko and run BIN (a host binary, shared via
    /// 9p) or a busybox shell command; streams the console and exits with
    /// the payload's status (failure if rmmod or the dmesg check fails)
    Run(RunArgs),
    /// Cargo target runner form of `run`: runs BIN [ARGS] in the guest and
    /// appends --test-threads=1 to test binaries (target/**/deps/*). Point
    /// cargo at the built binary, e.g. --config
    /// 'target.x86_64-unknown-linux-gnu.runner=["target/debug/xtask","runner"]'
    /// (a nested `cargo xtask` would rebuild xtask with the guest's rustflags)
    Runner {
        #[arg(long, value_enum, default_value = "x86_64")]
        arch: Arch,
        /// The binary cargo built
        bin: PathBuf,
        /// Its arguments
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Host tests, clippy, rustfmt, the no_std proof, then per arch: kmod
    /// (W=1) and the guest tests plus examples in one boot. Prints
    /// `N passed, N failed`; fails if anything failed
    Test {
        /// One arch only (default: all three)
        #[arg(long, value_enum)]
        arch: Option<Arch>,
        /// Skip the host-side checks (a developer shortcut; CI runs everything)
        #[arg(long)]
        guest_only: bool,
    },
    /// The README's main job: boot x86_64 and run kbus-rustix's demo example
    Demo,
    /// Build the no_std firmware example per arch (profile `firmware`) and
    /// print its text/data/bss/file sizes
    Sizes {
        /// One arch only (default: all three)
        #[arg(long, value_enum)]
        arch: Option<Arch>,
    },
}

#[derive(Args)]
struct RunArgs {
    #[arg(long, value_enum, default_value = "x86_64")]
    arch: Arch,
    /// Number of KBUS devices (module parameter kbus_num_devices)
    #[arg(long, default_value_t = 3)]
    devices: u32,
    /// Run this busybox shell command (in the share folder) instead of a binary
    #[arg(long, conflicts_with_all = ["bins", "command"])]
    cmd: Option<String>,
    /// Another binary to run in the same boot, without arguments (batch mode;
    /// repeatable; reports each binary's status)
    #[arg(long = "bin", value_name = "PATH")]
    bins: Vec<PathBuf>,
    /// Load this kbus.ko instead of building kmod/
    #[arg(long, value_name = "PATH", conflicts_with = "no_kbus")]
    ko: Option<PathBuf>,
    /// Load no kbus.ko at all (to try the rig itself)
    #[arg(long)]
    no_kbus: bool,
    /// Seconds before the guest counts as hung (default from targets/<arch>.toml)
    #[arg(long)]
    timeout: Option<u64>,
    /// BIN [ARGS]...: the binary to run and its arguments
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "BIN [ARGS]"
    )]
    command: Vec<String>,
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
            println!("root    {}", k.root.display());
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
        Cmd::Run(a) => {
            let mut bins: Vec<Payload> = Vec::new();
            let mut command = a.command.into_iter();
            if let Some(bin) = command.next() {
                bins.push(Payload::new(PathBuf::from(bin), command.collect()));
            }
            bins.extend(a.bins.into_iter().map(|b| Payload::new(b, Vec::new())));
            let work = match a.cmd {
                Some(c) => Work::Shell(c),
                None if bins.is_empty() => bail!("nothing to run: give BIN, --bin or --cmd"),
                None => Work::Bins(bins),
            };
            let kbus = if a.no_kbus {
                Kbus::None
            } else if let Some(ko) = a.ko {
                Kbus::Given(ko)
            } else {
                Kbus::Build
            };
            run_in_guest(a.arch, a.devices, kbus, &work, a.timeout)
        }
        Cmd::Runner {
            arch,
            bin,
            mut args,
        } => {
            let is_test = bin.parent().and_then(|p| p.file_name()) == Some("deps".as_ref());
            if is_test && !args.iter().any(|a| a.starts_with("--test-threads")) {
                args.push("--test-threads=1".into());
            }
            let work = Work::Bins(vec![Payload::new(bin, args)]);
            run_in_guest(arch, 3, Kbus::Build, &work, None)
        }
        Cmd::Test { arch, guest_only } => {
            let arches = arch.map_or(Arch::ALL.to_vec(), |a| vec![a]);
            Ok(exit(tasks::test(&arches, guest_only)?))
        }
        Cmd::Demo => Ok(exit(tasks::demo()?)),
        Cmd::Sizes { arch } => {
            let arches = arch.map_or(Arch::ALL.to_vec(), |a| vec![a]);
            tasks::sizes(&arches)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Which kbus.ko the guest loads.
enum Kbus {
    Build,
    Given(PathBuf),
    None,
}

fn run_in_guest(
    arch: Arch,
    devices: u32,
    kbus: Kbus,
    work: &Work,
    timeout: Option<u64>,
) -> Result<ExitCode> {
    let t = arch.spec()?;
    let k = setup::setup(&t)?;
    guest::check_qemu(&t)?;
    let ko = match kbus {
        Kbus::Build => Some(kmod::build(&t, &k)?),
        Kbus::Given(p) => Some(p),
        Kbus::None => None,
    };
    let timeout = Duration::from_secs(timeout.unwrap_or(t.qemu.timeout_secs));
    let o = guest::run_work(&t, &k, ko.as_deref(), devices, work, timeout)?;
    for (name, rc) in &o.steps {
        let verdict = if *rc == 0 { "ok" } else { "FAILED" };
        eprintln!("xtask:   {name}: {verdict} ({rc})");
    }
    Ok(if o.success() {
        ExitCode::SUCCESS
    } else {
        match o.exit {
            Some(rc) if rc > 0 && rc < 256 => ExitCode::from(rc as u8),
            _ => ExitCode::FAILURE,
        }
    })
}
