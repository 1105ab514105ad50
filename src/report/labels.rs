//! The words of the publication in French (as Banque Populaire publishes) and English.

/// What every output shows for a figure nobody observed, in both languages.
pub const ND: &str = "n.d.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub fn t(self, fr: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
    pub fn interface(self, i: crate::domain::Interface) -> &'static str {
        use crate::domain::Interface::*;
        match i {
            Api => self.t("Interface dédiée (API)", "Dedicated interface (API)"),
            Fallback => self.t("Accès de secours (fallback)", "Fallback access"),
            PsuWeb => self.t("Banque en ligne (web)", "Online banking (web)"),
            PsuApp => self.t("Application mobile", "Mobile app"),
        }
    }
}

impl Lang {
    /// Column headers of the period summary (page and spreadsheet): the fixed ones, then an
    /// average and a p95 column per service, the fallback share and the weekly targets.
    pub fn summary_headers(self, services: &[crate::domain::Service]) -> Vec<String> {
        let mut h: Vec<String> = self.summary_fixed_headers().map(String::from).to_vec();
        for s in services {
            h.push(format!("{} {s} (ms)", self.t("Temps moyen", "Average")));
            h.push(format!("p95 {s} (ms)"));
        }
        h.push(self.t("Part du fallback (%)", "Fallback share (%)").into());
        h.push(
            self.t(
                "Objectifs hebdomadaires (art. 33(7))",
                "Weekly targets (Art. 33(7))",
            )
            .into(),
        );
        h
    }

    fn summary_fixed_headers(self) -> [&'static str; 10] {
        [
            self.t("Établissement", "Establishment"),
            self.t("Interface", "Interface"),
            self.t("Disponibilité (%)", "Uptime (%)"),
            self.t("Indisponibilité (s)", "Downtime (s)"),
            self.t("dont planifiée (s)", "of which planned (s)"),
            self.t("Non surveillé (s)", "Unmonitored (s)"),
            self.t("Requêtes", "Requests"),
            self.t("Sans réponse", "No reply"),
            self.t("Taux d'erreur (%)", "Error rate (%)"),
            self.t("Épisodes art. 33(1)", "Art. 33(1) episodes"),
        ]
    }
}

use crate::engine::{MaintenanceWindow, Miss, Targets, WatchLevel};

impl Lang {
    /// A number with `places` decimals, decimal comma in French.
    pub fn dec(self, v: f64, places: usize) -> String {
        let s = format!("{v:.places$}");
        match self {
            Lang::Fr => s.replace('.', ","),
            Lang::En => s,
        }
    }

    /// A figure that may not have been observed: "n.d." (non disponible) when it was not.
    pub fn opt_dec(self, v: Option<f64>, places: usize) -> String {
        match v {
            Some(v) => self.dec(v, places),
            None => ND.to_string(),
        }
    }

