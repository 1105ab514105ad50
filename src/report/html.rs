//! The publication as a static web page the bank can put online as is: `index.html` beside its
//! `charts/` folder, no external request (no font, script or style from elsewhere), accessible
//! (captions, header cells with `scope`, alternative texts), fitting a 1 280 px screen without
//! horizontal scrolling, and printable on A4.
//!
//! Layout: title, status, what was measured, a navigation list of establishments, the overview
//! chart; then per establishment its headline figures, its charts and its daily table (the
//! dedicated and customer interfaces side by side); then the definitions. It names no TPP, no
//! request id and no watch level, and does not link the supervisor's annex.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::view::EstablishmentView;
use super::{Publication, ReportError, definitions, show_date};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:1.5rem auto;max-width:1200px;padding:0 1rem;color:#1d2733;line-height:1.4}\
h1{font-size:1.55rem;margin:.2rem 0 .6rem}h2{margin-top:2.4rem;border-bottom:2px solid #0072b2;padding-bottom:.2rem;font-size:1.3rem}h3{font-size:1.05rem;margin:1.2rem 0 .3rem}\
table{border-collapse:collapse;margin:.6rem 0;font-size:.82rem}caption{text-align:left;font-weight:600;padding:.3rem 0}\
th,td{border:1px solid #c9d3dd;padding:.22rem .35rem;text-align:right;vertical-align:top}th[scope=row],td.l,th.l{text-align:left}thead th{background:#e8eef5;font-weight:600}\
table.daily{width:100%;table-layout:fixed;font-size:.74rem}table.daily th{overflow-wrap:anywhere;hyphens:auto}table.daily thead th[scope=colgroup]{text-align:center;background:#d5e2ef}\
table.daily col.day{width:6.6rem}table.daily tr:nth-child(even) td{background:#f6f8fa}td.nd{color:#6b7785}\
.banner{background:#fff3cd;border:1px solid #e0b400;padding:.6rem 1rem;font-weight:600}\
nav ul{columns:3;padding-left:1.2rem;margin:.4rem 0}nav li{break-inside:avoid}\
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #dde;display:block}figcaption{font-size:.85rem;color:#445}\
.measured li{margin:.15rem 0}\
@media print{@page{size:A4;margin:12mm}body{max-width:none;margin:0;padding:0;font-size:10pt}nav ul{columns:2}\
h2{break-before:page;break-after:avoid}h2#defs{break-before:auto}figure,table.head{break-inside:avoid}table.daily{font-size:6.5pt}thead{display:table-header-group}}";

pub fn write(
    p: &Publication,
    views: &[EstablishmentView<'_>],
    dir: &Path,
) -> Result<PathBuf, ReportError> {
    let lang = p.req.lang;
    let num = |v: f64, places: usize| lang.dec(v, places);
    let t = |fr: &'static str, en: &'static str| lang.t(fr, en);
    let tz = p.req.settings.tz;
    let mut h = String::new();
    let title = definitions::title(p);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main><h1>{}</h1>",
        lang.code(),
        esc(&title),
        esc(&title)
    );
    if let Some(note) = definitions::status_note(p) {
        let _ = write!(h, "<p class=\"banner\" role=\"note\">{}</p>", esc(&note));
    }
    let _ = write!(
        h,
        "<p>{} {} {} {} {} ({} {}).</p>",
        esc(t(
            "Statistiques de disponibilité et de performance de l'interface dédiée aux prestataires de services de paiement (orientations EBA/GL/2018/07, 2.2 à 2.4), par établissement, jour par jour,",
            "Availability and performance statistics of the interface dedicated to payment service providers (EBA/GL/2018/07, 2.2 to 2.4), per establishment, day by day,"
        )),
        t("du", "from"),
        esc(&lang.long_date(p.req.period.from)),
        t("au", "to"),
        esc(&lang.long_date(p.req.period.to.pred_opt().unwrap_or(p.req.period.to))),
        t("jours civils, heure de", "calendar days, time of"),
        esc(tz.name())
    );
    let _ = write!(
        h,
        "<h3>{}</h3><ul class=\"measured\">",
        t("Ce qui a été mesuré", "What was measured")
    );
    for line in definitions::measured(p) {
        let _ = write!(h, "<li>{}</li>", esc(&line));
    }
    let _ = write!(h, "<li>{}</li></ul>", esc(&definitions::maintenance(p)));

    // Navigation.
    let _ = write!(
        h,
        "<nav aria-label=\"{}\"><h3>{}</h3><ul>",
        t("Établissements", "Establishments"),
        t("Établissements", "Establishments")
    );
    for v in views {
        let _ = write!(h, "<li><a href=\"#e{}\">{}</a></li>", v.code, esc(&v.name));
    }
    let _ = write!(
        h,
        "<li><a href=\"#defs\">{}</a></li></ul></nav>",
        t("Définitions", "Definitions")
    );
    let overview = t(
        "Disponibilité de l'interface dédiée de chaque établissement, avec l'objectif hebdomadaire ; un vide est une période sans surveillance (n.d.).",
        "Uptime of each establishment's dedicated interface, with the weekly target; a gap is a time nobody watched (n.d.).",
    );
    let _ = write!(
        h,
        "<figure><img src=\"charts/{}-overview.png\" alt=\"{}\" width=\"1000\"><figcaption>{} <a href=\"charts/{}-overview.svg\">SVG</a></figcaption></figure>",
        esc(&p.req.label),
        esc(overview),
        esc(overview),
        esc(&p.req.label)
    );

    for v in views {
        establishment(&mut h, p, v);
    }

    // Definitions.
    let _ = write!(
        h,
        "<h2 id=\"defs\">{}</h2><table class=\"head\"><caption>{}</caption><thead><tr><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th></tr></thead><tbody>",
        t("Définitions", "Definitions"),
        t(
            "La formule de chaque indicateur",
            "The formula of every figure"
        ),
        t("Indicateur", "Figure"),
        t("Définition", "Definition"),
        t("Référence", "Reference")
    );
    for [name, formula, reference] in definitions::figures(lang) {
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&name),
            esc(&formula),
            esc(&reference)
        );
    }
    let _ = write!(
        h,
        "</tbody></table><p>{} — {} {} {} {} ({} {}). {} : {}.</p>",
        esc(&definitions::maintenance(p)),
        t("Produit par dispo", "Produced by dispo"),
        env!("CARGO_PKG_VERSION"),
        t("le", "on"),
        esc(&p.generated_at),
        num(p.observations as f64, 0),
        t("observations", "observations"),
        t("Statut des chiffres", "Status of the figures"),
        esc(&lang.status(p.provisional, p.synthetic))
    );
    h.push_str("</main></body></html>\n");
    let path = dir.join("index.html");
    std::fs::write(&path, h).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn establishment(h: &mut String, p: &Publication, v: &EstablishmentView<'_>) {
    let lang = p.req.lang;
    let num = |x: f64, places: usize| lang.dec(x, places);
    let t = |fr: &'static str, en: &'static str| lang.t(fr, en);
    let cell = |x: Option<f64>, places: usize| match x {
        Some(x) => format!("<td>{}</td>", lang.dec(x, places)),
        None => format!("<td class=\"nd\">{}</td>", super::labels::ND),
    };
    let _ = write!(h, "<section id=\"e{}\"><h2>{}</h2>", v.code, esc(&v.name));
    // Headline figures.
    let _ = write!(
        h,
        "<table class=\"head\"><caption>{} {}</caption><thead><tr><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("Chiffres de la période :", "Figures of the period:"),
        esc(&lang.period_name(p.req.period)),
        t("Interface", "Interface"),
        t("Disponibilité (%)", "Uptime (%)"),
        t("Couverture (%)", "Coverage (%)"),
        t("Indisponibilité non planifiée", "Unplanned downtime"),
        t("Indisponibilité planifiée", "Planned downtime"),
        t("Épisodes d'indisponibilité", "Unavailability episodes"),
        t("Taux d'erreur (%)", "Error rate (%)"),
        t("Sans réponse", "No reply"),
    );
    for x in &v.headline {
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}</th>{}{}<td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td></tr>",
            esc(lang.interface(x.interface)),
            cell(x.uptime_pct, 4),
            cell(x.coverage_pct(), 2),
            esc(&lang.duration(x.downtime_s - x.planned_s)),
            esc(&lang.duration(x.planned_s)),
            x.episodes,
            cell(x.error_rate_pct, 3),
            num(x.no_reply, 0),
        );
    }
    h.push_str("</tbody></table>");
    if !v.services.is_empty() {
        let _ = write!(
            h,
            "<table class=\"head\"><caption>{}</caption><thead><tr><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            t(
                "Temps de réponse de l'interface dédiée sur la période (réponses réussies)",
                "Response time of the dedicated interface over the period (successful replies)"
            ),
            t("Service", "Service"),
            t("Moyenne (ms)", "Average (ms)"),
            t("Objectif hebdomadaire (ms)", "Weekly target (ms)"),
            t("95e centile (ms)", "95th percentile (ms)"),
            t("Réponses mesurées", "Replies timed"),
        );
        for s in &v.services {
            let _ = write!(
                h,
                "<tr><th scope=\"row\">{}</th>{}<td>{}</td>{}<td>{}</td></tr>",
                esc(&lang.service(&s.service)),
                cell(s.stats.map(|l| l.avg_ms), 1),
                num(s.target_ms, 0),
                cell(s.stats.map(|l| l.p95_ms), 1),
                num(s.stats.map_or(0.0, |l| l.replies as f64), 0),
            );
        }
        h.push_str("</tbody></table>");
    }
    // Unavailability episodes, in local time with the offset.
    if !v.episodes.is_empty() {
        let _ = write!(
            h,
            "<table class=\"head\"><caption>{}</caption><thead><tr><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\" class=\"l\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            t(
                "Épisodes d'indisponibilité (heure locale)",
                "Unavailability episodes (local time)"
            ),
            t("Interface", "Interface"),
            t("Début", "Start"),
            t("Fin", "End"),
            t("Durée", "Duration"),
            t("dont planifiée", "of which planned"),
        );
        let tz = p.req.settings.tz;
        for e in &v.episodes {
            let mut end = lang.local_time(tz, e.end_ms);
            if e.open {
                end.push_str(t(" (toujours en cours)", " (still going on)"));
            } else if e.cut {
                end.push_str(t(" (fin de la surveillance)", " (monitoring stopped)"));
            }
            let mut start = lang.local_time(tz, e.start_ms);
            if e.began_before_period {
                start.push_str(t(" (avant la période)", " (before the period)"));
            }
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(lang.interface(e.interface)),
                esc(&start),
                esc(&end),
                esc(&lang.duration(e.duration_s())),
                esc(&lang.duration(e.planned_s)),
            );
        }
        h.push_str("</tbody></table>");
    }
    // Charts.
    let alt = format!(
        "{} {} : {}",
        t("Graphiques de", "Charts of"),
        v.name,
        t(
            "disponibilité quotidienne de chaque interface, temps de réponse moyen par service et taux d'erreur, avec les objectifs.",
            "daily uptime of each interface, average response time per service and error rate, with the targets."
        )
    )
    .replace(" : ", t(" : ", ": "));
    let stem = format!("{}-{}", p.req.label, v.code);
    let _ = write!(
        h,
        "<figure><img src=\"charts/{}.png\" alt=\"{}\" width=\"1000\"><figcaption>{} <a href=\"charts/{}.svg\">SVG</a></figcaption></figure>",
        esc(&stem),
        esc(&alt),
        esc(&alt),
        esc(&stem)
    );
    // The daily table: interfaces side by side.
    let _ = write!(
        h,
        "<table class=\"daily\"><caption>{} {}</caption><colgroup><col class=\"day\"></colgroup><thead><tr><th scope=\"col\" rowspan=\"2\" class=\"l\">{}</th>",
        t("Chiffres quotidiens :", "Daily figures:"),
        esc(&v.name),
        t("Jour", "Day")
    );
    for (k, i) in v.interfaces.iter().enumerate() {
        let span = 4 + if k == 0 { 2 + v.services.len() } else { 0 };
        let _ = write!(
            h,
            "<th scope=\"colgroup\" colspan=\"{span}\">{}</th>",
            esc(lang.interface_short(*i))
        );
    }
    let _ = write!(
        h,
        "<th scope=\"colgroup\" colspan=\"2\">{}</th></tr><tr>",
        t("Requêtes des prestataires", "Provider requests")
    );
    for k in 0..v.interfaces.len() {
        for c in [
            t("Dispo. (%)", "Uptime (%)"),
            t("Couv. (%)", "Cover. (%)"),
            t("Indisp. non planifiée (s)", "Unplanned down (s)"),
            t("Indisp. planifiée (s)", "Planned down (s)"),
        ] {
            let _ = write!(h, "<th scope=\"col\">{c}</th>");
        }
        if k == 0 {
            let _ = write!(
                h,
                "<th scope=\"col\">{}</th><th scope=\"col\">{}</th>",
                t("Sans réponse", "No reply"),
                t("Erreurs (%)", "Errors (%)")
            );
            for s in &v.services {
                let _ = write!(
                    h,
                    "<th scope=\"col\">{} {} (ms)</th>",
                    t("Temps moyen", "Avg. time"),
                    esc(&lang.service_short(&s.service))
                );
            }
        }
    }
    let _ = write!(
        h,
        "<th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("Interface dédiée", "Dedicated interface"),
        t("Accès de secours", "Fallback access")
    );
    for d in &v.days {
        let _ = write!(h, "<tr><th scope=\"row\">{}</th>", show_date(d.date, lang));
        for (k, f) in d.figures.iter().enumerate() {
            h.push_str(&cell(f.and_then(|f| f.uptime_pct), 4));
            h.push_str(&cell(f.map(|f| f.coverage_pct), 1));
            h.push_str(&cell(f.map(|f| f.unplanned_downtime_s()), 1));
            h.push_str(&cell(f.map(|f| f.planned_downtime_s), 1));
            if k == 0 {
                h.push_str(&cell(f.map(|f| f.no_reply as f64), 0));
                h.push_str(&cell(f.and_then(|f| f.error_rate_pct), 3));
                for s in &v.services {
                    h.push_str(&cell(
                        f.and_then(|f| f.latency.get(&s.service)).map(|l| l.avg_ms),
                        1,
                    ));
                }
            }
        }
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td></tr>",
            num(d.tpp_api as f64, 0),
            num(d.tpp_fallback as f64, 0)
        );
    }
    h.push_str("</tbody></table></section>");
}
