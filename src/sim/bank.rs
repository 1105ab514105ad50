//! One simulated establishment's data: the sandbox personas and accounts of the bank's
//! documentation (available funds kept apart from the accounting balance), and its OAuth2 grants
//! (authorization codes, access tokens, refresh tokens; one valid pair per customer, TPP and role).

use std::collections::HashMap;

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};

use crate::domain::Amount;

/// The customer's SMS code in the sandbox.
pub const SANDBOX_SMS_CODE: &str = "12345678";
pub const ACCESS_TOKEN_S: i64 = 3_600;
pub const REFRESH_TOKEN_S: i64 = 180 * 86_400;
/// Authorization codes are short-lived.
pub const CODE_S: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    Open,
    Closed,
    Blocked,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub iban: &'static str,
    pub login: &'static str,
    /// The accounting balance.
    pub balance: Amount,
    /// What a card payment may use now: the balance less pending card debits.
    pub available: Amount,
    pub status: AccountStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    pub name: &'static str,
    pub login: &'static str,
    /// Online banking terminated (answers IPSU).
    pub terminated: bool,
}

/// The personas of the bank's sandbox documentation, plus Zoé, whose accounts exercise the
/// closed (AC04), blocked (AC06) and terminated-customer (IPSU) answers.
pub const PERSONAS: &[Persona] = &[
    Persona {
        name: "Marc",
        login: "D0999990I0",
        terminated: false,
    },
    Persona {
        name: "Marie",
        login: "D0999991I0",
        terminated: false,
    },
    Persona {
        name: "Thomas",
        login: "D0999980",
        terminated: false,
    },
    Persona {
        name: "Alix",
        login: "D0999992I0",
        terminated: false,
    },
    Persona {
        name: "Tech'n Co",
        login: "D0999993I0",
        terminated: false,
    },
    Persona {
        name: "Adam",
        login: "D0999994I0",
        terminated: false,
    },
    Persona {
        name: "Lea",
        login: "755238649",
        terminated: false,
    },
    Persona {
        name: "Zoé",
        login: "D0999995I0",
        terminated: false,
    },
    Persona {
        name: "Yann",
        login: "D0999996I0",
        terminated: true,
    },
];

/// (IBAN, login, balance in cents, available in cents, status).
const ACCOUNTS: &[(&str, &str, i64, i64, AccountStatus)] = &[
    // The documentation's acceptance table: above 4 179 EUR on ...5158 is refused although the
    // balance is 4 348.95: 169.95 of card debits are pending.
    (
        "FR7613807008043001965405158",
        "D0999990I0",
        434_895,
        417_900,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965405255",
        "D0999990I0",
        45_956,
        45_956,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965405352",
        "D0999990I0",
        216_550,
        216_550,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965406128",
        "D0999991I0",
        175_403,
        175_403,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965406225",
        "D0999991I0",
        1_142_900,
        1_142_900,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965407195",
        "D0999980",
        74_927,
        74_927,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965407292",
        "D0999980",
        -2_000_000,
        -2_000_000,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965408165",
        "D0999992I0",
        5_200,
        5_200,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965408262",
        "D0999992I0",
        39_545,
        39_545,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965408359",
        "D0999992I0",
        29_819,
        29_819,
        AccountStatus::Open,
    ),
    (
        "FR7613807008043001965409135",
        "D0999993I0",
        6_391_700,
        6_391_700,
        AccountStatus::Open,
    ),
    (
        "FR7613807008063031966574122",
        "D0999994I0",
        0,
        0,
        AccountStatus::Open,
    ),
    (
        "FR7613807008063031966574219",
        "D0999994I0",
        -289_405,
        -289_405,
        AccountStatus::Open,
    ),
    (
        "FR7617515000920400430518020",
        "755238649",
        -15_000,
        -15_000,
        AccountStatus::Open,
    ),
    (
        "FR3613807008043001965410146",
        "D0999995I0",
        120_000,
        120_000,
        AccountStatus::Closed,
    ),
    (
        "FR3613807008043001965410243",
        "D0999995I0",
        80_000,
        80_000,
        AccountStatus::Blocked,
    ),
    (
        "FR3613807008043001965410340",
        "D0999996I0",
        50_000,
        50_000,
        AccountStatus::Open,
    ),
];

/// What an access token allows.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessGrant {
    pub client_id: String,
    pub scope: Vec<String>,
    pub expires_at_ms: i64,
    /// Set for tokens from the authorization-code flow: the customer and consented accounts.
    pub customer: Option<String>,
    pub accounts: Option<Vec<String>>,
    pub pair: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshGrant {
    pub client_id: String,
    pub scope: Vec<String>,
    pub customer: String,
    pub accounts: Vec<String>,
    pub expires_at_ms: i64,
    pub pair: u64,
    pub access_token: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub customer: String,
    pub accounts: Vec<String>,
    pub expires_at_ms: i64,
}

