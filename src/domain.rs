//! The vocabulary every stage shares: establishment codes, IBANs, amounts, interfaces, services,
//! outcomes and the observation itself (methodology sections 1 and 2).
//!
//! Values are parsed once at the edges (config, CSV, HTTP) into these types; the rest of the code
//! never re-checks them.

use std::fmt;
use std::str::FromStr;

pub use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Why a value from outside could not become a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("establishment code {0:?} is not 5 digits (e.g. 13807)")]
    Establishment(String),
    #[error("IBAN {0:?} is malformed: {1}")]
    Iban(String, &'static str),
    #[error(
        "amount {0:?} is not a STET amount (digits, optional '.', at most 5 decimals, e.g. 123.45)"
    )]
    Amount(String),
    #[error("currency {0:?} is not three capital letters (e.g. EUR)")]
    Currency(String),
    #[error("unknown interface {0:?}: expected api, fallback, psu_web or psu_app")]
    Interface(String),
    #[error(
        "service {0:?} must be lower-case letters, digits or '_' (e.g. token, cbpii, psu_login)"
    )]
    Service(String),
    #[error("unknown source {0:?}: expected probe or log")]
    Source(String),
    #[error(
        "unknown outcome {0:?}: expected ok, rejected, unexpected, aspsp_error, no_reply or probe_error"
    )]
    Outcome(String),
    #[error("unknown no-reply kind {0:?}: expected timeout, refused, reset, tls, dns or other")]
    NoReplyKind(String),
    #[error(
        "vantage {0:?} must be 1 to 64 letters, digits, '-', '_' or '.' (a monitor id, e.g. paris-dc1)"
    )]
    Vantage(String),
}

/// A 5-digit establishment code (code établissement), e.g. `13807` for BPGO.
///
/// Five bytes, `Copy`: every observation carries one, and ten million of them must fit in memory.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EstablishmentCode([u8; 5]);

impl EstablishmentCode {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits get in (see `from_str`).
        std::str::from_utf8(&self.0).unwrap_or("?????")
    }
}

impl FromStr for EstablishmentCode {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match <[u8; 5]>::try_from(s.as_bytes()) {
            Ok(b) if b.iter().all(|b| b.is_ascii_digit()) => Ok(Self(b)),
            _ => Err(DomainError::Establishment(s.to_owned())),
        }
    }
}
impl TryFrom<String> for EstablishmentCode {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<EstablishmentCode> for String {
    fn from(c: EstablishmentCode) -> String {
        c.as_str().to_owned()
    }
}
impl fmt::Display for EstablishmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for EstablishmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EstablishmentCode({:?})", self.as_str())
    }
}

/// One Banque Populaire establishment covered by the funds-confirmation API (from the bank's
/// documentation). Several brands may share a code (BPGO and CMMGO on 13807).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownEstablishment {
    pub code: &'static str,
    pub short: &'static str,
    pub name: &'static str,
}

/// Establishment codes of the seed documentation, plus the two the fallback example names.
pub const KNOWN_ESTABLISHMENTS: &[KnownEstablishment] = &[
    KnownEstablishment {
        code: "10807",
        short: "BPBFC",
        name: "Banque Populaire Bourgogne Franche-Comté",
    },
    KnownEstablishment {
        code: "16807",
        short: "BPAURA",
        name: "Banque Populaire Auvergne Rhône Alpes",
    },
    KnownEstablishment {
        code: "10207",
        short: "BPRI",
        name: "Banque Populaire Rives de Paris",
    },
    KnownEstablishment {
        code: "18707",
        short: "BPVF",
        name: "Banque Populaire Val de France",
    },
    KnownEstablishment {
        code: "13507",
        short: "BPN",
        name: "Banque Populaire du Nord",
    },
    KnownEstablishment {
        code: "16607",
        short: "BPS",
        name: "Banque Populaire du Sud",
    },
    KnownEstablishment {
        code: "10907",
        short: "BPACA",
        name: "Banque Populaire Aquitaine Centre Atlantique",
    },
    KnownEstablishment {
        code: "14707",
        short: "BPALC",
        name: "Banque Populaire Alsace Lorraine Champagne",
    },
    KnownEstablishment {
        code: "17807",
        short: "BPOC",
        name: "Banque Populaire Occitane",
    },
    KnownEstablishment {
        code: "13807",
        short: "BPGO",
        name: "Banque Populaire Grand Ouest",
    },
    KnownEstablishment {
        code: "14607",
        short: "BPMED",
        name: "Banque Populaire Méditerranée",
    },
    KnownEstablishment {
        code: "10548",
        short: "BDS",
        name: "Banque de Savoie",
    },
    KnownEstablishment {
        code: "40978",
        short: "PALATINE",
        name: "Banque Palatine",
    },
];

