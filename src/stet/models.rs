//! STET PSD2 messages for funds confirmation and OAuth2, and the bank's error codes (from the
//! STET specification v1.4.0.47 and the Banque Populaire documentation).

use serde::{Deserialize, Serialize};

/// The two STET versions of funds confirmation, each with its path and OAuth2 scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StetVersion {
    /// STET 1.4.0: `/stet/psd2/v1/funds-confirmations`, role PIISP, scope `piisp`.
    #[serde(rename = "1.4.0")]
    V140,
    /// STET 1.4.2: `/stet/psd2/v1.4.2/funds-confirmations`, role CBPII, scope `cbpii`.
    #[serde(rename = "1.4.2")]
    V142,
}

impl StetVersion {
    pub fn funds_path(self) -> &'static str {
        match self {
            StetVersion::V140 => "/stet/psd2/v1/funds-confirmations",
            StetVersion::V142 => "/stet/psd2/v1.4.2/funds-confirmations",
        }
    }
    pub fn scope(self) -> &'static str {
        match self {
            StetVersion::V140 => "piisp",
            StetVersion::V142 => "cbpii",
        }
    }
    pub fn from_path(path: &str) -> Option<Self> {
        match path {
            "/stet/psd2/v1/funds-confirmations" => Some(StetVersion::V140),
            "/stet/psd2/v1.4.2/funds-confirmations" => Some(StetVersion::V142),
            _ => None,
        }
    }
}

pub const TOKEN_PATH: &str = "/stet/psd2/oauth/token";
pub const AUTHORIZE_PATH: &str = "/stet/psd2/oauth/authorize";

/// `instructedAmount`. STET 1.4.0 sends the amount as a string; 1.4.2 clients often send a
/// number, so the simulator reads either and the probe can send either.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstructedAmount {
    pub currency: String,
    pub amount: serde_json::Value,
}

/// `accountId`: an IBAN (the only form this bank answers for), or `other`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountId {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<serde_json::Value>,
    /// STET 1.4.2 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// The body of `POST /funds-confirmations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FundsConfirmationRequest {
    pub payment_coverage_request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee: Option<String>,
    pub instructed_amount: InstructedAmount,
    pub account_id: AccountId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Href {
    pub href: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfLink {
    #[serde(rename = "self")]
    pub self_: Href,
}

/// The 200 answer: the request echoed, the yes/no `result`, and `_links.self`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundsConfirmationResponse {
    pub request: serde_json::Value,
    pub result: bool,
    #[serde(rename = "_links")]
    pub links: SelfLink,
}

/// The STET error body (`ErrorModel`): `status` and `message` required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StetError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl StetError {
    /// The bank's short code, found in `error` or at the start of `message`.
    pub fn code(&self) -> Option<ErrorCode> {
        self.error
            .as_deref()
            .and_then(ErrorCode::parse)
            .or_else(|| {
                self.message
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .find_map(ErrorCode::parse)
            })
    }
}

/// The bank's error codes for funds confirmation (CFONB codes and its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Incorrect or unknown account number.
    AC01,
    /// Closed account.
    AC04,
    /// Blocked account.
    AC06,
    /// Body not in the STET format.
    FF01,
    /// Token of the wrong role (e.g. an AISP token).
    BADS,
    /// Account not consented.
    NGAC,
    /// Wrong HTTP verb.
    NIMP,
    /// Too many requests.
    TMRQ,
    /// Unknown customer or terminated online-banking subscription.
    IPSU,
    /// Internal processing error.
    INTE,
    /// Internal communication error.
    INTS,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::AC01,
        ErrorCode::AC04,
        ErrorCode::AC06,
        ErrorCode::FF01,
        ErrorCode::BADS,
        ErrorCode::NGAC,
        ErrorCode::NIMP,
        ErrorCode::TMRQ,
        ErrorCode::IPSU,
        ErrorCode::INTE,
        ErrorCode::INTS,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AC01 => "AC01",
            ErrorCode::AC04 => "AC04",
            ErrorCode::AC06 => "AC06",
            ErrorCode::FF01 => "FF01",
            ErrorCode::BADS => "BADS",
            ErrorCode::NGAC => "NGAC",
            ErrorCode::NIMP => "NIMP",
            ErrorCode::TMRQ => "TMRQ",
            ErrorCode::IPSU => "IPSU",
            ErrorCode::INTE => "INTE",
            ErrorCode::INTS => "INTS",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The HTTP status this bank answers the code with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::AC01 | ErrorCode::AC04 | ErrorCode::AC06 | ErrorCode::FF01 => 400,
            ErrorCode::BADS | ErrorCode::NGAC | ErrorCode::IPSU => 403,
            ErrorCode::NIMP => 405,
            ErrorCode::TMRQ => 429,
            ErrorCode::INTE => 500,
            ErrorCode::INTS => 503,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::AC01 => "IncorrectAccountNumber: the account number is incorrect or unknown",
            ErrorCode::AC04 => "ClosedAccountNumber: the account is closed",
            ErrorCode::AC06 => "BlockedAccount: the account is blocked",
            ErrorCode::FF01 => "InvalidFileFormat: the body does not follow the STET format",
            ErrorCode::BADS => "BadScope: the token was issued for another role",
            ErrorCode::NGAC => "NotGrantedAccount: the account is not consented",
            ErrorCode::NIMP => "NotImplemented: wrong verb (POST expected)",
            ErrorCode::TMRQ => "TooManyRequests: request quota exceeded",
            ErrorCode::IPSU => "InvalidPSU: unknown customer or terminated online banking",
            ErrorCode::INTE => "InternalError: internal processing error",
            ErrorCode::INTS => "InternalServerError: internal communication error",
        }
    }
}

/// OAuth2 token answer (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Display for TokenResponse {
    // Tokens are secrets: show only their shape.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} token (expires in {:?} s, refresh token: {})",
            self.token_type,
            self.expires_in,
            self.refresh_token.is_some()
        )
    }
}

/// OAuth2 error answer (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_found_in_error_or_message() {
        let e = StetError {
            timestamp: None,
            status: 400,
            error: None,
            message: "AC01".into(),
            path: None,
        };
        assert_eq!(e.code(), Some(ErrorCode::AC01));
        let e = StetError {
            timestamp: None,
            status: 503,
            error: Some("INTS".into()),
            message: "x".into(),
            path: None,
        };
        assert_eq!(e.code(), Some(ErrorCode::INTS));
        let e = StetError {
            timestamp: None,
            status: 400,
            error: None,
            message: "FF01 : bad body".into(),
            path: None,
        };
        assert_eq!(e.code(), Some(ErrorCode::FF01));
        let e = StetError {
            timestamp: None,
            status: 400,
            error: Some("Bad Request".into()),
            message: "oops".into(),
            path: None,
        };
        assert_eq!(e.code(), None);
    }

    #[test]
    fn response_shape() {
        let r = FundsConfirmationResponse {
            request: serde_json::json!({"paymentCoverageRequestId": "x"}),
            result: true,
            links: SelfLink {
                self_: Href {
                    href: "/stet/psd2/v1/funds-confirmations".into(),
                },
            },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["_links"]["self"]["href"],
            "/stet/psd2/v1/funds-confirmations"
        );
        assert_eq!(
            StetVersion::from_path(StetVersion::V142.funds_path()),
            Some(StetVersion::V142)
        );
    }
}
