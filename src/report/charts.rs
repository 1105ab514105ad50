//! The publication's charts as PNG and SVG (plotters), drawn with a font embedded in the binary
//! (DejaVu Sans, freely licensed; `assets/fonts/`) so rendering needs no system font: daily
//! uptime of each interface, daily mean response time per service with its target, daily error
//! rate, API versus fallback requests, and a downtime calendar (a cell per day).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use chrono::{Datelike, NaiveDate};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Publication, ReportError, frames};
use crate::domain::Interface;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let _ = plotters::style::register_font("sans-serif", style, FONT);
        }
    });
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 84, 147),
    RGBColor(214, 95, 0),
    RGBColor(0, 140, 70),
    RGBColor(150, 30, 120),
    RGBColor(120, 120, 120),
    RGBColor(200, 20, 30),
];

/// One line chart: series over the days of the period, optional horizontal target lines.
pub struct LineChart {
    pub name: String,
    pub title: String,
    pub y_label: String,
    pub dates: Vec<NaiveDate>,
    pub series: Vec<(String, Vec<Option<f64>>)>,
    pub targets: Vec<(String, f64)>,
    /// Whether the y axis starts at 0 (counts, times) or fits the data (uptime).
    pub from_zero: bool,
}

fn draw_line<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &LineChart,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let values = c
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .chain(c.targets.iter().map(|t| t.1));
    let (mut lo, mut hi) = values.fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(v), h.max(v)));
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    if c.from_zero {
        lo = 0.0;
    }
    let pad = ((hi - lo) * 0.08).max(0.01);
    let (y0, y1) = (if c.from_zero { 0.0 } else { lo - pad }, hi + pad);
    let n = c.dates.len().max(1);
    let dates = c.dates.clone();
    let mut chart = ChartBuilder::on(&root)
        .caption(&c.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..(n.max(2) - 1) as f64, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .y_desc(c.y_label.as_str())
        .x_labels(8)
        .x_label_formatter(&|x| {
            let i = x.round().max(0.0) as usize;
            dates
                .get(i)
                .map(|d| format!("{:02}/{:02}", d.day(), d.month()))
                .unwrap_or_default()
        })
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (label, vals)) in c.series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let pts: Vec<(f64, f64)> = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 2, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    for (label, v) in &c.targets {
        let color = RGBColor(200, 20, 30);
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, *v), ((n.max(2) - 1) as f64, *v)],
                ShapeStyle::from(&color).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(legend_place(c, y0, y1))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Where the legend covers the least: the lines of the chart's right third sit mostly in its
