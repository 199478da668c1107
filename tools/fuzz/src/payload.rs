//! `payload::validate` on arbitrary bytes: never panics; when Ok, the output
//! is a JSON object serde_json parses to the same value as the input, no
//! longer than the input, already minified, and the limit is exact.

use apnsblast::payload::{PayloadError, validate};
use serde_json::Value;

/// Runs one input through the checks; panics on a finding.
pub fn check(data: &[u8]) {
    match validate(data, usize::MAX) {
        Ok(out) => {
            assert!(out.len() <= data.len(), "minified output is longer than the input");
            assert_eq!(out.first(), Some(&b'{'));
            let value: Value = match serde_json::from_slice(&out) {
                Ok(v) => v,
                Err(e) => panic!("output is not JSON: {e}"),
            };
            assert!(value.is_object());
            let input = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
            if let Ok(original) = serde_json::from_slice::<Value>(input) {
                assert_eq!(value, original, "minifying changed the value");
            }
            assert_eq!(validate(&out, usize::MAX).as_ref(), Ok(&out), "not idempotent");
            assert_eq!(validate(data, out.len()).as_ref(), Ok(&out));
            if !out.is_empty() {
                assert_eq!(
                    validate(data, out.len() - 1),
                    Err(PayloadError::TooLarge { size: out.len(), limit: out.len() - 1 })
                );
            }
        }
        Err(PayloadError::NotJson { line, column, message }) => {
            assert!(!message.is_empty());
            // The position is inside the input: an existing line, a column
            // at most one past its end, 1-based (finding F1, fixed).
            let input = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
            let lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            assert!((1..=lines.len()).contains(&line), "line {line} of {}", lines.len());
            assert!((1..=lines[line - 1].len() + 1).contains(&column), "column {column} of line {line}");
        }
        Err(PayloadError::NotObject) => {}
        Err(e) => panic!("unexpected error with no limit: {e:?}"),
    }
    let _ = validate(data, 256).map_err(|e| e.to_string());
}
