//! The project-local Python virtualenv that holds the pinned moto server.
//!
//! `scripts/venv.sh emulator`, the one venv bootstrap that the scripts and CI use too,
//! creates it on first use under `<repo>/.venv/emulator` (`EMULATOR_VENV` overrides the
//! path), reuses it afterwards, and rebuilds it when `tools/requirements/emulator.txt`
//! changes. Concurrent test processes serialise on the script's lock file, so only one of
//! them installs.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (the test kit lives in `tests/testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the test kit lives in tests/testkit inside the repository")
        .to_path_buf()
}

/// The pinned requirements of the emulator venv.
pub fn requirements_file() -> PathBuf {
    repo_root().join("tools/requirements/emulator.txt")
}

/// Where the venv lives (`EMULATOR_VENV` overrides it, here and in `scripts/venv.sh`).
pub fn venv_dir() -> PathBuf {
    std::env::var_os("EMULATOR_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/emulator"))
}

/// The venv bootstrap script (`scripts/venv.sh <name>`).
pub fn venv_script() -> PathBuf {
    repo_root().join("scripts/venv.sh")
}

/// The script that starts moto with its fidelity patch (see the script's docstring).
pub fn fidelity_server_script() -> PathBuf {
    repo_root().join("tools/moto_fidelity_server.py")
}

/// Returns the venv's Python (with moto installed), creating or updating the venv first if
/// needed by running `bash scripts/venv.sh emulator` (a no-op when it is up to date). The
/// script inherits this process's environment, so `EMULATOR_VENV` and `PYTHON` apply to it.
pub fn ensure_emulator_python() -> io::Result<PathBuf> {
    run(Command::new("bash").arg(venv_script()).arg("emulator"))?;
    let python = venv_dir().join("bin/python");
    if python.exists() {
        Ok(python)
    } else {
        Err(io::Error::other(format!(
            "{} emulator did not create {}",
            venv_script().display(),
            python.display()
        )))
    }
}

fn run(command: &mut Command) -> io::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{command:?} failed with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
