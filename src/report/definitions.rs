//! The words around the figures, shared by the page and the spreadsheet: what was measured (from
//! the engine's figures, never claimed beyond them), the definition of every figure with its
//! EBA/GL/2018/07 reference, and the planned maintenance as announced.

use super::{Lang, Publication};
use crate::engine::ProbeLatency;

/// Title of the publication: « Statistiques T3 2024 — interface dédiée DSP2 : confirmation de la
/// disponibilité des fonds ». It names only the services measured.
pub fn title(p: &Publication) -> String {
    let lang = p.req.lang;
    let services: Vec<String> = p
        .measured_services()
        .iter()
        .map(|s| lang.service(s))
        .collect();
    let what = if services.is_empty() {
        lang.t("interface dédiée DSP2", "PSD2 dedicated interface")
            .to_owned()
    } else {
        format!(
            "{} : {}",
            lang.t("interface dédiée DSP2", "PSD2 dedicated interface"),
            services.join(", ")
        )
        .replace(" : ", lang.t(" : ", ": "))
    };
    format!(
        "{} {} — {what}",
        lang.t("Statistiques", "Statistics"),
        lang.period_name(p.req.period)
    )
}

/// The status sentence every output carries when the figures are not final.
pub fn status_note(p: &Publication) -> Option<String> {
    let lang = p.req.lang;
    let mut parts = Vec::new();
    if p.provisional {
        parts.push(format!(
            "{} {}",
            lang.t(
                "CHIFFRES PROVISOIRES : la période n'est pas terminée (produit le",
                "PROVISIONAL FIGURES: the period is not over (generated"
            ),
            p.generated_at.clone() + ")."
        ));
    }
    if p.synthetic {
        parts.push(
            lang.t(
                "Données synthétiques : une démonstration, pas une mesure réelle.",
                "Synthetic data: a demonstration, not a real measurement.",
            )
            .to_owned(),
        );
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// What was measured, in sentences: per interface, how (probes, gateway logs) and which services;
/// how response time is taken; what is compared.
pub fn measured(p: &Publication) -> Vec<String> {
    let lang = p.req.lang;
    let st = &p.req.settings;
    let mut out = Vec::new();
    let measured = p.measured();
    for m in &measured {
        let how = match (m.probes, m.logs) {
            (true, true) => lang.t(
                "par les sondes de la banque, qui l'appellent de l'extérieur comme un prestataire, et par les journaux de sa passerelle (trafic des prestataires)",
                "by the bank's probes, which call it from outside as a provider would, and from its gateway's logs (providers' traffic)",
            ),
            (true, false) => lang.t(
                "par les sondes de la banque, qui l'appellent de l'extérieur comme un prestataire",
                "by the bank's probes, which call it from outside as a provider would",
            ),
            (false, _) => lang.t(
                "par les journaux de la passerelle de la banque (trafic des prestataires)",
                "from the bank's gateway logs (providers' traffic)",
            ),
        };
        let services: Vec<String> = m.services.iter().map(|s| lang.service(s)).collect();
        out.push(
            format!(
                "{} : {how} ; {} : {}.",
                lang.interface(m.interface),
                lang.t("services", "services"),
                services.join(", ")
            )
            .replace(" : ", lang.t(" : ", ": "))
            .replace(" ; ", lang.t(" ; ", "; ")),
        );
    }
    let customer = measured.iter().any(|m| m.interface.is_customer());
    out.push(
        if customer {
            lang.t(
                "La disponibilité de l'interface dédiée est présentée à côté de celle des interfaces offertes aux clients de la banque, jour par jour (article 32 du règlement délégué (UE) 2018/389).",
                "The dedicated interface's uptime is shown beside that of the interfaces offered to the bank's customers, day by day (Article 32 of Delegated Regulation (EU) 2018/389).",
            )
        } else {
            lang.t(
                "Aucune interface offerte aux clients de la banque n'a été mesurée sur la période : aucune comparaison n'est présentée.",
                "No interface offered to the bank's customers was measured in the period: no comparison is shown.",
            )
        }
        .to_owned(),
    );
    // Several vantage points (section 10): how many, never which (the annex names them).
    let mut vantages: Vec<&str> = p.kpis.vantages.iter().map(|v| v.vantage.as_str()).collect();
    vantages.sort_unstable();
    vantages.dedup();
    if vantages.len() > 1 {
        out.push(format!(
            "{} {} {}",
            lang.t("Mesurée depuis", "Measured from"),
            vantages.len(),
            lang.t(
                "points de mesure (nœuds de surveillance distincts) : l'interface est comptée indisponible quand assez des points qui la surveillent à cet instant s'accordent (la majorité, sauf paramètre contraire) ; une panne vue de trop peu d'entre eux (leur propre réseau) ne l'est pas.",
                "vantage points (distinct monitoring nodes): the interface is counted down when enough of the points watching it at that instant agree (a majority unless set otherwise); an outage seen from too few of them (their own network) is not."
            )
        ).replace(" : ", lang.t(" : ", ": ")).replace(" ; ", lang.t(" ; ", "; ")));
    }
    // How response time is taken, for the sources actually used.
    let (probes, logs) = (
        measured.iter().any(|m| m.probes),
        measured.iter().any(|m| m.logs),
    );
    let mut how = Vec::new();
    if probes {
        how.push(match st.probe_latency {
            ProbeLatency::Request => lang.t(
                "pour les sondes, de l'envoi de la requête au dernier octet de la réponse (établissement de la connexion exclu)",
                "for probes, from the request sent to the last byte of the reply (connection set-up excluded)",
            ),
            ProbeLatency::Total => lang.t(
                "pour les sondes, de la résolution du nom au dernier octet de la réponse (établissement de la connexion inclus)",
                "for probes, from name resolution to the last byte of the reply (connection set-up included)",
            ),
        });
    }
    if logs {
        how.push(lang.t(
            "pour les journaux, la durée journalisée par la passerelle",
            "for logs, the duration the gateway logged",
        ));
    }
    if !how.is_empty() {
        out.push(format!(
            "{} {}. {}",
            lang.t("Temps de réponse :", "Response time:"),
            how.join(lang.t(" ; ", "; ")),
            lang.t(
                "Moyenne des réponses réussies seulement.",
                "Average over successful replies only."
            )
        ));
    }
    out
}

/// Every figure: its name, its formula, its reference.
pub fn figures(lang: Lang) -> Vec<[String; 3]> {
    let r = |a: &str, b: &str, c: &str| [a.to_owned(), b.to_owned(), c.to_owned()];
    match lang {
        Lang::Fr => vec![
            r(
                "Disponibilité (%)",
                "100 − indisponibilité / temps surveillé × 100, sur le jour civil local (ou la période) ; n.d. si rien n'a été surveillé",
                "EBA/GL/2018/07 2.4(a)",
            ),
            r(
                "Indisponibilité (s)",
                "temps passé dans un épisode d'indisponibilité : cinq requêtes consécutives en échec (sans réponse, ou erreur 5xx/INTE/INTS) en 30 secondes au plus, jusqu'à la première réponse qui n'est pas un échec",
                "EBA/GL/2018/07 2.4(b), 2.4(c) ; règlement délégué (UE) 2018/389 art. 33(1)",
            ),
            r(
                "dont planifiée / non planifiée (s)",
                "la part de l'indisponibilité dans une fenêtre de maintenance annoncée, et le reste ; la maintenance planifiée compte comme indisponibilité",
                "EBA/GL/2018/07 2.4",
            ),
            r(
                "Couverture (%)",
                "temps surveillé / durée du jour × 100 ; le temps non surveillé n'est compté ni disponible ni indisponible",
                "méthode de calcul, section 1",
            ),
            r(
                "Temps de réponse moyen (ms)",
                "moyenne des temps de réponse des réponses réussies du service, par service : information sur les comptes, initiation de paiement, confirmation de la disponibilité des fonds",
                "EBA/GL/2018/07 2.3(a) à (c)",
            ),
            r(
                "Taux d'erreur (%)",
                "réponses en erreur imputables à la banque (5xx, INTE/INTS, réponse non conforme) / requêtes reçues × 100",
                "EBA/GL/2018/07 2.3(d)",
            ),
            r(
                "Sans réponse",
                "requêtes restées sans réponse HTTP dans le délai (expiration, connexion refusée ou coupée)",
                "EBA/GL/2018/07 2.3(d)",
            ),
            r(
                "Requêtes des prestataires",
                "requêtes reçues des prestataires sur l'interface dédiée et sur l'accès de secours ; les appels de contrôle de la banque elle-même ne sont pas comptés",
                "règlement délégué (UE) 2018/389 art. 33(4)",
            ),
            r(
                "Jours",
                "jour civil local de minuit à minuit ; les jours de changement d'heure durent 23 ou 25 heures (82 800 ou 90 000 s)",
                "méthode de calcul, section 4",
            ),
        ],
        Lang::En => vec![
            r(
                "Uptime (%)",
                "100 − downtime / monitored time × 100, over the local calendar day (or the period); n.d. when nothing was monitored",
                "EBA/GL/2018/07 2.4(a)",
            ),
            r(
                "Downtime (s)",
                "time inside an unavailability episode: five consecutive failed requests (no reply, or a 5xx/INTE/INTS error) within 30 seconds, until the first reply that is not a failure",
                "EBA/GL/2018/07 2.4(b), 2.4(c); Delegated Regulation (EU) 2018/389 Art. 33(1)",
            ),
            r(
                "of which planned / unplanned (s)",
                "the part of the downtime inside an announced maintenance window, and the rest; planned maintenance counts as downtime",
                "EBA/GL/2018/07 2.4",
            ),
            r(
                "Coverage (%)",
                "monitored time / length of the day × 100; time not monitored counts as neither up nor down",
                "counting method, section 1",
            ),
            r(
                "Average response time (ms)",
                "mean response time of the service's successful replies, per service: account information, payment initiation, confirmation of the availability of funds",
                "EBA/GL/2018/07 2.3(a) to (c)",
            ),
            r(
                "Error rate (%)",
                "error replies attributable to the bank (5xx, INTE/INTS, non-conforming reply) / requests received × 100",
                "EBA/GL/2018/07 2.3(d)",
            ),
            r(
                "No reply",
                "requests left without an HTTP reply in time (time-out, refused or reset connection)",
                "EBA/GL/2018/07 2.3(d)",
            ),
            r(
                "Provider requests",
                "requests received from providers on the dedicated interface and on the fallback access; the bank's own check calls are not counted",
                "Delegated Regulation (EU) 2018/389 Art. 33(4)",
            ),
            r(
                "Days",
                "local calendar day from midnight to midnight; daylight-saving days last 23 or 25 hours (82,800 or 90,000 s)",
                "counting method, section 4",
            ),
        ],
    }
}

/// The planned maintenance as announced to providers, in words (local time).
pub fn maintenance(p: &Publication) -> String {
    let lang = p.req.lang;
    format!(
        "{} ({}) : {}",
        lang.t(
            "Maintenance planifiée annoncée",
            "Planned maintenance as announced"
        ),
        p.req.settings.tz.name(),
        lang.maintenance(&p.req.settings.maintenance)
    )
    .replace(" : ", lang.t(" : ", ": "))
}