/// The codes of the seed's funds-confirmation table (without the two fallback-only examples).
pub const SEED_ESTABLISHMENT_CODES: &[&str] = &[
    "10807", "16807", "10207", "18707", "13507", "16607", "10907", "14707", "17807", "13807",
    "14607",
];

pub fn known_establishment(code: &str) -> Option<&'static KnownEstablishment> {
    KNOWN_ESTABLISHMENTS.iter().find(|e| e.code == code)
}

/// The one check of a well-formed code every command makes (`import`, `synth`, `evidence
/// --establishment`): a warning when it is neither one of the bank's codes nor one of
/// `configured` (a typo would otherwise become a phantom establishment in every figure).
pub fn unknown_code_warning(
    code: EstablishmentCode,
    configured: &[EstablishmentCode],
) -> Option<String> {
    if known_establishment(code.as_str()).is_some() || configured.contains(&code) {
        return None;
    }
    Some(format!(
        "establishment {code} is neither a Banque Populaire code nor in the configuration: a typo? (its figures are counted apart)"
    ))
}

/// An IBAN whose ISO 13616 mod-97 checksum holds. Stored without spaces, upper case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iban(String);

impl Iban {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The STET pattern only (`^[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}$`), without the checksum: what
    /// a bank accepts as well-formed before looking the account up.
    pub fn matches_stet_pattern(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() >= 5
            && b.len() <= 34
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..4].iter().all(u8::is_ascii_digit)
            && b[4..].iter().all(u8::is_ascii_alphanumeric)
    }
}

impl FromStr for Iban {
    type Err = DomainError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let s: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let err = |why| DomainError::Iban(raw.to_owned(), why);
        if !Self::matches_stet_pattern(&s) {
            return Err(err(
                "expected 2 letters, 2 check digits and up to 30 letters or digits",
            ));
        }
        // mod-97: move the first four characters to the end, letters become 10..35.
        let mut rem: u32 = 0;
        for c in s[4..].chars().chain(s[..4].chars()) {
            let v = c.to_digit(36).expect("alphanumeric checked above");
            rem = if v >= 10 {
                (rem * 100 + v) % 97
            } else {
                (rem * 10 + v) % 97
            };
        }
        if rem != 1 {
            return Err(err("checksum (mod 97) does not hold: a digit is wrong"));
        }
        Ok(Self(s))
    }
}
impl TryFrom<String> for Iban {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<Iban> for String {
    fn from(i: Iban) -> String {
        i.0
    }
}
impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A STET amount (`^-?[0-9]{1,13}(\.[0-9]{0,5})?$`) held exactly, in units of 10^-5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount {
    /// The amount × 100 000.
    pub hundred_thousandths: i128,
}

impl Amount {
    pub const SCALE: i128 = 100_000;

