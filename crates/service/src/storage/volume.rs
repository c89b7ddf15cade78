//! Whether the SQLite file lives on storage that outlives the container:
//! on platforms with ephemeral disks (Railway, most container hosts) a
//! database on the container's own root file system is lost at every deploy.

use std::path::{Path, PathBuf};

/// The mount point that holds `path` and its file-system type, from
/// `/proc/self/mountinfo` (Linux); `None` where that cannot be read.
pub fn mount_of(path: &Path) -> Option<(PathBuf, String)> {
    let path = std::fs::canonicalize(path).ok()?;
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    longest_mount(&table, &path)
}

/// The entry of a mountinfo `table` whose mount point is the longest prefix of `path`.
fn longest_mount(table: &str, path: &Path) -> Option<(PathBuf, String)> {
    table
        .lines()
        .filter_map(|line| {
            // Fields: id parent major:minor root mount-point options … - fstype source …
            let mut fields = line.split(' ');
            let mount_point = fields.nth(4)?;
            let fstype = line.split(" - ").nth(1)?.split(' ').next()?;
            Some((PathBuf::from(unescape(mount_point)), fstype.to_owned()))
        })
        .filter(|(mount, _)| path.starts_with(mount))
        .max_by_key(|(mount, _)| mount.as_os_str().len())
}

/// mountinfo writes spaces and a few other bytes as octal escapes (`\040`).
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\134", "\\")
}

/// Whether a mount is the container's own root (an overlay or the root
/// file system itself), which does not survive a redeploy.
pub fn is_ephemeral(mount: &Path, fstype: &str) -> bool {
    mount == Path::new("/") || matches!(fstype, "overlay" | "tmpfs" | "ramfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l
30 22 8:1 /vol /data rw,relatime - ext4 /dev/sda1 rw
31 22 0:30 / /data/tmp rw - tmpfs tmpfs rw
32 22 8:2 / /my\\040disk rw - xfs /dev/sdb rw";

    #[test]
    fn the_longest_mount_point_holds_the_path() {
        let at = |p: &str| longest_mount(TABLE, Path::new(p)).unwrap();
        assert_eq!(at("/app/data"), (PathBuf::from("/"), "overlay".into()));
        assert_eq!(at("/data/harpoon"), (PathBuf::from("/data"), "ext4".into()));
        assert_eq!(
            at("/data/tmp/x"),
            (PathBuf::from("/data/tmp"), "tmpfs".into())
        );
        assert_eq!(at("/my disk/db"), (PathBuf::from("/my disk"), "xfs".into()));
        assert!(is_ephemeral(Path::new("/"), "ext4"));
        assert!(is_ephemeral(Path::new("/data/tmp"), "tmpfs"));
        assert!(!is_ephemeral(Path::new("/data"), "ext4"));
    }
}
