//! The publication as a spreadsheet (rust_xlsxwriter): Summary, Daily (formats, frozen header,
//! filters, missed targets highlighted), Episodes, Weekly watch, Fallback, Methodology, and native
//! Excel charts (daily uptime per interface, response time per service with targets, error rate,
//! API versus fallback requests) drawn from a ChartData sheet.

use std::path::{Path, PathBuf};

use rust_xlsxwriter::{
    Chart, ChartType, Color, ConditionalFormatCell, ConditionalFormatCellRule, Format, FormatAlign,
    Workbook, Worksheet, XlsxError,
};

use super::charts::line_charts;
use super::{Publication, ReportError, show_date};
use crate::domain::known_establishment;
use crate::engine::time::rfc3339;

/// Where one chart's data sits on the ChartData sheet.
struct Placed {
    title: String,
    date_col: u16,
    series: Vec<(String, u16)>,
    rows: u32,
}

fn fmt(num: &str) -> Format {
    Format::new().set_num_format(num)
}

fn header(ws: &mut Worksheet, row: u32, cols: &[&str]) -> Result<(), XlsxError> {
    let bold = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDDE6F0))
        .set_text_wrap()
        .set_align(FormatAlign::Top);
    for (c, h) in cols.iter().enumerate() {
        ws.write_string_with_format(row, c as u16, *h, &bold)?;
    }
    Ok(())
}