/// upper half (uptime near 100 %), so the legend goes lower right, else upper right.
fn legend_place(c: &LineChart, y0: f64, y1: f64) -> SeriesLabelPosition {
    let mid = (y0 + y1) / 2.0;
    let (mut high, mut low) = (0usize, 0usize);
    for (_, vals) in &c.series {
        for v in vals.iter().skip(vals.len() * 2 / 3).flatten() {
            if *v >= mid {
                high += 1;
            } else {
                low += 1;
            }
        }
    }
    if high > low {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// The downtime calendar: one cell per day (weeks across, weekdays down), coloured by the
/// dedicated interface's downtime that day (all establishments).
pub struct Calendar {
    pub name: String,
    pub title: String,
    pub days: Vec<(NaiveDate, f64)>,
    pub legend: [String; 4],
    pub weekdays: [&'static str; 7],
    /// Short month names, January first: each month's name heads the week it starts in.
    pub months: [&'static str; 12],
}

fn draw_calendar<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &Calendar,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    root.draw(&Text::new(
        c.title.clone(),
        (20, 12),
        ("sans-serif", 22).into_font(),
    ))
    .map_err(|e| e.to_string())?;
    let Some(first) = c.days.first().map(|d| d.0) else {
        return root.present().map_err(|e| e.to_string());
    };
    let monday0 = first - chrono::Duration::days(first.weekday().num_days_from_monday() as i64);
    let cell = 22i32;
    let color = |s: f64| {
        if s <= 0.0 {
            RGBColor(46, 160, 67)
        } else if s < 600.0 {
            RGBColor(240, 190, 50)
        } else if s < 3600.0 {
            RGBColor(230, 120, 30)
        } else {
            RGBColor(200, 20, 30)
        }
    };
    for (d, s) in &c.days {
        let week = ((*d - monday0).num_days() / 7) as i32;
        let wd = d.weekday().num_days_from_monday() as i32;
        let (x, y) = (40 + week * (cell + 3), 50 + wd * (cell + 3));
        root.draw(&Rectangle::new(
            [(x, y), (x + cell, y + cell)],
            color(*s).filled(),
        ))
        .map_err(|e| e.to_string())?;
    }
    for (d, _) in c.days.iter().filter(|(d, _)| d.day() == 1 || *d == first) {
        let week = ((*d - monday0).num_days() / 7) as i32;
        root.draw(&Text::new(
            c.months[d.month0() as usize].to_string(),
            (40 + week * (cell + 3), 36),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(|e| e.to_string())?;
    }
    for (i, l) in c.weekdays.iter().enumerate() {
        root.draw(&Text::new(
            l.to_string(),
            (20, 54 + i as i32 * (cell + 3)),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(|e| e.to_string())?;
    }
    let ly = 50 + 7 * (cell + 3) + 12;
    for (i, (label, s)) in c.legend.iter().zip([0.0, 1.0, 600.0, 3600.0]).enumerate() {
        let x = 40 + i as i32 * 190;
        root.draw(&Rectangle::new(
            [(x, ly), (x + 14, ly + 14)],
            color(s).filled(),
        ))
        .map_err(|e| e.to_string())?;
        root.draw(&Text::new(
            label.clone(),
            (x + 20, ly),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

fn write_line(dir: &Path, c: &LineChart) -> Result<Vec<PathBuf>, ReportError> {
    register_font();
    let png = dir.join(format!("{}.png", c.name));
    let svg = dir.join(format!("{}.svg", c.name));
    let err = |why: String| ReportError::Chart {
        name: c.name.clone(),
        why,
    };
    draw_line(BitMapBackend::new(&png, (1000, 420)).into_drawing_area(), c).map_err(err)?;
    draw_line(SVGBackend::new(&svg, (1000, 420)).into_drawing_area(), c).map_err(err)?;
    Ok(vec![png, svg])
}

/// The charts of a publication, as the page and the spreadsheet show them.
pub fn line_charts(p: &Publication) -> Result<Vec<LineChart>, ReportError> {
    let lang = p.req.lang;
    let dates: Vec<NaiveDate> =
        crate::engine::time::days(p.req.period.from, p.req.period.to).collect();
    let idx: BTreeMap<NaiveDate, usize> = dates.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let bd = &p.bank_daily;
    let (bdate, biface) = (frames::strs(bd, "date")?, frames::strs(bd, "interface")?);
    let (uptime, err_rate, reqs) = (
        frames::opt_nums(bd, "uptime_pct")?,
        frames::opt_nums(bd, "error_rate_pct")?,
        frames::opt_nums(bd, "requests")?,
    );
    // A day with nothing observed stays a gap in the line ("n.d."), never a value.
    let series_of = |iface: &str, vals: &[Option<f64>]| -> Vec<Option<f64>> {
        let mut v = vec![None; dates.len()];
        for i in 0..bdate.len() {
            if biface[i] == iface
                && let Some(k) = bdate[i].parse::<NaiveDate>().ok().and_then(|d| idx.get(&d))
            {
                v[*k] = vals[i];
            }
        }
        v
    };
    let mut ifaces: Vec<Interface> = vec![Interface::Api];
    ifaces.extend(p.customer_interfaces());
    let uptime_series = ifaces
        .iter()
        .map(|i| {
            (
                lang.interface(*i).to_string(),
                series_of(i.as_str(), &uptime),
            )
        })
        .collect();

    // Bank-wide mean response time per service: each day's means weighted by their replies.
    let mut sums: BTreeMap<(String, NaiveDate), (f64, u64)> = BTreeMap::new();
    for d in p.kpis.days.iter().filter(|d| d.interface == Interface::Api) {
        for (s, l) in &d.latency {
            let e = sums.entry((s.to_string(), d.date)).or_default();
            e.0 += l.avg_ms * l.replies as f64;
            e.1 += l.replies;
        }
    }
    let mut resp: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for s in &p.services {
        let mut v = vec![None; dates.len()];
        for ((svc, d), (sum, n)) in &sums {
            if svc == s.as_str()
                && *n > 0
                && let Some(k) = idx.get(d)
            {
                v[*k] = Some(sum / *n as f64);
            }
        }
        if v.iter().any(Option::is_some) {
            resp.push((s.to_string(), v));
        }
    }
    let t = &p.req.settings.targets;
    let mut targets = vec![(
        format!("{} {} ms", lang.t("cible", "target"), t.avg_ms),
        t.avg_ms,
    )];
    for (s, ms) in &t.avg_ms_by_service {
        targets.push((format!("{} {s} {ms} ms", lang.t("cible", "target")), *ms));
    }
    Ok(vec![
        LineChart {
            name: format!("{}-uptime", p.req.label),
            title: lang
                .t("Disponibilité quotidienne (%)", "Daily uptime (%)")
                .into(),
            y_label: "%".into(),
            dates: dates.clone(),
            series: uptime_series,
            targets: vec![(
                format!("{} {} %", lang.t("cible", "target"), t.uptime_pct),
                t.uptime_pct,
            )],
            from_zero: false,
        },
        LineChart {
            name: format!("{}-response", p.req.label),
            title: lang
                .t(
                    "Temps de réponse moyen quotidien (ms)",
                    "Daily mean response time (ms)",
                )
                .into(),
            y_label: "ms".into(),
            dates: dates.clone(),
            series: resp,
            targets,
            from_zero: true,
        },
        LineChart {
            name: format!("{}-errors", p.req.label),
            title: lang
                .t(
                    "Taux d'erreur quotidien de l'interface dédiée (%)",
                    "Daily error rate of the dedicated interface (%)",
                )
                .into(),
            y_label: "%".into(),
            dates: dates.clone(),
            series: vec![(
                lang.interface(Interface::Api).to_string(),
                series_of("api", &err_rate),
            )],
            targets: vec![(
                format!("{} {} %", lang.t("cible", "target"), t.error_rate_pct),
                t.error_rate_pct,
            )],
            from_zero: true,
        },
        LineChart {
            name: format!("{}-fallback", p.req.label),
            title: lang
                .t(
                    "Requêtes : interface dédiée et accès de secours",
                    "Requests: dedicated interface and fallback",
                )
                .into(),
            y_label: lang.t("requêtes", "requests").into(),
            dates: dates.clone(),
            series: vec![
                (
                    lang.interface(Interface::Api).to_string(),
                    series_of("api", &reqs),
                ),
                (
                    lang.interface(Interface::Fallback).to_string(),
                    series_of("fallback", &reqs),
                ),
            ],
            targets: vec![],
            from_zero: true,
        },
    ])
}

/// Writes every chart; returns the files.
pub fn write_all(p: &Publication, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    register_font();
    let mut files = Vec::new();
    for c in line_charts(p)? {
        files.extend(write_line(dir, &c)?);
    }
    let lang = p.req.lang;
    let mut down: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    for d in p.kpis.days.iter().filter(|d| d.interface == Interface::Api) {
        *down.entry(d.date).or_default() += d.downtime_s;
    }
    let cal = Calendar {
        name: format!("{}-calendar", p.req.label),
        title: lang
            .t(
                "Indisponibilité quotidienne de l'interface dédiée",
                "Daily downtime of the dedicated interface",
            )
            .into(),
        days: down.into_iter().collect(),
        legend: [
            lang.t("aucune", "none").into(),
            lang.t("moins de 10 min", "under 10 min").into(),
            lang.t("10 à 60 min", "10 to 60 min").into(),
            lang.t("plus d'une heure", "over an hour").into(),
        ],
        weekdays: match lang {
            super::Lang::Fr => ["L", "M", "M", "J", "V", "S", "D"],
            super::Lang::En => ["M", "T", "W", "T", "F", "S", "S"],
        },
        months: match lang {
            super::Lang::Fr => [
                "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
                "nov.", "déc.",
            ],
            super::Lang::En => [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ],
        },
    };
    let weeks = cal.days.len() / 7 + 2;
    let width = (80 + weeks * 25).max(820) as u32;
    let png = dir.join(format!("{}.png", cal.name));
    let svg = dir.join(format!("{}.svg", cal.name));
    let err = |why: String| ReportError::Chart {
        name: cal.name.clone(),
        why,
    };
    draw_calendar(
        BitMapBackend::new(&png, (width, 260)).into_drawing_area(),
        &cal,
    )
    .map_err(err)?;
    draw_calendar(
        SVGBackend::new(&svg, (width, 260)).into_drawing_area(),
        &cal,
    )
    .map_err(err)?;
    files.extend([png, svg]);
    Ok(files)
}
