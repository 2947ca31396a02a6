//! `/proc`: which process holds a socket inode (`/proc/PID/fd/N -> socket:[INODE]`), and what
//! that process is (`comm`, `exe`, `cmdline`, `status`, `stat`, `cgroup`).
//!
//! Everything read here is bounded (fixed-size reads, capped directory walks) and a process
//! that vanishes mid-read is simply skipped: `/proc` changes under our feet.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{CMDLINE_MAX, ProcessInfo};

/// At most this many fds are read per process (a process may hold millions).
const MAX_FDS_PER_PROCESS: usize = 1 << 20;
/// At most this many `/proc` entries per scan (pid_max is at most 4 Mi).
const MAX_PROCS: usize = 1 << 22;
/// Bytes read from `status`, `stat`, `cgroup`.
const SMALL_FILE_MAX: u64 = 8192;
/// Bytes kept of a cgroup path.
const CGROUP_MAX: usize = 512;

/// Where one socket inode was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The process.
    pub(crate) pid: u32,
    /// The fd number in it (to re-check the mapping with one `readlink`).
    pub(crate) fd: u32,
}

/// The result of walking `/proc/*/fd`.
#[derive(Debug, Default)]
pub(crate) struct FdScan {
    /// Socket inode -> first process (lowest pid) holding it.
    pub(crate) inodes: HashMap<u64, Owner>,
    /// Every pid seen.
    pub(crate) pids: HashSet<u32>,
    /// Processes whose fd directory could not be read (EACCES: another user's), with the uid
    /// that owns their `/proc` entry.
    pub(crate) denied: HashMap<u32, u32>,
    /// Processes that held at least one socket.
    pub(crate) holders: HashSet<u32>,
}

impl FdScan {
    /// Whether a process of `uid` was hidden from us.
    pub(crate) fn denied_uid(&self, uid: u32) -> bool {
        self.denied.values().any(|&u| u == uid)
    }
}

/// Walks `/proc/*/fd` of every process for which `select(pid)` holds, adding to `into`
/// (every pid seen is added to `into.pids`).
pub(crate) fn scan_fds(root: &Path, select: impl Fn(u32) -> bool, into: &mut FdScan) {
    let Ok(dir) = fs::read_dir(root) else {
        return;
    };
    let mut fd_path = PathBuf::new();
    for entry in dir.take(MAX_PROCS).flatten() {
        let Some(pid) = parse_pid(&entry.file_name()) else {
            continue;
        };
        into.pids.insert(pid);
        if !select(pid) {
            continue;
        }
        fd_path.clear();
        fd_path.push(entry.path());
        fd_path.push("fd");
        let fds = match fs::read_dir(&fd_path) {
            Ok(d) => d,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    if let Ok(m) = entry.metadata() {
                        into.denied.insert(pid, m.uid());
                    }
                }
                continue; // or the process is gone
            }
        };
        for fd in fds.take(MAX_FDS_PER_PROCESS).flatten() {
            let Some(fdn) = parse_pid(&fd.file_name()) else {
                continue;
            };
            let Ok(link) = fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(inode) = socket_inode(link.as_os_str()) {
                into.inodes.entry(inode).or_insert(Owner { pid, fd: fdn });
                into.holders.insert(pid);
            }
        }
    }
}

/// Whether `/proc/PID/fd/FD` still is the socket `inode` (one `readlink`).
pub(crate) fn still_owns(root: &Path, owner: Owner, inode: u64) -> bool {
    let p = root
        .join(owner.pid.to_string())
        .join("fd")
        .join(owner.fd.to_string());
    fs::read_link(p).is_ok_and(|l| socket_inode(l.as_os_str()) == Some(inode))
}

/// A decimal `u32` directory name (`/proc/PID`, `/proc/PID/fd/N`).
fn parse_pid(name: &OsStr) -> Option<u32> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `socket:[12345]` -> 12345.
pub(crate) fn socket_inode(link: &OsStr) -> Option<u64> {
    let b = link.as_bytes();
    let digits = b.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Reads at most `max` bytes of a file. The buffer is allocated whole first: procfs makes a
/// file's whole text again for every `read`, so the small first reads of an empty `Vec`
/// (32, 32, 64, ... bytes) would cost one generation each.
fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let f = fs::File::open(path).ok()?;
    let mut v = Vec::with_capacity(usize::try_from(max).unwrap_or(0).saturating_add(1));
    f.take(max).read_to_end(&mut v).ok()?;
    Some(v)
}

/// The process's start time in clock ticks after boot (`/proc/PID/stat` field 22): with the
/// pid, it names one process (pids are reused).
pub(crate) fn start_time(root: &Path, pid: u32) -> Option<u64> {
    let b = read_bounded(&root.join(pid.to_string()).join("stat"), SMALL_FILE_MAX)?;
    parse_start_time(&b)
}

