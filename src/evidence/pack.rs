//! The evidence pack of one or more unavailability episodes (methodology section 7), for the
//! ACPR notification of Art. 33(3) and for any later dispute.
//!
//! In: the store, an episode id or a period, the counting settings. Out: a new directory with
//! `summary.md` and `summary.html` (French by default), `episodes.csv`, `episode-requests.csv`
//! (the five failures that opened each episode and the reply that closed it), `observations.csv`
//! (every observation of the establishment ± the context around each episode, in the observation
//! CSV format so `dispo import` reads it back), `fallback.csv` (the engine's justified/unjustified
//! fallback use on the days concerned), `settings.json` (the counting settings used) and
//! `MANIFEST.sha256`. Every text that came from data (error texts, request ids, TPP ids, error
//! codes, probe ids) is scrubbed of secrets and IBANs are masked ([`super::redact`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::doc::Doc;
use super::redact::redact;
use super::{EpisodeId, EvidenceError, Lang, compute, local, local_date, manifest, rfc3339};
use crate::domain::{EstablishmentCode, Interface, known_establishment};
use crate::engine::{Episode, Kpis, Period, Settings, VantageFault};
use crate::escape::csv_text;
use crate::import::csv_header;
use crate::store::{Store, StoredObservation};

/// The ACPR's attachment limit.
pub const SIZE_LIMIT_BYTES: u64 = 10 * 1024 * 1024;

/// Which episodes a pack is about.
#[derive(Debug, Clone)]
pub enum Selection {
    Episode(EpisodeId),
    /// Local days, `to` exclusive.
    Period {
        from: NaiveDate,
        to: NaiveDate,
    },
}