    pub fn from_cents(cents: i64) -> Self {
        Self {
            hundred_thousandths: cents as i128 * 1_000,
        }
    }
}

impl FromStr for Amount {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DomainError::Amount(s.to_owned());
        let (neg, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty()
            || int.len() > 13
            || frac.len() > 5
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let mut v: i128 = int.parse().map_err(|_| err())?;
        let mut f = frac.to_owned();
        while f.len() < 5 {
            f.push('0');
        }
        v = v * Self::SCALE + f.parse::<i128>().map_err(|_| err())?;
        Ok(Self {
            hundred_thousandths: if neg { -v } else { v },
        })
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.hundred_thousandths;
        let sign = if v < 0 { "-" } else { "" };
        let a = v.abs();
        let int = a / Self::SCALE;
        let frac = a % Self::SCALE;
        // Two decimals at least, as money is written; more only when present.
        let mut fs = format!("{frac:05}");
        while fs.len() > 2 && fs.ends_with('0') {
            fs.pop();
        }
        write!(f, "{sign}{int}.{fs}")
    }
}

/// A three-letter ISO 4217 currency code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);
impl Currency {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl FromStr for Currency {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::Currency(s.to_owned()))
        }
    }
}
impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $err:ident, { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(DomainError::$err(s.to_owned())) }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// Which door of the bank an observation went through (methodology section 1).
    Interface, Interface, {
        /// The dedicated interface (the STET API).
        Api => "api",
        /// The contingency access of Art. 33(4).
        Fallback => "fallback",
        /// Online banking in a browser, offered to the bank's own customers.
        PsuWeb => "psu_web",
        /// The bank's own mobile app.
        PsuApp => "psu_app",
    }
);

impl Interface {
    /// Interfaces the bank offers its own customers, against which Art. 32(1) parity is judged.
    pub fn is_customer(self) -> bool {
        matches!(self, Interface::PsuWeb | Interface::PsuApp)
    }
}

string_enum!(
    /// Where an observation comes from.
    Source, Source, {
        Probe => "probe",
        Log => "log",
    }
);

string_enum!(
    /// What one observation counts as (methodology section 2).
    Outcome, Outcome, {
        Ok => "ok",
        Rejected => "rejected",
        Unexpected => "unexpected",
        AspspError => "aspsp_error",
        NoReply => "no_reply",
        ProbeError => "probe_error",
    }
);

impl Outcome {
    /// Classifies a reply from its status and STET error code alone, as done for gateway logs
    /// (probes may also find `unexpected` by checking the body). `None` status means no reply.
    pub fn from_reply(status: Option<u16>, error_code: Option<&str>) -> Outcome {
        match status {
            None => Outcome::NoReply,
            Some(_)
                if error_code.is_some_and(|c| {
                    c.eq_ignore_ascii_case("INTE") || c.eq_ignore_ascii_case("INTS")
                }) =>
            {
                Outcome::AspspError
            }
            Some(s) if s >= 500 => Outcome::AspspError,
            Some(s) if s >= 400 => Outcome::Rejected,
            Some(_) => Outcome::Ok,
        }
    }

    /// Whether this outcome is a failure for availability, given the policy on bank errors
    /// (methodology section 2: `aspsp_error` counts as a failure by default).
    pub fn is_failure(self, aspsp_error_is_failure: bool) -> bool {
        match self {
            Outcome::NoReply => true,
            Outcome::AspspError => aspsp_error_is_failure,
            _ => false,
        }
    }

    /// Errors attributable to the bank (GL 2.3(d)).
    pub fn is_bank_error(self) -> bool {
        matches!(self, Outcome::AspspError | Outcome::Unexpected)
    }
}

string_enum!(
    /// Why no reply came.
    NoReplyKind, NoReplyKind, {
        Timeout => "timeout",
        Refused => "refused",
        Reset => "reset",
        Tls => "tls",
        Dns => "dns",
        Other => "other",
    }
);

/// A service name (`token`, `authorize`, `cbpii`, `aisp`, `pisp`, `psu_login`, `fallback`, ...).
/// An open set: gateways name more services than the probes do.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Service(CompactString);

impl Service {
    pub const TOKEN: &'static str = "token";
    pub const AUTHORIZE: &'static str = "authorize";
    pub const CBPII: &'static str = "cbpii";
    pub const PSU_LOGIN: &'static str = "psu_login";
    pub const FALLBACK: &'static str = "fallback";

    pub fn new(s: &str) -> Result<Self, DomainError> {
        s.parse()
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl FromStr for Service {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty()
            && s.len() <= 40
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            Ok(Self(CompactString::new(s)))
        } else {
            Err(DomainError::Service(s.to_owned()))
        }
    }
}
impl TryFrom<String> for Service {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<Service> for String {
    fn from(s: Service) -> String {
        s.0.into_string()
    }
}
impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an observation was seen from (methodology section 10): the `[monitor] id` of the
/// node whose probe made it, or `gateway` for the bank's own logs of TPP traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vantage(CompactString);

impl Vantage {
    /// The vantage of gateway logs: the bank's side, not a probing node.
    pub const GATEWAY: &'static str = "gateway";
    /// Probe rows recorded before vantages were kept, where no heartbeat tells whose they were.
    pub const UNKNOWN_MONITOR: &'static str = "monitor";
    /// Probe rows imported from a file that names no vantage (another tool's probe export).
    pub const IMPORTED: &'static str = "import";

