//! Free space on the file system that will hold an output, checked before a large write so a
//! conversion is refused up front ("needs 32.1 GiB, 20.0 GiB free") instead of failing midway.

use std::path::Path;

/// Bytes available to an unprivileged writer on the file system holding `path` (or its nearest
/// existing ancestor); `None` where it cannot be known (then no check is made).
pub fn available_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    statvfs_available(existing)
}

#[cfg(unix)]
fn statvfs_available(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statvfs; the call only writes `st`,
    // which is read only when it reports success.
    #[allow(unsafe_code)]
    let (rc, st) = unsafe { (libc::statvfs(c.as_ptr(), st.as_mut_ptr()), st.assume_init()) };
    // The field types differ between platforms (u32 on some); widening is a no-op on Linux x86-64.
    #[allow(clippy::useless_conversion)]
    (rc == 0).then(|| u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

#[cfg(not(unix))]
fn statvfs_available(_path: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_temp_folder_has_some_space_and_missing_children_use_their_parent() {
        let tmp = std::env::temp_dir();
        let free = super::available_bytes(&tmp).unwrap();
        assert!(free > 0);
        assert!(super::available_bytes(&tmp.join("not/yet/created")).is_some());
    }
}
