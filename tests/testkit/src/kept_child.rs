//! Child processes that can never outlive the process that started them.
//!
//! The child is spawned from a dedicated keeper thread that lives as long as the process,
//! with `PR_SET_PDEATHSIG = SIGKILL`: when the process ends for any reason (success,
//! panic, abort, Ctrl-C, SIGKILL), the kernel kills the child too. The keeper thread
//! reaps the child if it exits first.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::mpsc;

/// Spawns `command`; with `own_group` the child leads a new process group, so
/// [`kill_group`] can stop it together with everything it started.
pub fn spawn_kept(mut command: Command, name: &str, own_group: bool) -> io::Result<u32> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if own_group && libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // The parent died before prctl took effect.
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("keeper-{name}"))
        .spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = sender.send(Ok(child.id()));
                // Reap the child if it exits; otherwise this thread lives until process exit.
                let _ = child.wait();
            }
            Err(e) => {
                let _ = sender.send(Err(e));
            }
        })?;
    receiver.recv().map_err(|_| io::Error::other("keeper thread died"))?
}

/// True while `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Sends `signal` to the process `pid` we started.
pub fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: signalling a process we spawned, by its pid.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Sends `signal` to the process group led by `pid` (started with `own_group`).
pub fn kill_group(pid: u32, signal: libc::c_int) {
    // SAFETY: signalling the process group our own child leads.
    unsafe { libc::kill(-(pid as libc::pid_t), signal) };
}
