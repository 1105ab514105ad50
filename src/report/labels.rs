//! The words of the publication in French (as Banque Populaire publishes) and English.

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
    /// Column headers of the period summary (page and spreadsheet).
    pub fn summary_headers(self) -> [&'static str; 10] {
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