/// One establishment's state.
#[derive(Debug)]
pub struct Bank {
    pub accounts: HashMap<&'static str, Account>,
    pub access: HashMap<String, AccessGrant>,
    pub refresh: HashMap<String, RefreshGrant>,
    pub codes: HashMap<String, CodeGrant>,
    next_pair: u64,
}

impl Default for Bank {
    fn default() -> Self {
        let accounts = ACCOUNTS
            .iter()
            .map(|&(iban, login, bal, avail, status)| {
                (
                    iban,
                    Account {
                        iban,
                        login,
                        balance: Amount::from_cents(bal),
                        available: Amount::from_cents(avail),
                        status,
                    },
                )
            })
            .collect();
        Self {
            accounts,
            access: HashMap::new(),
            refresh: HashMap::new(),
            codes: HashMap::new(),
            next_pair: 1,
        }
    }
}

/// A random opaque token (base64url of 32 random bytes).
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    let _ = SystemRandom::new().fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn persona(login: &str) -> Option<&'static Persona> {
    PERSONAS.iter().find(|p| p.login == login)
}

impl Bank {
    pub fn persona_accounts(&self, login: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .accounts
            .values()
            .filter(|a| a.login == login)
            .map(|a| a.iban.to_string())
            .collect();
        v.sort();
        v
    }

    pub fn issue_access(&mut self, grant: AccessGrant) -> String {
        let t = new_token();
        self.access.insert(t.clone(), grant);
        t
    }

    /// Issues an access + refresh pair for a customer, revoking any earlier pair of the same
    /// customer, TPP and scope (one valid pair per customer/TPP/role).
    pub fn issue_pair(
        &mut self,
        client_id: &str,
        scope: Vec<String>,
        customer: &str,
        accounts: Vec<String>,
        now_ms: i64,
    ) -> (String, String) {
        let stale: Vec<u64> = self
            .refresh
            .values()
            .filter(|r| r.client_id == client_id && r.customer == customer && r.scope == scope)
            .map(|r| r.pair)
            .collect();
        for p in stale {
            self.revoke_pair(p);
        }
        let pair = self.next_pair;
        self.next_pair += 1;
        let access = self.issue_access(AccessGrant {
            client_id: client_id.into(),
            scope: scope.clone(),
            expires_at_ms: now_ms + ACCESS_TOKEN_S * 1000,
            customer: Some(customer.into()),
            accounts: Some(accounts.clone()),
            pair: Some(pair),
        });
        let refresh = new_token();
        self.refresh.insert(
            refresh.clone(),
            RefreshGrant {
                client_id: client_id.into(),
                scope,
                customer: customer.into(),
                accounts,
                expires_at_ms: now_ms + REFRESH_TOKEN_S * 1000,
                pair,
                access_token: access.clone(),
            },
        );
        (access, refresh)
    }

    /// Revoking either token of a pair revokes both.
    pub fn revoke_pair(&mut self, pair: u64) {
        self.access.retain(|_, g| g.pair != Some(pair));
        self.refresh.retain(|_, r| r.pair != pair);
    }

    /// Revokes a token (access or refresh); true when it existed.
    pub fn revoke(&mut self, token: &str) -> bool {
        if let Some(p) = self.access.get(token).and_then(|g| g.pair) {
            self.revoke_pair(p);
            return true;
        }
        if let Some(p) = self.refresh.get(token).map(|r| r.pair) {
            self.revoke_pair(p);
            return true;
        }
        self.access.remove(token).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Iban;

    #[test]
    fn every_sandbox_iban_is_valid_and_owned_by_a_persona() {
        for (iban, login, ..) in ACCOUNTS {
            assert!(iban.parse::<Iban>().is_ok(), "{iban}");
            assert!(persona(login).is_some(), "{login}");
        }
    }

    #[test]
    fn one_pair_per_customer_tpp_and_role() {
        let mut b = Bank::default();
        let s = vec!["cbpii".to_string()];
        let (a1, r1) = b.issue_pair("T", s.clone(), "D0999990I0", vec![], 0);
        let (a2, r2) = b.issue_pair("T", s.clone(), "D0999990I0", vec![], 0);
        assert!(!b.access.contains_key(&a1) && !b.refresh.contains_key(&r1));
        assert!(b.access.contains_key(&a2) && b.refresh.contains_key(&r2));
        assert!(b.revoke(&a2));
        assert!(
            !b.refresh.contains_key(&r2),
            "revoking the access token revokes the refresh token"
        );
    }
}
