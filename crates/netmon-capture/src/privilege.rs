//! Dropping privileges once the capture handles are open.
//!
//! Opening a capture needs CAP_NET_RAW (root, or a binary given the capability with
//! `setcap`); reading packets from an open handle does not. So a monitor opens every handle
//! first and then calls [`drop_privileges`]: with a user, it takes that user's groups, group
//! and user id (`initgroups`, `setgid`, `setuid`); in every case it empties the capability
//! sets (effective, permitted, inheritable, ambient) and sets `no_new_privs`, so there is no way
//! back — not even through a set-uid program. Then it checks: the real and effective ids are
//! the user's, `CapEff` is empty and `setuid(0)` fails.
//!
//! Call it before starting other threads: capability sets are per thread (`setuid` is
//! applied to every thread by the C library, capabilities are not).

use std::fmt;

/// What [`drop_privileges`] left the process with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// Real and effective user id now.
    pub uid: u32,
    /// Real and effective group id now.
    pub gid: u32,
    /// Supplementary groups now.
    pub groups: Vec<u32>,
    /// Whether a user switch happened (`false`: only capabilities were dropped).
    pub switched_user: bool,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "running as uid {} gid {} with no capabilities",
            self.uid, self.gid
        )
    }
}

/// Why privileges could not be dropped. Capturing must not go on after this error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    /// No such user in the user database.
    #[error("no user named {0:?} (pick an existing unprivileged account, e.g. nobody)")]
    NoSuchUser(String),
    /// Switching user needs root (or CAP_SETUID/CAP_SETGID).
    #[error("cannot switch to user {user:?}: {source} (only root can change user)")]
    Switch {
        /// The user asked for.
        user: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A capability set could not be cleared.
    #[error("cannot drop capabilities: {0}")]
    Capabilities(String),
    /// The check after dropping failed (a way back to root remained).
    #[error("privileges were not fully dropped: {0}")]
    Verify(String),
    /// This platform has no implementation.
    #[error("dropping privileges is not supported on this platform")]
    Unsupported,
}

/// Switches to `user` (if given) and drops every capability, irrevocably; see the module docs.
pub fn drop_privileges(user: Option<&str>) -> Result<Dropped, PrivilegeError> {
    imp::drop_privileges(user, false)
}

/// Like [`drop_privileges`] without a user switch, but keeps the two capabilities that
/// process attribution needs to read other processes' `/proc/PID/fd` (CAP_SYS_PTRACE for the
/// ptrace access check, CAP_DAC_READ_SEARCH for the directories) and nothing else: no capture,
/// no network administration, no way to gain more (`no_new_privs`).
pub fn drop_privileges_keeping_process_inspection() -> Result<Dropped, PrivilegeError> {
    imp::drop_privileges(None, true)
}

/// The effective capability mask of this thread, from `/proc/thread-self/status` (`CapEff`).
/// `None` where that cannot be read (not Linux).
pub fn effective_capabilities() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let line = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use nix::unistd::{Gid, Uid, User};

    fn io(e: nix::Error) -> std::io::Error {
        std::io::Error::from_raw_os_error(e as i32)
    }

    pub(super) fn drop_privileges(
        user: Option<&str>,
        keep_inspection: bool,
    ) -> Result<Dropped, PrivilegeError> {
        let mut switched = false;
        if let Some(name) = user {
            let u = User::from_name(name)
                .map_err(|e| PrivilegeError::Switch {
                    user: name.to_owned(),
                    source: io(e),
                })?
                .ok_or_else(|| PrivilegeError::NoSuchUser(name.to_owned()))?;
            let switch = |e: nix::Error| PrivilegeError::Switch {
                user: name.to_owned(),
                source: io(e),
            };
            let cname = std::ffi::CString::new(name)
                .map_err(|_| PrivilegeError::NoSuchUser(name.to_owned()))?;
            // Groups first (needs root), then the group id, then the user id (after which
            // nothing else can be changed).
            nix::unistd::initgroups(&cname, u.gid).map_err(switch)?;
            nix::unistd::setresgid(u.gid, u.gid, u.gid).map_err(switch)?;
            nix::unistd::setresuid(u.uid, u.uid, u.uid).map_err(switch)?;
            switched = true;
        }
        // Every capability set of this thread, the bounding set as far as allowed (it needs
        // CAP_SETPCAP, gone after a user switch; with no capabilities left it no longer
        // matters), then no_new_privs: exec can never grant anything again.
        // With `keep_inspection` the effective and permitted sets are lowered to the two
        // inspection capabilities instead (lowering is all a thread can do; effective first,
        // as it must stay within permitted).
        let keep: caps::CapsHashSet = if keep_inspection {
            [
                caps::Capability::CAP_SYS_PTRACE,
                caps::Capability::CAP_DAC_READ_SEARCH,
            ]
            .into_iter()
            .collect()
        } else {
            caps::CapsHashSet::new()
        };
        for set in [
            caps::CapSet::Ambient,
            caps::CapSet::Effective,
            caps::CapSet::Inheritable,
            caps::CapSet::Permitted,
        ] {
            let lowered = match set {
                caps::CapSet::Effective | caps::CapSet::Permitted => caps::set(None, set, &keep),
                _ => caps::clear(None, set),
            };
            lowered.map_err(|e| PrivilegeError::Capabilities(format!("{set:?}: {e}")))?;
        }
        let kept = keep.iter().fold(0u64, |m, c| m | (1u64 << c.index()));
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| PrivilegeError::Capabilities(format!("no_new_privs: {e}")))?;

        // Verify.
        if switched && (nix::unistd::setuid(Uid::from_raw(0)).is_ok() || Uid::effective().is_root())
        {
            return Err(PrivilegeError::Verify("setuid(0) still succeeds".into()));
        }
        if let Some(eff) = effective_capabilities().filter(|&c| c != kept) {
            return Err(PrivilegeError::Verify(format!("CapEff is {eff:#x}")));
        }
        let groups = nix::unistd::getgroups()
            .map(|g| g.into_iter().map(Gid::as_raw).collect())
            .unwrap_or_default();
        Ok(Dropped {
            uid: Uid::effective().as_raw(),
            gid: Gid::effective().as_raw(),
            groups,
            switched_user: switched,
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    pub(super) fn drop_privileges(
        _user: Option<&str>,
        _keep_inspection: bool,
    ) -> Result<Dropped, PrivilegeError> {
        Err(PrivilegeError::Unsupported)
    }
}
