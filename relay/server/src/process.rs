//! Process chores: the PID file and dropping privileges after every socket is bound
//! (`proc-user`, `proc-group`).

use std::ffi::CString;
use std::path::Path;

use anyhow::{Context as _, bail};

/// Writes our PID to `path`.
pub(crate) fn write_pidfile(path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing pidfile {}", path.display()))
}

/// Switches to `group` and `user` (names or numbers). Called after binding, so ports below 1024
/// can still be used by a relay started as root.
pub(crate) fn drop_privileges(user: Option<&str>, group: Option<&str>) -> anyhow::Result<()> {
    if let Some(g) = group {
        let gid = match g.parse::<libc::gid_t>() {
            Ok(n) => n,
            Err(_) => {
                let c = CString::new(g).context("proc-group contains a NUL byte")?;
                // SAFETY: getgrnam reads a valid NUL-terminated string; the result is read at once.
                let gr = unsafe { libc::getgrnam(c.as_ptr()) };
                if gr.is_null() {
                    bail!("proc-group {g:?}: no such group");
                }
                // SAFETY: gr is a valid, non-null pointer returned by getgrnam.
                unsafe { (*gr).gr_gid }
            }
        };
        // SAFETY: plain syscalls with integer arguments.
        if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 || unsafe { libc::setgid(gid) } != 0 {
            bail!("proc-group {g:?}: {}", std::io::Error::last_os_error());
        }
    }
    if let Some(u) = user {
        let uid = match u.parse::<libc::uid_t>() {
            Ok(n) => n,
            Err(_) => {
                let c = CString::new(u).context("proc-user contains a NUL byte")?;
                // SAFETY: getpwnam reads a valid NUL-terminated string; the result is read at once.
                let pw = unsafe { libc::getpwnam(c.as_ptr()) };
                if pw.is_null() {
                    bail!("proc-user {u:?}: no such user");
                }
                // SAFETY: pw is a valid, non-null pointer returned by getpwnam.
                unsafe { (*pw).pw_uid }
            }
        };
        // SAFETY: a plain syscall with an integer argument.
        if unsafe { libc::setuid(uid) } != 0 {
            bail!("proc-user {u:?}: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The calling thread's CPU time (user and system), for the worker's coalescing decision.
pub(crate) fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}
