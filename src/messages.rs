//! Error messages as the operator reads them: one cause, said once. Rust's `io::Error` ends
//! with "(os error 2)", and an error that prints its source is printed again by the chain
//! (`{:#}`), which made "No such file or directory (os error 2): No such file or directory
//! (os error 2)". In: an error or its text. Out: the text without the repetition.

/// `text` without the " (os error N)" the standard library appends.
pub fn without_os_error(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(" (os error ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " (os error ".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            rest = &after[digits + 1..];
        } else {
            out.push_str(" (os error ");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The reason of an I/O error, as a sentence's end ("No such file or directory").
pub fn io_reason(e: &std::io::Error) -> String {
    without_os_error(&e.to_string())
}

/// An error and its causes on one line, each said once: a cause whose text the line already
/// holds (an error that prints its source) is left out.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let t = without_os_error(&cause.to_string());
        if t.is_empty() || out.contains(&t) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(io)
            .context("cannot open /tmp/x.csv: No such file or directory (os error 2)");
        assert_eq!(
            one_line(&e),
            "cannot open /tmp/x.csv: No such file or directory"
        );
        let e = anyhow::anyhow!("the directory is not empty")
            .context("/tmp/pub: the directory is not empty");
        assert_eq!(one_line(&e), "/tmp/pub: the directory is not empty");
        assert_eq!(without_os_error("a (os error x) b"), "a (os error x) b");
    }
}
