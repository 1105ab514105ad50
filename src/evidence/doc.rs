//! A tiny document model rendered to both Markdown and HTML, so the two summaries of a pack say
//! exactly the same thing.
//!
//! In: blocks (headings, paragraphs, lists, tables) of plain text. Out: escaped Markdown or a
//! self-contained HTML page.

pub enum Block {
    H2(String),
    H3(String),
    P(String),
    List(Vec<String>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

pub struct Doc {
    pub title: String,
    pub lang: &'static str,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn new(title: impl Into<String>, lang: &'static str) -> Self {
        Self {
            title: title.into(),
            lang,
            blocks: Vec::new(),
        }
    }
    pub fn h2(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::H2(s.into()));
    }
    pub fn h3(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::H3(s.into()));
    }
    pub fn p(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::P(s.into()));
    }
    pub fn list(&mut self, items: Vec<String>) {
        self.blocks.push(Block::List(items));
    }
    pub fn table(&mut self, head: &[&str], rows: Vec<Vec<String>>) {
        self.blocks.push(Block::Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows,
        });
    }

    pub fn markdown(&self) -> String {
        let mut o = format!("# {}\n\n", md_inline(&self.title));
        for b in &self.blocks {
            match b {
                Block::H2(s) => o.push_str(&format!("## {}\n\n", md_inline(s))),
                Block::H3(s) => o.push_str(&format!("### {}\n\n", md_inline(s))),
                Block::P(s) => o.push_str(&format!("{}\n\n", md_inline(s))),
                Block::List(items) => {
                    for i in items {
                        o.push_str(&format!("- {}\n", md_inline(i)));
                    }
                    o.push('\n');
                }
                Block::Table { head, rows } => {
                    let line = |cells: &[String]| {
                        format!(
                            "| {} |\n",
                            cells
                                .iter()
                                .map(|c| md_cell(c))
                                .collect::<Vec<_>>()
                                .join(" | ")
                        )
                    };
                    o.push_str(&line(head));
                    o.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                    for r in rows {
                        o.push_str(&line(r));
                    }
                    o.push('\n');
                }
            }
        }
        o
    }

    pub fn html(&self) -> String {
        let mut o = format!(
            "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
             <style>body{{font-family:sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}}\
             table{{border-collapse:collapse;margin:0.5rem 0 1rem}}th,td{{border:1px solid #bbb;padding:0.2rem 0.5rem;text-align:left;vertical-align:top}}\
             th{{background:#eee}}code{{font-size:90%}}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            self.lang,
            esc(&self.title),
            esc(&self.title)
        );
        for b in &self.blocks {
            match b {
                Block::H2(s) => o.push_str(&format!("<h2>{}</h2>\n", esc(s))),
                Block::H3(s) => o.push_str(&format!("<h3>{}</h3>\n", esc(s))),
                Block::P(s) => o.push_str(&format!("<p>{}</p>\n", esc(s))),
                Block::List(items) => {
                    o.push_str("<ul>\n");
                    for i in items {
                        o.push_str(&format!("<li>{}</li>\n", esc(i)));
                    }
                    o.push_str("</ul>\n");
                }
                Block::Table { head, rows } => {
                    o.push_str("<table>\n<tr>");
                    for h in head {
                        o.push_str(&format!("<th>{}</th>", esc(h)));
                    }
                    o.push_str("</tr>\n");
                    for r in rows {
                        o.push_str("<tr>");
                        for c in r {
                            o.push_str(&format!("<td>{}</td>", esc(c)));
                        }
                        o.push_str("</tr>\n");
                    }
                    o.push_str("</table>\n");
                }
            }
        }
        o.push_str("</body>\n</html>\n");
        o
    }
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Plain text as Markdown: raw HTML and links from data shown as written ([`crate::escape`]).
fn md_inline(s: &str) -> String {
    crate::escape::markdown(s)
}

fn md_cell(s: &str) -> String {
    crate::escape::markdown(s).replace('|', "\\|")
}
