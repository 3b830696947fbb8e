//! Workload attestation: what the kernel says about the process at the other
//! end of the Workload API socket, never what the process says about itself.
//!
//! The socket's peer credentials (`SO_PEERCRED`: pid, uid, gid, taken by the
//! kernel at `connect`) name the process; `/proc/<pid>` gives its
//! executable (path and SHA-256, read through `/proc/<pid>/exe`, so a
//! replaced file on disk is not what is hashed), its supplementary groups
//! and its cgroup, from which container ids and Kubernetes pod UIDs are
//! read. A pid can be reused once its process exits: the process read here
//! must have started before the connection was accepted, and must be the
//! same (same start time) after everything was read, or attestation fails.
//! Where the kernel gives one (`SO_PEERPIDFD`, Linux 6.5), the connection
//! also holds a pidfd of the process that connected, taken at `connect`:
//! after everything was read that process must still be alive with the pid
//! read (a live process's pid is never another's), which closes what the
//! start-time check leaves open (a pid reused while the connection waited
//! in the listen backlog; a process that connected, passed the socket on
//! and exited).
//!
//! User and group names come from `/etc/passwd` and `/etc/group` as the
//! agent sees them (no NSS): on hosts with directory-backed accounts,
//! select by number.
//!
//! A pod's namespace, service account and labels are not in `/proc`: the
//! agent asks the kubelet for the pod of the UID read here ([`Pod`], filled
//! in by `kubelet.rs` after this file's checks), so for those the kubelet
//! is trusted as the kernel is for the rest.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use lightwell_proto::{Selector, SelectorKind};

/// Linux reports process start times in clock ticks of `USER_HZ`, which is
/// 100 on every architecture Linux supports (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SEC: f64 = 100.0;

/// Why a peer could not be attested.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// The socket gave no peer credentials or no pid.
    #[error("the kernel gave no peer credentials for the connection")]
    NoCredentials,
    /// The process is gone or changed while it was read.
    #[error("the calling process exited or changed while it was being attested")]
    Changed,
    /// `/proc` could not be read.
    #[error("reading /proc for the calling process: {0}")]
    Proc(String),
}

/// What the kernel says about a workload process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    /// Process id.
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// User name of `uid`, if `/etc/passwd` has one.
    pub user: Option<String>,
    /// Group name of `gid`, if `/etc/group` has one.
    pub group: Option<String>,
    /// Supplementary group ids.
    pub supplementary_gids: Vec<u32>,
    /// Their names, where `/etc/group` has them.
    pub supplementary_groups: Vec<String>,
    /// The executable's path.
    pub path: Option<String>,
    /// SHA-256 of the executable, lower-case hex (read only when a selector needs it).
    pub sha256: Option<String>,
    /// Container id from the cgroup path (containerd, CRI-O, Docker).
    pub container_id: Option<String>,
    /// Kubernetes pod UID from the cgroup path.
    pub pod_uid: Option<String>,
    /// What the kubelet says about that pod, when an entry needed it and the
    /// kubelet knew the pod.
    pub pod: Option<Pod>,
}

/// A pod as the kubelet describes it: the facts `k8s:ns`, `k8s:sa` and
/// `k8s:pod-label` select by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pod {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.serviceAccountName`; static pods have none.
    pub service_account: Option<String>,
    /// `metadata.labels`.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Process {
    /// Whether every selector holds for this process.
    pub fn matches(&self, selectors: &[Selector]) -> bool {
        selectors.iter().all(|s| self.holds(s))
    }

    fn holds(&self, s: &Selector) -> bool {
        let v = s.value();
        let is = |o: &Option<String>| o.as_deref() == Some(v);
        match s.kind() {
            SelectorKind::Uid => self.uid.to_string() == v,
            SelectorKind::User => is(&self.user),
            SelectorKind::Gid => self.gid.to_string() == v,
            SelectorKind::Group => is(&self.group),
            SelectorKind::SupplementaryGid => self.supplementary_gids.iter().any(|g| g.to_string() == v),
            SelectorKind::SupplementaryGroup => self.supplementary_groups.iter().any(|g| g == v),
            SelectorKind::Path => is(&self.path),
            SelectorKind::Sha256 => is(&self.sha256),
            SelectorKind::ContainerId => is(&self.container_id),
            SelectorKind::PodUid => is(&self.pod_uid),
            SelectorKind::Namespace => self.pod.as_ref().is_some_and(|p| p.namespace == v),
            SelectorKind::ServiceAccount => self.pod.as_ref().and_then(|p| p.service_account.as_deref()) == Some(v),
            SelectorKind::PodLabel => match (s.label(), &self.pod) {
                (Some((key, value)), Some(pod)) => pod.labels.get(key).is_some_and(|l| l == value),
                _ => false,
            },
        }
    }
}