    pub fn weekday(self, d: chrono::Weekday) -> &'static str {
        use chrono::Weekday::*;
        match d {
            Mon => self.t("lundi", "Monday"),
            Tue => self.t("mardi", "Tuesday"),
            Wed => self.t("mercredi", "Wednesday"),
            Thu => self.t("jeudi", "Thursday"),
            Fri => self.t("vendredi", "Friday"),
            Sat => self.t("samedi", "Saturday"),
            Sun => self.t("dimanche", "Sunday"),
        }
    }

    /// One missed target of a week, in words.
    pub fn miss(self, m: &Miss) -> String {
        match m {
            Miss::Uptime {
                actual_pct,
                target_pct,
            } => format!(
                "{} {} % < {} %",
                self.t("disponibilité", "uptime"),
                self.dec(*actual_pct, 4),
                self.dec(*target_pct, 2)
            ),
            Miss::ResponseTime {
                service,
                actual_ms,
                target_ms,
            } => format!(
                "{} {service} {} ms > {} ms",
                self.t("temps de réponse", "response time"),
                self.dec(*actual_ms, 1),
                self.dec(*target_ms, 0)
            ),
            Miss::ErrorRate {
                actual_pct,
                target_pct,
            } => format!(
                "{} {} % > {} %",
                self.t("taux d'erreur", "error rate"),
                self.dec(*actual_pct, 3),
                self.dec(*target_pct, 2)
            ),
            Miss::Parity {
                customer_interface,
                customer_uptime_pct,
                api_uptime_pct,
            } => format!(
                "{} {} % < {} {} %",
                self.t("interface dédiée", "dedicated interface"),
                self.dec(*api_uptime_pct, 4),
                self.interface(*customer_interface),
                self.dec(*customer_uptime_pct, 4)
            ),
        }
    }

    pub fn misses(self, ms: &[Miss]) -> String {
        ms.iter()
            .map(|m| self.miss(m))
            .collect::<Vec<_>>()
            .join(self.t(" ; ", "; "))
    }

    pub fn level(self, l: WatchLevel) -> &'static str {
        match l {
            WatchLevel::Notice => self.t("vigilance", "notice"),
            WatchLevel::Warning => self.t("alerte", "warning"),
            WatchLevel::Critical => self.t("critique", "critical"),
        }
    }

    /// The weekly targets, in words.
    pub fn targets(self, t: &Targets) -> String {
        let mut parts = vec![
            format!(
                "{} ≥ {} %",
                self.t("disponibilité hebdomadaire", "weekly uptime"),
                self.dec(t.uptime_pct, 2)
            ),
            format!(
                "{} ≤ {} ms",
                self.t("temps de réponse moyen", "average response time"),
                self.dec(t.avg_ms, 0)
            ),
        ];
        parts.extend(
            t.avg_ms_by_service
                .iter()
                .map(|(s, ms)| format!("{s} ≤ {} ms", self.dec(*ms, 0))),
        );
        parts.push(format!(
            "{} ≤ {} %",
            self.t("taux d'erreur", "error rate"),
            self.dec(t.error_rate_pct, 2)
        ));
        if t.parity_with_customer_interface {
            parts.push(
                self.t(
                    "interface dédiée au moins aussi disponible que chaque interface client",
                    "dedicated interface at least as available as each customer interface",
                )
                .to_owned(),
            );
        }
        parts.join(self.t(" ; ", "; "))
    }

    /// The planned maintenance calendar, in words (local times).
    pub fn maintenance(self, windows: &[MaintenanceWindow]) -> String {
        if windows.is_empty() {
            return self.t("aucune", "none").to_owned();
        }
        windows
            .iter()
            .map(|w| {
                let who = if w.establishments.is_empty() {
                    self.t("tous les établissements", "all establishments")
                        .to_owned()
                } else {
                    w.establishments
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "{} {}–{} ({who})",
                    self.weekday(w.weekday),
                    w.start.format("%H:%M"),
                    w.end.format("%H:%M")
                )
            })
            .collect::<Vec<_>>()
            .join(self.t(" ; ", "; "))
    }

    /// Weeks of the weekly watch missed, of those judged (complete and observed).
    pub fn weeks_missed(self, missed: usize, of: usize) -> String {
        if of == 0 {
            return self
                .t(
                    "n.d. (aucune semaine complète observée)",
                    "n.d. (no complete week observed)",
                )
                .to_string();
        }
        let weeks = |n: usize| match (self, n > 1) {
            (Lang::Fr, false) => "semaine",
            (Lang::Fr, true) => "semaines",
            (Lang::En, false) => "week",
            (Lang::En, true) => "weeks",
        };
        if missed == 0 {
            format!("{} ({of} {})", self.t("atteints", "met"), weeks(of))
        } else {
            format!(
                "{} {missed} {} {} {of}",
                self.t("manqués :", "missed:"),
                weeks(missed),
                self.t("sur", "of")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Interface, Service};

    #[test]
    fn misses_read_as_words_with_the_language_s_decimal_mark() {
        let m = [
            Miss::Uptime {
                actual_pct: 99.404_761_9,
                target_pct: 99.5,
            },
            Miss::ResponseTime {
                service: Service::new("cbpii").unwrap(),
                actual_ms: 412.25,
                target_ms: 300.0,
            },
            Miss::Parity {
                customer_interface: Interface::PsuWeb,
                customer_uptime_pct: 100.0,
                api_uptime_pct: 99.9,
            },
        ];
        assert_eq!(
            Lang::Fr.misses(&m),
            "disponibilité 99,4048 % < 99,50 % ; temps de réponse cbpii 412,2 ms > 300 ms ; \
             interface dédiée 99,9000 % < Banque en ligne (web) 100,0000 %"
        );
        assert_eq!(Lang::En.miss(&m[0]), "uptime 99.4048 % < 99.50 %");
        assert_eq!(Lang::Fr.level(WatchLevel::Critical), "critique");
        assert_eq!(Lang::En.weeks_missed(2, 13), "missed: 2 weeks of 13");
        assert_eq!(Lang::Fr.weeks_missed(1, 1), "manqués : 1 semaine sur 1");
        assert_eq!(Lang::Fr.weeks_missed(0, 13), "atteints (13 semaines)");
        assert_eq!(
            Lang::En.weeks_missed(0, 0),
            "n.d. (no complete week observed)"
        );
    }

    #[test]
    fn targets_and_maintenance_read_as_words() {
        let t = Targets::default();
        assert_eq!(
            Lang::En.targets(&t),
            "weekly uptime ≥ 99.50 %; average response time ≤ 750 ms; cbpii ≤ 300 ms; \
             error rate ≤ 0.50 %; dedicated interface at least as available as each customer interface"
        );
        let w = MaintenanceWindow {
            weekday: chrono::Weekday::Sun,
            start: chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
            end: chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            establishments: vec![],
        };
        assert_eq!(
            Lang::Fr.maintenance(&[w]),
            "dimanche 02:00–06:00 (tous les établissements)"
        );
        assert_eq!(Lang::En.maintenance(&[]), "none");
    }
}
