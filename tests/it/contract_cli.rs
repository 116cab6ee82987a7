//! `strangler contract check`: the real binary on the schema files in tests/contracts/, its
//! output and its exit codes (0 compatible, 1 breaking, 2 bad input).

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_strangler");

fn contract(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contracts").join(name)
}

/// Runs `strangler contract check OLD NEW EXTRA...`: (exit code, stdout, stderr).
fn check(old: &str, new: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(["contract", "check"]).arg(contract(old)).arg(contract(new)).args(extra).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap(), text(out.stdout), text(out.stderr))
}

#[test]
fn a_breaking_change_exits_1_naming_each_pointer_and_rule() {
    let (code, out, err) = check("order-paid.v1.json", "order-paid.v2-breaking.json", &[]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"/required: required_added: `status` is required by NEW, not by OLD"), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("/$defs/money/properties/cents/type: type_narrowed: ")), "{out}");
    assert_eq!(lines.last(), Some(&"incompatible (backward): 2 breaking change(s)"), "{out}");
}

#[test]
fn a_safe_change_exits_0_and_each_mode_is_honoured() {
    let (code, out, _) = check("order-paid.v1.json", "order-paid.v2-safe.json", &[]);
    assert_eq!((code, out.as_str()), (0, "compatible (backward)\n"));
    // The same pair read the other way: OLD readers refuse what NEW may write.
    let (code, out, _) = check("order-paid.v1.json", "order-paid.v2-safe.json", &["--mode", "forward"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("/properties/status/enum: enum_value_removed: \"disputed\" accepted by NEW, not by OLD"), "{out}");
    assert!(out.contains("/required: required_added: `amount` is required by OLD, not by NEW"), "{out}");
    assert!(out.ends_with("incompatible (forward): 4 breaking change(s)\n"), "{out}");
    let (code, out, _) = check("order-paid.v1.json", "order-paid.v1.json", &["--mode", "full"]);
    assert_eq!((code, out.as_str()), (0, "compatible (full)\n"));
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let (code, out, err) = check("order-paid.v1.json", "malformed.json", &[]);
    assert_eq!(code, 2, "{out}");
    let file = contract("malformed.json").display().to_string();
    assert!(err.starts_with(&format!("{file}:3:46: invalid JSON: trailing comma")), "{err}");
    let (code, _, err) = check("missing.json", "order-paid.v1.json", &[]);
    assert_eq!(code, 2);
    assert!(err.starts_with(&format!("{}: cannot read: ", contract("missing.json").display())), "{err}");
    let (code, _, err) = check("not-a-schema.json", "order-paid.v1.json", &[]);
    assert_eq!(code, 2);
    let want = ": not a JSON Schema: the top level is an array (an object or a boolean was expected)\n";
    assert_eq!(err, format!("{}{want}", contract("not-a-schema.json").display()));
    let (code, _, err) = check("order-paid.v1.json", "order-paid.v1.json", &["--mode", "sideways"]);
    assert_eq!(code, 2, "{err}");
}