#[derive(Debug, Clone)]
pub struct PackRequest {
    pub selection: Selection,
    pub establishment: Option<EstablishmentCode>,
    pub settings: Settings,
    pub lang: Lang,
    /// Created; must not exist or be empty.
    pub out_dir: PathBuf,
    /// Observations this long before each episode's start and after its end are included.
    pub context_ms: i64,
    /// Shown in the summary (which database the pack came from).
    pub db_name: String,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct PackOutcome {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub episode_ids: Vec<String>,
    pub total_bytes: u64,
    pub over_limit: bool,
}

/// Builds the pack.
pub async fn build(store: &Store, req: &PackRequest) -> Result<PackOutcome, EvidenceError> {
    let tz = req.settings.tz;
    let filter: Vec<EstablishmentCode> = match (&req.selection, &req.establishment) {
        (Selection::Episode(id), _) => vec![id.establishment],
        (_, Some(e)) => vec![*e],
        _ => Vec::new(),
    };
    // `synthetic`: any synthetic observation read (`dispo synth`): the summary says so first.
    let (kpis, episodes, synthetic) = match &req.selection {
        Selection::Episode(id) => {
            let (_, last) = store
                .observation_span()
                .await?
                .ok_or(EvidenceError::Empty)?;
            // From the day before the start (a run crossing midnight), over a window that grows
            // (2, 4, 8, 16, 32 days) until the episode closes or the data ends, so a short
            // episode never loads a month of gateway logs. Still open after a month: shown open.
            let from = local_date(id.start_ms, tz) - chrono::Days::new(1);
            let data_end = local_date(last, tz) + chrono::Days::new(1);
            let mut days = 2u64;
            let (kpis, found, synthetic) = loop {
                let to =
                    (from + chrono::Days::new(days)).min(data_end.max(from + chrono::Days::new(2)));
                let (kpis, stored) =
                    compute(store, Period { from, to }, &req.settings, &filter).await?;
                let synthetic = stored.iter().any(|o| o.synthetic);
                let found: Vec<Episode> = kpis
                    .episodes
                    .iter()
                    .filter(|e| id.matches(e))
                    .cloned()
                    .collect();
                let still_open = found.iter().any(|e| e.open);
                if !still_open || to >= data_end || days >= 32 {
                    break (kpis, found, synthetic);
                }
                days *= 2;
            };
            if found.is_empty() {
                let near = kpis
                    .episodes
                    .iter()
                    .filter(|e| (e.start_ms - id.start_ms).abs() <= 86_400_000)
                    .map(|e| EpisodeId::of(e).to_string())
                    .collect();
                return Err(EvidenceError::NoSuchEpisode {
                    id: id.to_string(),
                    near,
                });
            }
            (kpis, found, synthetic)
        }
        Selection::Period { from, to } => {
            let period = Period {
                from: *from,
                to: *to,
            };
            let (kpis, stored) = compute(store, period, &req.settings, &filter).await?;
            let synthetic = stored.iter().any(|o| o.synthetic);
            let eps = kpis.episodes.clone();
            (kpis, eps, synthetic)
        }
    };

    prepare_dir(&req.out_dir)?;
    let context = load_context(store, &episodes, req.context_ms, &filter).await?;
    // All the files or none (see `report::publish`): a pack is never left half written.
    let write = |dir: &Path| -> Result<Vec<PathBuf>, EvidenceError> {
        // Request ids, TPP ids, error texts: for the supervisor, not for every local user.
        crate::files::make_dir_private(dir).map_err(werr(dir))?;
        let mut files = vec![
            write_episodes_csv(dir, &episodes)?,
            write_requests_csv(dir, &episodes, &context)?,
            write_observations_csv(dir, &context)?,
            write_fallback_csv(dir, &kpis, &episodes, tz)?,
        ];
        let faults = selected_faults(req, &kpis, &episodes);
        if !faults.is_empty() {
            files.push(write_faults_csv(dir, &faults)?);
        }
        let settings_path = dir.join("settings.json");
        let json = serde_json::to_string_pretty(&crate::engine::json::settings(&req.settings))
            .expect("settings serialise");
        write_file(&settings_path, json.as_bytes())?;
        files.push(settings_path);

        let data_bytes: u64 = files.iter().map(|f| file_len(f)).sum();
        // Summaries state the pack's size; write them once, measure, and again if over the limit.
        let mut over = data_bytes > SIZE_LIMIT_BYTES;
        let mut summary_files = write_summary(
            req,
            dir,
            &kpis,
            &episodes,
            &context,
            &files,
            Notes { over, synthetic },
        )?;
        let total = |sf: &[PathBuf]| data_bytes + sf.iter().map(|f| file_len(f)).sum::<u64>();
        if !over && total(&summary_files) > SIZE_LIMIT_BYTES {
            over = true;
            summary_files = write_summary(
                req,
                dir,
                &kpis,
                &episodes,
                &context,
                &files,
                Notes { over, synthetic },
            )?;
        }
        files.extend(summary_files);
        files.push(manifest::write(dir)?);
        Ok(files)
    };
    let dir = &req.out_dir;
    let files =
        crate::report::publish::all_or_nothing(dir, write, |path, source| EvidenceError::Write {
            path: path.display().to_string(),
            source,
        })?;
    let total_bytes = files.iter().map(|f| file_len(f)).sum::<u64>();
    Ok(PackOutcome {
        dir: dir.clone(),
        files,
        episode_ids: episodes
            .iter()
            .map(|e| EpisodeId::of(e).to_string())
            .collect(),
        total_bytes,
        over_limit: total_bytes > SIZE_LIMIT_BYTES,
    })
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn werr(p: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + use<> {
    let path = p.display().to_string();
    move |source| EvidenceError::Write { path, source }
}

fn write_file(p: &Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    std::fs::write(p, bytes).map_err(werr(p))
}

/// A pack goes into a new (or empty) directory, so nothing foreign ends up in its manifest.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), EvidenceError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(werr(dir))?;
        if entries.next().is_some() {
            return Err(EvidenceError::Write {
                path: dir.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the directory is not empty; give --out a new directory",
                ),
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(werr(dir))
}

/// Observations within ± context of each episode (windows merged), in time order.
async fn load_context(
    store: &Store,
    episodes: &[Episode],
    context_ms: i64,
    filter: &[EstablishmentCode],
) -> Result<Vec<StoredObservation>, EvidenceError> {
    let mut windows: Vec<(i64, i64)> = episodes
        .iter()
        .map(|e| (e.start_ms - context_ms, e.end_ms + context_ms + 1))
        .collect();
    windows.sort();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for w in windows {
        match merged.last_mut() {
            Some(last) if w.0 <= last.1 => last.1 = last.1.max(w.1),
            _ => merged.push(w),
        }
    }
    let ests: BTreeSet<&EstablishmentCode> = episodes.iter().map(|e| &e.establishment).collect();
    let mut out = Vec::new();
    for (a, b) in merged {
        let rows = store.load_observations(a, b, filter).await?;
        out.extend(
            rows.into_iter()
                .filter(|r| ests.contains(&r.obs.establishment)),
        );
    }
    Ok(out)
}

fn est_name(code: &EstablishmentCode) -> String {
    match known_establishment(code.as_str()) {
        Some(k) => format!("{} ({})", code, k.name),
        None => code.to_string(),
    }
}

/// A CSV text cell from data (ids, TPP names, error texts): scrubbed of secrets, safe from
/// formula injection.
fn tx(s: impl AsRef<str>) -> String {
    csv_text(&redact(s.as_ref())).into_owned()
}

fn csv_writer(p: &Path) -> Result<csv::Writer<std::fs::File>, EvidenceError> {
    let f = std::fs::File::create(p).map_err(werr(p))?;
    Ok(csv::Writer::from_writer(f))
}

fn csv_err(p: &Path) -> impl Fn(csv::Error) -> EvidenceError + use<> {
    let path = p.display().to_string();
    move |e| EvidenceError::Write {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn write_episodes_csv(dir: &Path, episodes: &[Episode]) -> Result<PathBuf, EvidenceError> {
    let p = dir.join("episodes.csv");
    let mut w = csv_writer(&p)?;
    let e_ = csv_err(&p);
    w.write_record([
        "episode_id",
        "establishment",
        "interface",
        "start",
        "end",
        "duration_s",
        "open",
        "cut",
        "began_before_period",
        "planned_s",
        "started_by",
        "ended_by",
    ])
    .map_err(&e_)?;
    for e in episodes {
        w.write_record([
            EpisodeId::of(e).to_string(),
            e.establishment.to_string(),
            e.interface.to_string(),
            rfc3339(e.start_ms),
            rfc3339(e.end_ms),
            format!("{:.3}", e.duration_s()),
            e.open.to_string(),
            e.cut.to_string(),
            e.began_before_period.to_string(),
            format!("{:.3}", e.planned_s),
            tx(e.request_ids.join(" ")),
            tx(e.ended_by.as_deref().unwrap_or_default()),
        ])
        .map_err(&e_)?;
    }
    w.flush().map_err(werr(&p))?;
    Ok(p)
}

/// The vantage faults (methodology section 10) the pack shows: every one of the period, or for
/// an episode those of its series within its context window. None with a single vantage.
fn selected_faults<'a>(
    req: &PackRequest,
    kpis: &'a Kpis,
    episodes: &[Episode],
) -> Vec<&'a VantageFault> {
    kpis.vantage_faults
        .iter()
        .filter(|f| match req.selection {
            Selection::Period { .. } => true,
            Selection::Episode(_) => episodes.iter().any(|e| {
                e.establishment == f.establishment
                    && e.interface == f.interface
                    && f.start_ms < e.end_ms + req.context_ms
                    && f.end_ms > e.start_ms - req.context_ms
            }),
        })
        .collect()
}

fn write_faults_csv(dir: &Path, faults: &[&VantageFault]) -> Result<PathBuf, EvidenceError> {
    let p = dir.join("vantage-faults.csv");
    let mut w = csv_writer(&p)?;
    let e_ = csv_err(&p);
    w.write_record([
        "establishment",
        "interface",
        "vantage",
        "start",
        "end",
        "duration_s",
        "set_aside",
    ])
    .map_err(&e_)?;
    for f in faults {
        w.write_record([
            f.establishment.to_string(),
            f.interface.to_string(),
            f.vantage.to_string(),
            rfc3339(f.start_ms),
            rfc3339(f.end_ms),
            format!("{:.3}", f.duration_s()),
            f.set_aside.to_string(),
        ])
        .map_err(&e_)?;
    }
    w.flush().map_err(werr(&p))?;
    Ok(p)
}

/// The observation of an episode's series with this request id.
fn find<'a>(
    ctx: &'a [StoredObservation],
    e: &Episode,
    request_id: &str,
) -> Option<&'a StoredObservation> {
    ctx.iter().find(|o| {
        o.obs.request_id == request_id
            && o.obs.establishment == e.establishment
            && o.obs.interface == e.interface
    })
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn request_cells(o: &StoredObservation) -> Vec<String> {
    vec![
        rfc3339(o.obs.received_at_ms),
        redact(&o.obs.request_id),
        o.obs.service.to_string(),
        redact(&opt(o.obs.tpp.as_deref())),
        opt(o.obs.status),
        opt(o.obs.latency_ms),
        redact(&opt(o.obs.error_code.as_deref())),
        o.obs.outcome.to_string(),
        o.error_text.as_deref().map(redact).unwrap_or_default(),
    ]
}

/// [`request_cells`] for a CSV: text cells neutralised, status and latency (numbers) as they are.
fn request_csv_cells(o: &StoredObservation) -> Vec<String> {
    request_cells(o)
        .into_iter()
        .enumerate()
        .map(|(i, c)| if i == 4 || i == 5 { c } else { tx(c) })
        .collect()
}

const REQUEST_HEAD: [&str; 9] = [
    "received_at",
    "request_id",
    "service",
    "tpp",
    "status",
    "latency_ms",
    "error_code",
    "outcome",
    "error_text",
];

fn write_requests_csv(
    dir: &Path,
    episodes: &[Episode],
    ctx: &[StoredObservation],
) -> Result<PathBuf, EvidenceError> {
    let p = dir.join("episode-requests.csv");
    let mut w = csv_writer(&p)?;
    let e_ = csv_err(&p);
    let mut head = vec!["episode_id", "role"];
    head.extend(REQUEST_HEAD);
    w.write_record(&head).map_err(&e_)?;
    for e in episodes {
        let id = EpisodeId::of(e).to_string();
        let roles = e
            .request_ids
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("failure_{}", i + 1), r))
            .chain(e.ended_by.iter().map(|r| ("ended_by".to_string(), r)));
        for (role, rid) in roles {
            let mut row = vec![id.clone(), role];
            match find(ctx, e, rid) {
                Some(o) => row.extend(request_csv_cells(o)),
                None => {
                    let mut cells = vec![String::new(); REQUEST_HEAD.len()];
                    cells[1] = tx(rid);
                    row.extend(cells);
                }
            }
            w.write_record(&row).map_err(&e_)?;
        }
    }
    w.flush().map_err(werr(&p))?;
    Ok(p)
}

fn write_observations_csv(dir: &Path, ctx: &[StoredObservation]) -> Result<PathBuf, EvidenceError> {
    let p = dir.join("observations.csv");
    let mut w = csv_writer(&p)?;
    let e_ = csv_err(&p);
    let mut head: Vec<&str> = csv_header().to_vec();
    head.extend([
        "outcome",
        "error_text",
        "no_reply_kind",
        "probe_id",
        "synthetic",
        "vantage",
    ]);
    w.write_record(&head).map_err(&e_)?;
    for o in ctx {
        let b = &o.obs;
        w.write_record([
            rfc3339(b.received_at_ms),
            tx(b.establishment.to_string()),
            tx(b.interface.to_string()),
            tx(b.service.to_string()),
            tx(b.source.to_string()),
            tx(opt(b.tpp.as_deref())),
            opt(b.status),
            opt(b.latency_ms),
            tx(opt(b.error_code.as_deref())),
            tx(&b.request_id),
            b.outcome.to_string(),
            tx(o.error_text.as_deref().unwrap_or_default()),
            tx(opt(o.no_reply_kind)),
            tx(opt(o.probe_id.as_deref())),
            o.synthetic.to_string(),
            tx(b.vantage.as_str()),
        ])
        .map_err(&e_)?;
    }
    w.flush().map_err(werr(&p))?;
    Ok(p)
}

/// The local days each episode touches, with the day before and after ("around").
fn days_around(
    episodes: &[Episode],
    tz: chrono_tz::Tz,
) -> BTreeSet<(EstablishmentCode, NaiveDate)> {
    let mut out = BTreeSet::new();
    for e in episodes {
        let mut d = local_date(e.start_ms, tz) - chrono::Days::new(1);
        let last = local_date(e.end_ms, tz) + chrono::Days::new(1);
        while d <= last {
            out.insert((e.establishment, d));
            d = d + chrono::Days::new(1);
        }
    }
    out
}

fn write_fallback_csv(
    dir: &Path,
    kpis: &Kpis,
    episodes: &[Episode],
    tz: chrono_tz::Tz,
) -> Result<PathBuf, EvidenceError> {
    let p = dir.join("fallback.csv");
    let mut w = csv_writer(&p)?;
    let e_ = csv_err(&p);
    w.write_record(["date", "establishment", "tpp", "justified", "unjustified"])
        .map_err(&e_)?;
    let days = days_around(episodes, tz);
    for f in &kpis.fallback {
        if days.contains(&(f.establishment, f.date)) {
            w.write_record([
                f.date.to_string(),
                f.establishment.to_string(),
                tx(opt(f.tpp.as_deref())),
                f.justified.to_string(),
                f.unjustified.to_string(),
            ])
            .map_err(&e_)?;
        }
    }
    w.flush().map_err(werr(&p))?;
    Ok(p)
}

fn fmt_size(b: u64) -> String {
    if b >= 1024 * 1024 {
        format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// What the summary warns about first: a pack over the size limit, synthetic data.
#[derive(Debug, Clone, Copy)]
struct Notes {
    over: bool,
    synthetic: bool,
}

fn write_summary(
    req: &PackRequest,
    dir: &Path,
    kpis: &Kpis,
    episodes: &[Episode],
    ctx: &[StoredObservation],
    data_files: &[PathBuf],
    notes: Notes,
) -> Result<Vec<PathBuf>, EvidenceError> {
    let Notes {
        over: over_limit,
        synthetic,
    } = notes;
    let l = req.lang;
    let s = &req.settings;
    let tz = s.tz;
    let mut d = Doc::new(
        l.t(
            "Dossier de preuve : indisponibilité de l'interface dédiée",
            "Evidence pack: unavailability of the dedicated interface",
        ),
        l.t("fr", "en"),
    );
    if synthetic {
        d.p(l.t(
            "DONNÉES SYNTHÉTIQUES (dispo synth) : ce dossier ne décrit aucune mesure réelle.",
            "SYNTHETIC DATA (dispo synth): this pack describes no real measurement.",
        ));
    }
    let generated = rfc3339(chrono::Utc::now().timestamp_millis());
    let selection = match &req.selection {
        Selection::Episode(id) => format!("{} {id}", l.t("épisode", "episode")),
        Selection::Period { from, to } => format!(
            "{} {from} {} {to} ({})",
            l.t("période du", "period from"),
            l.t("au", "to"),
            l.t("exclu, jours locaux", "exclusive, local days")
        ),
    };
    d.p(format!(
        "{} {generated} {} dispo {} {} {}. {}: {selection}{}. {}: {}.",
        l.t("Produit le", "Produced on"),
        l.t("par", "by"),
        env!("CARGO_PKG_VERSION"),
        l.t("à partir de la base", "from the database"),
        req.db_name,
        l.t("Objet", "Subject"),
        match &req.establishment {
            Some(e) => format!(
                ", {} {}",
                l.t("établissement", "establishment"),
                est_name(e)
            ),
            None => String::new(),
        },
        l.t("Fuseau des heures locales", "Time zone of local times"),
        tz
    ));
    d.p(l.t(
        "Ce dossier accompagne la notification à l'ACPR prévue à l'article 33(3) du règlement délégué (UE) 2018/389 (indisponibilité de l'interface dédiée) et sert de preuve en cas de contestation. Les épisodes sont ceux calculés par le moteur de comptage de dispo selon la méthodologie (section 3) ; ce document les reprend sans les recompter.",
        "This pack accompanies the notification to the ACPR under Article 33(3) of Delegated Regulation (EU) 2018/389 (unavailability of the dedicated interface) and serves as evidence in any dispute. Episodes are those computed by dispo's counting engine per the methodology (section 3); this document restates them without recounting.",
    ));

    d.h2(l.t("Méthode de comptage", "Counting method"));
    let services = match &s.counted_services {
        None => l.t("tous les services", "every service").to_string(),
        Some(v) => v
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    d.list(vec![
        format!(
            "{} {} {} {} ms {}.",
            l.t("L'interface est réputée indisponible après", "The interface is deemed unavailable after"),
            s.failures_to_down,
            l.t("échecs consécutifs, le dernier au plus", "consecutive failures, the last at most"),
            s.window_ms,
            l.t("après le premier", "after the first")
        ),
        format!(
            "{} {}.",
            l.t("Erreurs de la banque (5xx, INTE, INTS) comptées comme échecs :", "Bank errors (5xx, INTE, INTS) counted as failures:"),
            if s.aspsp_error_is_failure { l.t("oui", "yes") } else { l.t("non", "no") }
        ),
        format!("{} {services}.", l.t("Services comptés :", "Services counted:")),
        format!(
            "{} {} s.",
            l.t("Délai de grâce du mécanisme de secours :", "Fallback grace period:"),
            s.fallback_grace_s
        ),
        format!(
            "{} {}.",
            l.t("Fenêtres de maintenance planifiée :", "Planned maintenance windows:"),
            s.maintenance.len()
        ),
        format!(
            "{} {} {}",
            l.t("Plusieurs points de mesure : indisponible quand", "Several vantage points: down when"),
            s.vantage_quorum,
            l.t(
                "des points qui couvrent l'instant le voient (vantage_quorum) ; sinon, défaut de point de mesure, pas une indisponibilité.",
                "of the vantages covering the instant see it (vantage_quorum); otherwise a vantage fault, not downtime.",
            )
        ),
        l.t(
            "Début : réception du premier des cinq échecs ; fin : achèvement de la première réponse qui n'est pas un échec. Paramètres complets : settings.json.",
            "Start: receipt of the first of the five failures; end: completion of the first reply that is not a failure. Full settings: settings.json.",
        )
        .to_string(),
    ]);

    d.h2(l.t("Épisodes", "Episodes"));
    if episodes.is_empty() {
        d.p(l.t(
            "Aucun épisode d'indisponibilité dans la sélection.",
            "No unavailability episode in the selection.",
        ));
    } else {
        d.table(
            &[
                l.t("Identifiant", "Id"),
                l.t("Établissement", "Establishment"),
                l.t("Interface", "Interface"),
                l.t("Début (UTC)", "Start (UTC)"),
                l.t("Début (local)", "Start (local)"),
                l.t("Fin (UTC)", "End (UTC)"),
                l.t("Durée (s)", "Duration (s)"),
                l.t("En cours", "Open"),
                l.t("Dont planifié (s)", "Of which planned (s)"),
            ],
            episodes
                .iter()
                .map(|e| {
                    vec![
                        EpisodeId::of(e).to_string(),
                        est_name(&e.establishment),
                        e.interface.to_string(),
                        rfc3339(e.start_ms),
                        local(e.start_ms, tz),
                        rfc3339(e.end_ms),
                        format!("{:.3}", e.duration_s()),
                        if e.open {
                            l.t("oui", "yes")
                        } else {
                            l.t("non", "no")
                        }
                        .into(),
                        format!("{:.3}", e.planned_s),
                    ]
                })
                .collect(),
        );
    }

    let faults = selected_faults(req, kpis, episodes);
    if !faults.is_empty() {
        d.h2(l.t("Défauts de point de mesure", "Vantage faults"));
        d.p(l.t(
            "Pannes vues d'une minorité des points de mesure (leur propre réseau, le plus souvent) : pas des indisponibilités de l'interface, listées pour mémoire ; les sondes que ce point de mesure y a faites sont écartées de tous les chiffres publiés (méthodologie, section 10).",
            "Outages seen from a minority of the vantage points (their own network, most likely): not downtime of the interface, listed for the record; the probes that vantage made during them are set aside from every published figure (methodology, section 10).",
        ));
        d.table(
            &[
                l.t("Établissement", "Establishment"),
                l.t("Interface", "Interface"),
                l.t("Point de mesure", "Vantage"),
                l.t("Début (UTC)", "Start (UTC)"),
                l.t("Fin (UTC)", "End (UTC)"),
                l.t("Durée (s)", "Duration (s)"),
                l.t("Sondes écartées", "Probes set aside"),
            ],
            faults
                .iter()
                .map(|f| {
                    vec![
                        est_name(&f.establishment),
                        f.interface.to_string(),
                        f.vantage.to_string(),
                        rfc3339(f.start_ms),
                        rfc3339(f.end_ms),
                        format!("{:.3}", f.duration_s()),
                        f.set_aside.to_string(),
                    ]
                })
                .collect(),
        );
    }

    let req_head = [
        "#",
        l.t("Reçue (UTC)", "Received (UTC)"),
        l.t("Request id", "Request id"),
        "Service",
        "TPP",
        l.t("Statut", "Status"),
        l.t("Latence (ms)", "Latency (ms)"),
        l.t("Code erreur", "Error code"),
        l.t("Issue", "Outcome"),
        l.t("Texte d'erreur", "Error text"),
    ];
    for e in episodes {
        let id = EpisodeId::of(e).to_string();
        d.h2(format!("{} {id}", l.t("Épisode", "Episode")));
        d.p(format!(
            "{} {} {} {} {} {} ({}) {} {}{}, {} {:.3} s.",
            l.t("L'interface", "The"),
            e.interface,
            l.t("de l'établissement", "interface of establishment"),
            est_name(&e.establishment),
            l.t("est réputée indisponible du", "is deemed unavailable from"),
            rfc3339(e.start_ms),
            local(e.start_ms, tz),
            l.t("au", "to"),
            rfc3339(e.end_ms),
            match (e.open, e.cut) {
                (true, _) => l.t(
                    " (épisode encore ouvert à la fin des données : fin provisoire)",
                    " (episode still open when the data ends: provisional end)",
                ),
                (false, true) => l.t(
                    " (surveillance interrompue : l'épisode est arrêté à la fin de la couverture, rien n'est connu au-delà)",
                    " (monitoring interrupted: the episode stops where coverage ended, nothing is known after)",
                ),
                _ => "",
            },
            l.t("soit", "that is"),
            e.duration_s()
        ));
        d.h3(l.t(
            "Requêtes qui ont ouvert l'épisode",
            "Requests that opened the episode",
        ));
        let rows = e
            .request_ids
            .iter()
            .enumerate()
            .map(|(i, rid)| {
                let mut row = vec![(i + 1).to_string()];
                match find(ctx, e, rid) {
                    Some(o) => row.extend(request_cells(o)),
                    None => {
                        row.extend(["".into(), redact(rid)]);
                        row.extend(vec![String::new(); 7]);
                    }
                }
                row
            })
            .collect();
        d.table(&req_head, rows);
        d.h3(l.t(
            "Réponse qui a clos l'épisode",
            "Reply that closed the episode",
        ));
        match e.ended_by.as_deref() {
            Some(rid) => {
                let mut row = vec!["1".to_string()];
                match find(ctx, e, rid) {
                    Some(o) => row.extend(request_cells(o)),
                    None => {
                        row.extend(["".into(), redact(rid)]);
                        row.extend(vec![String::new(); 7]);
                    }
                }
                d.table(&req_head, vec![row]);
            }
            None => d.p(l.t(
                "Aucune : l'épisode a été clos à la fin de la période calculée ou au dernier signe de vie du moniteur.",
                "None: the episode was closed at the end of the computed period or at the monitor's last heartbeat.",
            )),
        }

        // Who was affected: the TPPs whose requests reached this interface during the episode.
        d.h3(l.t("Prestataires (TPP) concernés", "TPPs affected"));
        let mut tpps: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for o in ctx.iter().filter(|o| {
            o.obs.establishment == e.establishment
                && o.obs.interface == e.interface
                && o.obs.received_at_ms >= e.start_ms
                && o.obs.received_at_ms <= e.end_ms
        }) {
            let k = o
                .obs
                .tpp
                .as_ref()
                .map(|t| redact(t))
                .unwrap_or_else(|| l.t("(non identifié)", "(not identified)").to_string());
            let c = tpps.entry(k).or_default();
            c.0 += 1;
            if o.obs.outcome.is_failure(s.aspsp_error_is_failure) {
                c.1 += 1;
            }
        }
        if tpps.is_empty() {
            d.p(l.t(
                "Aucune requête pendant l'épisode.",
                "No request during the episode.",
            ));
        } else {
            d.table(
                &[
                    "TPP",
                    l.t("Requêtes pendant l'épisode", "Requests during the episode"),
                    l.t("Dont échecs", "Of which failures"),
                ],
                tpps.into_iter()
                    .map(|(k, (n, f))| vec![k, n.to_string(), f.to_string()])
                    .collect(),
            );
        }

        d.h3(l.t(
            "Recours au mécanisme de secours",
            "Use of the fallback mechanism",
        ));
        let ctx_min = req.context_ms / 60_000;
        let mut fb: BTreeMap<String, [u64; 3]> = BTreeMap::new();
        for o in ctx.iter().filter(|o| {
            o.obs.establishment == e.establishment && o.obs.interface == Interface::Fallback
        }) {
            let t = o.obs.received_at_ms;
            let slot = if t < e.start_ms {
                0
            } else if t <= e.end_ms {
                1
            } else {
                2
            };
            let k = o
                .obs
                .tpp
                .as_ref()
                .map(|t| redact(t))
                .unwrap_or_else(|| l.t("(non identifié)", "(not identified)").to_string());
            fb.entry(k).or_default()[slot] += 1;
        }
        if fb.is_empty() {
            d.p(format!(
                "{} {ctx_min} {}",
                l.t(
                    "Aucune requête sur l'interface de secours pendant l'épisode ni dans les",
                    "No request on the fallback interface during the episode nor in the"
                ),
                l.t("minutes autour.", "minutes around it.")
            ));
        } else {
            d.table(
                &[
                    "TPP",
                    &format!(
                        "{} {ctx_min} min {}",
                        l.t("Dans les", "In the"),
                        l.t("avant", "before")
                    ),
                    l.t("Pendant", "During"),
                    &format!(
                        "{} {ctx_min} min {}",
                        l.t("Dans les", "In the"),
                        l.t("après", "after")
                    ),
                ],
                fb.into_iter()
                    .map(|(k, c)| vec![k, c[0].to_string(), c[1].to_string(), c[2].to_string()])
                    .collect(),
            );
        }
        let days = days_around(std::slice::from_ref(e), tz);
        let rows: Vec<Vec<String>> = kpis
            .fallback
            .iter()
            .filter(|f| days.contains(&(f.establishment, f.date)))
            .map(|f| {
                vec![
                    f.date.to_string(),
                    redact(&opt(f.tpp.as_deref())),
                    f.justified.to_string(),
                    f.unjustified.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            d.p(l.t(
                "Classement du moteur (méthodologie, section 6), jours de l'épisode et jours voisins :",
                "The engine's classification (methodology, section 6), days of the episode and the days either side:",
            ));
            d.table(
                &[
                    "Date",
                    "TPP",
                    l.t("Justifiés", "Justified"),
                    l.t("Injustifiés", "Unjustified"),
                ],
                rows,
            );
        }
    }

    d.h2(l.t("Fichiers", "Files"));
    let describe = |name: &str| -> &str {
        match name {
            "episodes.csv" => l.t("les épisodes", "the episodes"),
            "episode-requests.csv" => l.t(
                "les cinq échecs qui ont ouvert chaque épisode et la réponse qui l'a clos",
                "the five failures that opened each episode and the reply that closed it",
            ),
            "observations.csv" => l.t(
                "toutes les observations de l'établissement pendant chaque épisode et dans les minutes autour (format CSV d'observations, relisible par dispo import)",
                "every observation of the establishment during each episode and in the minutes around it (observation CSV, readable by dispo import)",
            ),
            "vantage-faults.csv" => l.t(
                "les défauts de point de mesure : pannes vues d'une minorité des points, pas des indisponibilités",
                "the vantage faults: outages seen from a minority of the vantages, not downtime",
            ),
            "fallback.csv" => l.t(
                "recours au mécanisme de secours, justifiés ou non, par jour et TPP",
                "fallback use, justified or not, per day and TPP",
            ),
            "settings.json" => l.t("les paramètres de comptage utilisés", "the counting settings used"),
            _ => "",
        }
    };
    let mut items: Vec<String> = data_files
        .iter()
        .map(|f| {
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            format!("{name} ({}): {}", fmt_size(file_len(f)), describe(&name))
        })
        .collect();
    items.push(format!(
        "summary.md, summary.html: {}",
        l.t("ce résumé", "this summary")
    ));
    items.push(format!(
        "MANIFEST.sha256: {}",
        l.t(
            "empreinte SHA-256 de chaque fichier ; vérifier avec `dispo evidence verify DIR` ou `sha256sum -c MANIFEST.sha256`",
            "SHA-256 digest of every file; check with `dispo evidence verify DIR` or `sha256sum -c MANIFEST.sha256`"
        )
    ));
    d.list(items);
    if over_limit {
        d.p(l.t(
            "ATTENTION : ce dossier dépasse 10 Mo, la limite des pièces jointes de l'ACPR. Réduire la période ou n'envoyer que le résumé et episode-requests.csv, en conservant le reste.",
            "WARNING: this pack exceeds 10 MB, the ACPR's attachment limit. Narrow the period, or send only the summary and episode-requests.csv and keep the rest.",
        ));
    }

    let md = dir.join("summary.md");
    let html = dir.join("summary.html");
    write_file(&md, d.markdown().as_bytes())?;
    write_file(&html, d.html().as_bytes())?;
    Ok(vec![md, html])
}
