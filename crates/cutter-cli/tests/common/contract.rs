//! The `--json` contract: `docs/cli-json.schema.json`, read from the repository, and a
//! check of one command's output against it (the envelope, then the command's own
//! definition `cmd_<name>`).

use serde_json::{json, Value};

/// The schema file.
pub fn schema() -> Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli-json.schema.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(schema: &Value, v: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema)
        .unwrap_or_else(|e| panic!("the schema for {what} does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: output does not match docs/cli-json.schema.json:\n  {}\n{}",
        errors.join("\n  "),
        serde_json::to_string_pretty(v).unwrap()
    );
}

/// Checks a successful command's output against the envelope and `cmd_<command>`.
pub fn success(command: &str, v: &Value) {
    let s = schema();
    assert!(
        s["$defs"].get(format!("cmd_{command}")).is_some(),
        "docs/cli-json.schema.json has no cmd_{command}"
    );
    check(&s, v, command);
    let one = json!({
        "$defs": s["$defs"],
        "allOf": [{"$ref": "#/$defs/success"}, {"$ref": format!("#/$defs/cmd_{command}")}],
    });
    check(&one, v, command);
}

/// Checks an error envelope.
pub fn failure(what: &str, v: &Value) {
    let s = schema();
    check(&s, v, what);
    let one = json!({"$defs": s["$defs"], "$ref": "#/$defs/failure"});
    check(&one, v, what);
}
