//! The fields of a `/proc/PID/stat` line, numbered as proc(5) numbers
//! them. Pure: callers read the file.

/// Field `field` (1-based, as in proc(5); 3 or more: the fields after the
/// command) of a `/proc/PID/stat` line. The command (field 2) may hold
/// spaces and parentheses, so the count starts after its last `)`.
pub fn stat_field(stat: &str, field: usize) -> Option<&str> {
    debug_assert!(field >= 3, "fields 1 and 2 are the pid and the command");
    stat[stat.rfind(')')? + 1..].split_ascii_whitespace().nth(field.checked_sub(3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_counted_after_a_command_holding_spaces_and_parentheses() {
        let stat = "7 (a) b) c) S 1 7 9";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 4), Some("1"));
        assert_eq!(stat_field(stat, 6), Some("9"));
        assert_eq!(stat_field(stat, 7), None);
        assert_eq!(stat_field("7 no parenthesis", 3), None);
    }
}
