//! Text that came from data (TPP ids, request ids, error texts, names) made harmless for the
//! format it goes into. One function per format, used by every writer of that format:
//!
//! - [`csv_text`]: CSV cells a spreadsheet would read as a formula (OWASP's rule);
//! - [`slack`]: Slack's mrkdwn control characters (`<!channel>`, `<https://x|link>`);
//! - [`markdown`]: raw HTML and Markdown links in a `.md` file.
//!
//! In: the text. Out: the same text, shown as written, with no effect of its own.

use std::borrow::Cow;

/// A CSV text cell, neutralised against formula injection (OWASP "CSV injection"): a cell that
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with a single quote,
/// so a spreadsheet shows it as text instead of evaluating it. Apply to text cells only (ids,
/// names, error texts): a number written as a number (`-3.5`) is legitimate and stays as is.
pub fn csv_text(s: &str) -> Cow<'_, str> {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

/// Text for a Slack (or Mattermost) message: `&`, `<` and `>` escaped as Slack asks, so data
/// can neither mention (`<!channel>`, `<@U123>`) nor link (`<https://x|text>`).
pub fn slack(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            c => o.push(c),
        }
    }
    o
}

/// Text for a line of Markdown: raw HTML can not open (`<`, `>`, `&` as entities), a link or
/// image can not form (`[`, `]` and the backslash escaped), and a line break can not start a
/// new block. Shown as written by any Markdown renderer.
pub fn markdown(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\\' => o.push_str("\\\\"),
            '[' => o.push_str("\\["),
            ']' => o.push_str("\\]"),
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_that_would_be_formulas_are_quoted() {
        for (cell, out) in [
            (
                "=HYPERLINK(\"http://evil\",\"x\")",
                "'=HYPERLINK(\"http://evil\",\"x\")",
            ),
            ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
            ("+33 1 23", "'+33 1 23"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("tpp-1", "tpp-1"),
            ("a=b", "a=b"),
            ("", ""),
            ("'=already", "'=already"),
            ("13807", "13807"),
        ] {
            assert_eq!(csv_text(cell), out, "{cell:?}");
        }
    }

    #[test]
    fn slack_control_sequences_are_shown_not_obeyed() {
        assert_eq!(
            slack("<!channel> <https://evil|URGENT> & co"),
            "&lt;!channel&gt; &lt;https://evil|URGENT&gt; &amp; co"
        );
        assert_eq!(slack("plain"), "plain");
    }

    #[test]
    fn markdown_from_data_neither_links_nor_opens_html() {
        assert_eq!(
            markdown("[click](https://evil) <script>x</script> a&b\nc"),
            "\\[click\\](https://evil) &lt;script&gt;x&lt;/script&gt; a&amp;b c"
        );
        assert_eq!(markdown("![i](x)"), "!\\[i\\](x)");
        assert_eq!(markdown("<https://evil>"), "&lt;https://evil&gt;");
    }
}
