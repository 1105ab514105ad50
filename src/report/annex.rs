//! The supervisor's annex (methodology section 9), written beside the publication in
//! `annexe-acpr/` and never linked from it: what the public must not see. Episodes with their
//! five requests and the reply that closed them, the weekly Art. 33(7) watch with its levels
//! (and per establishment the weeks missed and the fallback's share of TPP requests),
//! fallback use per TPP (justified or not), usage per service, coverage gaps, the settings, and a
//! SHA-256 manifest as evidence packs carry (`dispo evidence verify` checks it).
//!
//! In: the publication and the details of the requests the episodes name. Out: the files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rust_xlsxwriter::{Color, Format, FormatAlign, Workbook};

use super::{Publication, ReportError, frames};
use crate::domain::{Interface, Observation};

/// The folder of the annex inside the publication's.
pub const DIR: &str = "annexe-acpr";

/// What the annex shows of one request an episode names.
#[derive(Debug, Clone)]
pub struct RequestDetail {
    pub at_ms: i64,
    pub status: Option<u16>,
    pub latency_ms: Option<f64>,
    pub error_code: Option<String>,
    pub tpp: Option<String>,
}

/// The details of every request the episodes name (their five and their closing reply), from
/// their first records as the period was counted ([`crate::period::Counted::named_requests`]; any
/// observations in time order do).
pub fn request_details(
    observations: &[Observation],
    kpis: &crate::engine::Kpis,
) -> HashMap<(String, String), RequestDetail> {
    // A quarter holds millions of observations and the episodes name a few dozen requests:
    // test the request id without allocating, build the key only for a match.
    let wanted: std::collections::HashSet<(crate::domain::EstablishmentCode, &str)> = kpis
        .episodes
        .iter()
        .flat_map(|e| {
            e.request_ids
                .iter()
                .chain(e.ended_by.iter())
                .map(move |id| (e.establishment, id.as_str()))
        })
        .collect();
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return out;
    }
    for o in observations {
        if !wanted.contains(&(o.establishment, o.request_id.as_str())) {
            continue;
        }
        out.entry((o.establishment.to_string(), o.request_id.to_string()))
            .or_insert_with(|| RequestDetail {
                at_ms: o.received_at_ms,
                status: o.status,
                latency_ms: o.latency_ms,
                error_code: o.error_code.as_ref().map(|c| c.to_string()),
                tpp: o.tpp.as_ref().map(|t| t.to_string()),
            });
    }
    out
}

#[derive(Debug, Clone)]
enum Cell {
    T(String),
    N(f64),
    Nd,
}

fn t(s: impl Into<String>) -> Cell {
    Cell::T(s.into())
}
fn n(x: f64) -> Cell {
    Cell::N(x)
}
fn on(x: Option<f64>) -> Cell {
    x.map_or(Cell::Nd, Cell::N)
}

