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