/// `pid (comm) state ppid ... starttime ...`: the comm may hold spaces and parentheses, so
/// fields are counted after the last `)`; starttime is field 22, the 20th after it.
pub(crate) fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&c| c == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The effective uid from `/proc/PID/status` (`Uid:\treal\teffective\tsaved\tfs`).
pub(crate) fn parse_status_euid(status: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(status).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// `/proc/PID/cmdline`: NUL-separated arguments, shown joined by spaces, at most
/// [`CMDLINE_MAX`] bytes (cut at a character boundary); whether it was cut.
pub(crate) fn parse_cmdline(raw: &[u8]) -> (String, bool) {
    let truncated = raw.len() > CMDLINE_MAX;
    let raw = raw.get(..CMDLINE_MAX).unwrap_or(raw);
    let trimmed = raw.strip_suffix(b"\0").unwrap_or(raw);
    let joined: Vec<u8> = trimmed
        .iter()
        .map(|&c| if c == 0 { b' ' } else { c })
        .collect();
    let mut s = String::from_utf8_lossy(&joined).into_owned();
    // Lossy decoding may grow the text (U+FFFD is 3 bytes): cut back within the bound.
    if s.len() > CMDLINE_MAX {
        let mut end = CMDLINE_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    (s, truncated)
}

/// `/proc/PID/cgroup`: the cgroup v2 path (`0::/path`), else the first hierarchy's path.
pub(crate) fn parse_cgroup(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut first = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(_ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" {
            first = Some(path);
            break;
        }
        if first.is_none() {
            first = Some(path);
        }
    }
    let p = first?.trim();
    if p.is_empty() {
        return None;
    }
    let mut end = p.len().min(CGROUP_MAX);
    while !p.is_char_boundary(end) {
        end -= 1;
    }
    p.get(..end).map(str::to_owned)
}

/// The container id in a cgroup path: the last run of exactly 64 hex digits, as Docker
/// (`docker-ID.scope`, `/docker/ID`), containerd (`cri-containerd-ID.scope`), CRI-O
/// (`crio-ID.scope`) and Podman (`libpod-ID.scope`) name them.
pub(crate) fn container_id(cgroup: &str) -> Option<String> {
    let b = cgroup.as_bytes();
    let mut best = None;
    let mut start = None;
    for (i, c) in b.iter().chain(std::iter::once(&b'/')).enumerate() {
        if c.is_ascii_hexdigit() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            if i - s == 64 {
                best = Some(s);
            }
        }
    }
    best.and_then(|s| cgroup.get(s..s + 64))
        .map(str::to_ascii_lowercase)
}

