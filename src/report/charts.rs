//! The publication's charts as PNG and SVG (plotters), drawn with a font embedded in the binary
//! (DejaVu Sans, freely licensed; `assets/fonts/`) so rendering needs no system font.
//!
//! Small multiples, never a sum across establishments (each is its own ASPSP): an overview with
//! one panel per establishment (its dedicated interface's uptime), and per establishment a figure
//! of three panels sharing the date axis (uptime of the dedicated interface beside each customer
//! interface, average response time per GL 2.3 service, error rate), each with its target as a
//! labelled line. A colour-blind-safe palette (Okabe and Ito), a light grid, dates on the axis by
//! week (or month over a long period), n.d. days left as gaps; a one-day period is drawn by hour.

use std::path::{Path, PathBuf};
use std::sync::Once;

use chrono::{Datelike, NaiveDate, Timelike};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::view::EstablishmentView;
use super::{Lang, Publication, ReportError};
use crate::domain::{CoverageSpan, Interface};
use crate::engine::intervals;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let _ = plotters::style::register_font("sans-serif", style, FONT);
        }
    });
}

/// Okabe and Ito's palette, told apart with every common colour-vision deficiency.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
];
const TARGET: RGBColor = RGBColor(90, 90, 90);
const GRID: RGBColor = RGBColor(228, 231, 235);

/// The horizontal axis: one slot per local day, or per hour for a one-day period.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Label of each tick, by slot index.
    pub ticks: Vec<(usize, String)>,
    /// Slot indices of the light vertical grid lines.
    pub grid: Vec<usize>,
    pub slots: usize,
    pub hourly: bool,
}

impl Axis {
    /// Days: a tick every Monday (every first of the month past ten weeks), a grid line each
    /// week; labels « 8 juil. ».
    pub fn days(dates: &[NaiveDate], lang: Lang) -> Self {
        let long = dates.len() > 70;
        let mut ticks = Vec::new();
        let mut grid = Vec::new();
        for (i, d) in dates.iter().enumerate() {
            let monday = d.weekday() == chrono::Weekday::Mon;
            if monday {
                grid.push(i);
            }
            if (long && d.day() == 1) || (!long && monday) {
                ticks.push((i, format!("{} {}", d.day(), lang.month_short(d.month()))));
            }
        }
        if ticks.is_empty()
            && let Some(d) = dates.first()
        {
            ticks.push((0, format!("{} {}", d.day(), lang.month_short(d.month()))));
        }
        Axis {
            ticks,
            grid,
            slots: dates.len(),
            hourly: false,
        }
    }

    /// Hours of one day: a tick every three hours, a grid line each hour.
    pub fn hours(starts: &[chrono::DateTime<chrono_tz::Tz>]) -> Self {
        let ticks = starts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.hour() % 3 == 0)
            .map(|(i, h)| (i, format!("{:02}h", h.hour())))
            .collect();
        Axis {
            ticks,
            grid: (0..starts.len()).collect(),
            slots: starts.len(),
            hourly: true,
        }
    }
}

/// One panel: series over the axis' slots (`None` is a gap), targets as labelled lines.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub unit: String,
    pub series: Vec<(String, Vec<Option<f64>>)>,
    pub targets: Vec<(String, f64)>,
    /// Counts and times start at 0; uptime fits the data and the target.
    pub from_zero: bool,
    /// At most this (uptime: 100).
    pub cap: Option<f64>,
    /// At least this low, so that small multiples share one scale.
    pub floor: Option<f64>,
    /// Shown when no series has a value.
    pub empty: String,
}

/// A figure of panels in a grid sharing one axis.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem.
    pub name: String,
    pub title: String,
    pub subtitle: String,
    pub axis: Axis,
    pub panels: Vec<Panel>,
    pub columns: usize,
    pub panel_size: (u32, u32),
}

