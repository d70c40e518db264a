//! The test matrix: which Debian suites give kernels, and which (arch, suite)
//! cells `cargo xtask test` boots.

use crate::target::Arch;
use anyhow::{bail, Result};

/// A Debian suite the rig takes guest kernels and headers from.
#[derive(Debug, PartialEq, Eq)]
pub struct Suite {
    /// Debian's name for it (the apt source line's suite).
    pub name: &'static str,
    /// The kernel series it ships (checked against what it really ships,
    /// so that a suite moving on is reported instead of silently tested).
    pub kernel: &'static str,
    /// Debian arches of the private apt state: those with a kernel there.
    pub arches: &'static [&'static str],
}

/// The suites, oldest first. When Debian stops providing a kernel in one,
/// xtask says so; the fix is that suite's line (e.g. a new `kernel` series,
/// or the next suite's name).
pub const SUITES: &[Suite] = &[
    Suite {
        name: "bullseye",
        kernel: "5.10",
        arches: &["amd64", "armhf", "arm64", "mipsel", "i386"],
    },
    Suite {
        name: "bookworm",
        kernel: "6.1",
        arches: &["amd64", "armhf", "arm64", "mipsel", "s390x", "i386"],
    },
    Suite {
        name: "trixie",
        kernel: "6.12",
        arches: &["amd64", "armhf", "arm64", "s390x"],
    },
    Suite {
        name: "sid",
        kernel: "7.2",
        arches: &["amd64", "armhf", "arm64", "s390x"],
    },
];

impl Suite {
    pub fn by_name(name: &str) -> Result<&'static Suite> {
        match SUITES.iter().find(|s| s.name == name) {
            Some(s) => Ok(s),
            None => bail!(
                "unknown Debian suite {name:?}; the rig knows {} (SUITES in xtask/src/matrix.rs)",
                names()
            ),
        }
    }

    /// Does this suite have kernels for the Debian arch `deb_arch`?
    pub fn has_arch(&self, deb_arch: &str) -> bool {
        self.arches.contains(&deb_arch)
    }

    /// Does a kernel release (`uname -r`) belong to this suite's series?
    pub fn ships(&self, release: &str) -> bool {
        release
            .strip_prefix(self.kernel)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
    }
}

fn names() -> String {
    SUITES.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// The default matrix: every row of the portability issue at least once.
/// The plain bookworm cells come first (fastest feedback), the debug kernel
/// last (slowest).
pub const DEFAULT: &[(Arch, &str)] = &[
    (Arch::X86_64, "bookworm"),
    (Arch::Armv7, "bookworm"),
    (Arch::Mipsel, "bookworm"),
    (Arch::I686, "bookworm"),
    (Arch::X86_64, "bullseye"),
    (Arch::X86_64, "trixie"),
    (Arch::X86_64, "sid"),
    (Arch::Arm64, "trixie"),
    (Arch::Armv7OnArm64, "trixie"),
    (Arch::S390x, "bookworm"),
    (Arch::X86_64Debug, "bookworm"),
];

/// The cell whose kbus.ko is built the way a vendor builds theirs: from a
/// kernel headers directory alone (`cargo xtask kmod --kdir DIR`), with the
/// host's make, the release read from the tree and checked against the
/// booted kernel's. (Its kernel is a Debian one, so it can boot.)
pub const KDIR_CELL: (Arch, &str) = (Arch::I686, "bookworm");

/// `--matrix`: how much of it to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MatrixKind {
    /// x86_64 on bookworm only
    Quick,
    /// Every row of the portability table once (what CI runs)
    Default,
    /// Every user-space arch on every suite that has its kernel, plus the
    /// debug kernel
    Full,
}

/// One cell: a user-space arch on a kernel from a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub arch: Arch,
    pub suite: &'static Suite,
    /// Build kbus.ko with `--kdir` (the kernel's headers directory only).
    pub kdir: bool,
    /// Run the kbus-bridge guest test (Zenoh) in this cell: by default in
    /// [`BRIDGE_CELL`] only; `cargo xtask test --bridge` asks for it in
    /// every selected cell.
    pub bridge: bool,
}

/// The one cell of every matrix that runs the kbus-bridge guest test by
/// default: it exercises user space and loopback sockets, which the other
/// x86_64 kernels would only repeat, and each other arch would be another
/// Zenoh build.
pub const BRIDGE_CELL: (Arch, &str) = (Arch::X86_64, "bookworm");

impl Cell {
    /// `arch@suite`, plus ` (kdir)` for the headers-directory build.
    pub fn name(&self) -> String {
        let kdir = if self.kdir { " (kdir)" } else { "" };
        format!("{}@{}{kdir}", self.arch, self.suite.name)
    }
}