/// What `/proc/PID` says about a process; `None` when it is gone. Unreadable parts (another
/// user's `exe`) are `None` fields.
pub(crate) fn read_process(root: &Path, pid: u32) -> Option<ProcessInfo> {
    let dir = root.join(pid.to_string());
    let comm = read_bounded(&dir.join("comm"), 64)?;
    let name = String::from_utf8_lossy(comm.strip_suffix(b"\n").unwrap_or(&comm)).into_owned();
    let exe = fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let (cmdline, cmdline_truncated) = read_bounded(&dir.join("cmdline"), CMDLINE_MAX as u64 + 1)
        .map(|raw| parse_cmdline(&raw))
        .unwrap_or_default();
    let uid = read_bounded(&dir.join("status"), SMALL_FILE_MAX)
        .and_then(|s| parse_status_euid(&s))
        .or_else(|| fs::metadata(&dir).ok().map(|m| m.uid()));
    let cgroup = read_bounded(&dir.join("cgroup"), SMALL_FILE_MAX).and_then(|c| parse_cgroup(&c));
    let container_id = cgroup.as_deref().and_then(container_id);
    Some(ProcessInfo {
        pid,
        name,
        exe,
        cmdline,
        cmdline_truncated,
        uid,
        user: None,
        cgroup,
        container_id,
        start_time: start_time(root, pid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(OsStr::new("socket:[12345]")), Some(12345));
        for bad in [
            "socket:[]",
            "socket:[12a]",
            "socket:12",
            "pipe:[5]",
            "socket:[99999999999999999999999]",
            "/dev/null",
        ] {
            assert_eq!(socket_inode(OsStr::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn stat_start_time_after_tricky_comm() {
        let stat = b"4242 (a) b) (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(parse_start_time(stat), Some(987_654));
        assert_eq!(parse_start_time(b"1 (x) S 1 2"), None);
        assert_eq!(parse_start_time(b"no paren"), None);
    }

    #[test]
    fn status_uid() {
        let s = b"Name:\tpython3\nUmask:\t0022\nState:\tS\nUid:\t1000\t1001\t1000\t1000\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_status_euid(s), Some(1001));
        assert_eq!(parse_status_euid(b"Uid:\t5\n"), None);
        assert_eq!(parse_status_euid(b"\xff\xfe"), None);
    }

    #[test]
    fn cmdline_join_and_bound() {
        assert_eq!(
            parse_cmdline(b"python3\0-c\0print(1)\0"),
            ("python3 -c print(1)".into(), false)
        );
        assert_eq!(parse_cmdline(b""), (String::new(), false));
        let long = vec![b'a'; CMDLINE_MAX + 1];
        let (s, cut) = parse_cmdline(&long);
        assert!(cut);
        assert_eq!(s.len(), CMDLINE_MAX);
        // Invalid UTF-8 grows under lossy decoding but stays within the bound.
        let bad = vec![0xffu8; CMDLINE_MAX];
        let (s, cut) = parse_cmdline(&bad);
        assert!(!cut);
        assert!(s.len() <= CMDLINE_MAX && s.starts_with('\u{fffd}'));
    }

    #[test]
    fn cgroups_and_container_ids() {
        let id = "4f3c2b1a".repeat(8);
        let v2 = format!("0::/system.slice/docker-{id}.scope\n");
        assert_eq!(
            parse_cgroup(v2.as_bytes()).as_deref(),
            Some(&*format!("/system.slice/docker-{id}.scope"))
        );
        assert_eq!(
            container_id(&format!("/system.slice/docker-{id}.scope")),
            Some(id.clone())
        );
        assert_eq!(
            container_id(&format!(
                "/kubepods/besteffort/pod1234/cri-containerd-{}.scope",
                id.to_uppercase()
            )),
            Some(id.clone())
        );
        assert_eq!(container_id(&format!("/docker/{id}")), Some(id.clone()));
        // 63 or 65 hex digits are not an id; nor is a plain user slice.
        assert_eq!(container_id(&format!("/x/{}", &id[..63])), None);
        assert_eq!(container_id(&format!("/x/{id}a")), None);
        assert_eq!(
            container_id("/user.slice/user-1000.slice/session-2.scope"),
            None
        );
        // v1: the first hierarchy when there is no v2 line.
        let v1 = b"12:pids:/user.slice\n11:cpu,cpuacct:/user.slice/x\n";
        assert_eq!(parse_cgroup(v1).as_deref(), Some("/user.slice"));
        assert_eq!(parse_cgroup(b"0::/\n").as_deref(), Some("/"));
        assert_eq!(parse_cgroup(b"garbage\n"), None);
        assert_eq!(parse_cgroup(b"0::\n"), None);
    }

    /// A fake `/proc` tree: fd symlinks to `socket:[N]`, one unreadable process when not root.
    #[test]
    fn scans_a_fake_proc_tree() {
        let root = std::env::temp_dir().join(format!("netmon-fakeproc-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (pid, links) in [
            (
                10u32,
                &[
                    ("0", "/dev/null"),
                    ("3", "socket:[111]"),
                    ("4", "socket:[222]"),
                ][..],
            ),
            (20, &[("5", "socket:[222]"), ("6", "pipe:[9]")][..]),
            (30, &[("7", "socket:[333]")][..]),
        ] {
            let fd = root.join(pid.to_string()).join("fd");
            fs::create_dir_all(&fd).unwrap();
            for (n, target) in links {
                symlink(target, fd.join(n)).unwrap();
            }
        }
        fs::create_dir_all(root.join("self")).unwrap(); // not a pid
        fs::write(root.join("10").join("comm"), "server\n").unwrap();
        fs::write(root.join("10").join("cmdline"), "server\0--port\08080\0").unwrap();
        let mut all = FdScan::default();
        scan_fds(&root, |_| true, &mut all);
        assert_eq!(all.pids, HashSet::from([10, 20, 30]));
        assert_eq!(all.inodes.get(&111), Some(&Owner { pid: 10, fd: 3 }));
        assert_eq!(all.inodes.get(&333), Some(&Owner { pid: 30, fd: 7 }));
        // Shared sockets: one owner, either holder (readdir order).
        assert!(matches!(
            all.inodes.get(&222),
            Some(Owner { pid: 10 | 20, .. })
        ));
        assert_eq!(all.inodes.len(), 3);
        assert_eq!(all.holders, HashSet::from([10, 20, 30]));
        assert!(still_owns(&root, Owner { pid: 10, fd: 3 }, 111));
        assert!(!still_owns(&root, Owner { pid: 10, fd: 3 }, 222));
        assert!(!still_owns(&root, Owner { pid: 99, fd: 3 }, 111));
        // Only some: pids 10 and 20 are skipped, but still seen.
        let mut new = FdScan::default();
        scan_fds(&root, |pid| pid == 30, &mut new);
        assert_eq!(new.inodes.keys().copied().collect::<Vec<_>>(), vec![333]);
        assert_eq!(new.pids.len(), 3);
        let p = read_process(&root, 10).unwrap();
        assert_eq!(
            (p.pid, p.name.as_str(), p.cmdline.as_str()),
            (10, "server", "server --port 8080")
        );
        assert_eq!((p.exe, p.cgroup, p.start_time), (None, None, None));
        assert!(read_process(&root, 20).is_none(), "no comm: gone");
        fs::remove_dir_all(&root).unwrap();
    }

    proptest! {
        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_start_time(&b);
            let _ = parse_status_euid(&b);
            let (s, _) = parse_cmdline(&b);
            prop_assert!(s.len() <= CMDLINE_MAX);
            if let Some(c) = parse_cgroup(&b) {
                prop_assert!(c.len() <= CGROUP_MAX);
                let _ = container_id(&c);
            }
            let _ = socket_inode(OsStr::from_bytes(&b));
        }
    }
}
