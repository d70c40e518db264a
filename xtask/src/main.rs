//! `cargo xtask`: the KBUS build, test and QEMU rig.
//!
//! Everything arch-specific lives in `targets/<arch>.toml`, the guest image
//! recipe in `qemu/`. Downloads and built images are cached in `$KBUS_CACHE`
//! (default `~/.cache/kbus`), keyed by versions.

mod bench;
mod buildroot;
mod cross;
mod debug_kernel;
mod guest;
mod kmod;
mod matrix;
mod setup;
mod target;
mod tasks;
mod util;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use guest::{Payload, Work};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use target::Arch;

#[derive(Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "KBUS build, test and QEMU rig tasks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install host packages, check rust-src, fetch the Debian kernel (cached)
    ///
    /// Missing Debian packages are installed with apt-get when root (else the
    /// command is printed); the kernel image, headers and busybox-static of
    /// the current bookworm kernel are downloaded with a private apt state
    /// into $KBUS_CACHE (default ~/.cache/kbus). Each step is skipped when done.
    Setup {
        #[command(flatten)]
        arch: ArchArg,
    },
    /// Build kmod/kbus.ko against the Debian headers and print its path
    ///
    /// The sources are mirrored into target/kmod/<arch>/ and built there
    /// with W=1; any compiler warning fails the build.
    Kmod {
        #[command(flatten)]
        arch: ArchArg,
        /// Build against this kernel build or headers tree instead (a
        /// vendor kernel: `make -C DIR M=... modules` with the host's make
        /// and the arch's ARCH/CROSS_COMPILE; the release is read from
        /// DIR/include/generated/utsrelease.h)
        #[arg(long, value_name = "DIR")]
        kdir: Option<PathBuf>,
    },
    /// Boot the guest, load kbus.ko, run BIN or a shell command
    ///
    /// BIN (a host binary, shared into the guest via 9p) or --cmd runs after
    /// insmod kbus.ko kbus_num_devices=N. The console streams to the
    /// terminal; the exit status is the payload's, and a failed rmmod, a
    /// warning/BUG/oops in dmesg, a panic or a timeout is a failure too.
    Run(RunArgs),
    /// Boot a guest with kbus.ko loaded and get a shell on its console
    ///
    /// The `kbus` CLI, the guest test binaries and the API examples are in
    /// PATH (/mnt/host/bin), busybox provides the rest, and the project
    /// tree is mounted at /mnt/project. `exit` (or Ctrl-D) powers the guest
    /// off; rmmod and the dmesg checks run then, as after a test run.
    /// Standard input is the console, so a script works too:
    /// `cargo xtask shell --arch armv7 < script.sh`.
    Shell {
        #[command(flatten)]
        arch: ArchArg,
        /// Number of KBUS devices (module parameter kbus_num_devices)
        #[arg(long, default_value_t = 3)]
        devices: u32,
    },
    /// Cargo target runner form of `run`
    ///
    /// Runs BIN [ARGS] in the guest; test binaries (target/**/deps/*) get
    /// --test-threads=1 unless given. Point cargo at the built binary, e.g.
    /// --config 'target.x86_64-unknown-linux-gnu.runner=["target/debug/xtask","runner"]'
    /// (a nested `cargo xtask` would rebuild xtask with the guest's rustflags).
    Runner {
        #[command(flatten)]
        arch: ArchArg,
        /// The binary cargo built
        bin: PathBuf,
        /// Its arguments
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Host tests and checks, then kmod and guest tests per arch
    ///
    /// Host: cargo test (without the guest tests), clippy -D warnings (also
    /// of kbus-bridge without Zenoh), rustfmt --check, kbus-wire built for thumbv7em-none-eabihf with only
    /// core. Per matrix cell (a user-space arch on a Debian suite's kernel):
    /// kmod with W=1 (in that suite's build root, with its gcc), then every
    /// guest test binary plus the demo and firmware examples in one boot.
    /// Prints the arch × kernel table, then `N passed, N failed` last, and
    /// fails if anything failed: a selected cell that cannot run fails too.
    Test {
        /// Which matrix of (arch, kernel) cells: quick, default (CI) or full
        #[arg(long, value_enum, default_value = "default")]
        matrix: matrix::MatrixKind,
        /// Only this arch's cells of the matrix (or that one cell)
        #[arg(long, value_enum)]
        arch: Option<Arch>,
        /// Only the cells with a kernel from this Debian suite
        #[arg(long, value_name = "SUITE")]
        kernel: Option<String>,
        /// Test this kbus.ko (e.g. a vendor's) instead of building kmod/;
        /// its vermagic must match each selected cell's kernel. Failures of
        /// tests tagged in guest-tests/spec-tags.toml (behaviours the spec
        /// leaves open, or that this project decided, §12–§14) report as
        /// "differs (spec §…)" instead of failing
        #[arg(long, value_name = "PATH.ko")]
        module: Option<PathBuf>,
        /// Skip the host-side checks (a developer shortcut; CI runs everything)
        #[arg(long)]
        guest_only: bool,
        /// Guests booted at once, while the next cells build at nice 19
        /// (default: one per CPU, at most one per cell). With 1, cells are
        /// built and booted one at a time and each console streams live;
        /// otherwise each is printed whole when its guest is done
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
        /// Also run the kbus-bridge guest test (Zenoh cross-built for the
        /// cell's arch) in every selected cell; by default only x86_64@bookworm
        /// runs it. On mipsel, where Zenoh does not build, kbus-bridge is
        /// built Limpet-only and only the Limpet tests run (a NOTE says so)
        #[arg(long)]
        bridge: bool,
    },
    /// The README's main job: boot x86_64 and run kbus-rustix's demo example
    Demo,
    /// Benchmark send and read through kbus.ko in the guest, against a pipe
    ///
    /// Builds kbus-benches' `ksock` bench statically for the guest and runs
    /// it in one boot (criterion: --warm-up-time 1 --measurement-time 3
    /// --nresamples 10000 --noplot unless given after --). At 0, 64 and
    /// 4096 data bytes it times an Announcement sent (pointy and entire) and
    /// read by one Listener, and at 64 a Request/Reply round trip, each
    /// against the same bytes through a pipe measured in the same run; then
    /// the Slab growth of queued messages for 1 and 10 Listeners. Prints
    /// ns/op and the ratio to the pipe last. Not part of `test`.
    ///
    /// With --ab REV: A/B workloads instead. kbus.ko is built from kmod/ of
    /// git revision REV (A) and from the working tree's kmod/ (B, or
    /// --b-src); one boot loads them in turn, A B A B … (--rounds each),
    /// and runs the same workloads against each, 64 data bytes, reporting
    /// delivered messages per second and B/A per round, its median and
    /// range: send (one Listener, drained outside the timed part),
    /// send-1000 (the same with 1000 unrelated Listener bindings; also given
    /// as send-1000/send), send-read (one Ksock sends to itself and reads),
    /// two-proc (sender and Listener processes, ALL_OR_WAIT), req-reply
    /// (Request/Reply round trip, Replier process), fanout and fanout-wait
    /// (10 Listener processes, without and with ALL_OR_WAIT; with Listener
    /// polls per message). Arguments after -- go to the guest program: the
    /// workloads to run (default all), --scale F (message counts).
    ///
    /// With --bridge: the kbus-bridge bench (--rounds times in one
    /// x86_64@bookworm boot): 64-byte Announcements/s and Request→Reply
    /// round trips/s across one bridge hop over Zenoh, each against two
    /// plain Zenoh processes in the same round, with CPU time and context
    /// switches per Announcement for each process.
    Bench {
        #[command(flatten)]
        arch: ArchArg,
        /// Run the host benches instead (kbus-wire parse/emit, memcpy baselines)
        #[arg(long, conflicts_with_all = ["arch", "ab", "bridge"])]
        host: bool,
        /// Run the kbus-bridge bench instead (x86_64@bookworm guest)
        #[arg(long, conflicts_with_all = ["ab"])]
        bridge: bool,
        /// A/B workloads: module A from kmod/ of this git revision (e.g.
        /// 2287aa2), module B from the working tree, alternating in one boot
        #[arg(long, value_name = "REV")]
        ab: Option<String>,
        /// With --ab: build module B from this kmod source folder instead of kmod/
        #[arg(long, value_name = "DIR", requires = "ab")]
        b_src: Option<PathBuf>,
        /// With --ab: rounds per module (A B A B …); with --bridge: rounds
        #[arg(long, default_value_t = 5)]
        rounds: u32,
        /// With --ab: the guest's vCPUs (default: the target's, 2 on x86_64)
        #[arg(long, value_name = "N", requires = "ab")]
        smp: Option<u32>,
        /// Criterion arguments, after -- (e.g. a filter: -- announce/pointy);
        /// with --ab: workload names and --scale F
        #[arg(last = true, value_name = "CRITERION ARGS")]
        args: Vec<String>,
    },
    /// Build the no_std firmware example and the kbus CLI per arch and print their sizes
    ///
    /// The firmware with profile `firmware`, checked static with no C
    /// library in it; the CLI with profile `cli`, checked static (std links
    /// glibc statically). Prints text/data/bss and file size.
    Sizes {
        /// One arch only (default: all three)
        #[arg(long, value_enum)]
        arch: Option<Arch>,
    },
}

