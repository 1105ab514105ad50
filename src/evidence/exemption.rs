//! The exemption dossier (Art. 33(6) of Delegated Regulation (EU) 2018/389, EBA/GL/2018/07): the
//! evidence an ASPSP gives its supervisor to be exempted from the fallback mechanism.
//!
//! In: the store, a period of local days (at least three months unless explicitly allowed), the
//! counting settings. Out, in `out_dir`: `exemption.xlsx` (sheets Summary, Daily, Parity, Usage,
//! Episodes, Weeks), the same tables as CSV, `exemption.html` and `MANIFEST.sha256`. Every
//! availability figure is the engine's; usage (successful calls, distinct TPPs per service) is
//! counted from the observations, since the engine does not count it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{Months, NaiveDate};
use rust_xlsxwriter::{Format, Workbook};

use super::doc::Doc;
use super::{EpisodeId, EvidenceError, Lang, compute, local_date, manifest, rfc3339};
use crate::domain::{Interface, Outcome};
use crate::engine::{Kpis, Miss, Period, Settings};
use crate::store::{Store, StoredObservation};

/// One cell of a table written to XLSX, CSV and HTML alike.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    T(String),
    N(f64),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::T(s) => s.clone(),
            Cell::N(n) => format!("{n}"),
        }
    }
    /// For a CSV: text neutralised against formula injection, numbers as they are.
    fn csv(&self) -> String {
        match self {
            Cell::T(s) => crate::escape::csv_text(s).into_owned(),
            Cell::N(_) => self.text(),
        }
    }
}

fn t(s: impl Into<String>) -> Cell {
    Cell::T(s.into())
}
fn n(x: impl Into<f64>) -> Cell {
    Cell::N(x.into())
}
/// A figure nobody observed: "n.d.", never a number.
fn on(x: Option<f64>) -> Cell {
    x.map_or_else(|| t(crate::report::labels::ND), Cell::N)
}

