//! The committed JSON Schema is the one the types generate.

use crate::campaign::{crashlab, text};
use crashlab::report_schema::{survival_report_schema_text, COMMITTED_PATH, REGENERATE};

#[test]
fn the_committed_schema_is_what_the_report_types_generate() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let committed = std::fs::read_to_string(format!("{root}/{COMMITTED_PATH}"))
        .unwrap_or_else(|e| panic!("cannot read {COMMITTED_PATH} ({e}); create it with `{REGENERATE}`"));
    let generated = survival_report_schema_text();
    if committed != generated {
        let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or_else(
            || {
                format!(
                    "lengths differ: {} lines committed, {} generated",
                    committed.lines().count(),
                    generated.lines().count()
                )
            },
            |i| format!("first difference at line {}", i + 1),
        );
        panic!("{COMMITTED_PATH} is stale: the report types changed ({line}). Regenerate it from the repository root:\n  {REGENERATE}");
    }
    // The command the message names prints exactly that text.
    let o = crashlab(std::path::Path::new(root), &["report", "schema"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), generated);
}
