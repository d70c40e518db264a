//! The 9p staging share: kbus.ko, the binaries and the run script for one boot.

use crate::target::Target;
use crate::util::{link_or_copy, scratch_beside, target_dir};
use anyhow::Result;
use std::fs;
use std::path::{Path, PathBuf};

/// A host binary to run in the guest.
#[derive(Clone, Debug)]
pub struct Payload {
    /// Name used in the share and in the result lines.
    pub name: String,
    pub path: PathBuf,
    pub args: Vec<String>,
}

impl Payload {
    pub fn new(path: PathBuf, args: Vec<String>) -> Payload {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "payload".into());
        Payload { name, path, args }
    }
}

/// What the guest runs: binaries (one boot, in order), a shell command, or
/// an interactive shell on the console with tools in `PATH` and the project
/// tree mounted at `/mnt/project`.
pub enum Work {
    Bins(Vec<Payload>),
    Shell(String),
    /// `script`: typed into the shell instead of our standard input.
    Interactive {
        tools: Vec<Payload>,
        script: Option<String>,
    },
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A staging folder shared into the guest with 9p; removed on drop.
pub struct Share {
    pub dir: PathBuf,
    /// A second share, mounted at `/mnt/project` (interactive shells).
    pub project: Option<PathBuf>,
    /// Console input to type once the interactive shell is ready.
    pub script: Option<String>,
}

impl Drop for Share {
    fn drop(&mut self) {
        if std::env::var_os("KBUS_KEEP_SHARE").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Remove share folders left by runs that were killed (their pid is gone).
/// Names are `.share.tmp-<pid>-<nanos>` (see `scratch_beside`).
fn remove_stale_shares(base: &Path) {
    let Ok(rd) = fs::read_dir(base) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".share.tmp-") else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Stage kbus.ko, the binaries and the run script in a fresh share folder.
pub fn stage(t: &Target, ko: Option<&Path>, devices: u32, work: &Work) -> Result<Share> {
    let base = target_dir().join("rig").join(t.arch.name());
    fs::create_dir_all(&base)?;
    remove_stale_shares(&base);
    let interactive = matches!(work, Work::Interactive { .. });
    let share = Share {
        dir: scratch_beside(&base.join("share")),
        project: interactive.then(crate::util::workspace_root),
        script: match work {
            Work::Interactive { script, .. } => script.clone(),
            _ => None,
        },
    };
    fs::create_dir_all(share.dir.join("bin"))?;
    let mut env = format!("KBUS_DEVICES={devices}\n");
    // The guest init checks kmemleak after rmmod (debug kernel).
    env.push_str(if t.guest.kmemleak_check {
        "RIG_KMEMLEAK=1\n"
    } else {
        "RIG_KMEMLEAK=\n"
    });
    if let Some(ko) = ko {
        link_or_copy(ko, &share.dir.join("kbus.ko"))?;
        env.push_str("RIG_KO=kbus.ko\n");
    } else {
        env.push_str("RIG_KO=\n");
    }
    if interactive {
        env.push_str("RIG_INTERACTIVE=1\nRIG_PROJECT=1\n");
    } else {
        env.push_str("RIG_INTERACTIVE=\nRIG_PROJECT=\n");
    }
    fs::write(share.dir.join("rig.env"), env)?;

    let mut script = String::from("# Written by cargo xtask\ncd /mnt/host\n");
    match work {
        Work::Shell(cmd) => {
            script.push_str(cmd);
            script.push('\n');
        }
        Work::Interactive { tools, .. } => {
            for b in tools {
                link_or_copy(&b.path, &share.dir.join("bin").join(&b.name))?;
            }
            script.push_str(
                "export PATH=/mnt/host/bin:$PATH PS1='kbus-guest:\\w# '\n\
                 echo\n\
                 echo \"KBUS guest: $(uname -r) $(uname -m), kbus.ko loaded ($(ls /dev | grep -c '^kbus') devices)\"\n\
                 echo \"In PATH (/mnt/host/bin): $(ls /mnt/host/bin | tr '\\n' ' ')\"\n\
                 echo 'Project tree: /mnt/project.  exit (or Ctrl-D) powers off.'\n\
                 echo KBUS-SHELL-READY\n\
                 sh -i\n",
            );
        }
        Work::Bins(bins) if bins.len() == 1 => {
            let b = &bins[0];
            link_or_copy(&b.path, &share.dir.join("bin").join(&b.name))?;
            script.push_str(&format!("./bin/{}", sh_quote(&b.name)));
            for a in &b.args {
                script.push(' ');
                script.push_str(&sh_quote(a));
            }
            script.push('\n');
        }
        Work::Bins(bins) => {
            script.push_str("failed=0\n");
            let mut used = std::collections::BTreeSet::new();
            for b in bins {
                let mut name = b.name.clone();
                let mut n = 1;
                while !used.insert(name.clone()) {
                    n += 1;
                    name = format!("{}.{n}", b.name);
                }
                link_or_copy(&b.path, &share.dir.join("bin").join(&name))?;
                let args: String = b.args.iter().map(|a| format!(" {}", sh_quote(a))).collect();
                script.push_str(&format!(
                    "echo 'KBUS-RIG-STEP-BEGIN: {name}'\n\
                     ./bin/{q}{args}\n\
                     rc=$?\n\
                     echo \"KBUS-RIG-STEP: {name} $rc\"\n\
                     [ $rc -eq 0 ] || failed=$((failed + 1))\n",
                    q = sh_quote(&name),
                ));
            }
            script.push_str("exit $failed\n");
        }
    }
    fs::write(share.dir.join("run.sh"), script)?;
    Ok(share)
}