    pub fn new(s: &str) -> Result<Self, DomainError> {
        s.parse()
    }
    pub fn unknown_monitor() -> Self {
        Self(CompactString::const_new(Self::UNKNOWN_MONITOR))
    }
    pub fn gateway() -> Self {
        Self(CompactString::const_new(Self::GATEWAY))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The vantage of an imported row that names none: the gateway for logs, `import` for probes.
    pub fn imported(source: Source) -> Self {
        Self(CompactString::const_new(match source {
            Source::Log => Self::GATEWAY,
            Source::Probe => Self::IMPORTED,
        }))
    }
    /// Names a node may not take, in any case: the gateway's, and the one imported probe rows
    /// get when their file names no vantage.
    pub fn is_reserved(&self) -> bool {
        self.0.eq_ignore_ascii_case(Self::GATEWAY) || self.0.eq_ignore_ascii_case(Self::IMPORTED)
    }
    /// Whether this is the gateway's (logs), not a probing node's.
    pub fn is_gateway(&self) -> bool {
        self.0 == Self::GATEWAY
    }
}
impl FromStr for Vantage {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            Ok(Self(CompactString::new(s)))
        } else {
            Err(DomainError::Vantage(s.to_owned()))
        }
    }
}
impl TryFrom<String> for Vantage {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<Vantage> for String {
    fn from(s: Vantage) -> String {
        s.0.into_string()
    }
}
impl fmt::Display for Vantage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A TPP's organization identifier (`PSDFR-ACPR-12345`), as in its eIDAS certificate. Kept
/// inline (no allocation) up to 24 bytes.
pub type TppId = CompactString;

/// Per-phase timings of a probe, in milliseconds, named as blackbox_exporter names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub resolve_ms: f64,
    pub connect_ms: f64,
    pub tls_ms: f64,
    pub processing_ms: f64,
    pub transfer_ms: f64,
}

/// One request sent to one interface of one establishment, and what came back.
/// Times are UTC epoch milliseconds; that is also how the store keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub received_at_ms: i64,
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    pub service: Service,
    pub source: Source,
    pub tpp: Option<TppId>,
    pub status: Option<u16>,
    /// Sending the request to the last byte of the reply; `None` when no reply came.
    pub latency_ms: Option<f64>,
    pub error_code: Option<CompactString>,
    /// Inline up to 24 bytes; longer ones (UUIDs) on the heap.
    pub request_id: CompactString,
    pub outcome: Outcome,
    /// Which node saw it (`gateway` for logs); inline, no allocation. Absent from JSON written
    /// before vantages were kept: `monitor` (see [`Vantage::UNKNOWN_MONITOR`]).
    #[serde(default = "Vantage::unknown_monitor")]
    pub vantage: Vantage,
}

impl Observation {
    /// When the reply completed (`received_at + latency`), rounded to the millisecond; `None`
    /// without a reply. This is where an unavailability episode ends (methodology section 3).
    pub fn completed_at_ms(&self) -> Option<i64> {
        self.latency_ms
            .map(|l| self.received_at_ms + l.round() as i64)
    }
}

/// What makes a span of time covered (methodology section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageKind {
    /// A running monitor probing the series (its heartbeats).
    Monitor,
    /// An imported gateway log, from its first to its last `received_at`.
    Log,
}

/// A span of time during which a series was covered, UTC epoch ms, half-open. `None` for the
/// establishment or interface means every one (heartbeats recorded before coverage was kept per
/// series).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CoverageSpan {
    pub kind: CoverageKind,
    pub establishment: Option<EstablishmentCode>,
    pub interface: Option<Interface>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The monitor was still running when the data was read: coverage ends "now", not at a
    /// stop, so an episode open at its end is open, not cut.
    pub ongoing: bool,
    /// Whose monitor run it is (its `[monitor] id`, methodology section 10); `None` for
    /// monitor spans known to be of a single, unnamed vantage. For a log span: the vantage whose
    /// imported probe rows it covers (a probe file naming its rows' vantage: that vantage's own
    /// coverage, as a run of it); `None`, the gateway's, shared by every vantage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vantage: Option<Vantage>,
}

