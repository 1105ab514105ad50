//! The public spreadsheet (rust_xlsxwriter): « Synthèse » (headline figures per establishment and
//! interface), « Définitions » (the formula and GL 2.2-2.4 reference of every figure, what was
//! measured, coverage, 23/25-hour days, the maintenance calendar as announced), then one sheet
//! per establishment: its daily table with the dedicated and customer interfaces side by side,
//! and its native charts. No TPP, request id or watch level: those are in the annex. Weekly
//! targets are drawn as lines on the charts, never applied to daily cells.

use std::path::{Path, PathBuf};

use rust_xlsxwriter::{
    Chart, ChartEmptyCells, ChartLine, ChartLineDashType, ChartType, Color, Format, FormatAlign,
    Workbook, Worksheet, XlsxError,
};

use super::view::EstablishmentView;
use super::{Publication, ReportError, definitions, show_date};

fn fmt(num: &str) -> Format {
    Format::new().set_num_format(num)
}

fn header_format() -> Format {
    Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDDE6F0))
        .set_text_wrap()
        .set_align(FormatAlign::Top)
        .set_border(rust_xlsxwriter::FormatBorder::Thin)
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

/// Writes the title and the status lines at the top of a sheet; returns the next free row.
fn top(ws: &mut Worksheet, p: &Publication, title: &str) -> Result<u32, XlsxError> {
    let big = Format::new().set_bold().set_font_size(14);
    let warn = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xFFF3CD))
        .set_font_color(Color::RGB(0x7A4D00));
    ws.write_string_with_format(0, 0, title, &big)?;
    let mut row = 1;
    if let Some(note) = definitions::status_note(p) {
        ws.write_string_with_format(row, 0, note, &warn)?;
        row += 1;
    }
    Ok(row + 1)
}