/// Attests the process `pid` with credentials `uid`/`gid` from the socket,
/// accepted at `accepted_uptime` (seconds since boot), with the pidfd of
/// the process that connected when the kernel gives one. Blocking: reads `/proc`.
pub fn attest(
    proc_root: &Path,
    pid: i32,
    uid: u32,
    gid: u32,
    accepted_uptime: f64,
    pidfd: Option<&OwnedFd>,
    with_sha256: bool,
) -> Result<Process, AttestError> {
    if pid <= 0 {
        return Err(AttestError::NoCredentials);
    }
    let dir = proc_root.join(pid.to_string());
    let started = start_time(&dir)?;
    // A process that started after the connection was accepted took over
    // the pid of the one that connected.
    if started / TICKS_PER_SEC > accepted_uptime + 1.0 / TICKS_PER_SEC {
        return Err(AttestError::Changed);
    }
    let status = read(&dir.join("status"))?;
    let supplementary_gids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    let exe = dir.join("exe");
    let path = std::fs::read_link(&exe).ok().map(|p| p.to_string_lossy().into_owned());
    let sha256 = match with_sha256 {
        true => Some(hash_file(&exe)?),
        false => None,
    };
    let cgroup = read(&dir.join("cgroup")).unwrap_or_default();
    let (container_id, pod_uid) = cgroup_ids(&cgroup);
    if start_time(&dir)? != started {
        return Err(AttestError::Changed);
    }
    if let Some(fd) = pidfd
        && pidfd_pid(proc_root, fd) != Some(pid)
    {
        return Err(AttestError::Changed);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    Ok(Process {
        pid,
        uid,
        gid,
        user: name_of(&passwd, uid),
        group: name_of(&groups, gid),
        supplementary_groups: supplementary_gids.iter().filter_map(|g| name_of(&groups, *g)).collect(),
        supplementary_gids,
        path,
        sha256,
        container_id,
        pod_uid,
        pod: None,
    })
}

/// The pid of the process a pidfd of this agent refers to, from
/// `/proc/self/fdinfo` (`Pid: -1` once it exited; none if unreadable).
fn pidfd_pid(proc_root: &Path, fd: &OwnedFd) -> Option<i32> {
    let info = std::fs::read_to_string(proc_root.join("self/fdinfo").join(fd.as_raw_fd().to_string())).ok()?;
    info.lines().find_map(|l| l.strip_prefix("Pid:")).and_then(|p| p.trim().parse().ok())
}

/// Seconds since boot (`/proc/uptime`), the clock process start times count on.
pub fn uptime(proc_root: &Path) -> Option<f64> {
    std::fs::read_to_string(proc_root.join("uptime")).ok()?.split_whitespace().next()?.parse().ok()
}

fn read(path: &PathBuf) -> Result<String, AttestError> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AttestError::Changed,
        _ => AttestError::Proc(format!("{}: {e}", path.display())),
    })
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks since boot.
/// The command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
fn start_time(dir: &Path) -> Result<f64, AttestError> {
    let stat = read(&dir.join("stat"))?;
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or(AttestError::Changed)?;
    // After the name: state is field 3, so starttime (22) is the 20th.
    after.split_whitespace().nth(19).and_then(|f| f.parse::<f64>().ok()).ok_or(AttestError::Changed)
}

/// Largest executable hashed: a hostile user must not make the agent read
/// gigabytes for every connection.
const MAX_HASHED: u64 = 512 * 1024 * 1024;
/// Hashes remembered (by file identity); beyond, the cache starts over.
const HASH_CACHE: usize = 256;

/// A file's identity and state: same device, inode, size and change times
/// means the same contents (`ctime` cannot be set from user space, so
/// `touch` cannot make a changed file look unchanged).
type FileKey = (u64, u64, u64, i64, i64, i64, i64);

static HASHES: std::sync::Mutex<std::collections::BTreeMap<FileKey, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// SHA-256 of the file, read through the open handle; remembered by its
/// [`FileKey`] so that a binary is read once, not on every connection.
fn hash_file(path: &Path) -> Result<String, AttestError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    hash_file_at(path, now)
}