impl CoverageSpan {
    /// Whether this span covers the series `(e, i)`.
    pub fn covers(&self, e: &EstablishmentCode, i: Interface) -> bool {
        self.establishment.is_none_or(|x| x == *e) && self.interface.is_none_or(|x| x == i)
    }

    /// The probing vantage this span covers for (section 10): a monitor run's node (an unnamed
    /// run is the unknown monitor's), or the vantage of imported probe rows; `None` for the
    /// gateway's logs, which every vantage shares.
    pub fn probing_vantage(&self) -> Option<&str> {
        match (self.kind, &self.vantage) {
            (_, Some(v)) => Some(v.as_str()),
            (CoverageKind::Monitor, None) => Some(Vantage::UNKNOWN_MONITOR),
            (CoverageKind::Log, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ibans_pass_the_checksum() {
        for s in [
            "FR7613807008043001965405158",
            "FR7613807008043001965405255",
            "FR7613807008043001965407292",
            "FR7613807008063031966574122",
            "FR7617515000920400430518020",
        ] {
            assert_eq!(s.parse::<Iban>().unwrap().as_str(), s);
        }
        assert!("FR7613807008043001965405159".parse::<Iban>().is_err());
        assert!("FRXXXX807008043001965405158".parse::<Iban>().is_err());
        assert_eq!(
            "fr76 1380 7008 0430 0196 5405 158"
                .parse::<Iban>()
                .unwrap()
                .as_str(),
            "FR7613807008043001965405158"
        );
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(
            "123.45".parse::<Amount>().unwrap().hundred_thousandths,
            12_345_000
        );
        assert_eq!("-20000".parse::<Amount>().unwrap().to_string(), "-20000.00");
        assert_eq!("0.00001".parse::<Amount>().unwrap().to_string(), "0.00001");
        assert_eq!(
            "4179".parse::<Amount>().unwrap(),
            Amount::from_cents(417_900)
        );
        // The STET pattern allows zero decimals after the point.
        assert_eq!("1.".parse::<Amount>().unwrap().to_string(), "1.00");
        for bad in ["", "1.123456", "12345678901234", "1e3", "+1", "1,5", "."] {
            assert!(bad.parse::<Amount>().is_err(), "{bad}");
        }
    }

    #[test]
    fn outcomes_from_replies() {
        assert_eq!(Outcome::from_reply(None, None), Outcome::NoReply);
        assert_eq!(Outcome::from_reply(Some(200), None), Outcome::Ok);
        assert_eq!(Outcome::from_reply(Some(302), None), Outcome::Ok);
        assert_eq!(
            Outcome::from_reply(Some(400), Some("AC01")),
            Outcome::Rejected
        );
        assert_eq!(
            Outcome::from_reply(Some(429), Some("TMRQ")),
            Outcome::Rejected
        );
        assert_eq!(
            Outcome::from_reply(Some(503), Some("INTS")),
            Outcome::AspspError
        );
        assert_eq!(
            Outcome::from_reply(Some(400), Some("INTE")),
            Outcome::AspspError
        );
        // Codes as some gateways write them.
        assert_eq!(
            Outcome::from_reply(Some(400), Some("inte")),
            Outcome::AspspError
        );
        assert!(Outcome::NoReply.is_failure(false));
        assert!(Outcome::AspspError.is_failure(true));
        assert!(!Outcome::AspspError.is_failure(false));
        assert!(!Outcome::Rejected.is_failure(true));
    }

    #[test]
    fn establishment_codes() {
        assert!("13807".parse::<EstablishmentCode>().is_ok());
        assert!("1380".parse::<EstablishmentCode>().is_err());
        assert!("1380a".parse::<EstablishmentCode>().is_err());
        assert_eq!(known_establishment("13807").unwrap().short, "BPGO");
    }
}
