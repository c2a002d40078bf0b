//! One person, one key: six spellings of one email in a directory are one user with
//! one limit, and a policy naming them in another spelling applies to them.

use crate::{NOW, budgit};

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
default: { credits: 100 }
attributes: { department: string }
overrides: { max_days: 90, require_reason: true }
";

const OVERRIDE: &str = "apiVersion: budgit/v1
kind: Override
name: zoe-migration
user: ZOE@acme.com
add: { credits: 50 }
expires: 2026-12-15
reason: migration
";

/// `Zoe` six ways: case, surrounding whitespace, and `é` precomposed or decomposed.
const DIRECTORY: &str = "email,department\n\
zoe@acme.com,Eng\n\
Zoe@acme.com,Eng\n\
ZOE@ACME.COM,Eng\n\
\" zoe@acme.com \",Eng\n\
zoe@Acme.com,Eng\n\
Zoe@ACME.com,Eng\n\
ren\u{e9}@acme.com,Sales\n\
RENE\u{301}@acme.com,Sales\n";

#[test]
fn resolve_gives_six_spellings_of_one_person_one_limit() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(policies.join("overrides")).unwrap();
    std::fs::write(policies.join("workspace.yaml"), WORKSPACE).unwrap();
    std::fs::write(policies.join("overrides/zoe.yaml"), OVERRIDE).unwrap();
    std::fs::write(dir.path().join("directory.csv"), DIRECTORY).unwrap();

    let run = budgit(dir.path(), &["resolve", "--directory", "directory.csv", "--now", NOW]);
    insta::assert_snapshot!(run.snapshot());

    // Any spelling of `--user` finds the one user.
    let one = budgit(
        dir.path(),
        &["resolve", "--directory", "directory.csv", "--user", " Zoe@Acme.COM", "--now", NOW],
    );
    assert_eq!(one.code, 0, "{}", one.snapshot());
    assert!(one.stdout.contains("zoe@acme.com") && one.stdout.contains("150"), "{}", one.stdout);
    let hidden = budgit(
        dir.path(),
        &["explain", "zoe\u{200B}@acme.com", "--directory", "directory.csv", "--now", NOW],
    );
    assert_eq!(hidden.code, 2, "{}", hidden.snapshot());
    assert!(hidden.stderr.contains("contains a zero-width character, U+200B"), "{}", hidden.stderr);
}
