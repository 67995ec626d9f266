//! The gateway never logs a BSN or a field value, even at TRACE level with every dependency's
//! logging on. A separate test binary: it installs a process-wide tracing subscriber that writes
//! into memory, runs a full scenario over mutual TLS, then searches what was logged.

mod common;

use common::*;
use hyper::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bsn_or_field_value_reaches_the_logs_even_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    // `try_init` also routes the `log` records of rustls and others into this subscriber.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber in this process");

    let gw = Gateway::start().await;
    let with_consent = bsn(1);
    let without_consent = bsn(2);
    let revoked = bsn(3);
    let invalid_bsn = "123456789";
    let handover = devkit::demo::demo_handover();

    // Consents, handovers (valid and refused), permits and refusals.
    let jti = gw.register_demo_consent(&with_consent).await;
    let token = sign_as_uwv(&demo_consent(&new_jti(), &revoked));
    let r = gw.register_as("uwv", &token).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let revoked_jti = r.json()["consent_id"].as_str().unwrap().to_owned();
    let r = gw.register_as("uwv", &token).await;
    assert_problem(&r, 409, "duplicate-consent");
    let r = gw.register_as("sdd", &token).await;
    assert_problem(&r, 403, "not-consent-issuer");
    let mut expired = demo_consent(&new_jti(), &with_consent);
    expired.exp = now() - 3600;
    let r = gw.register_as("uwv", &sign_as_uwv(&expired)).await;
    assert_problem(&r, 422, "invalid-consent-token");

    for bsn in [&with_consent, &revoked] {
        let r = gw
            .put_handover("uwv", "job-mediation", bsn, &handover)
            .await;
        assert_eq!(r.status, 201, "{}", text(&r));
    }
    let r = gw
        .put_handover(
            "uwv",
            "bijstand-intake",
            &with_consent,
            &json!({ "fields": {
                "ww_end_date": "2027-02-28",
                "adviser_contact": "J. de Vries, UWV Dordrecht, 088-8989898"
            } }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let r = gw
        .put_handover(
            "uwv",
            "job-mediation",
            &with_consent,
            &json!({ "fields": {
                "preferred_sector": "Logistiek",
                "available_hours_per_week": "lichte klachten",
                "debt_assistance": true
            } }),
        )
        .await;
    assert_eq!(r.status, 422, "{}", text(&r));
    let r = gw
        .put_handover("gorinchem", "job-mediation", &with_consent, &handover)
        .await;
    assert_problem(&r, 403, "not-a-source");
    let r = gw
        .put_handover("uwv", "job-mediation", &without_consent, &handover)
        .await;
    assert_problem(&r, 403, "consent-required");

    let r = gw
        .client("uwv")
        .send(
            Method::POST,
            &format!("/v1/consents/{revoked_jti}/revoke"),
            None,
            None,
        )
        .await
        .expect("answered");
    assert_eq!(r.status, 200, "{}", text(&r));

    let r = gw
        .disclose(
            "sdd",
            &ask(
                &with_consent,
                "job-mediation",
                &[
                    "available_hours_per_week",
                    "own_transport",
                    "driving_licence",
                    "childcare_arranged",
                    "education_level",
                    "job_ready",
                    "wage_value_band",
                    "ww_end_date",
                    "adviser_contact",
                ],
            ),
        )
        .await;
    let v = assert_permitted(&r);
    assert!(
        text(&r).contains("088-8989898"),
        "values do reach the recipient"
    );
    assert_eq!(v["basis"]["consent"], jti);
    assert_permitted(
        &gw.disclose(
            "sdd",
            &ask(
                &with_consent,
                "bijstand-intake",
                &["ww_end_date", "adviser_contact"],
            ),
        )
        .await,
    );
    assert_refused(
        &gw.disclose(
            "sdd",
            &ask(&without_consent, "job-mediation", &["own_transport"]),
        )
        .await,
        "consent-required",
    );
    assert_refused(
        &gw.disclose("sdd", &ask(&revoked, "job-mediation", &["own_transport"]))
            .await,
        "consent-revoked",
    );
    assert_refused(
        &gw.disclose(
            "gorinchem",
            &ask(&with_consent, "job-mediation", &["own_transport"]),
        )
        .await,
        "no-active-covenant",
    );
    assert_refused(
        &gw.disclose(
            "sdd",
            &ask(&with_consent, "job-mediation", &["debt_assistance"]),
        )
        .await,
        "field-not-granted",
    );
    assert_problem(
        &gw.disclose(
            "sdd",
            &ask(invalid_bsn, "job-mediation", &["own_transport"]),
        )
        .await,
        400,
        "invalid-bsn",
    );

    // Malformed bodies that carry a BSN and a value.
    let sdd = gw.client("sdd");
    for body in [
        format!(
            r#"{{"subject":{{"bsn":"{with_consent}"}},"purpose":"job-mediation","note":"Orderpicker"}}"#
        ),
        format!(r#"{{"subject":{{"bsn":"{with_consent}"}},"purpose":"#),
        format!(r#"{{"subject":{{"bsn":{with_consent}}},"purpose":"job-mediation"}}"#),
        format!(
            r#"{{"subject":{{"bsn":"{with_consent}"}},"purpose":"job-mediation","fields":"Logistiek"}}"#
        ),
    ] {
        let r = post_raw(&sdd, "/v1/disclosures", body.into_bytes()).await;
        assert_eq!(r.status, 400, "{}", text(&r));
    }
    // A BSN in a URL (a route that no longer exists, a query string) is not logged either.
    let in_urls = ["bsn", "subject"].map(|name| {
        (
            hyper::Method::POST,
            format!("/v1/disclosures?{name}={with_consent}"),
        )
    });
    let old_route = (
        hyper::Method::PUT,
        format!("/v1/handovers/job-mediation/{with_consent}"),
    );
    for (method, path) in in_urls.into_iter().chain([old_route]) {
        let r = sdd
            .send(method, &path, None, Some(b"{}".to_vec()))
            .await
            .expect("answered");
        assert!((400..500).contains(&r.status), "{}", text(&r));
    }
    // A refused handshake, so that the TLS layer logs too.
    assert!(gw.client("expired").get("/healthz").await.is_err());
    // Every answer is committed before it is sent; give log lines from connection tasks that
    // are still closing a bounded chance to land before we read.
    gw.server.shutdown(std::time::Duration::from_secs(5)).await;

    let logs = captured.text();
    assert!(!logs.is_empty(), "something was logged");
    assert!(
        logs.contains("TLS handshake failed"),
        "the server's debug logging was captured"
    );
    for secret in [
        with_consent.as_str(),
        without_consent.as_str(),
        revoked.as_str(),
        invalid_bsn,
        "088-8989898",
        "J. de Vries",
        "Orderpicker",
        "Chauffeur bezorgdienst",
        "Logistiek",
        "lichte klachten",
        "VCA basis",
        "Heftruck",
        "2027-02-28",
    ] {
        assert!(
            !logs.contains(secret),
            "the logs contain {secret:?}:\n{}",
            logs.lines()
                .filter(|l| l.contains(secret))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Nor the consent token, which carries the BSN in its payload.
    let payload = token.split('.').nth(1).unwrap();
    assert!(!logs.contains(payload), "the logs contain a consent token");
}
