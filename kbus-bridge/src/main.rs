//! `kbus-bridge`: join a KBUS device to others over Zenoh and/or Limpet
//! links. See `kbus-bridge --help` and `kbus-bridge/README.md`.

use std::process::ExitCode;

use kbus_bridge::bridge::{self, LinkSpec, Options, ZenohOptions};
use kbus_bridge::limpet::{Address, LimpetOptions};

const USAGE: &str = "\
usage: kbus-bridge [options] [<address> (--server | --client)]

Joins the KBUS device /dev/kbus<N> to other devices: over Zenoh (any of
--connect, --listen, --zenoh-config) and/or over Limpet links (spec §11).

  -k, --bus, --kbus <N>      KBUS device number (default 0)
  --id <N>                   this bridge's network id, non-zero and distinct
                             from every other bridge's (Limpet-only default:
                             1 for a client, 2 for a server, as runlimpet)
  -m, --message <NAME>       the name to proxy (default $.*)
  -v, --verbose <0|1|2>      0 quiet, 1 links and errors (default), 2 messages
  Zenoh:
  --connect <ENDPOINT>       e.g. tcp/127.0.0.1:7447 (repeatable)
  --listen <ENDPOINT>        e.g. tcp/127.0.0.1:7447 (repeatable)
  --zenoh-config <FILE>      a Zenoh JSON5 configuration file
  --zenoh                    use Zenoh with its defaults
  --multicast                keep Zenoh multicast scouting on (default off)
  Limpet (runlimpet style, repeatable):
  <address> -s|--server      listen on <host:port> or a Unix socket path
  <address> -c|--client      connect to it
  --limpet-server <ADDR>, --limpet-client <ADDR>   the same in one option
  --version, --help";

/// What to run.
enum Run {
    Bridge(Options),
    /// The plain-Zenoh baseline of the bench (hidden).
    #[cfg(feature = "zenoh")]
    Bench(String, ZenohOptions, u64, u64),
}

fn parse(args: Vec<String>) -> Result<Option<Run>, String> {
    let mut bus = 0;
    let mut id = None;
    let mut message = "$.*".to_string();
    let mut verbose = 1;
    let mut zenoh = ZenohOptions::default();
    let mut use_zenoh = false;
    let mut limpets = Vec::new();
    let mut address: Option<String> = None;
    let mut bench = None;
    let mut it = args.into_iter();
    let num = |v: Option<String>, what: &str| -> Result<u32, String> {
        v.ok_or_else(|| format!("{what} needs a value"))?
            .parse()
            .map_err(|_| format!("{what}: not a number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "-V" | "--version" => {
                let links = if cfg!(feature = "zenoh") {
                    "Zenoh and Limpet"
                } else {
                    "Limpet only"
                };
                println!("kbus-bridge {} ({links})", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "-k" | "--bus" | "--kbus" | "-kbus" => bus = num(it.next(), &a)?,
            "--id" | "-id" => id = Some(num(it.next(), &a)?),
            "-m" | "--message" | "-message" => {
                message = it.next().ok_or("--message needs a name")?;
            }
            "-v" | "--verbose" | "-verbose" => verbose = num(it.next(), &a)? as u8,
            "--connect" => {
                zenoh
                    .connect
                    .push(it.next().ok_or("--connect needs an endpoint")?);
                use_zenoh = true;
            }
            "--listen" => {
                zenoh
                    .listen
                    .push(it.next().ok_or("--listen needs an endpoint")?);
                use_zenoh = true;
            }
            "--zenoh-config" => {
                zenoh.config = Some(it.next().ok_or("--zenoh-config needs a file")?.into());
                use_zenoh = true;
            }
            "--zenoh" => use_zenoh = true,
            "--zenoh-bench" => {
                let role = it.next().ok_or("--zenoh-bench serve|run [N M]")?;
                let (n, m) = if role == "run" {
                    (num(it.next(), "N")?, num(it.next(), "M")?)
                } else {
                    (0, 0)
                };
                bench = Some((role, u64::from(n), u64::from(m)));
            }
            "--multicast" => zenoh.multicast = true,
            "-s" | "--server" | "-server" | "-c" | "--client" | "-client" => {
                let addr = address
                    .take()
                    .ok_or_else(|| format!("{a} needs an <address> before it"))?;
                limpets.push(LimpetOptions {
                    address: Address::parse(&addr),
                    server: matches!(a.as_str(), "-s" | "--server" | "-server"),
                });
            }
            "--limpet-server" | "--limpet-client" => {
                let addr = it.next().ok_or_else(|| format!("{a} needs an address"))?;
                limpets.push(LimpetOptions {
                    address: Address::parse(&addr),
                    server: a.ends_with("server"),
                });
            }
            _ if !a.starts_with('-') && address.is_none() => address = Some(a),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    if (use_zenoh || bench.is_some()) && !cfg!(feature = "zenoh") {
        return Err(bridge::NO_ZENOH.into());
    }
    #[cfg(feature = "zenoh")]
    if let Some((role, n, m)) = bench {
        return Ok(Some(Run::Bench(role, zenoh, n, m)));
    }
    if let Some(a) = address {
        return Err(format!("{a}: say --server or --client"));
    }
    if !use_zenoh && limpets.is_empty() {
        return Err(format!(
            "no link: give Zenoh endpoints or a Limpet address\n{USAGE}"
        ));
    }
    let net_id = match id {
        Some(0) => return Err("--id must be non-zero".into()),
        Some(n) => n,
        None if !use_zenoh && limpets.len() == 1 => {
            if limpets[0].server {
                2
            } else {
                1
            }
        }
        None => return Err("give this bridge a network id with --id".into()),
    };
    kbus_wire::name::validate_binding_name(message.as_bytes())
        .map_err(|e| format!("--message {message}: {e}"))?;
    let mut links = Vec::new();
    if use_zenoh {
        links.push(LinkSpec::Zenoh(zenoh));
    }
    links.extend(limpets.into_iter().map(LinkSpec::Limpet));
    Ok(Some(Run::Bridge(Options {
        bus,
        net_id,
        message,
        verbose,
        links,
    })))
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1).collect()) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kbus-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    // One worker for all of the bridge's own tasks, the core loop included
    // (spawned, not run by `block_on` on the main thread): handing a
    // message from the Ksock reader to the core to a link is then a local
    // wake-up on one thread, not a wake-up of another thread per message.
    // (Zenoh runs its own I/O threads, and needs a multi-thread runtime.)
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kbus-bridge: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let task = match opts {
        Run::Bridge(o) => rt.spawn(bridge::run(o)),
        #[cfg(feature = "zenoh")]
        Run::Bench(role, z, n, m) => rt.spawn(kbus_bridge::bench::main(role, z, n, m)),
    };
    let result = rt
        .block_on(task)
        .unwrap_or_else(|e| Err(format!("main task: {e}")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kbus-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}
