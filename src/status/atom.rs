//! `/feed.atom`: the page's episodes (open and recent) as an Atom feed (RFC 4287), one entry
//! per episode, updated when it ends. Links are relative to the feed's address.

use std::fmt::Write as _;

use super::Page;
use super::html::esc;
use super::words::{duration, local_time, rfc3339_local};
use crate::report::Lang;

pub fn render(p: &Page, lang: Lang) -> String {
    let t = |fr: &'static str, en: &'static str| lang.t(fr, en);
    let tz = p.tz;
    let mut entries: Vec<(i64, String)> = Vec::new();
    for e in &p.establishments {
        let who = if e.name.is_empty() {
            e.code.to_string()
        } else {
            format!("{} {}", e.code, e.name)
        };
        for x in &e.episodes {
            let iface = lang.interface(x.interface);
            // French sets a space before a colon.
            let colon = t(" :", ":");
            let (title, updated, text) = match x.end_ms {
                None => (
                    format!(
                        "{who} — {iface}{colon} {} {}",
                        t("indisponible depuis le", "unavailable since"),
                        local_time(x.start_ms, tz, lang)
                    ),
                    x.start_ms,
                    t(
                        "Épisode en cours : l'interface ne répond pas.",
                        "Ongoing episode: the interface does not answer.",
                    )
                    .to_owned(),
                ),
                Some(end) => (
                    format!(
                        "{who} — {iface}{colon} {} {} {} {}",
                        t("indisponible du", "unavailable from"),
                        local_time(x.start_ms, tz, lang),
                        t("au", "to"),
                        local_time(end, tz, lang)
                    ),
                    end,
                    format!(
                        "{} {}.{}",
                        t("Durée :", "Duration:"),
                        duration((end - x.start_ms) as f64 / 1000.0),
                        if x.cut {
                            t(
                                " Surveillance interrompue : fin inconnue.",
                                " Monitoring interrupted: end unknown.",
                            )
                        } else {
                            ""
                        }
                    ),
                ),
            };
            let mut s = String::new();
            let _ = write!(
                s,
                "<entry><id>urn:dispo:episode:{id}</id><title>{title}</title><published>{published}</published><updated>{updated}</updated>\
                 <link href=\"./#e{code}\"/><summary>{text}</summary></entry>",
                id = esc(&x.id),
                title = esc(&title),
                published = rfc3339_local(x.start_ms, tz),
                updated = rfc3339_local(updated, tz),
                code = e.code,
                text = esc(&text),
            );
            entries.push((updated, s));
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    let feed_updated = entries.first().map_or(p.quarter_computed_at_ms, |e| e.0);
    let mut out = String::new();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\
         <id>urn:dispo:status:episodes</id><title>{}</title><updated>{}</updated>\
         <link rel=\"self\" href=\"feed.atom?lang={}\"/><link href=\"./\"/><author><name>dispo</name></author>",
        lang.code(),
        esc(t(
            "Disponibilité des API DSP2 : épisodes d'indisponibilité",
            "PSD2 API availability: unavailability episodes"
        )),
        rfc3339_local(feed_updated, tz),
        lang.code(),
    );
    for (_, e) in entries {
        out.push_str(&e);
    }
    out.push_str("</feed>\n");
    out
}
