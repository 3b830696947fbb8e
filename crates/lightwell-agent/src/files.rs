//! Atomic file replacement: write a temporary file in the same directory,
//! fsync it, rename it over the target, fsync the directory. Readers see the
//! old file or the new one, never a partial one, even across a crash.
//!
//! Files the agent can fetch again (trust bundle, CRLs, CApath) skip the
//! directory fsync, and advisory ones (status.json) skip fsync altogether:
//! with a thousand agents on one disk, fsyncs are where propagation time goes
//! (see BENCHMARKS.md).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How much of a replacement must survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Contents and rename are on disk before returning (keys, certificates, secrets, configuration).
    Durable,
    /// Contents are on disk before the rename makes them visible, so a crash
    /// never leaves a partial file, but it may bring back the previous version
    /// (trust files, which the agent syncs again).
    Atomic,
    /// No fsync: files only reported, never relied on (status.json).
    Advisory,
}

/// Atomically and durably replaces `path` with `contents`, created with permission bits `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    replace(path, contents, mode, Durability::Durable)
}

/// Atomically replaces `path` with `contents`, with the given durability.
pub fn replace(path: &Path, contents: &[u8], mode: u32, durability: Durability) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"))?;
    let suffix = hex::encode(lightwell_ca::random::bytes::<6>().map_err(std::io::Error::other)?);
    let tmp = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(contents)?;
        if durability != Durability::Advisory {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)?;
        if durability == Durability::Durable {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_contents_with_the_requested_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary files left");
    }

    /// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
    /// `None` where this process may not mount (not root, or no CAP_SYS_ADMIN).
    struct SmallDisk {
        dir: tempfile::TempDir,
    }

    impl SmallDisk {
        fn mount(size: &str) -> Option<Self> {
            let dir = tempfile::tempdir().unwrap();
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
                .arg(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            mounted.then_some(Self { dir })
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
        }
    }

    fn assert_kept(path: &Path, old: &[u8]) {
        let now = std::fs::read(path).unwrap();
        assert!(now == old, "the old bytes are kept, not {} other bytes", now.len());
    }

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect()
    }

    /// The replacement of `bundle.pem` itself fails part-way: the disk fills
    /// up while the new contents are written (a 64 KiB tmpfs, as root), or,
    /// where this process cannot mount one, its directory is read-only.
    /// Either way the old bytes stay and no temporary file is left.
    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let old = b"-----BEGIN CERTIFICATE-----\nold\n-----END CERTIFICATE-----\n";
        if let Some(disk) = SmallDisk::mount("64k") {
            let path = disk.dir.path().join("bundle.pem");
            write_atomic(&path, old, 0o644).unwrap();
            let err = write_atomic(&path, &vec![b'x'; 1 << 20], 0o644).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
            assert_kept(&path, old);
            assert_eq!(names(disk.dir.path()), ["bundle.pem"], "no temporary file is left");
            // The space the failed write took is free again: a small write succeeds.
            write_atomic(&path, b"new", 0o644).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.pem");
        write_atomic(&path, old, 0o644).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        let result = write_atomic(&path, b"new", 0o644);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            result.is_err(),
            "a read-only directory refused nothing: root without CAP_SYS_ADMIN can neither mount a tmpfs \
             nor be refused by permissions; run this test as root with CAP_SYS_ADMIN or as another user"
        );
        assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::PermissionDenied);
        assert_kept(&path, old);
        assert_eq!(names(dir.path()), ["bundle.pem"], "no temporary file is left");
    }
}
