//! `kbus`: a command-line tool for KBUS devices, in the manner of `ip`,
//! `busctl` and `mosquitto_sub`: listen to messages, send, call (Request →
//! Reply), be a Replier, show bindings and statistics, explain errnos and
//! measure the message rate.

mod bench;
mod bus;
mod data;
mod exit;
mod format;
mod info;
mod interrupt;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use kbus_rustix::{Ksock, Mode};

use crate::exit::Exit;
use crate::format::Format;

const ABOUT: &str = "Listen, send, call and reply on a KBUS device (/dev/kbusN)";

#[derive(Parser, Debug)]
#[command(name = "kbus", version, about = ABOUT, after_long_help = exit::TABLE)]
struct Cli {
    #[command(flatten)]
    device: DeviceArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Which KBUS device.
#[derive(Args, Debug, Clone, Default)]
pub struct DeviceArgs {
    /// The bus: /dev/kbusN [default: 0]
    #[arg(
        short,
        long,
        global = true,
        value_name = "N",
        conflicts_with = "device"
    )]
    bus: Option<u32>,
    /// A KBUS device node by path (instead of --bus)
    #[arg(short, long, global = true, value_name = "PATH")]
    device: Option<PathBuf>,
}

impl DeviceArgs {
    /// The device path.
    pub fn path(&self) -> PathBuf {
        match &self.device {
            Some(p) => p.clone(),
            None => PathBuf::from(format!("/dev/kbus{}", self.bus.unwrap_or(0))),
        }
    }

    /// The device number, if one was chosen (`--bus`, or the trailing
    /// digits of `--device`); `None` when neither was given.
    pub fn chosen(&self) -> Option<u32> {
        match &self.device {
            Some(p) => {
                let s = p.to_str()?;
                let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
                s[s.len() - digits..].parse().ok()
            }
            None => self.bus,
        }
    }

    /// The device number to use: the chosen one, else 0.
    pub fn number(&self) -> u32 {
        self.chosen().unwrap_or(0)
    }

    /// Open the device; the error names it.
    pub fn open(&self, mode: Mode) -> Result<Ksock, Fail> {
        let path = self.path();
        let r = match &self.device {
            Some(p) => Ksock::open_path(p.as_path(), mode),
            None => Ksock::open(self.bus.unwrap_or(0), mode),
        };
        r.map_err(|e| Fail::new(format!("{}: {e}", path.display())))
    }
}

/// Message data: the DATA argument, `-` for standard input, or `--file`.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// The data: text as it is, `-` to read standard input [default: none]
    #[arg(value_name = "DATA", allow_hyphen_values = true)]
    data: Option<String>,
    /// Read the data from this file
    #[arg(short, long, value_name = "PATH", conflicts_with = "data")]
    file: Option<PathBuf>,
    /// The data (argument, stdin or file) is hex digits (`de:ad be-ef`)
    #[arg(short = 'x', long)]
    hex: bool,
}

