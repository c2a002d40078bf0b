//! Names the commit in `budgit --version` (`BUDGIT_VERSION`), from git when the source is
//! a checkout and from `BUDGIT_BUILD_COMMIT` when it is not.

#[path = "build/version.rs"]
mod version;

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let package = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let from_env = std::env::var("BUDGIT_BUILD_COMMIT").ok();
    let commit = version::commit(&dir);
    println!("cargo:rerun-if-env-changed=BUDGIT_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/version.rs");
    for path in commit.iter().flat_map(|c| &c.watch) {
        // A path that does not exist (no packed-refs yet) is fine: cargo reruns when it appears.
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!(
        "cargo:rustc-env=BUDGIT_VERSION={}",
        version::version(&package, commit.as_ref(), from_env.as_deref())
    );
}
