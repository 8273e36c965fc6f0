//! Database servers refuse to run as root: when the tests run as root, a server's files and
//! process belong to its Debian system user (`postgres`, `mysql`).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The uid and gid of a system user (`postgres`, `mysql`) when running as root, since database
/// servers refuse to run as root; `None` when not root (the server runs as us).
pub fn server_owner(system_user: &str) -> Option<(u32, u32)> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, system_user]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Gives a folder to the server's user.
pub fn chown_tree(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        let status = Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(path).status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "chown {}", path.display());
    }
}

/// Runs `command` as the server's user.
pub fn as_owner(command: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}