struct Table {
    /// The CSV's name, without extension.
    file: &'static str,
    sheet: String,
    head: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

/// Writes the annex into `dir` (the publication's temporary folder); returns its files.
pub fn write(
    p: &Publication,
    details: &HashMap<(String, String), RequestDetail>,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let dir = dir.join(DIR);
    let io = |path: PathBuf| move |source| ReportError::Io { path, source };
    std::fs::create_dir_all(&dir).map_err(io(dir.clone()))?;
    // TPP ids and request ids: readable by the owner only, as evidence packs are.
    crate::files::make_dir_private(&dir).map_err(io(dir.clone()))?;
    let lang = p.req.lang;
    let l = |fr: &'static str, en: &'static str| lang.t(fr, en).to_owned();
    let tz = p.req.settings.tz;
    let when = |ms: i64| lang.local_time(tz, ms);
    let k = &p.kpis;

    let episodes = Table {
        file: "episodes",
        sheet: l("Épisodes", "Episodes"),
        head: vec![
            l("Identifiant", "Id"),
            l("Établissement", "Establishment"),
            l("Interface", "Interface"),
            l("Début", "Start"),
            l("Fin", "End"),
            l("Durée (s)", "Duration (s)"),
            l("dont planifiée (s)", "of which planned (s)"),
            l("Encore en cours", "Still open"),
            l(
                "Coupé par une interruption de la surveillance",
                "Cut by a monitoring gap",
            ),
            l("Commencé avant la période", "Began before the period"),
            l("Les cinq requêtes", "The five requests"),
            l("Réponse qui l'a clos", "Reply that closed it"),
        ],
        rows: k
            .episodes
            .iter()
            .map(|e| {
                vec![
                    t(e.id()),
                    t(e.establishment.as_str()),
                    t(lang.interface(e.interface)),
                    t(when(e.start_ms)),
                    t(when(e.end_ms)),
                    n(e.duration_s()),
                    n(e.planned_s),
                    t(lang.yes_no(e.open)),
                    t(lang.yes_no(e.cut)),
                    t(lang.yes_no(e.began_before_period)),
                    t(e.request_ids.join(" ")),
                    t(e.ended_by.clone().unwrap_or_default()),
                ]
            })
            .collect(),
    };

    let mut req_rows = Vec::new();
    for e in &k.episodes {
        let roles = e
            .request_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (format!("{}", i + 1), id))
            .chain(e.ended_by.iter().map(|id| (l("fin", "end"), id)));
        for (role, id) in roles {
            let d = details.get(&(e.establishment.to_string(), id.clone()));
            req_rows.push(vec![
                t(e.id()),
                t(role),
                t(id.clone()),
                d.map_or(Cell::Nd, |d| t(when(d.at_ms))),
                d.and_then(|d| d.status)
                    .map_or_else(|| t(l("sans réponse", "no reply")), |s| n(s as f64)),
                d.and_then(|d| d.latency_ms).map_or(Cell::Nd, n),
                t(d.and_then(|d| d.error_code.clone()).unwrap_or_default()),
                t(d.and_then(|d| d.tpp.clone()).unwrap_or_default()),
            ]);
        }
    }
    let requests = Table {
        file: "episode-requests",
        sheet: l("Requêtes des épisodes", "Episode requests"),
        head: vec![
            l("Épisode", "Episode"),
            l("Rang", "Rank"),
            l("Identifiant de requête", "Request id"),
            l("Reçue", "Received"),
            l("Statut HTTP", "HTTP status"),
            l("Temps de réponse (ms)", "Response time (ms)"),
            l("Code d'erreur", "Error code"),
            l("Prestataire", "Provider"),
        ],
        rows: req_rows,
    };

    let weeks = Table {
        file: "weekly-watch",
        sheet: l("Suivi hebdomadaire", "Weekly watch"),
        head: vec![
            l("Semaine", "Week"),
            l("Lundi", "Monday"),
            l("Établissement", "Establishment"),
            l("Semaine complète", "Complete week"),
            l("Disponibilité (%)", "Uptime (%)"),
            l("Taux d'erreur (%)", "Error rate (%)"),
            l("Écarts", "Misses"),
            l("Semaines consécutives manquées", "Consecutive missed weeks"),
            l("Niveau (art. 33(7))", "Level (Art. 33(7))"),
        ],
        rows: k
            .weeks
            .iter()
            .map(|w| {
                vec![
                    t(w.week.clone()),
                    t(super::show_date(w.monday, lang)),
                    t(w.establishment.as_str()),
                    t(lang.yes_no(w.complete)),
                    on(w.uptime_pct),
                    on(w.error_rate_pct),
                    t(lang.misses(&w.misses)),
                    n(w.consecutive_missed as f64),
                    t(w.level.map(|x| lang.level(x)).unwrap_or("")),
                ]
            })
            .collect(),
    };

    let fallback = Table {
        file: "fallback-use",
        sheet: l("Accès de secours", "Fallback use"),
        head: vec![
            l("Date", "Date"),
            l("Établissement", "Establishment"),
            l("Prestataire", "Provider"),
            l("Justifiées", "Justified"),
            l("Injustifiées", "Unjustified"),
        ],
        rows: k
            .fallback
            .iter()
            .map(|f| {
                vec![
                    t(super::show_date(f.date, lang)),
                    t(f.establishment.as_str()),
                    t(f.tpp
                        .as_ref()
                        .map_or_else(|| l("non identifié", "not identified"), |x| x.to_string())),
                    n(f.justified as f64),
                    n(f.unjustified as f64),
                ]
            })
            .collect(),
    };