impl DataArgs {
    /// The bytes.
    pub fn load(&self) -> Result<Vec<u8>, Fail> {
        data::Source::new(self.data.clone(), self.file.clone())
            .load(self.hex, io::stdin().lock())
            .map_err(Fail::new)
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    data::parse_duration(s)
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print each message as it arrives, one line each (Ctrl-C ends)
    #[command(
        after_help = "Names may end in the wildcards `.*` (any rest) or `.%` (one \
        more component). Each message is printed once even if several NAMEs match it."
    )]
    Listen {
        /// Names to bind to as Listener
        #[arg(value_name = "NAME", default_value = "$.*")]
        names: Vec<String>,
        /// Output format
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Exit after N messages
        #[arg(short = 'n', long, value_name = "N")]
        count: Option<u64>,
        /// Stop after this long (1.5, 500ms, 2s, 1m); with --count, not
        /// having seen N messages by then exits 4
        #[arg(short, long, value_name = "DURATION", value_parser = duration)]
        timeout: Option<Duration>,
        /// Also show Replier bind events ($.KBUS.ReplierBindEvent): turns
        /// the device's reporting on (and off again at exit if it was off);
        /// the current Replier bindings are shown first
        #[arg(short = 'r', long)]
        replier_events: bool,
    },
    /// Send an Announcement and print its id
    Send {
        /// The message name
        name: String,
        #[command(flatten)]
        data: DataArgs,
        /// Queue it at the front of each recipient's queue
        #[arg(short, long)]
        urgent: bool,
        /// If a recipient's queue is full, wait until all have room
        #[arg(long, conflicts_with = "all_or_fail")]
        all_or_wait: bool,
        /// If a recipient's queue is full, send to nobody and fail (EBUSY)
        #[arg(long)]
        all_or_fail: bool,
        /// With --all-or-wait: give up (discard it, exit 4) after this long
        #[arg(short, long, value_name = "DURATION", value_parser = duration)]
        timeout: Option<Duration>,
    },
    /// Send a Request and wait for its answer (a Reply, or the one KBUS
    /// makes when the Replier cannot answer); see the exit statuses
    #[command(after_long_help = exit::TABLE)]
    Call {
        /// The message name
        name: String,
        #[command(flatten)]
        data: DataArgs,
        /// Give up after this long (exit 4) [default: wait for the answer]
        #[arg(short, long, value_name = "DURATION", value_parser = duration)]
        timeout: Option<Duration>,
        /// A Stateful Request: only this Ksock may answer (exit 8 if the
        /// name's Replier is another one)
        #[arg(short, long, value_name = "KSOCK_ID")]
        stateful: Option<u32>,
        /// Queue it at the front of the Replier's queue
        #[arg(short, long)]
        urgent: bool,
        /// How to print the Reply
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Data)]
        format: Format,
    },
    /// Be the Replier for NAME: answer each Request (empty Reply unless
    /// --exec, --echo or --static), printing each Request
    Reply {
        /// The name to bind to as Replier (may be a wildcard)
        name: String,
        /// Run this shell command (sh -c) per Request: the Request's data
        /// on its stdin, its stdout is the Reply's data; it also gets
        /// KBUS_NAME, KBUS_ID and KBUS_FROM in its environment
        #[arg(short, long, value_name = "CMD", group = "answer")]
        exec: Option<String>,
        /// Answer with the Request's own data
        #[arg(long, group = "answer")]
        echo: bool,
        /// Answer with this data every time
        #[arg(long = "static", value_name = "DATA", group = "answer")]
        static_data: Option<String>,
        /// --static DATA is hex digits
        #[arg(short = 'x', long, requires = "static_data")]
        hex: bool,
        /// Exit after answering N Requests
        #[arg(short = 'n', long, value_name = "N")]
        count: Option<u64>,
        /// How to print each Request
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Print nothing per Request
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show the bindings of every device (/proc/kbus/bindings), or of the
    /// one chosen with --bus or --device
    Bindings {
        /// As a JSON array
        #[arg(short, long)]
        json: bool,
    },
    /// Show a device's settings (ioctls) and its /proc/kbus/stats lines
    Stats {
        /// All of /proc/kbus/stats, every device
        #[arg(short, long)]
        all: bool,
    },
    /// What an errno means for each KBUS operation (all KBUS errnos if
    /// none is given)
    Errno {
        /// A number (this machine's numbering) or a name (EADDRINUSE,
        /// addrinuse)
        errno: Option<String>,
    },
    /// Measure the message rate on this device (like the old kspeed),
    /// with a progress line on stderr
    Bench {
        /// What to measure
        #[arg(short, long, value_enum, default_value_t = bench::Mode::All)]
        mode: bench::Mode,
        /// How long to run each measurement
        #[arg(short = 't', long, value_name = "DURATION", value_parser = duration, default_value = "1s")]
        duration: Duration,
        /// Data bytes per message
        #[arg(short, long, value_name = "BYTES", default_value_t = 64)]
        size: usize,
    },
    /// Print a shell completion script
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff)
    Manpage,
}

/// A failure: what to print on stderr (nothing if empty) and the status.
#[derive(Debug)]
pub struct Fail {
    pub exit: Exit,
    pub msg: String,
}

impl Fail {
    /// A general failure (status 1).
    pub fn new(msg: impl Into<String>) -> Fail {
        Fail {
            exit: Exit::Failure,
            msg: msg.into(),
        }
    }

    /// A failure with a specific status.
    pub fn with(exit: Exit, msg: impl Into<String>) -> Fail {
        Fail {
            exit,
            msg: msg.into(),
        }
    }
}

impl From<kbus_rustix::Error> for Fail {
    fn from(e: kbus_rustix::Error) -> Fail {
        Fail::new(e.to_string())
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        if e.kind() == io::ErrorKind::BrokenPipe {
            // `kbus listen | head -1`: the reader is done, so are we.
            Fail::with(Exit::Ok, "")
        } else {
            Fail::new(e.to_string())
        }
    }
}

