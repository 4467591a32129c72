//! Identifier quoting. Values always travel as bind parameters; only identifiers (schema,
//! table, database and role names) are ever put into SQL text, and always through
//! [`quote_ident`].

use cutter_core::TableName;

/// Quotes `name` as a PostgreSQL identifier: wrapped in double quotes, inner double
/// quotes doubled. Safe for any input, including `"`, `;`, `$$` and NUL-free Unicode.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `"schema"."table"`, each part quoted with [`quote_ident`].
pub fn quote_table(t: &TableName) -> String {
    format!("{}.{}", quote_ident(t.schema()), quote_ident(t.name()))
}

/// A string literal for the few statements that cannot take bind parameters
/// (`ALTER ROLE … PASSWORD`, which only ever receives a SCRAM verifier here).
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("information_unit"), "\"information_unit\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            quote_ident("x\"; DROP TABLE t; --$$"),
            "\"x\"\"; DROP TABLE t; --$$\""
        );
        let t = TableName::new("cutter_governance", "verify_result").unwrap();
        assert_eq!(quote_table(&t), "\"cutter_governance\".\"verify_result\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