pub fn write(
    p: &Publication,
    views: &[EstablishmentView<'_>],
    dir: &Path,
) -> Result<PathBuf, ReportError> {
    let path = dir.join(p.file(".xlsx"));
    let lang = p.req.lang;
    let t = |fr: &'static str, en: &'static str| lang.t(fr, en);
    let (pct, ms, secs, int) = (fmt("0.0000"), fmt("0.0"), fmt("0.0"), fmt("0"));
    let date_fmt = fmt(lang.t("dd/mm/yyyy", "yyyy-mm-dd"));
    let head = header_format();
    let title = definitions::title(p);
    let mut wb = Workbook::new();

    // Summary: headline figures per establishment and interface.
    let ws = wb.add_worksheet().set_name(t("Synthèse", "Summary"))?;
    let mut row = top(ws, p, &title)?;
    let cols = [
        t("Établissement", "Establishment"),
        t("Interface", "Interface"),
        t("Disponibilité (%)", "Uptime (%)"),
        t("Couverture (%)", "Coverage (%)"),
        t(
            "Indisponibilité non planifiée (s)",
            "Unplanned downtime (s)",
        ),
        t("Indisponibilité planifiée (s)", "Planned downtime (s)"),
        t("Épisodes d'indisponibilité", "Unavailability episodes"),
        t("Taux d'erreur (%)", "Error rate (%)"),
        t("Sans réponse", "No reply"),
    ];
    for (c, h) in cols.iter().enumerate() {
        ws.write_string_with_format(row, c as u16, *h, &head)?;
    }
    row += 1;
    for v in views {
        for h in &v.headline {
            ws.write_string(row, 0, &v.short)?;
            ws.write_string(row, 1, lang.interface(h.interface))?;
            write_opt(ws, row, 2, h.uptime_pct, &pct)?;
            write_opt(ws, row, 3, h.coverage_pct(), &fmt("0.00"))?;
            ws.write_number_with_format(row, 4, h.downtime_s - h.planned_s, &secs)?;
            ws.write_number_with_format(row, 5, h.planned_s, &secs)?;
            ws.write_number_with_format(row, 6, h.episodes as f64, &int)?;
            write_opt(ws, row, 7, h.error_rate_pct, &fmt("0.000"))?;
            ws.write_number_with_format(row, 8, h.no_reply, &int)?;
            row += 1;
        }
    }
    ws.set_column_width(0, 16)?;
    ws.set_column_width(1, 28)?;
    for c in 2..cols.len() as u16 {
        ws.set_column_width(c, 15)?;
    }
    ws.set_freeze_panes(3, 0)?;

    // Definitions.
    let ws = wb
        .add_worksheet()
        .set_name(t("Définitions", "Definitions"))?;
    let mut row = top(ws, p, &title)?;
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    let bold = Format::new().set_bold().set_align(FormatAlign::Top);
    for (c, h) in [
        t("Indicateur", "Figure"),
        t("Définition", "Definition"),
        t("Référence", "Reference"),
    ]
    .iter()
    .enumerate()
    {
        ws.write_string_with_format(row, c as u16, *h, &head)?;
    }
    row += 1;
    for [name, formula, reference] in definitions::figures(lang) {
        ws.write_string_with_format(row, 0, name, &bold)?;
        ws.write_string_with_format(row, 1, formula, &wrap)?;
        ws.write_string_with_format(row, 2, reference, &wrap)?;
        row += 1;
    }
    row += 1;
    ws.write_string_with_format(row, 0, t("Mesure", "Measurement"), &head)?;
    row += 1;
    for line in definitions::measured(p) {
        ws.write_string_with_format(row, 1, line, &wrap)?;
        row += 1;
    }
    row += 1;
    let extra = [
        (
            t("Période", "Period"),
            format!(
                "{} ({} {} {} {}, {} {})",
                lang.period_name(p.req.period),
                t("jours locaux du", "local days"),
                show_date(p.req.period.from, lang),
                t("au", "to"),
                show_date(p.req.period.to.pred_opt().unwrap_or(p.req.period.to), lang),
                t("fuseau", "time zone"),
                p.req.settings.tz.name()
            ),
        ),
        (
            t("Statut des chiffres", "Status of the figures"),
            lang.status(p.provisional, p.synthetic),
        ),
        (
            t("Maintenance planifiée", "Planned maintenance"),
            definitions::maintenance(p),
        ),
        (t("Produit le", "Generated"), p.generated_at.clone()),
        (
            t("Version de dispo", "dispo version"),
            env!("CARGO_PKG_VERSION").into(),
        ),
    ];
    for (k, v) in extra {
        ws.write_string_with_format(row, 0, k, &bold)?;
        ws.write_string_with_format(row, 1, v, &wrap)?;
        row += 1;
    }
    ws.set_column_width(0, 30)?;
    ws.set_column_width(1, 100)?;
    ws.set_column_width(2, 34)?;

    // One sheet per establishment.
    for v in views {
        let ws = wb.add_worksheet().set_name(sheet_name(&v.short))?;
        let sheet = ws.name();
        let row = top(
            ws,
            p,
            &format!("{} — {}", v.name, lang.period_name(p.req.period)),
        )?;
        // Two header rows: the interface, then its figures.
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for (k, i) in v.interfaces.iter().enumerate() {
            let mut c = vec![
                t("Disponibilité (%)", "Uptime (%)").to_owned(),
                t("Couverture (%)", "Coverage (%)").to_owned(),
                t("Indisp. non planifiée (s)", "Unplanned downtime (s)").to_owned(),
                t("Indisp. planifiée (s)", "Planned downtime (s)").to_owned(),
            ];
            if k == 0 {
                c.push(t("Sans réponse", "No reply").to_owned());
                c.push(t("Taux d'erreur (%)", "Error rate (%)").to_owned());
                for s in &v.services {
                    c.push(format!(
                        "{} {} (ms)",
                        t("Temps moyen", "Average time"),
                        lang.service(&s.service)
                    ));
                }
            }
            groups.push((lang.interface_short(*i).to_owned(), c));
        }
        groups.push((
            t("Requêtes des prestataires", "Provider requests").to_owned(),
            vec![
                t("Interface dédiée", "Dedicated interface").to_owned(),
                t("Accès de secours", "Fallback access").to_owned(),
            ],
        ));
        ws.merge_range(row, 0, row + 1, 0, t("Date", "Date"), &head)?;
        let mut c = 1u16;
        let mut first_col = Vec::new();
        for (g, cols) in &groups {
            first_col.push(c);
            let last = c + cols.len() as u16 - 1;
            if last > c {
                ws.merge_range(row, c, row, last, g, &head)?;
            } else {
                ws.write_string_with_format(row, c, g, &head)?;
            }
            for (k, h) in cols.iter().enumerate() {
                ws.write_string_with_format(row + 1, c + k as u16, h, &head)?;
            }
            c = last + 1;
        }
        let ncols = c;
        let first_data = row + 2;
        for (r, d) in v.days.iter().enumerate() {
            let row = first_data + r as u32;
            ws.write_datetime_with_format(
                row,
                0,
                d.date.and_hms_opt(0, 0, 0).unwrap_or_default(),
                &date_fmt,
            )?;
            for (k, f) in d.figures.iter().enumerate() {
                let c0 = first_col[k];
                write_opt(ws, row, c0, f.and_then(|f| f.uptime_pct), &pct)?;
                write_opt(ws, row, c0 + 1, f.map(|f| f.coverage_pct), &fmt("0.00"))?;
                write_opt(ws, row, c0 + 2, f.map(|f| f.unplanned_downtime_s()), &secs)?;
                write_opt(ws, row, c0 + 3, f.map(|f| f.planned_downtime_s), &secs)?;
                if k == 0 {
                    write_opt(ws, row, c0 + 4, f.map(|f| f.no_reply as f64), &int)?;
                    write_opt(
                        ws,
                        row,
                        c0 + 5,
                        f.and_then(|f| f.error_rate_pct),
                        &fmt("0.000"),
                    )?;
                    for (j, s) in v.services.iter().enumerate() {
                        write_opt(
                            ws,
                            row,
                            c0 + 6 + j as u16,
                            f.and_then(|f| f.latency.get(&s.service)).map(|l| l.avg_ms),
                            &ms,
                        )?;
                    }
                }
            }
            let cr = *first_col.last().expect("the request group");
            ws.write_number_with_format(row, cr, d.tpp_api as f64, &int)?;
            ws.write_number_with_format(row, cr + 1, d.tpp_fallback as f64, &int)?;
        }
        let last_data = first_data + v.days.len().max(1) as u32 - 1;
        ws.set_freeze_panes(first_data, 1)?;
        ws.set_column_width(0, 12)?;
        for c in 1..ncols {
            ws.set_column_width(c, 13)?;
        }
        ws.set_row_height(row + 1, 45)?;

        // Chart data beside the table: blanks where the table says n.d., so the charts leave
        // gaps (a text cell would be drawn as 0).
        let cd = ncols + 1;
        ws.write_string_with_format(row, cd, t("Données des graphiques", "Chart data"), &head)?;
        let mut chart_cols: Vec<(String, u16)> = Vec::new();
        let mut cc = cd;
        for (k, i) in v.interfaces.iter().enumerate() {
            let name = format!("{} (%)", lang.interface_short(*i));
            ws.write_string_with_format(row + 1, cc, &name, &head)?;
            for (r, d) in v.days.iter().enumerate() {
                if let Some(u) = d.figures[k].and_then(|f| f.uptime_pct) {
                    ws.write_number_with_format(first_data + r as u32, cc, u, &pct)?;
                }
            }
            chart_cols.push((name, cc));
            cc += 1;
        }
        let target_col = cc;
        ws.write_string_with_format(
            row + 1,
            target_col,
            t("Objectif hebdomadaire (%)", "Weekly target (%)"),
            &head,
        )?;
        for r in 0..v.days.len() {
            ws.write_number(
                first_data + r as u32,
                target_col,
                p.req.settings.targets.uptime_pct,
            )?;
        }
        cc += 1;
        let mut time_cols: Vec<(String, u16)> = Vec::new();
        for s in &v.services {
            let name = lang.service(&s.service);
            ws.write_string_with_format(row + 1, cc, format!("{name} (ms)"), &head)?;
            for (r, d) in v.days.iter().enumerate() {
                if let Some(l) = d.figures[0].and_then(|f| f.latency.get(&s.service)) {
                    ws.write_number_with_format(first_data + r as u32, cc, l.avg_ms, &ms)?;
                }
            }
            time_cols.push((name, cc));
            cc += 1;
            let tname = format!(
                "{} {} (ms)",
                t("objectif hebdomadaire", "weekly target"),
                lang.service(&s.service)
            );
            ws.write_string_with_format(row + 1, cc, &tname, &head)?;
            for r in 0..v.days.len() {
                ws.write_number(first_data + r as u32, cc, s.target_ms)?;
            }
            time_cols.push((tname, cc));
            cc += 1;
        }
        for c in cd..cc {
            ws.set_column_width(c, 14)?;
        }
        let cat = (sheet.as_str(), first_data, 0, last_data, 0);
        let dashed = || {
            let mut l = ChartLine::new();
            l.set_color(Color::RGB(0x5A5A5A))
                .set_dash_type(ChartLineDashType::Dash)
                .set_width(1);
            l
        };
        let palette = [0x0072B2, 0xE69F00, 0x009E73, 0xCC79A7, 0x56B4E9, 0xD55E00];
        let mut up = Chart::new(ChartType::Line);
        up.title()
            .set_name(t("Disponibilité quotidienne (%)", "Daily uptime (%)"));
        for (k, (name, c)) in chart_cols.iter().enumerate() {
            up.add_series()
                .set_name(name.as_str())
                .set_categories(cat)
                .set_values((sheet.as_str(), first_data, *c, last_data, *c))
                .set_format(
                    ChartLine::new()
                        .set_color(Color::RGB(palette[k % palette.len()]))
                        .set_width(2),
                );
        }
        up.add_series()
            .set_name(t("objectif hebdomadaire", "weekly target"))
            .set_categories(cat)
            .set_values((
                sheet.as_str(),
                first_data,
                target_col,
                last_data,
                target_col,
            ))
            .set_format(&mut dashed());
        up.x_axis()
            .set_date_axis(true)
            .set_num_format(lang.t("dd/mm", "dd mmm"));
        up.y_axis().set_max(100.0);
        up.show_empty_cells_as(ChartEmptyCells::Gaps);
        up.set_width(900).set_height(300);
        ws.insert_chart(last_data + 3, 0, &up)?;
        if !time_cols.is_empty() {
            let mut rt = Chart::new(ChartType::Line);
            rt.title().set_name(t(
                "Temps de réponse moyen quotidien (ms)",
                "Daily average response time (ms)",
            ));
            for (k, (name, c)) in time_cols.iter().enumerate() {
                let s = rt
                    .add_series()
                    .set_name(name.as_str())
                    .set_categories(cat)
                    .set_values((sheet.as_str(), first_data, *c, last_data, *c));
                if k % 2 == 1 {
                    s.set_format(&mut dashed());
                } else {
                    s.set_format(
                        ChartLine::new()
                            .set_color(Color::RGB(palette[(k / 2) % palette.len()]))
                            .set_width(2),
                    );
                }
            }
            rt.x_axis()
                .set_date_axis(true)
                .set_num_format(lang.t("dd/mm", "dd mmm"));
            rt.show_empty_cells_as(ChartEmptyCells::Gaps);
            rt.set_width(900).set_height(300);
            ws.insert_chart(last_data + 19, 0, &rt)?;
        }
    }
    wb.save(&path)?;
    Ok(path)
}

/// A worksheet name: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(s: &str) -> String {
    s.chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect()
}
