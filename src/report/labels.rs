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
    /// A service in words (GL 2.3 names for the dedicated interface's services).
    pub fn service(self, s: &crate::domain::Service) -> String {
        match s.as_str() {
            "cbpii" => self.t(
                "confirmation de la disponibilité des fonds",
                "confirmation of the availability of funds",
            ),
            "aisp" => self.t("information sur les comptes", "account information"),
            "pisp" => self.t("initiation de paiement", "payment initiation"),
            "token" => self.t("obtention du jeton d'accès", "access token"),
            "authorize" => self.t("autorisation du client", "customer authorisation"),
            "psu_login" => self.t("connexion du client", "customer log-in"),
            "fallback" => self.t("accès de secours", "fallback access"),
            other => return other.replace('_', " "),
        }
        .to_owned()
    }

    /// A service in one or two words, for narrow column headers.
    pub fn service_short(self, s: &crate::domain::Service) -> String {
        match s.as_str() {
            "cbpii" => self.t("confirmation des fonds", "funds confirmation"),
            "aisp" => self.t("information sur les comptes", "account information"),
            "pisp" => self.t("initiation de paiement", "payment initiation"),
            _ => return self.service(s),
        }
        .to_owned()
    }

    /// A short interface name for narrow column headers.
    pub fn interface_short(self, i: crate::domain::Interface) -> &'static str {
        use crate::domain::Interface::*;
        match i {
            Api => self.t("Interface dédiée", "Dedicated interface"),
            Fallback => self.t("Accès de secours", "Fallback access"),
            PsuWeb => self.t("Banque en ligne", "Online banking"),
            PsuApp => self.t("Application mobile", "Mobile app"),
        }
    }

    pub fn yes_no(self, b: bool) -> &'static str {
        if b {
            self.t("oui", "yes")
        } else {
            self.t("non", "no")
        }
    }

    pub fn month(self, m: u32) -> &'static str {
        const FR: [&str; 12] = [
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ];
        const EN: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let i = (m.clamp(1, 12) - 1) as usize;
        match self {
            Lang::Fr => FR[i],
            Lang::En => EN[i],
        }
    }

    /// A short month name for chart axes.
    pub fn month_short(self, m: u32) -> &'static str {
        const FR: [&str; 12] = [
            "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
            "nov.", "déc.",
        ];
        const EN: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let i = (m.clamp(1, 12) - 1) as usize;
        match self {
            Lang::Fr => FR[i],
            Lang::En => EN[i],
        }
    }

    /// A date in words: « 1 juillet 2024 », "1 July 2024".
    pub fn long_date(self, d: chrono::NaiveDate) -> String {
        use chrono::Datelike;
        let day = match (self, d.day()) {
            (Lang::Fr, 1) => "1er".to_owned(),
            (_, n) => n.to_string(),
        };
        format!("{day} {} {}", self.month(d.month()), d.year())
    }

    /// How the bank names a period: « T3 2024 » (a calendar quarter), else the days it covers.
    pub fn period_name(self, p: crate::engine::Period) -> String {
        use chrono::Datelike;
        let last = p.to.pred_opt().unwrap_or(p.to);
        let q = (p.from.month() - 1) / 3 + 1;
        let quarter_end = p.from.checked_add_months(chrono::Months::new(3));
        if p.from.day() == 1 && (p.from.month() - 1).is_multiple_of(3) && quarter_end == Some(p.to)
        {
            return format!("{}{q} {}", self.t("T", "Q"), p.from.year());
        }
        if last <= p.from {
            return self.long_date(p.from);
        }
        format!(
            "{} {} {} {}",
            self.t("du", "from"),
            self.long_date(p.from),
            self.t("au", "to"),
            self.long_date(last)
        )
    }

    /// An instant in local time with its offset: « 01/07/2024 10:00:00 (UTC+02:00) »,
    /// "2024-07-01 10:00:00 (UTC+02:00)".
    pub fn local_time(self, tz: chrono_tz::Tz, ms: i64) -> String {
        let t = crate::engine::time::utc(ms).with_timezone(&tz);
        match self {
            Lang::Fr => t.format("%d/%m/%Y %H:%M:%S (UTC%:z)").to_string(),
            Lang::En => t.format("%Y-%m-%d %H:%M:%S (UTC%:z)").to_string(),
        }
    }

    /// A duration in words: « 1 h 05 min 12 s », "25 min 0 s", "60,2 s".
    pub fn duration(self, secs: f64) -> String {
        if secs < 60.0 {
            return format!("{} s", self.dec(secs, 1));
        }
        let s = secs.round() as i64;
        let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
        if h > 0 {
            format!("{h} h {m:02} min {s:02} s")
        } else {
            format!("{m} min {s:02} s")
        }
    }

    /// Whether the figures are final: « provisoire » while the period is not over.
    pub fn status(self, provisional: bool, synthetic: bool) -> String {
        let s = if provisional {
            self.t("provisoire", "provisional")
        } else {
            self.t("définitif", "final")
        };
        if synthetic {
            format!("{}, {s}", self.t("synthétique", "synthetic"))
        } else {
            s.to_owned()
        }
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
                "{} {} {} ms > {} ms",
                self.t("temps de réponse", "response time"),
                self.service(service),
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
                .map(|(s, ms)| format!("{} ≤ {} ms", self.service(s), self.dec(*ms, 0))),
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
            "disponibilité 99,4048 % < 99,50 % ; temps de réponse confirmation de la disponibilité des fonds 412,2 ms > 300 ms ; \
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
            "weekly uptime ≥ 99.50 %; average response time ≤ 750 ms; confirmation of the availability of funds ≤ 300 ms; \
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