impl Figure {
    pub fn size(&self) -> (u32, u32) {
        let cols = self.columns.max(1) as u32;
        let rows = self.panels.len().div_ceil(self.columns.max(1)) as u32;
        (cols * self.panel_size.0, 64 + rows * self.panel_size.1)
    }
}

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn draw_figure<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, f: &Figure) -> Result<(), String> {
    root.fill(&WHITE).map_err(e2s)?;
    root.draw(&Text::new(
        f.title.clone(),
        (16, 10),
        ("sans-serif", 20).into_font().style(FontStyle::Bold),
    ))
    .map_err(e2s)?;
    root.draw(&Text::new(
        f.subtitle.clone(),
        (16, 38),
        ("sans-serif", 14).into_font().color(&RGBColor(70, 70, 70)),
    ))
    .map_err(e2s)?;
    let body = root.margin(64, 0, 0, 0);
    let rows = f.panels.len().div_ceil(f.columns.max(1));
    let cells = body.split_evenly((rows.max(1), f.columns.max(1)));
    for (p, area) in f.panels.iter().zip(cells) {
        draw_panel(&area, p, &f.axis)?;
    }
    root.present().map_err(e2s)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    axis: &Axis,
) -> Result<(), String> {
    let values: Vec<f64> = p
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .collect();
    let (mut lo, mut hi) = values
        .iter()
        .chain(p.targets.iter().map(|t| &t.1))
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    if p.from_zero {
        lo = 0.0;
    }
    if let Some(f) = p.floor {
        lo = lo.min(f);
    }
    let pad = ((hi - lo) * 0.1).max(if p.from_zero { 1.0 } else { 0.05 });
    let y0 = if p.from_zero { 0.0 } else { lo - pad };
    let mut y1 = hi + pad;
    if let Some(cap) = p.cap {
        y1 = y1.min(cap + pad * 0.5);
    }
    let n = axis.slots.max(1);
    // Each slot is drawn at its middle: a day's figure belongs to the whole day.
    let x_end = n as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            &p.title,
            ("sans-serif", 15).into_font().style(FontStyle::Bold),
        )
        .margin_left(8)
        .margin_right(16)
        .margin_top(4)
        .margin_bottom(4)
        .x_label_area_size(24)
        .y_label_area_size(58)
        .build_cartesian_2d(0f64..x_end, y0..y1)
        .map_err(e2s)?;
    let dec = |v: &f64| {
        let places = if (y1 - y0) < 2.0 {
            2
        } else if (y1 - y0) < 20.0 {
            1
        } else {
            0
        };
        format!("{v:.places$}")
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(5)
        .y_label_formatter(&dec)
        .y_desc(p.unit.as_str())
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(RGBColor(150, 150, 150))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 12))
        .draw()
        .map_err(e2s)?;
    // The light vertical grid (weeks, or hours) and the date labels under the axis.
    for i in &axis.grid {
        let x = *i as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, y0), (x, y1)],
                GRID.stroke_width(1),
            )))
            .map_err(e2s)?;
    }
    // Chart coordinates are the backend's; the panel draws relative to its own corner.
    let (bx, by) = area.get_base_pixel();
    let local = |(x, y): (i32, i32)| (x - bx, y - by);
    for (i, label) in &axis.ticks {
        let x = *i as f64;
        let (px, py) = local(chart.backend_coord(&(x, y0)));
        area.draw(&Text::new(
            label.clone(),
            (px, py + 6),
            ("sans-serif", 12)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e2s)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, y0), (x, y0 + (y1 - y0) * 0.02)],
                RGBColor(150, 150, 150).stroke_width(1),
            )))
            .map_err(e2s)?;
    }
    for (label, v) in &p.targets {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, *v), (x_end, *v)],
                6,
                4,
                TARGET.stroke_width(1),
            ))
            .map_err(e2s)?;
        let (px, py) = local(chart.backend_coord(&(x_end, *v)));
        // Under the line when the line runs near the top (uptime near 100 %), above otherwise.
        let (dy, vpos) = if *v > y0 + (y1 - y0) * 0.85 {
            (3, VPos::Top)
        } else {
            (-3, VPos::Bottom)
        };
        area.draw(&Text::new(
            label.clone(),
            (px - 4, py + dy),
            ("sans-serif", 12)
                .into_font()
                .color(&TARGET)
                .pos(Pos::new(HPos::Right, vpos)),
        ))
        .map_err(e2s)?;
    }
    for (k, (label, vals)) in p.series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        // Runs of observed slots: an n.d. slot breaks the line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in vals.iter().enumerate() {
            match v {
                Some(v) => runs.last_mut().expect("one run").push((i as f64 + 0.5, *v)),
                None if !runs.last().expect("one run").is_empty() => runs.push(Vec::new()),
                None => {}
            }
        }
        let mut first = true;
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let single = run.len() == 1;
            let s = chart
                .draw_series(LineSeries::new(run.clone(), color.stroke_width(2)))
                .map_err(e2s)?;
            if first {
                s.label(label.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
                first = false;
            }
            if single {
                chart
                    .draw_series(run.iter().map(|p| Circle::new(*p, 3, color.filled())))
                    .map_err(e2s)?;
            }
        }
    }
    if values.is_empty() {
        let (px, py) = local(chart.backend_coord(&(x_end / 2.0, (y0 + y1) / 2.0)));
        area.draw(&Text::new(
            p.empty.clone(),
            (px, py),
            ("sans-serif", 14)
                .into_font()
                .color(&RGBColor(90, 90, 90))
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(e2s)?;
    } else if p.series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 12))
            .position(SeriesLabelPosition::LowerLeft)
            .draw()
            .map_err(e2s)?;
    }
    Ok(())
}

