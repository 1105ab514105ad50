//! The real `dispo simulate` over real mutual TLS: the bank documentation's acceptance table,
//! every error code, token flows, fallback, signatures, each fault kind, the access log.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::sim_support::{Sim, body};

const V140: &str = "/stet/psd2/v1/funds-confirmations";
const V142: &str = "/stet/psd2/v1.4.2/funds-confirmations";
const MARC_5158: &str = "FR7613807008043001965405158";
const MARC_5255: &str = "FR7613807008043001965405255";

async fn stet_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn the_documentation_acceptance_table() {
    let sim = Sim::start();
    let c = sim.client(true);
    let t = sim.token(&c, "13807", "piisp").await;

    // Standard case: below 459 EUR on ...5255 (balance 459.56): covered.
    let b = body(MARC_5255, "458.99");
    let r = sim.funds(&c, "13807", V140, &t, &b).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/hal+json; charset=utf-8"
    );
    assert!(r.headers().contains_key("x-request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["result"], true);
    assert_eq!(v["request"], b, "the request is echoed as received");
    assert_eq!(v["_links"]["self"]["href"], V140);

    // Limit case: above 4 179 EUR on ...5158 is refused although the balance is 4 348.95.
    let v: Value = sim
        .funds(&c, "13807", V140, &t, &body(MARC_5158, "4179.01"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["result"], false);
    let v: Value = sim
        .funds(&c, "13807", V140, &t, &body(MARC_5158, "4179"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["result"], true, "exactly the available funds are covered");

    // GET: 405.
    let r = c
        .get(format!("{}{V140}", sim.base("13807")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(stet_code(r).await.1, "NIMP");

    // IBAN absent or wrong: AC01.
    let r = sim
        .funds(
            &c,
            "13807",
            V140,
            &t,
            &body("FRXXXX807008043001965405158", "4179"),
        )
        .await;
    assert_eq!(stet_code(r).await, (400, "AC01".into()));
    let mut no_iban = body(MARC_5158, "10");
    no_iban["accountId"] = json!({});
    assert_eq!(
        stet_code(sim.funds(&c, "13807", V140, &t, &no_iban).await).await,
        (400, "AC01".into())
    );

    // Amount/currency structure absent, amount empty, currency empty, request id absent: FF01.
    let mut no_amount = body(MARC_5158, "10");
    no_amount
        .as_object_mut()
        .unwrap()
        .remove("instructedAmount");
    let mut empty_currency = body(MARC_5158, "4180");
    empty_currency["instructedAmount"]["currency"] = json!("");
    let mut no_id = body(MARC_5158, "4180");
    no_id
        .as_object_mut()
        .unwrap()
        .remove("paymentCoverageRequestId");
    for bad in [no_amount, body(MARC_5158, ""), empty_currency, no_id] {
        assert_eq!(
            stet_code(sim.funds(&c, "13807", V140, &t, &bad).await).await,
            (400, "FF01".into()),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn every_error_code_and_both_versions() {
    let sim = Sim::start();
    let c = sim.client(true);
    let piisp = sim.token(&c, "13807", "piisp").await;
    let cbpii = sim.token(&c, "13807", "cbpii").await;
    let aisp = sim.token(&c, "13807", "aisp").await;

    // STET 1.4.2 with a cbpii token, amount as a JSON number.
    let mut b = body(MARC_5255, "1");
    b["instructedAmount"]["amount"] = json!(12.5);
    let v: Value = sim
        .funds(&c, "13807", V142, &cbpii, &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["result"].clone(), v["_links"]["self"]["href"].clone()),
        (json!(true), json!(V142))
    );

    let cases = [
        (V140, &piisp, "FR3613807008043001965410146", 400, "AC04"), // closed
        (V140, &piisp, "FR3613807008043001965410243", 400, "AC06"), // blocked
        (V140, &piisp, "FR3613807008043001965410340", 403, "IPSU"), // online banking terminated
        (V140, &aisp, MARC_5255, 403, "BADS"),                      // AISP token
        (V142, &piisp, MARC_5255, 403, "BADS"),                     // 1.4.0 role on 1.4.2
        (V140, &piisp, "FR7613807008043001965405150", 400, "AC01"), // unknown account
    ];
    for (path, tok, iban, status, code) in cases {
        let r = sim.funds(&c, "13807", path, tok, &body(iban, "1")).await;
        assert_eq!(
            stet_code(r).await,
            (status, code.to_string()),
            "{iban} on {path}"
        );
    }
    // Signed, but not JSON at all: FF01.
    let raw = b"not json".to_vec();
    let mut h = http::HeaderMap::new();
    h.insert("x-request-id", "rid-ff01".parse().unwrap());
    h.insert("authorization", format!("Bearer {piisp}").parse().unwrap());
    sim.signer()
        .sign(&http::Method::POST, V140, &mut h, &raw)
        .unwrap();
    let r = c
        .post(format!("{}{V140}", sim.base("13807")))
        .headers(h)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(stet_code(r).await, (400, "FF01".into()));

    // Faults answer INTE, INTS and TMRQ.
    sim.set_faults(
        json!({"fault": [{"establishment": "10807", "kind": "error500"},
                                    {"establishment": "16807", "kind": "error503"},
                                    {"establishment": "10207", "kind": "rate_limit", "per_s": 1}]}),
    )
    .await;
    let t2 = sim.token(&c, "14607", "piisp").await; // an establishment without faults still works
    assert_eq!(
        sim.funds(&c, "14607", V140, &t2, &body(MARC_5255, "1"))
            .await
            .status(),
        200
    );
    let r = sim
        .funds(&c, "10807", V140, "x", &body(MARC_5255, "1"))
        .await;
    assert_eq!(stet_code(r).await, (500, "INTE".into()));
    let r = sim
        .funds(&c, "16807", V140, "x", &body(MARC_5255, "1"))
        .await;
    assert_eq!(stet_code(r).await, (503, "INTS".into()));
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = c
            .get(format!("{}/se-connecter/sso", sim.base("10207")))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert!(
        codes.contains(&429),
        "more than 1 request/s gets TMRQ: {codes:?}"
    );
}

#[tokio::test]
async fn token_flows_refresh_and_revocation() {
    let sim = Sim::start();
    let c = sim.client(true);
    let base = sim.base("13807");
    let redirect = "https://tpp.example/callback";
    let authorize = |sms: &'static str, accounts: &'static str| {
        c.post(format!("{base}/stet/psd2/oauth/authorize"))
            .form(&[
                ("response_type", "code"),
                ("client_id", "PSDFR-ACPR-12345"),
                ("redirect_uri", redirect),
                ("scope", "piisp"),
                ("state", "st-1"),
                ("login", "D0999990I0"),
                ("sms_code", sms),
                ("accounts", accounts),
            ])
            .send()
    };
    assert_eq!(
        authorize("00000000", "").await.unwrap().status(),
        401,
        "wrong SMS code"
    );
    let r = authorize("12345678", MARC_5255).await.unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(redirect));
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-1");
    let code = q["code"].clone();

    let exchange = |code: String, redirect: &'static str| {
        c.post(format!("{base}/stet/psd2/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", "PSDFR-ACPR-12345"),
            ])
            .send()
    };
    let r = exchange(code.clone(), redirect).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let tok: Value = r.json().await.unwrap();
    let (access, refresh) = (
        tok["access_token"].as_str().unwrap().to_owned(),
        tok["refresh_token"].as_str().unwrap().to_owned(),
    );
    // Single use.
    let again: Value = exchange(code, redirect)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["error"], "invalid_grant");

    // Limited to the consented account: the other account of the same persona is NGAC.
    assert_eq!(
        sim.funds(&c, "13807", V140, &access, &body(MARC_5255, "1"))
            .await
            .status(),
        200
    );
    assert_eq!(
        stet_code(
            sim.funds(&c, "13807", V140, &access, &body(MARC_5158, "1"))
                .await
        )
        .await,
        (403, "NGAC".into())
    );

    // Refresh: a new access token; the old one no longer works.
    let r = c
        .post(format!("{base}/stet/psd2/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "PSDFR-ACPR-12345"),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let access2 = v["access_token"].as_str().unwrap().to_owned();
    assert_ne!(access2, access);
    // Rotated: a new refresh token, and the one used is revoked.
    let old_refresh = refresh;
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh, old_refresh);
    let again: Value = c
        .post(format!("{base}/stet/psd2/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &old_refresh),
            ("client_id", "PSDFR-ACPR-12345"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["error"], "invalid_grant");
    assert_eq!(
        sim.funds(&c, "13807", V140, &access, &body(MARC_5255, "1"))
            .await
            .status(),
        401
    );
    assert_eq!(
        sim.funds(&c, "13807", V140, &access2, &body(MARC_5255, "1"))
            .await
            .status(),
        200
    );

    // Revoking the refresh token revokes the access token of the pair.
    let r = c
        .post(format!("{base}/stet/psd2/oauth/revoke"))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        sim.funds(&c, "13807", V140, &access2, &body(MARC_5255, "1"))
            .await
            .status(),
        401
    );

    // A code for another redirect URI is refused.
    let r = authorize("12345678", "").await.unwrap();
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let v: Value = exchange(code, "https://evil.example/cb")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "invalid_grant");

    // client_id must be the certificate's organization identifier; scopes must exist.
    let r = c
        .post(format!("{base}/stet/psd2/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "PSDFR-ACPR-99999"),
            ("scope", "piisp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = c
        .post(format!("{base}/stet/psd2/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "PSDFR-ACPR-12345"),
            ("scope", "everything"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
}

#[tokio::test]
async fn fallback_psu_page_and_tls_requirements() {
    let sim = Sim::start();
    let c = sim.client(true);
    let r = c
        .post(format!("{}/stet/psd2/oauth/token", sim.base("13807")))
        .header("fallback", "1")
        .form(&[
            ("client_id", "PSDFR-ACPR-12345"),
            ("grant_type", "client_credentials"),
            ("scope", "aisp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(loc.host_str(), Some("psu.13807.sim.localhost"));
    let jwt = loc
        .query_pairs()
        .find(|(k, _)| k == "fallback")
        .unwrap()
        .1
        .into_owned();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (claims["cdetab"].as_str(), claims["sub"].as_str()),
        (Some("13807"), Some("PSDFR-ACPR-12345"))
    );

    // The customer page needs no client certificate and carries its marker.
    let page = sim.client(false).get(loc.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(dispo::sim::api::PSU_MARKER)
    );

    // The API refuses a client without a certificate during the handshake.
    let r = sim
        .client(false)
        .post(format!("{}/stet/psd2/oauth/token", sim.base("13807")))
        .send()
        .await;
    assert!(r.is_err(), "no client certificate must be refused");

    // Bodies over 1 MiB: 413.
    let t = sim.token(&c, "13807", "piisp").await;
    let big = json!({"paymentCoverageRequestId": "x".repeat(1 << 20)});
    assert_eq!(sim.funds(&c, "13807", V140, &t, &big).await.status(), 413);

    // An unknown establishment host: a STET error, not a crash.
    let r = c
        .get(format!("https://localhost:{}/", sim.port))
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 404);
    }
}

#[tokio::test]
async fn signature_failures_are_400() {
    let sim = Sim::start();
    let c = sim.client(true);
    let t = sim.token(&c, "13807", "piisp").await;
    let url = format!("{}{V140}", sim.base("13807"));
    let bytes = serde_json::to_vec(&body(MARC_5255, "1")).unwrap();
    let signed = |tamper: &dyn Fn(&mut http::HeaderMap)| {
        let mut h = http::HeaderMap::new();
        h.insert("x-request-id", "rid-1".parse().unwrap());
        h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        sim.signer()
            .sign(&http::Method::POST, V140, &mut h, &bytes)
            .unwrap();
        tamper(&mut h);
        h
    };
    // Untouched: accepted.
    let r = c
        .post(&url)
        .headers(signed(&|_| {}))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    type Tamper = Box<dyn Fn(&mut http::HeaderMap)>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "no signature",
            Box::new(|h| {
                h.remove("signature");
            }),
        ),
        (
            "digest of another body",
            Box::new(|h| {
                h.insert(
                    "digest",
                    dispo::stet::signing::digest_header(b"{}").parse().unwrap(),
                );
            }),
        ),
        (
            "unknown keyId serial",
            Box::new(|h| {
                let s = h["signature"].to_str().unwrap().replacen("SN=", "SN=ff", 1);
                h.insert("signature", s.parse().unwrap());
            }),
        ),
        (
            "x-request-id changed after signing",
            Box::new(|h| {
                h.insert("x-request-id", "rid-2".parse().unwrap());
            }),
        ),
    ];
    for (what, tamper) in cases {
        let r = c
            .post(&url)
            .headers(signed(&*tamper))
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{what}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["message"].as_str().unwrap().contains("signature"),
            "{what}: {v}"
        );
    }
}

#[tokio::test]
async fn each_fault_kind_and_the_access_log() {
    let sim = Sim::start();
    let c = sim.client_with(true, Duration::from_secs(2));
    let page = |code: &str| {
        c.get(format!("{}/se-connecter/sso", sim.psu_base(code)))
            .header("x-request-id", format!("r-{code}"))
            .send()
    };
    sim.set_faults(json!({"seed": 1, "fault": [
        {"establishment": "10807", "kind": "refuse"},
        {"establishment": "16807", "kind": "hang"},
        {"establishment": "10207", "kind": "reset"},
        {"establishment": "18707", "kind": "latency", "latency_ms": 300},
        {"establishment": "13507", "kind": "error_rate", "rate": 1.0},
        {"establishment": "16607", "kind": "slow_body", "body_ms": 400},
        {"establishment": "10907", "interface": "api", "kind": "hang", "after_s": 3600}
    ]}))
    .await;
    // refuse: the connection closes during the handshake.
    assert!(page("10807").await.is_err());
    // hang: no answer before the client's 2 s timeout.
    let t0 = Instant::now();
    let e = page("16807").await.unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(t0.elapsed() >= Duration::from_secs(2));
    // reset: an error well before the timeout.
    let t0 = Instant::now();
    assert!(page("10207").await.is_err());
    assert!(t0.elapsed() < Duration::from_secs(2));
    // latency: at least 300 ms.
    let t0 = Instant::now();
    assert_eq!(page("18707").await.unwrap().status(), 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));
    // error_rate 1.0: every request gets 500 INTE.
    assert_eq!(page("13507").await.unwrap().status(), 500);
    // slow_body: the body takes at least 400 ms to arrive.
    let t0 = Instant::now();
    let r = page("16607").await.unwrap();
    assert!(
        r.text()
            .await
            .unwrap()
            .contains(dispo::sim::api::PSU_MARKER)
    );
    assert!(t0.elapsed() >= Duration::from_millis(400));
    // A window that has not started yet changes nothing.
    assert_eq!(page("10907").await.unwrap().status(), 200);

    // The access log has what the bank saw: no status where nothing was answered.
    let log = sim.access_log().await;
    let status_of = |code: &str| -> Vec<Value> {
        log.iter()
            .filter(|e| e["establishment"] == code)
            .map(|e| e["status"].clone())
            .collect()
    };
    assert_eq!(status_of("10807"), [Value::Null]);
    assert_eq!(status_of("16807"), [Value::Null]);
    assert_eq!(status_of("10207"), [Value::Null]);
    assert_eq!(status_of("18707"), [json!(200)]);
    assert_eq!(status_of("13507"), [json!(500)]);
    let e = log.iter().find(|e| e["establishment"] == "18707").unwrap();
    assert_eq!(
        (e["interface"].as_str(), e["request_id"].as_str()),
        (Some("psu_web"), Some("r-18707"))
    );
    assert!(e["latency_ms"].as_f64().unwrap() >= 300.0);

    // Bad plans are refused with a reason.
    let r = reqwest::Client::new()
        .put(sim.admin_url("/faults"))
        .json(&json!({"fault": [{"kind": "latency"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("latency_ms"));
}

#[tokio::test]
async fn a_fault_file_applies_from_the_start() {
    let sim = Sim::start_with(Some(
        "[[fault]]\nestablishment = \"13807\"\nkind = \"error503\"\n",
    ));
    let c = sim.client(true);
    let r = c
        .get(format!("{}/se-connecter/sso", sim.psu_base("13807")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let plan: Value = reqwest::get(sim.admin_url("/faults"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["fault"][0]["kind"], "error503");
}