fn run(cli: Cli) -> Result<Exit, Fail> {
    let dev = &cli.device;
    match cli.cmd {
        Cmd::Listen {
            names,
            format,
            count,
            timeout,
            replier_events,
        } => bus::listen(
            dev,
            &bus::ListenOpts {
                names,
                format,
                count,
                timeout,
                replier_events,
            },
        ),
        Cmd::Send {
            name,
            data,
            urgent,
            all_or_wait,
            all_or_fail,
            timeout,
        } => bus::send(
            dev,
            &name,
            &data.load()?,
            bus::SendOpts {
                urgent,
                all_or_wait,
                all_or_fail,
                timeout,
            },
        ),
        Cmd::Call {
            name,
            data,
            timeout,
            stateful,
            urgent,
            format,
        } => bus::call(
            dev,
            &name,
            &data.load()?,
            &bus::CallOpts {
                timeout,
                stateful,
                urgent,
                format,
            },
        ),
        Cmd::Reply {
            name,
            exec,
            echo,
            static_data,
            hex,
            count,
            format,
            quiet,
        } => {
            let answer = match (exec, echo, static_data) {
                (Some(cmd), _, _) => bus::Answer::Exec(cmd),
                (None, true, _) => bus::Answer::Echo,
                (None, false, Some(d)) if hex => {
                    bus::Answer::Static(data::parse_hex(&d).map_err(Fail::new)?)
                }
                (None, false, Some(d)) => bus::Answer::Static(d.into_bytes()),
                (None, false, None) => bus::Answer::Static(Vec::new()),
            };
            bus::reply(
                dev,
                &name,
                &bus::ReplyOpts {
                    answer,
                    count,
                    format,
                    quiet,
                },
            )
        }
        Cmd::Bindings { json } => info::bindings(dev, json),
        Cmd::Stats { all } => info::stats(dev, all),
        Cmd::Errno { errno } => info::errno(errno.as_deref()),
        Cmd::Bench {
            mode,
            duration,
            size,
        } => bench::run(dev, mode, duration, size),
        Cmd::Completions { shell } => {
            let mut out = io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "kbus", &mut out);
            out.flush()?;
            Ok(Exit::Ok)
        }
        Cmd::Manpage => {
            let mut out = io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            out.flush()?;
            Ok(Exit::Ok)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(f) => {
            if !f.msg.is_empty() {
                eprintln!("kbus: {}", f.msg);
            }
            ExitCode::from(f.exit.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kbus").chain(args.iter().copied()))
    }

    #[test]
    fn clap_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_defaults_and_options() {
        let cli = parse(&["listen"]).unwrap();
        let Cmd::Listen {
            names,
            format,
            count,
            timeout,
            replier_events,
        } = cli.cmd
        else {
            panic!()
        };
        assert_eq!(names, ["$.*"]);
        assert_eq!(format, Format::Text);
        assert_eq!((count, timeout, replier_events), (None, None, false));
        let cli = parse(&[
            "--bus", "2", "listen", "$.A", "$.B.*", "-o", "json", "-n", "3", "-t", "500ms", "-r",
        ])
        .unwrap();
        assert_eq!(cli.device.number(), 2);
        let Cmd::Listen {
            names,
            format,
            count,
            timeout,
            replier_events,
        } = cli.cmd
        else {
            panic!()
        };
        assert_eq!(names, ["$.A", "$.B.*"]);
        assert_eq!(format, Format::Json);
        assert_eq!(count, Some(3));
        assert_eq!(timeout, Some(Duration::from_millis(500)));
        assert!(replier_events);
        for f in ["text", "json", "hex", "dump", "data"] {
            assert!(parse(&["listen", "--format", f]).is_ok(), "{f}");
        }
        assert!(parse(&["listen", "--format", "xml"]).is_err());
        assert!(parse(&["listen", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn global_device_options() {
        // Global: before or after the subcommand.
        let cli = parse(&["send", "$.A", "--bus", "1"]).unwrap();
        assert_eq!(cli.device.path(), PathBuf::from("/dev/kbus1"));
        let cli = parse(&["-d", "/dev/kbus12", "stats"]).unwrap();
        assert_eq!(cli.device.chosen(), Some(12));
        assert_eq!(cli.device.path(), PathBuf::from("/dev/kbus12"));
        let cli = parse(&["stats"]).unwrap();
        assert_eq!(cli.device.chosen(), None);
        assert_eq!(cli.device.path(), PathBuf::from("/dev/kbus0"));
        let cli = parse(&["--device", "/tmp/bus", "stats"]).unwrap();
        assert_eq!(cli.device.chosen(), None);
        assert!(parse(&["--bus", "1", "--device", "/dev/kbus1", "stats"]).is_err());
    }

    #[test]
    fn data_options() {
        let data = |args: &[&str]| match parse(args).unwrap().cmd {
            Cmd::Send { data, .. } | Cmd::Call { data, .. } => data,
            _ => panic!(),
        };
        let d = data(&["send", "$.A", "hello"]);
        assert_eq!(d.load().unwrap(), b"hello");
        let d = data(&["send", "$.A"]);
        assert_eq!(d.load().unwrap(), b"");
        let d = data(&["call", "$.A", "--hex", "00ff"]);
        assert_eq!(d.load().unwrap(), [0, 0xff]);
        let d = data(&["send", "$.A", "-x", "0x0102"]);
        assert_eq!(d.load().unwrap(), [1, 2]);
        // `-` is stdin, and a data argument may start with a hyphen.
        let d = data(&["send", "$.A", "-"]);
        assert_eq!(d.data.as_deref(), Some("-"));
        let d = data(&["send", "$.A", "-5 degrees"]);
        assert_eq!(d.load().unwrap(), b"-5 degrees");
        let d = data(&["send", "$.A", "--file", "/x"]);
        assert_eq!(d.file, Some(PathBuf::from("/x")));
        assert!(parse(&["send", "$.A", "text", "--file", "/x"]).is_err());
        let d = data(&["send", "$.A", "--hex", "zz"]);
        assert!(d.load().unwrap_err().msg.contains("not a hex digit"));
    }

    #[test]
    fn send_and_call_options() {
        let cli = parse(&["send", "$.A", "--urgent", "--all-or-wait", "-t", "2s"]).unwrap();
        let Cmd::Send {
            urgent,
            all_or_wait,
            all_or_fail,
            timeout,
            ..
        } = cli.cmd
        else {
            panic!()
        };
        assert!(urgent && all_or_wait && !all_or_fail);
        assert_eq!(timeout, Some(Duration::from_secs(2)));
        assert!(parse(&["send", "$.A", "--all-or-wait", "--all-or-fail"]).is_err());
        let cli = parse(&["call", "$.A", "q", "--stateful", "7", "-t", "1"]).unwrap();
        let Cmd::Call {
            stateful,
            timeout,
            format,
            ..
        } = cli.cmd
        else {
            panic!()
        };
        assert_eq!(stateful, Some(7));
        assert_eq!(timeout, Some(Duration::from_secs(1)));
        assert_eq!(format, Format::Data);
        assert!(parse(&["call"]).is_err());
    }

    #[test]
    fn reply_options() {
        assert!(parse(&["reply", "$.A", "--exec", "cat"]).is_ok());
        assert!(parse(&["reply", "$.A", "--echo", "-n", "2"]).is_ok());
        assert!(parse(&["reply", "$.A", "--static", "ok"]).is_ok());
        assert!(parse(&["reply", "$.A", "--static", "6f6b", "--hex"]).is_ok());
        assert!(parse(&["reply", "$.A", "--hex"]).is_err());
        assert!(parse(&["reply", "$.A", "--echo", "--exec", "cat"]).is_err());
        assert!(parse(&["reply", "$.A", "--echo", "--static", "x"]).is_err());
    }

    #[test]
    fn other_commands() {
        assert!(parse(&["bindings", "--json"]).is_ok());
        assert!(parse(&["stats", "--all"]).is_ok());
        assert!(parse(&["errno"]).is_ok());
        assert!(parse(&["errno", "98"]).is_ok());
        assert!(parse(&["bench", "--mode", "req-reply", "-t", "200ms", "-s", "0"]).is_ok());
        assert!(parse(&["completions", "bash"]).is_ok());
        assert!(parse(&["completions", "tcsh"]).is_err());
        assert!(parse(&["manpage"]).is_ok());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn help_has_the_exit_table() {
        let mut c = Cli::command();
        let help = c.render_long_help().to_string();
        assert!(help.contains("Exit status:"), "{help}");
        let call = c.find_subcommand_mut("call").unwrap();
        let help = call.render_long_help().to_string();
        assert!(help.contains("$.KBUS.Replier.GoneAway"), "{help}");
    }

    #[test]
    fn manpage_and_completions_render() {
        let mut man = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.contains(".TH kbus"), "{}", &man[..200.min(man.len())]);
        let mut bash = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "kbus",
            &mut bash,
        );
        assert!(String::from_utf8(bash).unwrap().contains("listen"));
    }
}
