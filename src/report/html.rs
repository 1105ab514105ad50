//! The publication as a static web page the bank can put online as is: `index.html` beside its
//! `charts/` folder, no external request (no font, script or style from elsewhere), accessible
//! (captions, header cells with `scope`, alternative texts) and printable.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Publication, ReportError, frames, show_date};
use crate::domain::known_establishment;
use crate::engine::time::rfc3339;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1d2733}\
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:2px solid #005493;padding-bottom:.2rem}\
table{border-collapse:collapse;width:100%;margin:.8rem 0;font-size:.9rem}caption{text-align:left;font-weight:600;padding:.3rem 0}\
th,td{border:1px solid #c9d3dd;padding:.3rem .5rem;text-align:right}th[scope=row],td.l,th.l{text-align:left}thead th{background:#e8eef5}\
.miss{background:#ffc7ce;color:#9c0006}.banner{background:#fff3cd;border:1px solid #e0b400;padding:.6rem 1rem}\
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #dde}figcaption{font-size:.85rem;color:#445}\
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}\
@media print{details{display:block}details>summary{list-style:none}body{max-width:none;margin:0}h2{page-break-after:avoid}table,figure{page-break-inside:avoid}}";

pub fn write(p: &Publication, dir: &Path) -> Result<PathBuf, ReportError> {
    let lang = p.req.lang;
    // Figures in the page's language: a decimal comma in French, as in the text around them.
    let num = |v: f64, decimals: usize| lang.dec(v, decimals);
    let onum = |v: Option<f64>, decimals: usize| lang.opt_dec(v, decimals);
    let t = |fr: &'static str, en: &'static str| lang.t(fr, en);
    let mut h = String::new();
    let title = format!(
        "{} — {} ({} {} {} {})",
        t(
            "Statistiques de disponibilité et de performance de l'interface dédiée DSP2",
            "PSD2 dedicated interface availability and performance statistics"
        ),
        p.req.label,
        t("du", "from"),
        show_date(p.req.period.from, lang),
        t("au", "to"),
        show_date(p.req.period.to - chrono::Duration::days(1), lang)
    );
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main><h1>{}</h1>",
        lang.code(),
        esc(&title),
        esc(&title)
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
    let _ = write!(
        h,
        "<p>{}</p>",
        esc(t(
            "Conformément aux orientations EBA/GL/2018/07 et à l'article 32 du règlement délégué (UE) 2018/389, ces statistiques quotidiennes comparent l'interface dédiée aux prestataires tiers avec les interfaces offertes à nos clients.",
            "As EBA/GL/2018/07 and Article 32 of Delegated Regulation (EU) 2018/389 require, these daily statistics compare the interface dedicated to third-party providers with the interfaces offered to our own customers."
        ))
    );

    // Summary.
    let rows = p.summary_rows()?;
    let target = p.req.settings.targets.uptime_pct;
    let heads = lang.summary_headers(&p.services);
    let _ = write!(
        h,
        "<h2 id=\"summary\">{}</h2><table><caption>{}</caption><thead><tr>",
        t("Synthèse de la période", "Summary of the period"),
        t(
            "Par établissement et par interface, sur toute la période",
            "Per establishment and interface, over the whole period"
        ),
    );
    for (c, head) in heads.iter().enumerate() {
        let cls = if c < 2 || c == heads.len() - 1 {
            " class=\"l\""
        } else {
            ""
        };
        let _ = write!(h, "<th scope=\"col\"{cls}>{}</th>", esc(head));
    }
    h.push_str("</tr></thead><tbody>");
    for x in &rows {
        let name = known_establishment(&x.establishment)
            .map(|k| format!("{} {}", x.establishment, k.short))
            .unwrap_or_else(|| x.establishment.clone());
        let cls = if x.uptime_pct.is_none_or(|u| u < target) {
            " class=\"miss\""
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th><td class=\"l\">{}</td><td{cls}>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&name),
            esc(lang.interface(x.interface)),
            onum(x.uptime_pct, 4),
            num(x.downtime_s, 1),
            num(x.planned_s, 1),
            num(x.unmonitored_s, 1),
            x.requests,
            x.no_reply,
            onum(x.error_rate_pct, 3),
            x.episodes
        );
        for l in &x.latency {
            match l {
                Some((avg, p95)) => {
                    let _ = write!(h, "<td>{}</td><td>{}</td>", num(*avg, 1), num(*p95, 1));
                }
                None => h.push_str("<td>—</td><td>—</td>"),
            }
        }
        match x.fallback_share_pct {
            Some(v) => {
                let _ = write!(h, "<td>{}</td>", num(v, 3));
            }
            None => h.push_str("<td>—</td>"),
        }
        match x.weeks_missed {
            Some((missed, of)) => {
                let cls = if missed > 0 { "miss l" } else { "l" };
                let _ = write!(
                    h,
                    "<td class=\"{cls}\">{}</td>",
                    esc(&lang.weeks_missed(missed, of))
                );
            }
            None => h.push_str("<td class=\"l\">—</td>"),
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");

    // Usage.
    let u = &p.usage;
    let (ue, ui, us, calls, tpps) = (
        frames::strs(u, "establishment")?,
        frames::strs(u, "interface")?,
        frames::strs(u, "service")?,
        frames::nums(u, "successful_calls")?,
        frames::nums(u, "tpps")?,
    );
    let _ = write!(
        h,
        "<table><caption>{}</caption><thead><tr><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t(
            "Utilisation : appels réussis et prestataires distincts",
            "Usage: successful calls and distinct providers"
        ),
        t("Établissement", "Establishment"),
        t("Interface", "Interface"),
        t("Service", "Service"),
        t("Appels réussis", "Successful calls"),
        t("Prestataires distincts", "Distinct providers"),
    );
    for r in 0..ue.len() {
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&ue[r]),
            esc(&ui[r]),
            esc(&us[r]),
            calls[r],
            tpps[r]
        );
    }
    h.push_str("</tbody></table>");

    // Charts.
    let _ = write!(h, "<h2 id=\"charts\">{}</h2>", t("Graphiques", "Charts"));
    let charts = [
        (
            "uptime",
            t(
                "Disponibilité quotidienne de chaque interface, toutes entités confondues, avec la cible.",
                "Daily uptime of each interface, all establishments together, with the target.",
            ),
        ),
        (
            "response",
            t(
                "Temps de réponse moyen quotidien par service de l'interface dédiée, avec les cibles.",
                "Daily mean response time per service of the dedicated interface, with the targets.",
            ),
        ),
        (
            "errors",
            t(
                "Taux d'erreur quotidien imputable à la banque sur l'interface dédiée.",
                "Daily error rate attributable to the bank on the dedicated interface.",
            ),
        ),
        (
            "fallback",
            t(
                "Nombre quotidien de requêtes sur l'interface dédiée et sur l'accès de secours.",
                "Daily requests on the dedicated interface and on the fallback access.",
            ),
        ),
        (
            "calendar",
            t(
                "Calendrier : une case par jour, colorée selon la durée d'indisponibilité de l'interface dédiée.",
                "Calendar: one cell per day, coloured by the dedicated interface's downtime.",
            ),
        ),
    ];
    for (name, alt) in charts {
        let _ = write!(
            h,
            "<figure><img src=\"charts/{}-{name}.png\" alt=\"{}\" width=\"1000\"><figcaption>{}</figcaption></figure>",
            esc(&p.req.label),
            esc(alt),
            esc(alt)
        );
    }

    // Daily tables per establishment.
    let _ = write!(
        h,
        "<h2 id=\"daily\">{}</h2>",
        t("Statistiques quotidiennes", "Daily statistics")
    );
    for e in &p.establishments {
        let name = known_establishment(e.as_str())
            .map(|k| format!("{e} — {}", k.name))
            .unwrap_or_else(|| e.to_string());
        let _ = write!(
            h,
            "<details><summary>{}</summary><table><caption>{} {}</caption><thead><tr><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            esc(&name),
            t("Chiffres quotidiens de", "Daily figures of"),
            esc(&name),
            t("Jour", "Day"),
            t("Interface", "Interface"),
            t("Disponibilité (%)", "Uptime (%)"),
            t("Indisponibilité (s)", "Downtime (s)"),
            t("Non surveillé (s)", "Unmonitored (s)"),
            t("Requêtes", "Requests"),
            t("Taux d'erreur (%)", "Error rate (%)"),
            t("Temps de réponse moyen (ms)", "Mean response time (ms)"),
        );
        for d in p.kpis.days.iter().filter(|d| &d.establishment == e) {
            let avg: Vec<String> = d
                .latency
                .iter()
                .map(|(s, l)| format!("{s} {}", num(l.avg_ms, 1)))
                .collect();
            let cls = if d.uptime_pct.is_none_or(|u| u < target) {
                " class=\"miss\""
            } else {
                ""
            };
            let _ = write!(
                h,
                "<tr><th scope=\"row\">{}</th><td class=\"l\">{}</td><td{cls}>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                show_date(d.date, lang),
                esc(lang.interface(d.interface)),
                onum(d.uptime_pct, 4),
                num(d.downtime_s, 1),
                num(d.unmonitored_s, 1),
                d.requests,
                onum(d.error_rate_pct, 3),
                esc(&avg.join(", "))
            );
        }
        h.push_str("</tbody></table></details>");
    }

    // Episodes and weekly watch.
    let _ = write!(
        h,
        "<h2 id=\"episodes\">{}</h2><table><caption>{}</caption><thead><tr><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("Épisodes d'indisponibilité", "Unavailability episodes"),
        t(
            "Cinq requêtes consécutives sans réponse en 30 secondes (art. 33(1))",
            "Five consecutive requests unanswered within 30 seconds (Art. 33(1))"
        ),
        t("Identifiant", "Id"),
        t("Début (UTC)", "Start (UTC)"),
        t("Fin (UTC)", "End (UTC)"),
        t("Durée (s)", "Duration (s)")
    );
    for e in &p.kpis.episodes {
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td></tr>",
            esc(&e.id()),
            rfc3339(e.start_ms),
            rfc3339(e.end_ms),
            num(e.duration_s(), 1)
        );
    }
    h.push_str("</tbody></table>");
    let _ = write!(
        h,
        "<h2 id=\"weeks\">{}</h2><table><caption>{}</caption><thead><tr><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th></tr></thead><tbody>",
        t("Suivi hebdomadaire", "Weekly watch"),
        t(
            "Semaines civiles, niveaux de l'article 33(7)",
            "Calendar weeks, Article 33(7) levels"
        ),
        t("Semaine", "Week"),
        t("Établissement", "Establishment"),
        t("Disponibilité (%)", "Uptime (%)"),
        t("Semaines consécutives manquées", "Consecutive missed weeks"),
        t("Niveau", "Level"),
        t("Écarts", "Misses")
    );
    for w in &p.kpis.weeks {
        let level = w.level.map(|l| lang.level(l)).unwrap_or("—");
        let cls = if w.level.is_some() {
            " class=\"miss l\""
        } else {
            " class=\"l\""
        };
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th><td class=\"l\">{}</td><td>{}</td><td>{}</td><td{cls}>{}</td><td class=\"l\">{}</td></tr>",
            esc(&w.week),
            w.establishment,
            onum(w.uptime_pct, 4),
            w.consecutive_missed,
            level,
            esc(&lang.misses(&w.misses))
        );
    }
    h.push_str("</tbody></table>");

    // Methodology.
    let st = &p.req.settings;
    let _ = write!(
        h,
        "<h2 id=\"methodology\">{}</h2><ul><li>{}</li><li>{}</li><li>{}</li><li>{}</li><li>{}</li><li>{}</li></ul>",
        t("Méthodologie", "Methodology"),
        esc(&format!(
            "{} {}; {}",
            t("Jours civils dans le fuseau", "Calendar days in time zone"),
            st.tz.name(),
            t(
                "les jours de changement d'heure durent 23 ou 25 heures.",
                "daylight-saving days last 23 or 25 hours."
            )
        )),
        esc(&format!(
            "{} {} {} {} s, {}",
            t("Indisponibilité : au moins", "Unavailability: at least"),
            st.failures_to_down,
            t(
                "échecs consécutifs, le dernier au plus",
                "consecutive failures, the last at most"
            ),
            st.window_ms as f64 / 1000.0,
            t(
                "après le premier ; de la première de ces requêtes jusqu'à la première réponse qui n'est pas un échec.",
                "after the first; from the first of those requests to the first reply that is not a failure."
            )
        )),
        esc(&format!(
            "{} {}",
            t(
                "Erreurs 5xx/INTE/INTS comptées comme échecs :",
                "5xx/INTE/INTS errors count as failures:"
            ),
            st.aspsp_error_is_failure
        )),
        esc(&format!(
            "{} {} {}.",
            t(
                "Disponibilité = 100 % − indisponibilité ; la maintenance planifiée compte comme indisponibilité et est montrée à part ; le temps sans surveillance n'est compté ni comme disponible ni comme indisponible.",
                "Uptime = 100 % − downtime; planned maintenance counts as downtime and is shown apart; time without monitoring counts as neither."
            ),
            t(
                "Maintenance planifiée (heure locale) :",
                "Planned maintenance (local time):"
            ),
            lang.maintenance(&st.maintenance)
        )),
        esc(&format!(
            "{} {}",
            t("Cibles :", "Targets:"),
            lang.targets(&st.targets)
        )),
        esc(&format!(
            "{} {} — {} {} ({} {})",
            t("Produit par dispo", "Produced by dispo"),
            env!("CARGO_PKG_VERSION"),
            t("le", "on"),
            p.generated_at,
            p.observations,
            t("observations", "observations")
        ))
    );
    h.push_str("</main></body></html>\n");
    let path = dir.join("index.html");
    std::fs::write(&path, h).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