/// `--arch`, default x86_64, and `--kernel` (the subcommands that take one arch).
#[derive(Args)]
struct ArchArg {
    #[arg(long, value_enum, default_value = "x86_64")]
    arch: Arch,
    /// Debian suite of the guest kernel (bullseye, bookworm, trixie, sid;
    /// default: the arch's own, see targets/<arch>.toml)
    #[arg(long, value_name = "SUITE")]
    kernel: Option<String>,
}

impl ArchArg {
    /// `targets/<arch>.toml`, with the kernel from `--kernel`'s suite.
    fn target(&self) -> Result<target::Target> {
        let t = self.arch.spec()?;
        Ok(match &self.kernel {
            Some(s) => t.with_suite(matrix::Suite::by_name(s)?),
            None => t,
        })
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    arch: ArchArg,
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
    /// Copy the files the guest wrote into /mnt/host/out/ to DIR afterwards
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
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
            let t = arch.target()?;
            let k = setup::setup(&t)?;
            println!("kernel {} ({})", k.release, k.version);
            println!("root    {}", k.root.display());
            println!("image   {}", k.image.display());
            println!("headers {}", k.headers.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Kmod {
            arch,
            kdir: Some(kdir),
        } => {
            let t = arch.target()?;
            setup::host_packages(&t)?;
            let (ko, release) = kmod::build_kdir(&t, &kdir)?;
            println!("{}", ko.display());
            eprintln!("xtask: built for kernel {release}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Kmod { arch, kdir: None } => {
            let t = arch.target()?;
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
            run_in_guest(
                a.arch.target()?,
                a.devices,
                kbus,
                &work,
                a.timeout,
                a.out.as_deref(),
            )
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
            run_in_guest(arch.target()?, 3, Kbus::Build, &work, None, None)
        }
        Cmd::Test {
            matrix,
            arch,
            kernel,
            module,
            guest_only,
            jobs,
            bridge,
        } => {
            let mut cells = matrix::select(matrix, arch, kernel.as_deref())?;
            if bridge {
                for c in &mut cells {
                    c.bridge = true;
                }
            }
            let module = module
                .map(|m| {
                    m.canonicalize()
                        .with_context(|| format!("--module {}", m.display()))
                })
                .transpose()?;
            if let (Some(ko), None, None) = (&module, arch, &kernel) {
                cells = tasks::cells_for_module(&cells, ko)?;
            }
            let jobs = jobs.unwrap_or_else(|| tasks::default_jobs(cells.len()));
            Ok(exit(tasks::test(
                &cells,
                guest_only,
                module.as_deref(),
                jobs,
            )?))
        }
        Cmd::Demo => Ok(exit(tasks::demo()?)),
        Cmd::Shell { arch, devices } => Ok(exit(tasks::shell(arch.target()?, devices)?)),
        Cmd::Bench {
            arch,
            host,
            bridge,
            ab,
            b_src,
            rounds,
            smp,
            args,
        } => {
            if host {
                bench::host(&args)?;
                Ok(ExitCode::SUCCESS)
            } else if bridge {
                let mut arch = arch;
                arch.kernel
                    .get_or_insert_with(|| tasks::BRIDGE_SUITE.into());
                Ok(exit(bench::bridge(arch.target()?, rounds)?))
            } else if let Some(rev) = ab {
                let o = bench::AbOptions {
                    rev,
                    b_src,
                    rounds,
                    smp,
                };
                Ok(exit(bench::ab(arch.target()?, &o, &args)?))
            } else {
                Ok(exit(bench::guest(arch.target()?, &args)?))
            }
        }
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
    t: target::Target,
    devices: u32,
    kbus: Kbus,
    work: &Work,
    timeout: Option<u64>,
    out: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let (t, k) = tasks::prepare_target(t)?;
    let ko = match kbus {
        Kbus::Build => Some(kmod::build(&t, &k)?),
        Kbus::Given(p) => Some(p),
        Kbus::None => None,
    };
    if let Some(ko) = &ko {
        kmod::check_vermagic(ko, &k.release)?;
    }
    let timeout = Duration::from_secs(timeout.unwrap_or(t.qemu.timeout_secs));
    let opts = guest::RunOptions {
        out,
        ..Default::default()
    };
    let o = guest::run_work(&t, &k, ko.as_deref(), devices, work, timeout, opts)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn arch_arg() {
        let cli = Cli::try_parse_from(["xtask", "runner", "--arch", "mipsel", "b", "--x"]).unwrap();
        let Cmd::Runner { arch, bin, args } = cli.cmd else {
            panic!("not runner")
        };
        assert_eq!(arch.arch, Arch::Mipsel);
        assert_eq!(bin, PathBuf::from("b"));
        assert_eq!(args, ["--x"]);
        let cli = Cli::try_parse_from(["xtask", "kmod"]).unwrap();
        let Cmd::Kmod { arch, .. } = cli.cmd else {
            panic!("not kmod")
        };
        assert_eq!(arch.arch, Arch::X86_64);
        assert!(Cli::try_parse_from(["xtask", "bench", "--host", "--arch", "x86_64"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "bench", "--host"]).is_ok());
    }
}