struct Table {
    /// Sheet and file name (without extension).
    name: &'static str,
    head: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

/// Builds the dossier for `[from, to)` (local days). Fails with
/// [`EvidenceError::ShortPeriod`] when the period is shorter than three months, unless
/// `allow_short_period`, in which case every output says so. Returns the files written.
pub async fn build(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    settings: &Settings,
    lang: Lang,
    out_dir: &Path,
    allow_short_period: bool,
) -> Result<Vec<PathBuf>, EvidenceError> {
    if to <= from {
        return Err(EvidenceError::EmptyPeriod { from, to });
    }
    let short = from + Months::new(3) > to;
    if short && !allow_short_period {
        return Err(EvidenceError::ShortPeriod { from, to });
    }
    let (kpis, stored) = compute(store, Period { from, to }, settings, &[]).await?;
    super::pack::prepare_dir(out_dir)?;
    let tables = vec![
        daily(&kpis, lang),
        parity(&kpis, lang),
        usage(&stored, settings, lang),
        episodes(&kpis, lang),
        weeks(&kpis, lang),
    ];
    let summary = summary(&kpis, &stored, settings, from, to, short, lang);
    // All the files or none (see `report::publish`).
    crate::report::publish::all_or_nothing(
        out_dir,
        |out_dir| {
            // TPP usage: for the supervisor, not for every local user.
            crate::files::make_dir_private(out_dir).map_err(|source| EvidenceError::Write {
                path: out_dir.display().to_string(),
                source,
            })?;
            let mut files = Vec::new();
            let xlsx = out_dir.join("exemption.xlsx");
            write_xlsx(&xlsx, &summary, &tables)?;
            files.push(xlsx);
            for tb in &tables {
                files.push(write_csv(out_dir, tb)?);
            }
            let html = out_dir.join("exemption.html");
            let mut doc = Doc::new(
                l10n(
                    lang,
                    "Dossier de demande d'exemption du mécanisme de secours (art. 33(6))",
                    "Exemption from the fallback mechanism: supporting evidence (Art. 33(6))",
                ),
                lang.t("fr", "en"),
            );
            doc.table(
                &[lang.t("Élément", "Item"), lang.t("Valeur", "Value")],
                summary.clone(),
            );
            for tb in tables
                .iter()
                .filter(|tb| tb.name != "daily" && tb.name != "parity")
            {
                doc.h2(tb.name);
                let head: Vec<&str> = tb.head.iter().map(String::as_str).collect();
                doc.table(
                    &head,
                    tb.rows
                        .iter()
                        .map(|r| r.iter().map(Cell::text).collect())
                        .collect(),
                );
            }
            doc.p(lang.t(
                "Chiffres quotidiens et parité : voir daily.csv, parity.csv et exemption.xlsx.",
                "Daily figures and parity: see daily.csv, parity.csv and exemption.xlsx.",
            ));
            std::fs::write(&html, doc.html()).map_err(|source| EvidenceError::Write {
                path: html.display().to_string(),
                source,
            })?;
            files.push(html);
            files.push(manifest::write(out_dir)?);
            Ok(files)
        },
        |path, source| EvidenceError::Write {
            path: path.display().to_string(),
            source,
        },
    )
}

fn l10n(lang: Lang, fr: &str, en: &str) -> String {
    lang.t(fr, en).to_owned()
}

fn summary(
    kpis: &Kpis,
    stored: &[StoredObservation],
    settings: &Settings,
    from: NaiveDate,
    to: NaiveDate,
    short: bool,
    l: Lang,
) -> Vec<Vec<String>> {
    let api_eps = kpis
        .episodes
        .iter()
        .filter(|e| e.interface == Interface::Api)
        .count();
    let missed = kpis.weeks.iter().filter(|w| !w.misses.is_empty()).count();
    // TPP traffic only (methodology section 6): the monitor's own calls are no evidence of use.
    // And inside the period: the loaded rows also hold the look-back and whole weeks around it.
    let (p_from, p_to) = (
        crate::engine::time::day_start_ms(settings.tz, from),
        crate::engine::time::day_start_ms(settings.tz, to),
    );
    let tpp_api = || {
        stored.iter().filter(move |o| {
            o.obs.interface == Interface::Api
                && !settings.is_monitor(&o.obs)
                && (p_from..p_to).contains(&o.obs.received_at_ms)
        })
    };
    let ok_calls = tpp_api().filter(|o| o.obs.outcome == Outcome::Ok).count();
    let tpps: BTreeSet<&str> = tpp_api().filter_map(|o| o.obs.tpp.as_deref()).collect();
    let mut rows = vec![
        vec![
            l10n(
                l,
                "Période (jours locaux, fin exclue)",
                "Period (local days, end exclusive)",
            ),
            format!("{from} – {to}"),
        ],
        vec![
            l10n(l, "Fuseau horaire", "Time zone"),
            kpis.settings.tz.to_string(),
        ],
        vec![
            l10n(
                l,
                "Épisodes d'indisponibilité de l'interface dédiée",
                "Unavailability episodes of the dedicated interface",
            ),
            api_eps.to_string(),
        ],
        vec![
            l10n(
                l,
                "Semaines manquées (suivi hebdomadaire)",
                "Weeks missed (weekly watch)",
            ),
            format!("{missed} / {}", kpis.weeks.len()),
        ],
        vec![
            l10n(
                l,
                "Appels réussis sur l'interface dédiée",
                "Successful calls on the dedicated interface",
            ),
            ok_calls.to_string(),
        ],
        vec![
            l10n(
                l,
                "TPP distincts sur l'interface dédiée",
                "Distinct TPPs on the dedicated interface",
            ),
            tpps.len().to_string(),
        ],
        vec![
            l10n(l, "Produit le", "Produced on"),
            rfc3339(chrono::Utc::now().timestamp_millis()),
        ],
    ];
    if short {
        rows.insert(
            0,
            vec![
                l10n(l, "ATTENTION", "WARNING"),
                l10n(
                    l,
                    "PÉRIODE INFÉRIEURE À TROIS MOIS : ne suffit pas à une demande d'exemption",
                    "PERIOD SHORTER THAN THREE MONTHS: not enough for an exemption request",
                ),
            ],
        );
    }
    rows
}

fn services_of(kpis: &Kpis) -> Vec<String> {
    let s: BTreeSet<String> = kpis
        .days
        .iter()
        .flat_map(|d| d.latency.keys().map(|k| k.to_string()))
        .collect();
    s.into_iter().collect()
}

fn daily(kpis: &Kpis, l: Lang) -> Table {
    let services = services_of(kpis);
    let mut head: Vec<String> = [
        "date",
        "establishment",
        "interface",
        "seconds_in_day",
        "uptime_pct",
        "downtime_s",
        "planned_downtime_s",
        "unmonitored_s",
        "requests",
        "no_reply",
        "error_rate_pct",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    head.extend(services.iter().map(|s| format!("avg_ms_{s}")));
    let _ = l;
    let rows = kpis
        .days
        .iter()
        .map(|d| {
            let mut r = vec![
                t(d.date.to_string()),
                t(d.establishment.to_string()),
                t(d.interface.to_string()),
                n(d.seconds_in_day as f64),
                on(d.uptime_pct),
                n(d.downtime_s),
                n(d.planned_downtime_s),
                n(d.unmonitored_s),
                n(d.requests as f64),
                n(d.no_reply as f64),
                on(d.error_rate_pct),
            ];
            for s in &services {
                r.push(
                    d.latency
                        .iter()
                        .find(|(k, _)| k.as_str() == s)
                        .map(|(_, v)| n(v.avg_ms))
                        .unwrap_or(t("")),
                );
            }
            r
        })
        .collect();
    Table {
        name: "daily",
        head,
        rows,
    }
}

/// Dedicated interface against each customer interface, day by day (Art. 32(1)).
fn parity(kpis: &Kpis, l: Lang) -> Table {
    // Only days with a figure on both sides can be compared: an unobserved day is no proof.
    let mut by: BTreeMap<(NaiveDate, String), BTreeMap<Interface, f64>> = BTreeMap::new();
    for d in &kpis.days {
        if let Some(u) = d.uptime_pct {
            by.entry((d.date, d.establishment.to_string()))
                .or_default()
                .insert(d.interface, u);
        }
    }
    let head = vec![
        "date".into(),
        "establishment".into(),
        "api_uptime_pct".into(),
        "psu_web_uptime_pct".into(),
        "psu_app_uptime_pct".into(),
        l10n(l, "api_au_moins_egal", "api_at_least_equal"),
    ];
    let rows = by
        .into_iter()
        .filter_map(|((date, est), m)| {
            let api = *m.get(&Interface::Api)?;
            let cell = |i: Interface| m.get(&i).map(|v| n(*v)).unwrap_or(t(""));
            let ok = [Interface::PsuWeb, Interface::PsuApp]
                .iter()
                .filter_map(|i| m.get(i))
                .all(|c| api >= *c);
            Some(vec![
                t(date.to_string()),
                t(est),
                n(api),
                cell(Interface::PsuWeb),
                cell(Interface::PsuApp),
                t(if ok {
                    l.t("oui", "yes")
                } else {
                    l.t("non", "no")
                }),
            ])
        })
        .collect();
    Table {
        name: "parity",
        head,
        rows,
    }
}

/// Wide usage (GL 6/7): per month, establishment and service, successful calls on the dedicated
/// interface and distinct TPPs; then the whole period per service.
fn usage(stored: &[StoredObservation], settings: &Settings, l: Lang) -> Table {
    type Key = (String, String, String);
    let mut calls: BTreeMap<Key, (u64, BTreeSet<String>)> = BTreeMap::new();
    // TPP traffic only (methodology section 6): the monitor's own calls are no usage.
    for o in stored
        .iter()
        .filter(|o| o.obs.interface == Interface::Api && !settings.is_monitor(&o.obs))
    {
        let month = local_date(o.obs.received_at_ms, settings.tz)
            .format("%Y-%m")
            .to_string();
        let all = l10n(l, "toute la période", "whole period");
        for key in [
            (
                month,
                o.obs.establishment.to_string(),
                o.obs.service.to_string(),
            ),
            (all, "*".to_string(), o.obs.service.to_string()),
        ] {
            let c = calls.entry(key).or_default();
            if o.obs.outcome == Outcome::Ok {
                c.0 += 1;
            }
            if let Some(tpp) = &o.obs.tpp {
                c.1.insert(tpp.to_string());
            }
        }
    }
    Table {
        name: "usage",
        head: vec![
            "month".into(),
            "establishment".into(),
            "service".into(),
            "successful_calls".into(),
            "distinct_tpps".into(),
        ],
        rows: calls
            .into_iter()
            .map(|((m, e, s), (c, tp))| vec![t(m), t(e), t(s), n(c as f64), n(tp.len() as f64)])
            .collect(),
    }
}

fn episodes(kpis: &Kpis, _l: Lang) -> Table {
    Table {
        name: "episodes",
        head: [
            "episode_id",
            "establishment",
            "interface",
            "start",
            "end",
            "resolution_time_s",
            "open",
            "planned_s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows: kpis
            .episodes
            .iter()
            .map(|e| {
                vec![
                    t(EpisodeId::of(e).to_string()),
                    t(e.establishment.to_string()),
                    t(e.interface.to_string()),
                    t(rfc3339(e.start_ms)),
                    t(rfc3339(e.end_ms)),
                    n(e.duration_s()),
                    t(e.open.to_string()),
                    n(e.planned_s),
                ]
            })
            .collect(),
    }
}

fn miss_text(m: &Miss) -> String {
    match m {
        Miss::Uptime {
            actual_pct,
            target_pct,
        } => format!("uptime {actual_pct:.3} % < {target_pct} %"),
        Miss::ResponseTime {
            service,
            actual_ms,
            target_ms,
        } => format!("{service} {actual_ms:.1} ms > {target_ms} ms"),
        Miss::ErrorRate {
            actual_pct,
            target_pct,
        } => format!("error rate {actual_pct:.3} % > {target_pct} %"),
        Miss::Parity {
            customer_interface,
            customer_uptime_pct,
            api_uptime_pct,
        } => format!("api {api_uptime_pct:.3} % < {customer_interface} {customer_uptime_pct:.3} %"),
    }
}

fn weeks(kpis: &Kpis, _l: Lang) -> Table {
    Table {
        name: "weeks",
        head: [
            "week",
            "monday",
            "establishment",
            "uptime_pct",
            "error_rate_pct",
            "avg_ms",
            "misses",
            "consecutive_missed",
            "level",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows: kpis
            .weeks
            .iter()
            .map(|w| {
                vec![
                    t(w.week.clone()),
                    t(w.monday.to_string()),
                    t(w.establishment.to_string()),
                    on(w.uptime_pct),
                    on(w.error_rate_pct),
                    t(w.avg_ms
                        .iter()
                        .map(|(s, v)| format!("{s} {v:.1}"))
                        .collect::<Vec<_>>()
                        .join("; ")),
                    t(w.misses
                        .iter()
                        .map(miss_text)
                        .collect::<Vec<_>>()
                        .join("; ")),
                    n(w.consecutive_missed),
                    t(w.level
                        .map(|l| format!("{l:?}").to_lowercase())
                        .unwrap_or_default()),
                ]
            })
            .collect(),
    }
}

fn write_csv(dir: &Path, tb: &Table) -> Result<PathBuf, EvidenceError> {
    let p = dir.join(format!("{}.csv", tb.name));
    let err = |e: csv::Error| EvidenceError::Write {
        path: p.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut w = csv::Writer::from_path(&p).map_err(err)?;
    w.write_record(&tb.head).map_err(err)?;
    for r in &tb.rows {
        w.write_record(r.iter().map(Cell::csv)).map_err(err)?;
    }
    w.flush().map_err(|source| EvidenceError::Write {
        path: p.display().to_string(),
        source,
    })?;
    Ok(p)
}

fn write_xlsx(p: &Path, summary: &[Vec<String>], tables: &[Table]) -> Result<(), EvidenceError> {
    let xerr = |source| EvidenceError::Xlsx {
        path: p.display().to_string(),
        source,
    };
    let bold = Format::new().set_bold();
    let mut wb = Workbook::new();
    {
        let ws = wb.add_worksheet();
        ws.set_name("summary").map_err(xerr)?;
        for (i, r) in summary.iter().enumerate() {
            for (j, c) in r.iter().enumerate() {
                if j == 0 {
                    ws.write_string_with_format(i as u32, j as u16, c, &bold)
                        .map_err(xerr)?;
                } else {
                    ws.write_string(i as u32, j as u16, c).map_err(xerr)?;
                }
            }
        }
        ws.autofit();
    }
    for tb in tables {
        let ws = wb.add_worksheet();
        ws.set_name(tb.name).map_err(xerr)?;
        for (j, h) in tb.head.iter().enumerate() {
            ws.write_string_with_format(0, j as u16, h, &bold)
                .map_err(xerr)?;
        }
        for (i, r) in tb.rows.iter().enumerate() {
            for (j, c) in r.iter().enumerate() {
                let (row, col) = (i as u32 + 1, j as u16);
                match c {
                    Cell::T(s) => ws.write_string(row, col, s).map_err(xerr)?,
                    Cell::N(x) => ws.write_number(row, col, *x).map_err(xerr)?,
                };
            }
        }
        ws.set_freeze_panes(1, 0).map_err(xerr)?;
        ws.autofit();
    }
    wb.save(p).map_err(xerr)
}
