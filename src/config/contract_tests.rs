//! Table tests for `route.contract`: each bad schema file or setting is refused with the file,
//! line and key; a good one loads compiled.

use std::path::Path;

use crate::config::load_str;
use crate::contract::{OnInvalid, WhenNewOwned};

const HEAD: &str = "[legacy]\nurl = \"http://127.0.0.1:3000\"\n[[route]]\nname = \"r\"\nmatch = { path = \"/r\" }\ntopic = \"t\"\nsignature = { scheme = \"github\", mode = \"off\" }\n";

const V1: &str =
    r#"{"$id": "https://schemas.example.com/push/v1.json", "type": "object", "properties": {"ref": {"type": "string"}}}"#;
/// V1 with a new required property: breaks backward compatibility.
const V2_BREAKING: &str = r#"{"$id": "https://schemas.example.com/push/v2.json", "type": "object", "required": ["ref"], "properties": {"ref": {"type": "string"}}}"#;
/// V1 with `ref` widened to allow null: safe.
const V2_SAFE: &str = r#"{"$id": "https://schemas.example.com/push/v2.json", "type": "object", "properties": {"ref": {"type": ["string", "null"]}}}"#;

fn files(dir: &Path) {
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("v1.json", V1);
    write("v2-breaking.json", V2_BREAKING);
    write("v2-safe.json", V2_SAFE);
    write("bad.json", "{\n  \"$id\": \"https://x.test/a.json\",\n  \"type\": \"object\",\n}");
    write("bad-schema.json", r#"{"$id": "https://x.test/b.json", "type": "objekt"}"#);
    write("no-id.json", r#"{"type": "object"}"#);
    write("relative-id.json", r#"{"$id": "push/v1.json", "type": "object"}"#);
    write("unknown-draft.json", r#"{"$schema": "https://example.com/my-draft", "$id": "https://x.test/d.json"}"#);
    write(
        "draft7.json",
        r##"{"$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://x.test/e.json", "properties": {"a": {"$ref": "#/definitions/a"}}, "definitions": {"a": {"type": "string"}}}"##,
    );
    write("remote-ref.json", r#"{"$id": "https://x.test/c.json", "$ref": "https://elsewhere.test/s.json"}"#);
}

fn load(dir: &Path, contract: &str) -> Result<crate::config::Validated, String> {
    let src = format!("{HEAD}{}", contract.replace("DIR", &dir.display().to_string()));
    load_str(&src, "f.toml", &|_| None).map_err(|e| e.to_string())
}

#[test]
fn each_mistake_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let cases = [
        ("contract = { schema = \"DIR/missing.json\" }", "f.toml:8:14: key `route[0].contract.schema`", "cannot read"),
        ("contract = { schema = \"DIR/bad.json\" }", "route[0].contract.schema", "bad.json:4:1: invalid JSON"),
        ("contract = { schema = \"DIR/bad-schema.json\" }", "route[0].contract.schema", "a valid JSON Schema"),
        ("contract = { schema = \"DIR/no-id.json\" }", "route[0].contract.schema", "without a `$id`"),
        ("contract = { schema = \"DIR/relative-id.json\" }", "route[0].contract.schema", "with `$id` `push/v1.json`"),
        ("contract = { schema = \"DIR/remote-ref.json\" }", "route[0].contract.schema", "a valid JSON Schema"),
        ("contract = { schema = \"DIR/unknown-draft.json\" }", "route[0].contract.schema", "a valid JSON Schema"),
        (
            "contract = { schema = \"DIR/v2-breaking.json\", previous = \"DIR/v1.json\" }",
            "route[0].contract.schema",
            "breaks it at `/required` (required_added)",
        ),
        (
            "contract = { schema = \"DIR/v2-breaking.json\", previous = \"DIR/missing.json\" }",
            "route[0].contract.previous",
            "cannot read",
        ),
        ("contract = { on_invalid = \"observe\" }", "route[0].contract.schema", "at least one `types` entry"),
        ("contract = { schema = \"DIR/v1.json\", on_invalid = \"drop\" }", "route[0].contract.on_invalid", "unknown variant"),
        (
            "contract = { schema = \"DIR/v1.json\", when_new_owned = \"reject\" }",
            "route[0].contract.when_new_owned",
            "unless on_invalid = \"dead_letter\"",
        ),
        (
            "[route.contract]\nschema = \"DIR/v1.json\"\n[route.contract.types.\"com.github.issues\"]\nschema = \"DIR/no-id.json\"\n",
            "f.toml:11:1: key `route[0].contract.types.com.github.issues.schema`",
            "without a `$id`",
        ),
    ];
    for (contract, key, found) in cases {
        let err = load(dir.path(), contract).expect_err(contract);
        assert!(err.contains(key), "{contract}: {err}");
        assert!(err.contains(found), "{contract}: {err}");
    }
}

#[test]
fn good_contracts_load_compiled() {
    let dir = tempfile::tempdir().unwrap();
    files(dir.path());
    let ok = [
        "contract = { schema = \"DIR/draft7.json\" }",
        "contract = { schema = \"DIR/v2-safe.json\", previous = \"DIR/v1.json\" }",
        // A breaking change is accepted when the route says compatibility does not matter.
        "contract = { schema = \"DIR/v2-breaking.json\", previous = \"DIR/v1.json\", compatibility = \"none\" }",
        // Forward: readers of v1 read v2-breaking's data (every v2 event is a v1 event).
        "contract = { schema = \"DIR/v2-breaking.json\", previous = \"DIR/v1.json\", compatibility = \"forward\" }",
    ];
    for contract in ok {
        load(dir.path(), contract).unwrap_or_else(|e| panic!("{contract}: {e}"));
    }
    let cfg = load(
        dir.path(),
        "[route.contract]\nschema = \"DIR/v1.json\"\non_invalid = \"dead_letter\"\nwhen_new_owned = \"reject\"\n[route.contract.types.\"com.github.issues\"]\nschema = \"DIR/v2-safe.json\"\n",
    )
    .unwrap();
    let c = cfg.routes[0].contract.as_ref().unwrap();
    assert_eq!((c.on_invalid, c.when_new_owned), (OnInvalid::DeadLetter, WhenNewOwned::Reject));
    let keys: Vec<_> = c.schemas().map(|(t, s)| (t, s.id.as_str())).collect();
    assert_eq!(
        keys,
        [("*", "https://schemas.example.com/push/v1.json"), ("com.github.issues", "https://schemas.example.com/push/v2.json")]
    );
    let none = load(dir.path(), "").unwrap();
    assert!(none.routes[0].contract.is_none());
}
