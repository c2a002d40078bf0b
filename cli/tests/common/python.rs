//! A Python tool from PyPI for the tests that check budgit against clients nobody here
//! wrote (the `openai` and `anthropic` SDKs, schemathesis).
//!
//! The executable is the one an environment variable names when set; otherwise a venv is
//! made under the target directory on first use (`python3 -m venv` + `pip install`) and
//! reused afterwards. Without python3 or the package index the test fails and says how to
//! set it up: it never passes without running the tool.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A package and how to tell that its venv works.
pub struct Tool {
    /// The PyPI package.
    pub package: &'static str,
    /// The variable naming an executable to use instead of a venv.
    pub env: &'static str,
    /// The venv's directory under the target directory.
    pub venv: &'static str,
    /// The executable in the venv's `bin/`: `python` for a library, the tool's own otherwise.
    pub bin: &'static str,
    /// Arguments that exit 0 when the executable works (`-c "import openai"`, `--version`).
    pub check: &'static [&'static str],
}

/// The SDK the Costs API is read with.
pub const OPENAI: Tool = Tool {
    package: "openai",
    env: "BUDGIT_SDK_PYTHON",
    venv: "sdk-venv",
    bin: "python",
    check: &["-c", "import openai"],
};

/// The SDK the Claude Enterprise fake is checked with.
pub const ANTHROPIC: Tool = Tool {
    package: "anthropic",
    env: "BUDGIT_SDK_PYTHON",
    venv: "sdk-venv-anthropic",
    bin: "python",
    check: &["-c", "import anthropic"],
};

/// The fuzzer of the OpenAPI document.
pub const SCHEMATHESIS: Tool = Tool {
    package: "schemathesis",
    env: "BUDGIT_SCHEMATHESIS",
    venv: "schemathesis-venv",
    bin: "schemathesis",
    check: &["--version"],
};

impl Tool {
    /// How to make the tool available, for failure messages.
    pub fn setup(&self) -> String {
        let Tool { package, env, bin, .. } = self;
        let what = if *bin == "python" {
            format!("a Python that has the `{package}` package")
        } else {
            format!("a `{bin}` executable")
        };
        format!(
            "set {env} to {what} (`python3 -m venv .venv-{package} && .venv-{package}/bin/pip install \
             {package}`, then `{env}=$PWD/.venv-{package}/bin/{bin}`), or make `python3` with `venv` \
             and access to PyPI available so the test can create one"
        )
    }

    /// The executable: the variable's, or the venv's, made on first use.
    pub fn executable(&self) -> PathBuf {
        if let Some(p) = std::env::var_os(self.env) {
            return PathBuf::from(p);
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(self.venv);
        let exe = venv.join("bin").join(self.bin);
        let works =
            |exe: &Path| Command::new(exe).args(self.check).output().is_ok_and(|o| o.status.success());
        if works(&exe) {
            return exe;
        }
        let setup = self.setup();
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
        assert!(made.is_ok_and(|s| s.success()), "could not create a venv with `python3 -m venv`: {setup}");
        let pip = Command::new(venv.join("bin/pip")).args(["install", "-q", self.package]).status();
        assert!(pip.is_ok_and(|s| s.success()), "`pip install {}` failed: {setup}", self.package);
        assert!(works(&exe), "`{}` does not work in the venv at `{}`: {setup}", self.bin, venv.display());
        exe
    }
}