/// The cells selected by `--matrix`, `--arch` and `--kernel`. With `--arch`
/// or `--kernel`, the cells of the matrix that match; if none matches (e.g.
/// `--arch arm64 --kernel bookworm` with the default matrix), that one
/// cell itself.
pub fn select(kind: MatrixKind, arch: Option<Arch>, suite: Option<&str>) -> Result<Vec<Cell>> {
    let suite = suite.map(Suite::by_name).transpose()?;
    let all: Vec<Cell> = match kind {
        MatrixKind::Quick => vec![cell(Arch::X86_64, "bookworm")?],
        MatrixKind::Default => DEFAULT
            .iter()
            .map(|&(a, s)| cell(a, s))
            .collect::<Result<_>>()?,
        MatrixKind::Full => full()?,
    };
    let picked: Vec<Cell> = all
        .iter()
        .copied()
        .filter(|c| arch.map_or(true, |a| a == c.arch) && suite.map_or(true, |s| s == c.suite))
        .collect();
    if !picked.is_empty() {
        return Ok(picked);
    }
    match (arch, suite) {
        (Some(a), s) => {
            let s = match s {
                Some(s) => s,
                None => a.spec()?.suite,
            };
            Ok(vec![Cell {
                arch: a,
                suite: s,
                kdir: false,
                bridge: (a, s.name) == BRIDGE_CELL,
            }])
        }
        (None, Some(s)) => bail!("no cell of the {kind:?} matrix runs on {}", s.name),
        (None, None) => bail!("the {kind:?} matrix is empty"),
    }
}

fn cell(arch: Arch, suite: &str) -> Result<Cell> {
    Ok(Cell {
        arch,
        suite: Suite::by_name(suite)?,
        kdir: (arch, suite) == KDIR_CELL,
        bridge: (arch, suite) == BRIDGE_CELL,
    })
}

/// Every user-space arch on every suite with its kernel arch, then the
/// debug kernel (built from bookworm's source only).
fn full() -> Result<Vec<Cell>> {
    let mut cells = Vec::new();
    for suite in SUITES {
        for arch in Arch::ALL {
            let t = arch.spec()?;
            if suite.has_arch(&t.debian.arch) {
                cells.push(cell(arch, suite.name)?);
            }
        }
    }
    cells.push(cell(Arch::X86_64Debug, "bookworm")?);
    Ok(cells)
}

/// One row of the final table.
pub struct CellResult {
    pub cell: String,
    pub kernel: String,
    pub user_bits: u32,
    pub passed: usize,
    pub failed: usize,
    /// With `--module`: binaries that failed only in documented
    /// differences (spec §12–§14), with their sections.
    pub differs: Vec<String>,
    /// Seconds of the cell's builds: kernel setup, kbus.ko, guest binaries.
    pub build_secs: f64,
    /// Seconds from QEMU start to the result line (the end of the suite).
    pub boot_to_result: Option<f64>,
    /// Seconds of the cell's guest boots (the suite, and a scripted shell).
    pub guest_secs: f64,
    pub error: Option<String>,
}

/// The arch × kernel table printed at the end of `cargo xtask test`.
pub fn table(rows: &[CellResult]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<22} {:<28} {:>5} {:>6} {:>6} {:>6} {:>8} {:>6}\n",
        "arch@suite", "kernel", "user", "passed", "failed", "build", "boot→res", "guest"
    ));
    for r in rows {
        s.push_str(&format!(
            "{:<22} {:<28} {:>5} {:>6} {:>6} {:>6} {:>8} {:>6}\n",
            r.cell,
            r.kernel,
            format!("{}-bit", r.user_bits),
            r.passed,
            r.failed,
            format!("{:.0}s", r.build_secs),
            r.boot_to_result
                .map_or("-".to_string(), |b| format!("{b:.1}s")),
            format!("{:.0}s", r.guest_secs),
        ));
        for d in &r.differs {
            s.push_str(&format!("    differs: {d}\n"));
        }
        if let Some(e) = &r.error {
            s.push_str(&format!("    {e}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_know_their_series() {
        let s = Suite::by_name("bullseye").unwrap();
        assert!(s.ships("5.10.0-32-amd64"));
        assert!(!s.ships("5.100.0-1-amd64"));
        assert!(!s.ships("6.1.0-50-amd64"));
        assert!(Suite::by_name("trixie")
            .unwrap()
            .ships("6.12.117+deb13-amd64"));
        assert!(Suite::by_name("woody").is_err());
    }

    #[test]
    fn default_matrix_covers_every_row() {
        let cells = select(MatrixKind::Default, None, None).unwrap();
        for suite in ["bullseye", "bookworm", "trixie", "sid"] {
            assert!(cells
                .iter()
                .any(|c| c.arch == Arch::X86_64 && c.suite.name == suite));
        }
        for arch in [
            Arch::Armv7,
            Arch::Mipsel,
            Arch::Arm64,
            Arch::S390x,
            Arch::I686,
        ] {
            assert!(cells.iter().any(|c| c.arch == arch), "{arch}");
        }
        assert!(cells
            .iter()
            .any(|c| c.arch == Arch::Armv7OnArm64 && c.suite.name == "trixie"));
    }

    #[test]
    fn selection_narrows_or_names_one_cell() {
        let x = select(MatrixKind::Default, Some(Arch::X86_64), None).unwrap();
        assert_eq!(x.len(), 4);
        let t = select(MatrixKind::Default, None, Some("trixie")).unwrap();
        assert!(t.iter().all(|c| c.suite.name == "trixie"));
        let one = select(MatrixKind::Default, Some(Arch::Arm64), Some("bookworm")).unwrap();
        assert_eq!(one.len(), 1);
    }
}