/// Draws a figure as PNG and SVG; returns both files.
pub fn write_figure(dir: &Path, f: &Figure) -> Result<Vec<PathBuf>, ReportError> {
    register_font();
    let png = dir.join(format!("{}.png", f.name));
    let svg = dir.join(format!("{}.svg", f.name));
    let err = |why: String| ReportError::Chart {
        name: f.name.clone(),
        why,
    };
    let size = f.size();
    draw_figure(BitMapBackend::new(&png, size).into_drawing_area(), f).map_err(err)?;
    draw_figure(SVGBackend::new(&svg, size).into_drawing_area(), f).map_err(err)?;
    Ok(vec![png, svg])
}

/// Per-hour figures of a one-day period, from the engine's episodes and the loaded coverage.
#[derive(Debug, Clone, Default)]
pub struct Hourly {
    /// Local start of each hour (23, 24 or 25 of them).
    pub starts: Vec<chrono::DateTime<chrono_tz::Tz>>,
    /// Per (establishment, interface): uptime per hour over its covered time, `None` when the
    /// hour was not covered.
    pub uptime: std::collections::BTreeMap<(String, Interface), Vec<Option<f64>>>,
}

impl Hourly {
    /// Uptime per hour = 100 − downtime in the hour / covered time in the hour × 100, as the
    /// daily figure (methodology section 4) over one hour. Downtime is the engine's episodes;
    /// coverage the spans the engine counted from.
    pub fn compute(p: &Publication, coverage: &[CoverageSpan]) -> Self {
        let tz = p.req.settings.tz;
        let day = p.req.period.from;
        let (start, end) = (
            crate::engine::time::day_start_ms(tz, day),
            crate::engine::time::day_start_ms(tz, p.req.period.to),
        );
        let bounds: Vec<(i64, i64)> = (start..end)
            .step_by(3_600_000)
            .map(|h| (h, (h + 3_600_000).min(end)))
            .collect();
        let starts = bounds
            .iter()
            .map(|(h, _)| crate::engine::time::utc(*h).with_timezone(&tz))
            .collect();
        let mut uptime = std::collections::BTreeMap::new();
        let series: std::collections::BTreeSet<_> = p
            .kpis
            .days
            .iter()
            .map(|d| (d.establishment, d.interface))
            .collect();
        for (e, i) in series {
            let cov = intervals::merge(
                coverage
                    .iter()
                    .filter(|c| c.covers(&e, i))
                    .map(|c| (c.start_ms, c.end_ms))
                    .collect(),
            );
            let down = intervals::merge(
                p.kpis
                    .episodes
                    .iter()
                    .filter(|x| x.establishment == e && x.interface == i)
                    .map(|x| (x.start_ms, x.end_ms))
                    .collect(),
            );
            let down = intervals::intersect(&down, &cov);
            let v = bounds
                .iter()
                .map(|b| {
                    let c = intervals::total(&intervals::intersect(&[*b], &cov)) as f64;
                    let d = intervals::total(&intervals::intersect(&[*b], &down)) as f64;
                    (c > 0.0).then(|| 100.0 - d / c * 100.0)
                })
                .collect();
            uptime.insert((e.to_string(), i), v);
        }
        Hourly { starts, uptime }
    }
}