    let u = &p.usage;
    let (ue, ui, us, calls, tpps) = (
        frames::strs(u, "establishment")?,
        frames::strs(u, "interface")?,
        frames::strs(u, "service")?,
        frames::nums(u, "successful_calls")?,
        frames::nums(u, "tpps")?,
    );
    let usage = Table {
        file: "usage",
        sheet: l("Utilisation", "Usage"),
        head: vec![
            l("Établissement", "Establishment"),
            l("Interface", "Interface"),
            l("Service", "Service"),
            l(
                "Appels réussis (prestataires)",
                "Successful calls (providers)",
            ),
            l("Prestataires distincts", "Distinct providers"),
        ],
        rows: (0..ue.len())
            .map(|r| {
                let iface = ui[r]
                    .parse::<Interface>()
                    .map_or_else(|_| ui[r].clone(), |i| lang.interface(i).to_owned());
                let svc = crate::domain::Service::new(&us[r])
                    .map_or_else(|_| us[r].clone(), |s| lang.service(&s));
                vec![t(ue[r].clone()), t(iface), t(svc), n(calls[r]), n(tpps[r])]
            })
            .collect(),
    };

    let gaps = Table {
        file: "coverage-gaps",
        sheet: l("Couverture", "Coverage"),
        head: vec![
            l("Date", "Date"),
            l("Établissement", "Establishment"),
            l("Interface", "Interface"),
            l("Durée du jour (s)", "Day length (s)"),
            l("Surveillé (s)", "Covered (s)"),
            l("Non surveillé (s)", "Unmonitored (s)"),
            l("Couverture (%)", "Coverage (%)"),
        ],
        rows: k
            .days
            .iter()
            .filter(|d| d.unmonitored_s > 0.0)
            .map(|d| {
                vec![
                    t(super::show_date(d.date, lang)),
                    t(d.establishment.as_str()),
                    t(lang.interface(d.interface)),
                    n(d.seconds_in_day as f64),
                    n(d.covered_s),
                    n(d.unmonitored_s),
                    n(d.coverage_pct),
                ]
            })
            .collect(),
    };

    // Per establishment: the fallback's share of TPP requests and the weeks missed.
    let summary = Table {
        file: "summary",
        sheet: l("Synthèse", "Summary"),
        head: vec![
            l("Établissement", "Establishment"),
            l(
                "Part de l'accès de secours dans les requêtes des prestataires (%)",
                "Fallback share of provider requests (%)",
            ),
            l(
                "Semaines manquées (art. 33(7))",
                "Weeks missed (Art. 33(7))",
            ),
            l("Semaines jugées", "Weeks judged"),
        ],
        rows: p
            .summary_rows()?
            .into_iter()
            .filter(|r| r.interface == Interface::Api)
            .map(|r| {
                let (missed, of) = r.weeks_missed.unwrap_or((0, 0));
                vec![
                    t(r.establishment),
                    on(r.fallback_share_pct),
                    n(missed as f64),
                    n(of as f64),
                ]
            })
            .collect(),
    };
    // Section 10: outages seen from too few vantages, never downtime (empty with one vantage).
    let faults = Table {
        file: "vantage-faults",
        sheet: l("Défauts de point de mesure", "Vantage faults"),
        head: vec![
            l("Établissement", "Establishment"),
            l("Interface", "Interface"),
            l("Point de mesure", "Vantage"),
            l("Début", "Start"),
            l("Fin", "End"),
            l("Durée (s)", "Duration (s)"),
            l("Sondes écartées", "Probes set aside"),
        ],
        rows: k
            .vantage_faults
            .iter()
            .map(|f| {
                vec![
                    t(f.establishment.as_str()),
                    t(lang.interface(f.interface)),
                    t(f.vantage.as_str()),
                    t(when(f.start_ms)),
                    t(when(f.end_ms)),
                    n(f.duration_s()),
                    n(f.set_aside as f64),
                ]
            })
            .collect(),
    };
    let tables = [
        summary, episodes, requests, weeks, fallback, usage, gaps, faults,
    ];
    let mut files = Vec::new();
    for tb in &tables {
        let path = dir.join(format!("{}.csv", tb.file));
        let mut w = ::csv::Writer::from_path(&path).map_err(|e| ReportError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let err = |e: ::csv::Error| ReportError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        };
        w.write_record(&tb.head).map_err(err)?;
        for r in &tb.rows {
            w.write_record(r.iter().map(|c| match c {
                Cell::T(s) => crate::escape::csv_text(s).into_owned(),
                Cell::N(x) => x.to_string(),
                Cell::Nd => super::labels::ND.to_owned(),
            }))
            .map_err(err)?;
        }
        w.flush().map_err(io(path.clone()))?;
        files.push(path);
    }
    let settings = dir.join("settings.json");
    let json = serde_json::to_string_pretty(&crate::engine::json::settings(&p.req.settings))
        .unwrap_or_default();
    std::fs::write(&settings, json + "\n").map_err(io(settings.clone()))?;
    files.push(settings);