/// [`hash_file`] at `now` (Unix seconds). A file changed in the last two
/// seconds is not remembered: file times are as coarse as the kernel's
/// tick, so a second change within the same tick would keep the key.
fn hash_file_at(path: &Path, now: i64) -> Result<String, AttestError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let failed = |e: std::io::Error| AttestError::Proc(format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if meta.size() > MAX_HASHED {
        return Err(AttestError::Proc(format!(
            "{}: the executable is over {} MiB, too large to hash",
            path.display(),
            MAX_HASHED >> 20
        )));
    }
    let key = (meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec(), meta.ctime(), meta.ctime_nsec());
    if let Some(hash) = HASHES.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(hash.clone());
    }
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(failed)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    let hash = hex::encode(ctx.finish().as_ref());
    if now - meta.ctime() >= 2 {
        let mut cache = HASHES.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= HASH_CACHE {
            cache.clear();
        }
        cache.insert(key, hash.clone());
    }
    Ok(hash)
}

/// The name of id `id` in a `/etc/passwd` or `/etc/group` file (`name:x:id:...`).
fn name_of(file: &str, id: u32) -> Option<String> {
    file.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        f.next()?;
        (f.next()?.parse::<u32>().ok()? == id && !name.is_empty()).then(|| name.to_string())
    })
}

/// The container id and pod UID in a `/proc/<pid>/cgroup` file, as
/// containerd, CRI-O and Docker lay cgroups out under systemd or cgroupfs:
/// `.../kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope`,
/// `.../kubepods/burstable/pod<uid>/<id>`, `.../docker-<id>.scope`, `/docker/<id>`.
pub fn cgroup_ids(cgroup: &str) -> (Option<String>, Option<String>) {
    let (mut container, mut pod) = (None, None);
    for line in cgroup.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else { continue };
        // A user's own systemd subtree can hold a scope named like a
        // container (`systemd-run --user --scope --unit=docker-<id>`):
        // only paths under the runtimes' roots name containers and pods.
        if path.starts_with("/user.slice") || !RUNTIME_ROOTS.iter().any(|r| path.contains(r)) {
            continue;
        }
        for segment in path.split('/') {
            let name = segment.strip_suffix(".scope").or_else(|| segment.strip_suffix(".slice")).unwrap_or(segment);
            if let Some(uid) = name.rsplit_once("pod").map(|(_, u)| u.replace('_', "-"))
                && is_pod_uid(&uid)
            {
                pod = Some(uid.to_ascii_lowercase());
                continue;
            }
            let id = name.rsplit(['-', ':']).next().unwrap_or(name);
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                container = Some(id.to_ascii_lowercase());
            }
        }
    }
    (container, pod)
}

/// Where container runtimes and the kubelet put containers' cgroups.
const RUNTIME_ROOTS: [&str; 6] = [
    "/kubepods",
    "/system.slice/docker-",
    "/docker/",
    "/system.slice/crio-",
    "/system.slice/cri-containerd-",
    "/libpod",
];

