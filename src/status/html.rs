//! The status page as HTML: one self-contained document (no external request), French by
//! default. Served, it refreshes itself: a small script asks `status.json` every `refresh_s`
//! seconds and, when the content changed, replaces the page's `<main>` with the new one (no
//! reload); without JavaScript a `<meta http-equiv="refresh">` reloads the page instead. Every
//! text from data (names from the configuration) is escaped.

use std::fmt::Write as _;

use super::words::{duration, local_time, quarter, service};
use super::{Page, State};
use crate::report::Lang;
use crate::report::labels::ND;

/// `& < > "` as entities.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "*{box-sizing:border-box}body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;color:#1d2733;line-height:1.4}\
h1{font-size:1.5rem;margin:.4rem 0}h2{font-size:1.2rem;margin:1.6rem 0 .4rem;border-bottom:2px solid #005493;padding-bottom:.2rem}h2 small{font-weight:normal;color:#445}\
h3{font-size:1rem;margin:.8rem 0 .3rem}.meta{color:#445;font-size:.9rem}.meta a{margin-left:.6rem}\
.wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem;table-layout:fixed}caption{text-align:left;font-weight:600;padding:.3rem 0}\
th,td{border:1px solid #c9d3dd;padding:.3rem .5rem;text-align:left;vertical-align:top}thead th{background:#e8eef5}td.n{text-align:right;white-space:nowrap}\
.state{font-weight:600}.up{color:#1e6b2f}.down{color:#fff;background:#b00020}.unmonitored{color:#5a4a00;background:#fff3cd}\
.banner{background:#fff3cd;border:1px solid #e0b400;padding:.6rem 1rem}ul{margin:.2rem 0;padding-left:1.2rem}footer{margin-top:2rem;font-size:.85rem;color:#445}";

/// The script of a served page: poll `status.json`, replace `<main>` when the content changed.
fn script(refresh_s: u64) -> String {
    format!(
        "<script>(function(){{var rev=document.body.getAttribute('data-revision');\
function tick(){{fetch('status.json',{{cache:'no-store'}}).then(function(r){{return r.json();}}).then(function(j){{\
var c=document.getElementById('checked');if(c&&j.generated_at){{c.textContent=j.generated_at.slice(11,19);}}\
if(j.revision===rev){{return;}}return fetch(location.href,{{cache:'no-store'}}).then(function(r){{return r.text();}}).then(function(h){{\
var d=new DOMParser().parseFromString(h,'text/html');var m=d.querySelector('main');if(m){{document.querySelector('main').replaceWith(m);rev=j.revision;\
document.body.setAttribute('data-revision',rev);}}}});}}).catch(function(){{}}).then(function(){{setTimeout(tick,{ms});}});}}\
setTimeout(tick,{ms});}})();</script>",
        ms = refresh_s * 1000
    )
}

/// The page in `lang`. `revision` is the JSON's (the script compares it).
pub fn render(p: &Page, lang: Lang, revision: &str) -> String {
    let t = |fr: &'static str, en: &'static str| lang.t(fr, en);
    let tz = p.tz;
    let at = |ms: i64| local_time(ms, tz, lang);
    let title = t(
        "Disponibilité des API DSP2 à date",
        "PSD2 API availability to date",
    );
    let q = quarter(p.quarter.from, lang);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        lang.code()
    );
    if let Some(r) = p.refresh_s {
        // Without JavaScript only: with it, the script refreshes without reloading.
        let _ = write!(
            h,
            "<noscript><meta http-equiv=\"refresh\" content=\"{r}\"></noscript>"
        );
    }
    let _ = write!(
        h,
        "<title>{title}</title><link rel=\"alternate\" type=\"application/atom+xml\" href=\"feed.atom?lang={code}\" title=\"{feed}\">\
         <style>{STYLE}</style></head><body data-revision=\"{rev}\"><header><h1>{title}</h1>",
        code = lang.code(),
        feed = esc(t("Épisodes d'indisponibilité", "Unavailability episodes")),
        rev = esc(revision),
    );
    let (other, other_name) = match lang {
        Lang::Fr => ("en", "English"),
        Lang::En => ("fr", "Français"),
    };
    let _ = write!(
        h,
        "<p class=\"meta\">{} <span id=\"checked\">{}</span>\
         <a href=\"?lang={other}\" lang=\"{other}\">{other_name}</a><a href=\"status.json\">JSON</a><a href=\"feed.atom?lang={}\">Atom</a></p></header><main>",
        t("Vérifié à", "Checked at"),
        crate::status::words::rfc3339_local(p.generated_at_ms, tz)
            .get(11..19)
            .unwrap_or_default(),
        lang.code()
    );
    let _ = write!(
        h,
        "<p class=\"meta\">{} {}. {} {} {}, {} {} ({} {}).</p>",
        t("État au", "State at"),
        at(p.generated_at_ms),
        t("Trimestre", "Quarter"),
        q,
        t("à date (provisoire)", "to date (provisional)"),
        t("chiffres calculés le", "figures computed at"),
        at(p.quarter_computed_at_ms),
        t("heure locale", "local time"),
        tz.name(),
    );
    if p.synthetic {
        let _ = write!(
            h,
            "<p class=\"banner\" role=\"note\"><strong>{}</strong></p>",
            t(
                "Données synthétiques : cette page est une démonstration, pas une mesure réelle.",
                "Synthetic data: this page is a demonstration, not a real measurement."
            )
        );
    }
    if p.establishments.is_empty() {
        let _ = write!(
            h,
            "<p>{}</p>",
            t(
                "Aucun établissement surveillé pour l'instant.",
                "No establishment monitored yet."
            )
        );
    }
    for e in &p.establishments {
        let full = crate::domain::known_establishment(e.code.as_str())
            .map(|k| k.name)
            .unwrap_or_default();
        let _ = write!(
            h,
            "<section id=\"e{code}\"><h2>{code} {name} <small>{full}</small></h2><div class=\"wrap\"><table><caption>{cap}</caption><colgroup><col style=\"width:19%\"><col style=\"width:33%\"><col style=\"width:12%\"><col style=\"width:10%\"><col style=\"width:17%\"><col style=\"width:9%\"></colgroup><thead><tr>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{} {q}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            t("Interface", "Interface"),
            t("État", "State"),
            t("Disponibilité", "Uptime"),
            t("Couverture", "Coverage"),
            t("Temps de réponse moyen", "Average response time"),
            t("Épisodes", "Episodes"),
            code = e.code,
            name = esc(&e.name),
            full = esc(full),
            cap = t(
                "État actuel et trimestre à date, par interface",
                "State now and quarter to date, per interface"
            ),
        );
        for i in &e.interfaces {
            let state = match i.state {
                State::Up => t("Disponible", "Available").to_owned(),
                State::Down { since_ms } => format!(
                    "{} {}",
                    t("Indisponible depuis le", "Unavailable since"),
                    at(since_ms)
                ),
                State::Unmonitored { since_ms: Some(s) } => format!(
                    "{} {}",
                    t("Non surveillée depuis le", "Unmonitored since"),
                    at(s)
                ),
                State::Unmonitored { since_ms: None } => {
                    t("Non surveillée", "Unmonitored").to_owned()
                }
            };
            let pct = |v: Option<f64>, places| match v {
                Some(v) => format!("{} %", lang.dec(v, places)),
                None => ND.to_owned(),
            };
            let avg = if i.quarter.avg_ms.is_empty() {
                ND.to_owned()
            } else {
                i.quarter
                    .avg_ms
                    .iter()
                    .map(|(s, ms)| format!("{} {} ms", esc(&service(s, lang)), lang.dec(*ms, 0)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            let _ = write!(
                h,
                "<tr><th scope=\"row\">{}</th><td class=\"state {}\" data-state=\"{}\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{avg}</td><td class=\"n\">{}</td></tr>",
                esc(lang.interface(i.interface)),
                i.state.key(),
                i.state.key(),
                esc(&state),
                pct(i.quarter.uptime_pct, 3),
                pct(i.quarter.coverage_pct, 1),
                i.episodes,
            );
        }
        h.push_str("</tbody></table></div>");
        let _ = write!(
            h,
            "<h3>{}</h3>",
            t(
                "Épisodes d'indisponibilité en cours et récents",
                "Current and recent unavailability episodes"
            )
        );
        if e.episodes.is_empty() {
            let _ = write!(
                h,
                "<p>{}</p>",
                t(
                    "Aucun épisode ces sept derniers jours.",
                    "No episode in the last seven days."
                )
            );
        } else {
            let _ = write!(
                h,
                "<div class=\"wrap\"><table><colgroup><col style=\"width:19%\"><col style=\"width:24%\"><col style=\"width:24%\"><col style=\"width:13%\"><col style=\"width:20%\"></colgroup><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
                t("Interface", "Interface"),
                t("Début", "Start"),
                t("Fin", "End"),
                t("Durée", "Duration"),
                t("Remarque", "Note"),
            );
            for x in &e.episodes {
                let (end, dur) = match x.end_ms {
                    Some(end) => (at(end), duration((end - x.start_ms) as f64 / 1000.0)),
                    None => (t("en cours", "ongoing").to_owned(), String::new()),
                };
                let mut notes = Vec::new();
                if x.cut {
                    notes.push(
                        t(
                            "surveillance interrompue : fin inconnue",
                            "monitoring interrupted: end unknown",
                        )
                        .to_owned(),
                    );
                }
                if x.planned_s > 0.0 {
                    notes.push(format!(
                        "{} {}",
                        t("maintenance planifiée :", "planned maintenance:"),
                        duration(x.planned_s)
                    ));
                }
                let _ = write!(
                    h,
                    "<tr data-open=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                    x.end_ms.is_none(),
                    esc(lang.interface(x.interface)),
                    at(x.start_ms),
                    esc(&end),
                    dur,
                    esc(&notes.join(" ; ")),
                );
            }
            h.push_str("</tbody></table></div>");
        }
        let _ = write!(
            h,
            "<h3>{}</h3>",
            t("Maintenance planifiée à venir", "Planned maintenance ahead")
        );
        if e.maintenance.is_empty() {
            let _ = write!(
                h,
                "<p>{}</p>",
                t(
                    "Aucune dans les sept prochains jours.",
                    "None in the next seven days."
                )
            );
        } else {
            h.push_str("<ul>");
            for (a, b) in &e.maintenance {
                let _ = write!(h, "<li>{} – {}</li>", at(*a), at(*b));
            }
            h.push_str("</ul>");
        }
        h.push_str("</section>");
    }
    let _ = write!(
        h,
        "</main><footer><p>{}</p>",
        esc(&format!(
            "{} {} {} {} {}",
            t(
                "L'interface est jugée indisponible après",
                "The interface is deemed unavailable after"
            ),
            p.failures_to_down,
            t(
                "requêtes consécutives en échec en",
                "consecutive failed requests within"
            ),
            lang.dec(p.window_ms as f64 / 1000.0, 0),
            t(
                "secondes (règlement délégué (UE) 2018/389, art. 33(1)). La disponibilité est calculée sur le temps surveillé ; la couverture est la part du trimestre écoulé pendant laquelle l'interface était surveillée ; le temps de réponse moyen porte sur les réponses réussies, par service, hors obtention du jeton. Les maintenances planifiées comptent comme indisponibilité. Les chiffres du trimestre en cours sont provisoires.",
                "seconds (Delegated Regulation (EU) 2018/389, Art. 33(1)). Uptime is over the monitored time; coverage is the share of the quarter so far during which the interface was monitored; the average response time is over successful replies, per service, the token endpoint left out. Planned maintenance counts as downtime. Figures of the current quarter are provisional."
            )
        ))
    );
    if p.vantage_points > 1 {
        // Section 10, as the publication: how many vantage points, never which.
        let _ = write!(
            h,
            "<p>{}</p>",
            esc(&format!(
                "{} {} {}",
                t("Mesurée depuis", "Measured from"),
                p.vantage_points,
                t(
                    "points de mesure (nœuds de surveillance distincts) : l'interface est comptée indisponible quand assez des points qui la surveillent à cet instant s'accordent (la majorité, sauf paramètre contraire) ; une panne vue de trop peu d'entre eux (leur propre réseau) ne l'est pas.",
                    "vantage points (distinct monitoring nodes): the interface is counted down when enough of the points watching it at that instant agree (a majority unless set otherwise); an outage seen from too few of them (their own network) is not."
                )
            ))
        );
    }
    h.push_str("</footer>");
    if let Some(r) = p.refresh_s {
        h.push_str(&script(r));
    }
    h.push_str("</body></html>");
    h
}