    let xlsx = dir.join(format!("{}-{DIR}.xlsx", p.file("")));
    let mut wb = Workbook::new();
    let bold = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xDDE6F0))
        .set_text_wrap()
        .set_align(FormatAlign::Top);
    let ws = wb.add_worksheet().set_name(l("Lisez-moi", "Read me"))?;
    let mut about = vec![
        lang.t(
            "Annexe pour l'autorité de contrôle (ACPR) : NE PAS PUBLIER.",
            "Annex for the supervisor (ACPR): DO NOT PUBLISH.",
        )
        .to_owned(),
        format!(
            "{} {} — {}",
            lang.t("Période :", "Period:"),
            lang.period_name(p.req.period),
            lang.status(p.provisional, p.synthetic)
        ),
        lang.t(
            "Heures locales (Europe/Paris sauf paramètre contraire), avec leur décalage par rapport à UTC.",
            "Local times (Europe/Paris unless set otherwise), with their offset from UTC.",
        )
        .to_owned(),
        lang.t(
            "MANIFEST.sha256 donne l'empreinte SHA-256 de chaque fichier de l'annexe (sha256sum -c MANIFEST.sha256).",
            "MANIFEST.sha256 gives the SHA-256 digest of every file of the annex (sha256sum -c MANIFEST.sha256).",
        )
        .to_owned(),
        format!("{} {}", lang.t("Produit le", "Generated"), p.generated_at),
    ];
    if !k.vantages.is_empty() {
        about.push(vantage_sentence(k, lang));
    }
    // The same words in a text file, so that the annex's status shows without a spreadsheet.
    let readme = dir.join(lang.t("LISEZ-MOI.txt", "README.txt"));
    std::fs::write(&readme, about.join("\n") + "\n").map_err(io(readme.clone()))?;
    files.push(readme);
    for (r, line) in about.iter().enumerate() {
        ws.write_string(r as u32, 0, line)?;
    }
    ws.set_column_width(0, 110)?;
    for tb in &tables {
        let ws = wb.add_worksheet().set_name(&tb.sheet)?;
        for (c, h) in tb.head.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, h, &bold)?;
            ws.set_column_width(c as u16, 18)?;
        }
        for (r, row) in tb.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (1 + r as u32, c as u16);
                match cell {
                    Cell::T(s) => ws.write_string(r, c, s)?,
                    Cell::N(x) => ws.write_number(r, c, *x)?,
                    Cell::Nd => ws.write_string(r, c, super::labels::ND)?,
                };
            }
        }
        ws.set_freeze_panes(1, 0)?;
    }
    wb.save(&xlsx)?;
    files.push(xlsx);
    files.push(
        crate::evidence::manifest::write(&dir).map_err(|e| ReportError::Io {
            path: dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?,
    );
    Ok(files)
}

/// Which vantages covered the series probed from more than one, and the rule (section 10).
fn vantage_sentence(k: &crate::engine::Kpis, lang: super::Lang) -> String {
    let mut names: Vec<&str> = k.vantages.iter().map(|v| v.vantage.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    format!(
        "{} {} ({} vantage_quorum = {}) ; {} {}.",
        lang.t("Points de mesure :", "Vantage points:"),
        names.join(", "),
        lang.t(
            "l'interface est indisponible quand les points de mesure qui couvrent l'instant s'accordent,",
            "the interface is down when the vantages covering the instant agree,"
        ),
        k.settings.vantage_quorum,
        lang.t(
            "une panne vue d'une minorité est un défaut de point de mesure, pas une indisponibilité",
            "an outage seen from a minority is a vantage fault, not downtime"
        ),
        lang.t("(vantage-faults.csv)", "(vantage-faults.csv)")
    )
    .replace(" ; ", lang.t(" ; ", "; "))
}