fn is_pod_uid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const POD: &str = "12345678-1234-1234-1234-123456789abc";

    #[test]
    fn container_ids_and_pod_uids_come_from_every_cgroup_layout() {
        let systemd = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope\n",
            POD.replace('-', "_")
        );
        assert_eq!(cgroup_ids(&systemd), (Some(ID.into()), Some(POD.into())));
        let cgroupfs = format!("12:memory:/kubepods/besteffort/pod{POD}/{ID}\n");
        assert_eq!(cgroup_ids(&cgroupfs), (Some(ID.into()), Some(POD.into())));
        assert_eq!(cgroup_ids(&format!("0::/system.slice/docker-{ID}.scope")), (Some(ID.into()), None));
        assert_eq!(cgroup_ids(&format!("0::/docker/{ID}")), (Some(ID.into()), None));
        assert_eq!(cgroup_ids(&format!("0::/system.slice/crio-{ID}.scope")), (Some(ID.into()), None));
        assert_eq!(cgroup_ids("0::/user.slice/user-1000.slice/session-3.scope"), (None, None));
        assert_eq!(cgroup_ids("garbage\n::\n"), (None, None));
        // A user's scope named like a container is not one.
        let spoof = format!("0::/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{ID}.scope");
        assert_eq!(cgroup_ids(&spoof), (None, None));
        let spoof =
            format!("0::/user.slice/user-1000.slice/user@1000.service/kubepods-pod{}.slice", POD.replace('-', "_"));
        assert_eq!(cgroup_ids(&spoof), (None, None));
    }

    #[test]
    fn executables_are_hashed_once_per_contents_and_huge_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bin");
        std::fs::write(&file, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let key = |f: &Path| {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(f).unwrap();
            (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec())
        };
        let cached = |f: &Path| HASHES.lock().unwrap().contains_key(&key(f));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert_eq!(hash_file_at(&file, now).unwrap(), abc);
        assert!(!cached(&file), "a file changed just now is not remembered");
        assert_eq!(hash_file_at(&file, now + 10).unwrap(), abc);
        assert!(cached(&file), "an older one is");
        // Past the kernel's tick, a rewrite of the same size has another key.
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(&file, b"abd").unwrap();
        assert_ne!(hash_file_at(&file, now + 10).unwrap(), abc, "changed contents are hashed again");
        let huge = dir.path().join("huge");
        std::fs::File::create(&huge).unwrap().set_len(MAX_HASHED + 1).unwrap();
        let err = hash_file(&huge).unwrap_err().to_string();
        assert!(err.contains("too large to hash"), "{err}");
    }

    #[test]
    fn k8s_selectors_hold_only_for_what_the_kubelet_said_about_the_pod() {
        let sel = |s: &str| s.parse::<Selector>().unwrap();
        let mut p = Process { pod_uid: Some(POD.into()), ..Default::default() };
        let wanted = [sel("k8s:ns:payments"), sel("k8s:sa:worker"), sel("k8s:pod-label:app.kubernetes.io/name:api")];
        assert!(!p.matches(&wanted[..1]), "no pod facts, no k8s selectors");
        p.pod = Some(Pod {
            namespace: "payments".into(),
            service_account: Some("worker".into()),
            labels: [("app.kubernetes.io/name".to_string(), "api".to_string())].into(),
        });
        assert!(p.matches(&wanted));
        assert!(!p.matches(&[sel("k8s:ns:other")]));
        assert!(!p.matches(&[sel("k8s:pod-label:app.kubernetes.io/name:web")]));
        assert!(!p.matches(&[sel("k8s:pod-label:app:api")]), "another key");
        p.pod.as_mut().unwrap().service_account = None;
        assert!(!p.matches(&[sel("k8s:sa:worker")]), "a static pod has no service account");
        assert!(!p.matches(&[sel("k8s:sa:default")]));
    }

    #[test]
    fn names_come_from_passwd_and_group_files() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbroken\n";
        assert_eq!(name_of(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_of(passwd, 5), None);
    }

    /// The pidfd the kernel records at `connect` for the peer of a socket
    /// `connector` connects to.
    fn peer_pidfd(connector: impl FnOnce(&Path)) -> OwnedFd {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        connector(&path);
        let (stream, _) = listener.accept().unwrap();
        nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerPidfd).unwrap()
    }

    #[test]
    fn a_peer_pidfd_must_still_name_the_attested_pid() {
        let me = std::process::id() as i32;
        let up = uptime(Path::new("/proc")).unwrap();
        let mut keep = None;
        let mine = peer_pidfd(|path| keep = Some(std::os::unix::net::UnixStream::connect(path).unwrap()));
        assert_eq!(pidfd_pid(Path::new("/proc"), &mine), Some(me));
        assert!(attest(Path::new("/proc"), me, 0, 0, up, Some(&mine), false).is_ok(), "the process that connected");
        // A child connects and exits: its pid, were it reused by this process, must not pass.
        let gone = peer_pidfd(|path| {
            let script = format!("import socket; socket.socket(socket.AF_UNIX).connect({:?})", path.to_str().unwrap());
            assert!(std::process::Command::new("python3").args(["-c", &script]).status().unwrap().success());
        });
        assert_eq!(pidfd_pid(Path::new("/proc"), &gone), Some(-1), "the child exited");
        assert!(matches!(attest(Path::new("/proc"), me, 0, 0, up, Some(&gone), false), Err(AttestError::Changed)));
    }

    #[test]
    fn this_process_attests_as_itself_and_a_later_start_is_refused() {
        let me = std::process::id() as i32;
        let up = uptime(Path::new("/proc")).unwrap();
        let (uid, gid) = (0, 0);
        let p = attest(Path::new("/proc"), me, uid, gid, up, None, true).unwrap();
        let exe = std::env::current_exe().unwrap().to_string_lossy().into_owned();
        assert_eq!(p.path.as_deref(), Some(exe.as_str()));
        assert_eq!(p.sha256.as_ref().map(String::len), Some(64));
        let sel = |s: &str| s.parse::<Selector>().unwrap();
        assert!(p.matches(&[sel(&format!("unix:path:{exe}")), sel("unix:uid:0")]));
        assert!(!p.matches(&[sel("unix:uid:4242")]));
        // Accepted "before" this process started: its pid was taken over.
        assert!(matches!(attest(Path::new("/proc"), me, uid, gid, 0.0, None, false), Err(AttestError::Changed)));
        assert!(matches!(attest(Path::new("/proc"), 0, uid, gid, up, None, false), Err(AttestError::NoCredentials)));
    }
}
