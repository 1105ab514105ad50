//! The public publication, establishment by establishment: what the page, the spreadsheet, the
//! charts and the CSV show, taken from the engine's figures (never summed across establishments:
//! each Banque Populaire is its own ASPSP). Only what methodology section 9 lists is here: no TPP,
//! no request id, no weekly watch level.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use super::{Publication, SummaryRow};
use crate::domain::{EstablishmentCode, Interface, Service, known_establishment};
use crate::engine::{DayFigures, Episode, LatencyStats};

/// One establishment's part of the publication.
pub struct EstablishmentView<'a> {
    pub code: EstablishmentCode,
    /// « 13807 — Banque Populaire Grand Ouest ».
    pub name: String,
    /// A short name for sheet tabs and chart titles: « 13807 BPGO ».
    pub short: String,
    /// The dedicated interface first, then each customer interface measured.
    pub interfaces: Vec<Interface>,
    /// Period figures per interface of `interfaces`.
    pub headline: Vec<SummaryRow>,
    /// The dedicated interface's GL 2.3 services (the token endpoint left out), with the
    /// period's response times and their target.
    pub services: Vec<ServiceTimes>,
    /// Unavailability episodes of the dedicated and customer interfaces, in time order.
    pub episodes: Vec<&'a Episode>,
    /// One row per local day: each interface's figures, side by side.
    pub days: Vec<DayRow<'a>>,
}

pub struct ServiceTimes {
    pub service: Service,
    pub stats: Option<LatencyStats>,
    pub target_ms: f64,
}

pub struct DayRow<'a> {
    pub date: NaiveDate,
    /// In the order of `EstablishmentView::interfaces`; `None` when that series has no row.
    pub figures: Vec<Option<&'a DayFigures>>,
    /// TPP requests that day on the dedicated interface and on the fallback (section 6: the
    /// monitor's own checks are no use).
    pub tpp_api: u64,
    pub tpp_fallback: u64,
}

/// Whether a service's response time is published (GL 2.3): the token endpoint is left out.
pub fn published_service(s: &Service) -> bool {
    s.as_str() != Service::TOKEN
}

impl Publication {
    /// Every establishment's view, in code order.
    pub fn views(&self) -> Result<Vec<EstablishmentView<'_>>, super::ReportError> {
        let rows = self.summary_rows()?;
        let dates: Vec<NaiveDate> =
            crate::engine::time::days(self.req.period.from, self.req.period.to).collect();
        let mut by_day: BTreeMap<(EstablishmentCode, Interface, NaiveDate), &DayFigures> =
            BTreeMap::new();
        for d in &self.kpis.days {
            by_day.insert((d.establishment, d.interface, d.date), d);
        }
        let mut out = Vec::new();
        for code in &self.establishments {
            let present: BTreeSet<Interface> = self
                .kpis
                .days
                .iter()
                .filter(|d| &d.establishment == code)
                .map(|d| d.interface)
                .collect();
            let mut interfaces = vec![Interface::Api];
            interfaces.extend(present.iter().copied().filter(|i| i.is_customer()));
            let headline = interfaces
                .iter()
                .map(|i| {
                    rows.iter()
                        .find(|r| r.establishment == code.as_str() && r.interface == *i)
                        .cloned()
                        .unwrap_or_else(|| SummaryRow::empty(code.as_str(), *i))
                })
                .collect();
            let api_services: BTreeSet<&Service> = self
                .kpis
                .days
                .iter()
                .filter(|d| &d.establishment == code && d.interface == Interface::Api)
                .flat_map(|d| d.requests_by_service.keys().chain(d.latency.keys()))
                .filter(|s| published_service(s))
                .collect();
            let services = api_services
                .into_iter()
                .map(|s| ServiceTimes {
                    service: s.clone(),
                    stats: self
                        .kpis
                        .period_latency
                        .iter()
                        .find(|l| {
                            &l.establishment == code
                                && l.interface == Interface::Api
                                && &l.service == s
                        })
                        .map(|l| l.stats),
                    target_ms: self.req.settings.targets.avg_ms_for(s),
                })
                .collect();
            let episodes = self
                .kpis
                .episodes
                .iter()
                .filter(|e| &e.establishment == code && e.interface != Interface::Fallback)
                .collect();
            let days = dates
                .iter()
                .map(|date| DayRow {
                    date: *date,
                    figures: interfaces
                        .iter()
                        .map(|i| by_day.get(&(*code, *i, *date)).copied())
                        .collect(),
                    tpp_api: by_day
                        .get(&(*code, Interface::Api, *date))
                        .map_or(0, |d| d.tpp_requests),
                    tpp_fallback: by_day
                        .get(&(*code, Interface::Fallback, *date))
                        .map_or(0, |d| d.tpp_requests),
                })
                .collect();
            let known = known_establishment(code.as_str());
            out.push(EstablishmentView {
                code: *code,
                name: known.map_or_else(|| code.to_string(), |k| format!("{code} — {}", k.name)),
                short: known.map_or_else(|| code.to_string(), |k| format!("{code} {}", k.short)),
                interfaces,
                headline,
                services,
                episodes,
                days,
            });
        }
        Ok(out)
    }

    /// The GL 2.3 services measured on any establishment's dedicated interface (token left
    /// out), sorted.
    pub fn measured_services(&self) -> Vec<Service> {
        let s: BTreeSet<Service> = self
            .kpis
            .days
            .iter()
            .filter(|d| d.interface == Interface::Api)
            .flat_map(|d| d.requests_by_service.keys().cloned())
            .filter(published_service)
            .collect();
        s.into_iter().collect()
    }

    /// How each interface was measured: by the monitor's probes, from the gateway's logs of
    /// TPP traffic, or both; and which services.
    pub fn measured(&self) -> Vec<Measured> {
        let mut by: BTreeMap<Interface, Measured> = BTreeMap::new();
        for d in &self.kpis.days {
            let m = by.entry(d.interface).or_insert_with(|| Measured {
                interface: d.interface,
                probes: false,
                logs: false,
                services: BTreeSet::new(),
            });
            m.probes |= d.probe_requests > 0;
            m.logs |= d.tpp_requests > 0;
            m.services.extend(d.requests_by_service.keys().cloned());
        }
        by.into_values()
            .filter(|m| m.probes || m.logs || !m.services.is_empty())
            .collect()
    }
}

pub struct Measured {
    pub interface: Interface,
    pub probes: bool,
    pub logs: bool,
    pub services: BTreeSet<Service>,
}

impl SummaryRow {
    /// A series with no row in the period: nothing observed.
    pub fn empty(establishment: &str, interface: Interface) -> Self {
        SummaryRow {
            establishment: establishment.to_owned(),
            interface,
            uptime_pct: None,
            covered_s: 0.0,
            downtime_s: 0.0,
            planned_s: 0.0,
            unmonitored_s: 0.0,
            requests: 0.0,
            no_reply: 0.0,
            error_rate_pct: None,
            episodes: 0,
            latency: Vec::new(),
            fallback_share_pct: None,
            weeks_missed: None,
        }
    }

    /// Covered share of the period, over the period's real length.
    pub fn coverage_pct(&self) -> Option<f64> {
        let all = self.covered_s + self.unmonitored_s;
        (all > 0.0).then(|| self.covered_s / all * 100.0)
    }
}