pub fn write(p: &Publication, dir: &Path) -> Result<PathBuf, ReportError> {
    let path = dir.join(p.file(".xlsx"));
    let lang = p.req.lang;
    let t = |fr: &'static str, en: &'static str| lang.t(fr, en);
    let (pct, ms, secs, int) = (
        fmt("0.0000\" %\""),
        fmt("0.0\" ms\""),
        fmt("0.000\" s\""),
        fmt("0"),
    );
    let miss = Format::new()
        .set_background_color(Color::RGB(0xFFC7CE))
        .set_font_color(Color::RGB(0x9C0006));
    let mut wb = Workbook::new();

    // Summary.
    let ws = wb.add_worksheet().set_name(t("Synthèse", "Summary"))?;
    let title = Format::new().set_bold().set_font_size(14);
    ws.write_string_with_format(
        0,
        0,
        format!(
            "{} {} — {} {} {} {}",
            t(
                "Statistiques de l'interface dédiée DSP2",
                "PSD2 dedicated interface statistics"
            ),
            p.req.label,
            t("du", "from"),
            show_date(p.req.period.from, lang),
            t("au", "to"),
            show_date(p.req.period.to - chrono::Duration::days(1), lang)
        ),
        &title,
    )?;
    if p.synthetic {
        ws.write_string_with_format(
            1,
            0,
            t(
                "DONNÉES SYNTHÉTIQUES — démonstration, pas des mesures réelles",
                "SYNTHETIC DATA — a demonstration, not real measurements",
            ),
            &miss,
        )?;
    }
    let heads = lang.summary_headers(&p.services);
    header(ws, 3, &heads.iter().map(String::as_str).collect::<Vec<_>>())?;
    let rows = p.summary_rows()?;
    for (r, x) in rows.iter().enumerate() {
        let row = 4 + r as u32;
        let name = known_establishment(&x.establishment)
            .map(|k| format!("{} {}", x.establishment, k.short))
            .unwrap_or_else(|| x.establishment.clone());
        ws.write_string(row, 0, name)?;
        ws.write_string(row, 1, lang.interface(x.interface))?;
        let vals = [
            x.uptime_pct,
            Some(x.downtime_s),
            Some(x.planned_s),
            Some(x.unmonitored_s),
            Some(x.requests),
            Some(x.no_reply),
            x.error_rate_pct,
        ];
        for (k, f) in [&pct, &secs, &secs, &secs, &int, &int, &pct]
            .iter()
            .enumerate()
        {
            write_opt(ws, row, 2 + k as u16, vals[k], f)?;
        }
        ws.write_number(row, 9, x.episodes as f64)?;
        let mut c = 10u16;
        for l in &x.latency {
            if let Some((avg, p95)) = l {
                ws.write_number_with_format(row, c, *avg, &ms)?;
                ws.write_number_with_format(row, c + 1, *p95, &ms)?;
            }
            c += 2;
        }
        if let Some(share) = x.fallback_share_pct {
            ws.write_number_with_format(row, c, share, &pct)?;
        }
        if let Some((missed, of)) = x.weeks_missed {
            let words = lang.weeks_missed(missed, of);
            if missed > 0 {
                ws.write_string_with_format(row, c + 1, words, &miss)?;
            } else {
                ws.write_string(row, c + 1, words)?;
            }
        }
    }
    let last = 3 + rows.len() as u32;
    ws.add_conditional_format(
        4,
        2,
        last.max(4),
        2,
        &ConditionalFormatCell::new()
            .set_rule(ConditionalFormatCellRule::LessThan(
                p.req.settings.targets.uptime_pct,
            ))
            .set_format(&miss),
    )?;
    ws.set_column_width(0, 22)?;
    ws.set_column_width(1, 28)?;
    for c in 2..heads.len() as u16 {
        ws.set_column_width(c, 15)?;
    }
    ws.set_column_width(heads.len() as u16 - 1, 26)?;

    // Daily.
    let ws = wb.add_worksheet().set_name(t("Quotidien", "Daily"))?;
    let mut head: Vec<String> = [
        t("Date", "Date"),
        t("Établissement", "Establishment"),
        t("Interface", "Interface"),
        t("Durée du jour (s)", "Day length (s)"),
        t("Indisponibilité (s)", "Downtime (s)"),
        t("dont planifiée (s)", "of which planned (s)"),
        t("Disponibilité (%)", "Uptime (%)"),
        t("Non surveillé (s)", "Unmonitored (s)"),
        t("Requêtes", "Requests"),
        t("Sans réponse", "No reply"),
        t("Taux d'erreur (%)", "Error rate (%)"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for svc in &p.services {
        head.push(format!("{} {svc} (ms)", t("Moyenne", "Mean")));
        head.push(format!("p95 {svc} (ms)"));
    }
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    header(ws, 0, &head_refs)?;
    let date_fmt = fmt("yyyy-mm-dd");
    for (r, d) in p.kpis.days.iter().enumerate() {
        let row = 1 + r as u32;
        let naive = d.date.and_hms_opt(0, 0, 0).unwrap_or_default();
        ws.write_datetime_with_format(row, 0, naive, &date_fmt)?;
        ws.write_string(row, 1, d.establishment.as_str())?;
        ws.write_string(row, 2, d.interface.as_str())?;
        ws.write_number_with_format(row, 3, d.seconds_in_day as f64, &int)?;
        ws.write_number_with_format(row, 4, d.downtime_s, &secs)?;
        ws.write_number_with_format(row, 5, d.planned_downtime_s, &secs)?;
        write_opt(ws, row, 6, d.uptime_pct, &pct)?;
        ws.write_number_with_format(row, 7, d.unmonitored_s, &secs)?;
        ws.write_number_with_format(row, 8, d.requests as f64, &int)?;
        ws.write_number_with_format(row, 9, d.no_reply as f64, &int)?;
        write_opt(ws, row, 10, d.error_rate_pct, &pct)?;
        for (k, svc) in p.services.iter().enumerate() {
            if let Some(l) = d.latency.get(svc) {
                ws.write_number_with_format(row, 11 + 2 * k as u16, l.avg_ms, &ms)?;
                ws.write_number_with_format(row, 12 + 2 * k as u16, l.p95_ms, &ms)?;
            }
        }
    }
    let last_row = p.kpis.days.len().max(1) as u32;
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, last_row, (head.len() - 1) as u16)?;
    let t_up = p.req.settings.targets.uptime_pct;
    ws.add_conditional_format(
        1,
        6,
        last_row,
        6,
        &ConditionalFormatCell::new()
            .set_rule(ConditionalFormatCellRule::LessThan(t_up))
            .set_format(&miss),
    )?;
    let t_err = p.req.settings.targets.error_rate_pct;
    ws.add_conditional_format(
        1,
        10,
        last_row,
        10,
        &ConditionalFormatCell::new()
            .set_rule(ConditionalFormatCellRule::GreaterThan(t_err))
            .set_format(&miss),
    )?;
    ws.set_column_width(0, 12)?;
    for c in 1..head.len() as u16 {
        ws.set_column_width(c, 14)?;
    }

    // Episodes.
    let ws = wb.add_worksheet().set_name(t("Épisodes", "Episodes"))?;
    header(
        ws,
        0,
        &[
            t("Identifiant", "Id"),
            t("Établissement", "Establishment"),
            t("Interface", "Interface"),
            t("Début (UTC)", "Start (UTC)"),
            t("Fin (UTC)", "End (UTC)"),
            t("Durée (s)", "Duration (s)"),
            t("dont planifiée (s)", "of which planned (s)"),
            t("Ouvert", "Open"),
            t("Les cinq requêtes", "The five requests"),
            t("Fin constatée par", "Ended by"),
            t("Surveillance interrompue", "Monitoring interrupted"),
            t("Commencé avant la période", "Began before the period"),
        ],
    )?;
    for (r, e) in p.kpis.episodes.iter().enumerate() {
        let row = 1 + r as u32;
        ws.write_string(row, 0, e.id())?;
        ws.write_string(row, 1, e.establishment.as_str())?;
        ws.write_string(row, 2, e.interface.as_str())?;
        ws.write_string(row, 3, rfc3339(e.start_ms))?;
        ws.write_string(row, 4, rfc3339(e.end_ms))?;
        ws.write_number_with_format(row, 5, e.duration_s(), &secs)?;
        ws.write_number_with_format(row, 6, e.planned_s, &secs)?;
        ws.write_string(
            row,
            7,
            if e.open {
                t("oui", "yes")
            } else {
                t("non", "no")
            },
        )?;
        ws.write_string(row, 8, e.request_ids.join(" "))?;
        ws.write_string(row, 9, e.ended_by.clone().unwrap_or_default())?;
        let yes_no = |b: bool| if b { t("oui", "yes") } else { t("non", "no") };
        ws.write_string(row, 10, yes_no(e.cut))?;
        ws.write_string(row, 11, yes_no(e.began_before_period))?;
    }
    ws.set_freeze_panes(1, 0)?;
    ws.set_column_width(0, 34)?;

    // Weekly watch.
    let ws = wb
        .add_worksheet()
        .set_name(t("Suivi hebdomadaire", "Weekly watch"))?;
    header(
        ws,
        0,
        &[
            t("Semaine", "Week"),
            t("Établissement", "Establishment"),
            t("Disponibilité (%)", "Uptime (%)"),
            t("Taux d'erreur (%)", "Error rate (%)"),
            t("Écarts", "Misses"),
            t("Semaines consécutives", "Consecutive weeks"),
            t("Niveau (art. 33(7))", "Level (Art. 33(7))"),
        ],
    )?;
    for (r, w) in p.kpis.weeks.iter().enumerate() {
        let row = 1 + r as u32;
        ws.write_string(row, 0, &w.week)?;
        ws.write_string(row, 1, w.establishment.as_str())?;
        write_opt(ws, row, 2, w.uptime_pct, &pct)?;
        write_opt(ws, row, 3, w.error_rate_pct, &pct)?;
        ws.write_string(row, 4, lang.misses(&w.misses))?;
        ws.write_number(row, 5, w.consecutive_missed as f64)?;
        match w.level {
            Some(l) => ws.write_string_with_format(row, 6, lang.level(l), &miss)?,
            None => ws.write_string(row, 6, "")?,
        };
    }
    ws.set_freeze_panes(1, 0)?;

    // Fallback per TPP.
    let ws = wb
        .add_worksheet()
        .set_name(t("Accès de secours", "Fallback use"))?;
    header(
        ws,
        0,
        &[
            t("Date", "Date"),
            t("Établissement", "Establishment"),
            "TPP",
            t("Justifiées", "Justified"),
            t("Injustifiées", "Unjustified"),
        ],
    )?;
    for (r, f) in p.kpis.fallback.iter().enumerate() {
        let row = 1 + r as u32;
        ws.write_datetime_with_format(
            row,
            0,
            f.date.and_hms_opt(0, 0, 0).unwrap_or_default(),
            &date_fmt,
        )?;
        ws.write_string(row, 1, f.establishment.as_str())?;
        ws.write_string(row, 2, f.tpp.clone().unwrap_or_default())?;
        ws.write_number(row, 3, f.justified as f64)?;
        if f.unjustified > 0 {
            ws.write_number_with_format(row, 4, f.unjustified as f64, &miss)?;
        } else {
            ws.write_number(row, 4, 0.0)?;
        }
    }
    ws.set_freeze_panes(1, 0)?;

    // Methodology.
    let ws = wb
        .add_worksheet()
        .set_name(t("Méthodologie", "Methodology"))?;
    let st = &p.req.settings;
    let rows: Vec<(String, String)> = vec![
        (
            t("Période", "Period").into(),
            format!(
                "{} – {} ({})",
                p.req.period.from,
                p.req.period.to,
                t("exclu", "exclusive")
            ),
        ),
        (
            t("Fuseau horaire des jours", "Time zone of the days").into(),
            st.tz.name().into(),
        ),
        (
            t("Indisponibilité", "Unavailability").into(),
            format!(
                "{} {} {} s {} (RTS 2018/389 art. 33(1), EBA/GL/2018/07 2.4)",
                st.failures_to_down,
                t(
                    "échecs consécutifs, le dernier au plus",
                    "consecutive failures, the last at most"
                ),
                st.window_ms as f64 / 1000.0,
                t("après le premier", "after the first")
            ),
        ),
        (
            t(
                "Erreurs 5xx / INTE / INTS comptées comme échecs",
                "5xx / INTE / INTS count as failures",
            )
            .into(),
            st.aspsp_error_is_failure.to_string(),
        ),
        (
            t("Services comptés", "Counted services").into(),
            st.counted_services
                .as_ref()
                .map(|v| {
                    v.iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| t("tous", "all").into()),
        ),
        (
            t("Maintenance planifiée", "Planned maintenance").into(),
            lang.maintenance(&st.maintenance),
        ),
        (t("Cibles", "Targets").into(), lang.targets(&st.targets)),
        (
            t("Délai de grâce du fallback (s)", "Fallback grace (s)").into(),
            st.fallback_grace_s.to_string(),
        ),
        (
            t("Observations", "Observations").into(),
            p.observations.to_string(),
        ),
        (
            t("Données synthétiques", "Synthetic data").into(),
            p.synthetic.to_string(),
        ),
        (
            t("Version de dispo", "dispo version").into(),
            env!("CARGO_PKG_VERSION").into(),
        ),
        (t("Produit le", "Generated").into(), p.generated_at.clone()),
    ];
    for (r, (k, v)) in rows.iter().enumerate() {
        ws.write_string_with_format(r as u32, 0, k, &Format::new().set_bold())?;
        ws.write_string(r as u32, 1, v)?;
    }
    ws.set_column_width(0, 44)?;
    ws.set_column_width(1, 90)?;

    // Chart data and native charts.
    let charts = line_charts(p)?;
    let data_name = "ChartData";
    let ws = wb.add_worksheet().set_name(data_name)?;
    let mut col = 0u16;
    let mut placed: Vec<Placed> = Vec::new();
    for c in &charts {
        let n = c.dates.len() as u32;
        ws.write_string(0, col, t("Date", "Date"))?;
        for (i, d) in c.dates.iter().enumerate() {
            ws.write_datetime_with_format(
                1 + i as u32,
                col,
                d.and_hms_opt(0, 0, 0).unwrap_or_default(),
                &date_fmt,
            )?;
        }
        let date_col = col;
        col += 1;
        let mut series = Vec::new();
        for (name, vals) in c.series.iter().map(|(n, v)| (n.clone(), v.clone())).chain(
            c.targets
                .iter()
                .map(|(n, v)| (n.clone(), vec![Some(*v); c.dates.len()])),
        ) {
            ws.write_string(0, col, &name)?;
            for (i, v) in vals.iter().enumerate() {
                if let Some(v) = v {
                    ws.write_number(1 + i as u32, col, *v)?;
                }
            }
            series.push((name, col));
            col += 1;
        }
        placed.push(Placed {
            title: c.title.clone(),
            date_col,
            series,
            rows: n,
        });
        col += 1;
    }
    let ws = wb.add_worksheet().set_name(t("Graphiques", "Charts"))?;
    for (k, pc) in placed.iter().enumerate() {
        let mut chart = Chart::new(ChartType::Line);
        chart.title().set_name(&pc.title);
        for (name, c) in &pc.series {
            chart
                .add_series()
                .set_name(name.as_str())
                .set_categories((data_name, 1, pc.date_col, pc.rows, pc.date_col))
                .set_values((data_name, 1, *c, pc.rows, *c));
        }
        ws.insert_chart((k as u32) * 22, 0, &chart)?;
    }
    wb.save(&path)?;
    Ok(path)
}

/// A figure, or "n.d." where nobody observed it (a blank would read as zero in a sum).
fn write_opt(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    v: Option<f64>,
    fmt: &Format,
) -> Result<(), XlsxError> {
    match v {
        Some(x) => ws.write_number_with_format(row, col, x, fmt)?,
        None => ws.write_string(row, col, super::labels::ND)?,
    };
    Ok(())
}
