//! `strangler contract check OLD NEW [--mode ...]`: reads two schema files, prints the breaking
//! changes, and answers with an exit code (0 compatible, 1 incompatible, 2 bad input).

use std::path::Path;

use serde_json::Value;

use super::compat::{check, Mode};

/// Runs the command: prints to stdout (the verdict) or stderr (bad input); returns the exit code.
pub fn run(old: &Path, new: &Path, mode: Mode) -> u8 {
    let (old, new) = match (load(old), load(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let found = check(&old, &new, mode);
    if found.is_empty() {
        println!("compatible ({mode})");
        return 0;
    }
    for b in &found {
        println!("{}: {}: {}", b.pointer, b.rule, b.message);
    }
    println!("incompatible ({mode}): {} breaking change(s)", found.len());
    1
}

/// A schema file: JSON whose top level is an object or a boolean. Errors name the file, and the
/// line and column of a JSON syntax error.
pub fn load(path: &Path) -> Result<Value, String> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        let full = e.to_string();
        let what = full.split(" at line ").next().unwrap_or(&full).to_string();
        format!("{file}:{}:{}: invalid JSON: {what}", e.line(), e.column())
    })?;
    let kind = match &value {
        Value::Object(_) | Value::Bool(_) => return Ok(value),
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Null => "null",
    };
    Err(format!("{file}: not a JSON Schema: the top level is {kind} (an object or a boolean was expected)"))
}
