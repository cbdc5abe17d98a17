//! The project-local Python virtualenv that holds the pinned moto server.
//!
//! Created on first use under `<repo>/.venv/emulator`, reused afterwards, and rebuilt
//! when `tests/emulator-requirements.txt` changes. Concurrent test processes serialise
//! on a file lock so that only one of them installs.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (parent of the `tests` crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives inside the repository")
        .to_path_buf()
}

/// The pinned requirements of the emulator venv.
pub fn requirements_file() -> PathBuf {
    repo_root().join("tests/emulator-requirements.txt")
}

/// Where the venv lives (`EMULATOR_VENV` overrides it).
pub fn venv_dir() -> PathBuf {
    std::env::var_os("EMULATOR_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/emulator"))
}

/// An exclusive `flock` on a file, released on drop.
struct FileLock(File);

impl FileLock {
    fn acquire(path: &Path) -> io::Result<Self> {
        let file = File::options().create(true).truncate(false).write(true).open(path)?;
        // SAFETY: flock only reads the descriptor, which `file` keeps open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(file))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking a descriptor we own.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The script that starts moto with its fidelity patch (see the script's docstring).
pub fn fidelity_server_script() -> PathBuf {
    repo_root().join("tests/moto/fidelity_server.py")
}

/// Returns the venv's Python (with moto installed), creating or updating the venv first if needed.
pub fn ensure_emulator_python() -> io::Result<PathBuf> {
    let venv = venv_dir();
    let requirements = fs::read_to_string(requirements_file())?;
    fs::create_dir_all(venv.parent().unwrap_or(&venv))?;
    let _lock = FileLock::acquire(&venv.with_extension("lock"))?;
    let marker = venv.join(".requirements-installed");
    let python = venv.join("bin/python");
    if fs::read_to_string(&marker).ok().as_deref() == Some(requirements.as_str())
        && venv.join("bin/moto_server").exists()
    {
        return Ok(python);
    }
    if !python.exists() {
        run(Command::new(system_python()).args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements_file()))?;
    fs::write(&marker, requirements)?;
    Ok(python)
}

fn system_python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(command: &mut Command) -> io::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{command:?} failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