fn figure_title(p: &Publication, what: &str) -> String {
    let lang = p.req.lang;
    let mut s = format!("{what} — {}", lang.period_name(p.req.period));
    if p.provisional {
        s.push_str(lang.t(" — PROVISOIRE", " — PROVISIONAL"));
    }
    if p.synthetic {
        s.push_str(lang.t(" — données synthétiques", " — synthetic data"));
    }
    s
}

fn uptime_target(p: &Publication) -> (String, f64) {
    let lang = p.req.lang;
    let t = p.req.settings.targets.uptime_pct;
    (
        format!(
            "{} {} %",
            lang.t("objectif hebdomadaire", "weekly target"),
            lang.dec(t, 1)
        ),
        t,
    )
}

/// The figures of a publication: the overview, then one per establishment.
pub fn figures(
    p: &Publication,
    views: &[EstablishmentView<'_>],
    hourly: Option<&Hourly>,
) -> Vec<Figure> {
    let lang = p.req.lang;
    let dates: Vec<NaiveDate> =
        crate::engine::time::days(p.req.period.from, p.req.period.to).collect();
    let axis = match hourly {
        Some(h) => Axis::hours(&h.starts),
        None => Axis::days(&dates, lang),
    };
    let by = if axis.hourly {
        lang.t("par heure", "by hour")
    } else {
        lang.t("par jour", "by day")
    };
    let nd = lang.t("n.d. : rien d'observé", "n.d.: nothing observed");
    let tz_note = format!(
        "{} ({}){}{}",
        lang.t("Heure locale", "Local time"),
        p.req.settings.tz.name(),
        lang.t(" ; ", "; "),
        if axis.hourly {
            lang.t(
                "une heure sans surveillance reste un vide (n.d.)",
                "an hour nobody watched stays a gap (n.d.)",
            )
        } else {
            lang.t(
                "un jour sans surveillance reste un vide (n.d.)",
                "a day nobody watched stays a gap (n.d.)",
            )
        }
    );
    let uptime_of = |v: &EstablishmentView<'_>, k: usize| -> Vec<Option<f64>> {
        match hourly {
            Some(h) => h
                .uptime
                .get(&(v.code.to_string(), v.interfaces[k]))
                .cloned()
                .unwrap_or_else(|| vec![None; axis.slots]),
            None => v
                .days
                .iter()
                .map(|d| d.figures[k].and_then(|f| f.uptime_pct))
                .collect(),
        }
    };
    let mut out = Vec::new();
    // The overview: one small panel per establishment, same scale.
    let series: Vec<Vec<Option<f64>>> = views.iter().map(|v| uptime_of(v, 0)).collect();
    let floor = series
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(p.req.settings.targets.uptime_pct, f64::min);
    let overview_panels: Vec<Panel> = views
        .iter()
        .zip(series)
        .map(|(v, series)| Panel {
            title: v.short.clone(),
            unit: "%".into(),
            series: vec![(lang.interface_short(Interface::Api).to_owned(), series)],
            targets: vec![(
                lang.dec(p.req.settings.targets.uptime_pct, 1) + " %",
                p.req.settings.targets.uptime_pct,
            )],
            from_zero: false,
            cap: Some(100.0),
            floor: Some(floor),
            empty: nd.into(),
        })
        .collect();
    let columns = if views.len() >= 3 {
        3
    } else {
        views.len().max(1)
    };
    out.push(Figure {
        name: format!("{}-overview", p.req.label),
        title: figure_title(
            p,
            &format!(
                "{} {by}",
                lang.t(
                    "Disponibilité de l'interface dédiée",
                    "Uptime of the dedicated interface"
                )
            ),
        ),
        subtitle: tz_note.clone(),
        axis: axis.clone(),
        panels: overview_panels,
        columns,
        panel_size: (1000 / columns as u32, 210),
    });
    for v in views {
        let uptime = Panel {
            title: format!("{} (%)", lang.t("Disponibilité", "Uptime")),
            unit: "%".into(),
            series: (0..v.interfaces.len())
                .map(|k| {
                    (
                        lang.interface_short(v.interfaces[k]).to_owned(),
                        uptime_of(v, k),
                    )
                })
                .collect(),
            targets: vec![uptime_target(p)],
            from_zero: false,
            cap: Some(100.0),
            floor: None,
            empty: nd.into(),
        };
        let times = Panel {
            title: format!(
                "{} (ms)",
                lang.t(
                    "Temps de réponse moyen de l'interface dédiée",
                    "Average response time of the dedicated interface"
                )
            ),
            unit: "ms".into(),
            series: if axis.hourly {
                Vec::new()
            } else {
                v.services
                    .iter()
                    .map(|s| {
                        (
                            lang.service(&s.service),
                            v.days
                                .iter()
                                .map(|d| {
                                    d.figures[0]
                                        .and_then(|f| f.latency.get(&s.service))
                                        .map(|l| l.avg_ms)
                                })
                                .collect(),
                        )
                    })
                    .collect()
            },
            targets: {
                let mut t: Vec<(String, f64)> = Vec::new();
                for s in &v.services {
                    if !t.iter().any(|x| x.1 == s.target_ms) {
                        t.push((
                            format!(
                                "{} {} ms",
                                lang.t("objectif hebdomadaire", "weekly target"),
                                lang.dec(s.target_ms, 0)
                            ),
                            s.target_ms,
                        ));
                    }
                }
                t
            },
            from_zero: true,
            cap: None,
            floor: None,
            empty: if axis.hourly {
                lang.t(
                    "voir la moyenne du jour ci-dessus",
                    "see the day's average above",
                )
                .into()
            } else {
                nd.into()
            },
        };
        let errors = Panel {
            title: format!(
                "{} (%)",
                lang.t(
                    "Taux d'erreur imputable à la banque, interface dédiée",
                    "Error rate attributable to the bank, dedicated interface"
                )
            ),
            unit: "%".into(),
            series: if axis.hourly {
                Vec::new()
            } else {
                vec![(
                    lang.interface_short(Interface::Api).to_owned(),
                    v.days
                        .iter()
                        .map(|d| d.figures[0].and_then(|f| f.error_rate_pct))
                        .collect(),
                )]
            },
            targets: vec![(
                format!(
                    "{} {} %",
                    lang.t("objectif hebdomadaire", "weekly target"),
                    lang.dec(p.req.settings.targets.error_rate_pct, 1)
                ),
                p.req.settings.targets.error_rate_pct,
            )],
            from_zero: true,
            cap: None,
            floor: None,
            empty: if axis.hourly {
                lang.t("voir le taux du jour ci-dessus", "see the day's rate above")
                    .into()
            } else {
                nd.into()
            },
        };
        let panels = if axis.hourly {
            vec![uptime]
        } else {
            vec![uptime, times, errors]
        };
        out.push(Figure {
            name: format!("{}-{}", p.req.label, v.code),
            title: figure_title(p, &v.name),
            subtitle: tz_note.clone(),
            axis: axis.clone(),
            panels,
            columns: 1,
            panel_size: (1000, 260),
        });
    }
    out
}

/// Writes every figure; returns the files.
pub fn write_all(
    p: &Publication,
    views: &[EstablishmentView<'_>],
    hourly: Option<&Hourly>,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = Vec::new();
    for f in figures(p, views, hourly) {
        files.extend(write_figure(dir, &f)?);
    }
    Ok(files)
}
