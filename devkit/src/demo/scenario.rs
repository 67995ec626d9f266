//! DEVELOPMENT ONLY. The demo's guided scenario against a running gateway, as UWV, the Sociale
//! Dienst Drechtsteden and Gemeente Gorinchem: disclosures granted and refused, printed with
//! organisation names, field names and decisions (BSNs only as the demo's made-up ones).

use std::path::Path;
use std::time::Duration;

use crate::client::{ClientResponse, MtlsClient};

use super::{
    client, demo_consent, demo_handover, person_token, sign_as_uwv, CLIENT_WITHOUT_CONSENT,
    CLIENT_WITH_CONSENT, SDD,
};

pub(super) fn show(step: &str, resp: &ClientResponse) {
    let v = resp.json();
    println!("\n── {step}");
    println!("   HTTP {}", resp.status);
    if let Some(reason) = v.get("reason").and_then(|r| r.as_str()) {
        println!("   refused: reason = {reason}");
        if let Some(d) = v.get("detail").and_then(|r| r.as_str()) {
            println!("   detail:  {d}");
        }
    }
    if let Some(released) = v.get("released").and_then(|r| r.as_object()) {
        println!("   released ({}):", released.len());
        for (k, val) in released {
            println!("     {k:<26} {val}");
        }
    }
    if let Some(withheld) = v.get("withheld").and_then(|r| r.as_array()) {
        for w in withheld {
            println!(
                "   withheld: {:<26} ({})",
                w["field"].as_str().unwrap_or(""),
                w["reason"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(b) = v.get("basis").and_then(|b| b.as_object()) {
        println!(
            "   basis:   {} · {} · consent {}",
            b["covenant"].as_str().unwrap_or(""),
            b["legal_basis"].as_str().unwrap_or(""),
            b["consent"].as_str().unwrap_or("—")
        );
    }
    if let Some(id) = v.get("disclosure_id").and_then(|r| r.as_str()) {
        println!("   audit:   {id} (committed before this answer)");
    }
}

/// A disclosure request by the Sociale Dienst's (or another municipality's) system.
pub(super) async fn ask(
    client: &MtlsClient,
    purpose: &str,
    bsn: &str,
    fields: &[&str],
) -> anyhow::Result<ClientResponse> {
    let body = serde_json::to_vec(&serde_json::json!({
        "subject": { "bsn": bsn },
        "purpose": purpose,
        "fields": fields
    }))?;
    Ok(client
        .send(hyper::Method::POST, "/v1/disclosures", None, Some(body))
        .await?)
}

/// Run the guided scenario against a gateway on `port`.
pub async fn run_scenario(certs: &Path, port: u16) -> anyhow::Result<()> {
    use hyper::Method;
    let uwv = client(certs, "uwv", port)?;
    let sdd = client(certs, "sdd", port)?;
    let gorinchem = client(certs, "gorinchem", port)?;
    let now = chrono::Utc::now().timestamp();
    let jti = super::new_consent_id();

    println!("\n1. UWV registers the client's signed consent (job mediation → Sociale Dienst Drechtsteden).");
    let token = sign_as_uwv(certs, &demo_consent(&jti, CLIENT_WITH_CONSENT, now)?)?;
    let body = serde_json::to_vec(&serde_json::json!({ "token": token }))?;
    let r = uwv
        .send(Method::POST, "/v1/consents", None, Some(body))
        .await?;
    println!("   HTTP {} consent {}", r.status, r.json()["consent_id"]);

    println!("\n2. UWV stores the adviser's notes for the client (encrypted at rest).");
    for purpose in ["job-mediation", "bijstand-intake"] {
        let mut record = demo_handover();
        if purpose == "bijstand-intake" {
            record = serde_json::json!({ "fields": {
                "ww_end_date": "2027-02-28",
                "adviser_contact": "J. de Vries, UWV Dordrecht, 088-8989898"
            }});
        }
        let body = super::handover_request(purpose, CLIENT_WITH_CONSENT, &record);
        let r = uwv
            .send(
                Method::POST,
                "/v1/handovers",
                None,
                Some(serde_json::to_vec(&body)?),
            )
            .await?;
        println!("   {purpose}: HTTP {}", r.status);
    }

    let r = ask(
        &sdd,
        "job-mediation",
        CLIENT_WITH_CONSENT,
        &[
            "available_hours_per_week",
            "own_transport",
            "childcare_arranged",
            "job_ready",
            "wage_value_band",
            "cv",
        ],
    )
    .await?;
    show(
        "3. GRANTED: the Sociale Dienst asks for job-readiness fields (cv is not in the consent)",
        &r,
    );

    let r = ask(
        &sdd,
        "bijstand-intake",
        CLIENT_WITH_CONSENT,
        &["ww_end_date", "adviser_contact"],
    )
    .await?;
    show(
        "4. GRANTED: Bijstand intake on a legal obligation, no consent needed (the two fields it names)",
        &r,
    );

    let r = ask(&sdd, "bijstand-intake", CLIENT_WITH_CONSENT, &[]).await?;
    show(
        "5. REFUSED: a request that names no fields (there is no \"give me everything\")",
        &r,
    );

    let r = ask(
        &sdd,
        "job-mediation",
        CLIENT_WITHOUT_CONSENT,
        &["own_transport"],
    )
    .await?;
    show("6. REFUSED: a client who gave no consent", &r);

    let r = ask(
        &gorinchem,
        "job-mediation",
        CLIENT_WITH_CONSENT,
        &["own_transport"],
    )
    .await?;
    show(
        "7. REFUSED: Gemeente Gorinchem is outside the Drechtsteden covenant",
        &r,
    );

    let r = ask(
        &sdd,
        "job-mediation",
        CLIENT_WITH_CONSENT,
        &["debt_assistance", "addiction_treatment_history"],
    )
    .await?;
    show(
        "8. REFUSED: fields outside the grant (debts, addiction history)",
        &r,
    );

    let r = uwv
        .send(
            Method::POST,
            &format!("/v1/consents/{jti}/revoke"),
            None,
            None,
        )
        .await?;
    println!(
        "\n9. The client withdraws consent; UWV revokes it: HTTP {} ({} handover record(s) destroyed)",
        r.status,
        r.json()["handovers_destroyed"]
    );
    let r = ask(
        &sdd,
        "job-mediation",
        CLIENT_WITH_CONSENT,
        &["own_transport"],
    )
    .await?;
    show("10. REFUSED: the consent is revoked", &r);
    Ok(())
}

/// Print `curl` commands for the running demo.
pub fn print_curl(certs: &Path, port: u16) {
    let c = certs.display();
    println!("\nThe gateway keeps running on https://localhost:{port}. Try it yourself:\n");
    println!(
        "  curl --cacert {c}/ca.pem --cert {c}/sdd.pem --key {c}/sdd-key.pem \\\n    -H 'content-type: application/json' \\\n    -d '{{\"subject\":{{\"bsn\":\"{CLIENT_WITH_CONSENT}\"}},\"purpose\":\"bijstand-intake\",\"fields\":[\"ww_end_date\"]}}' \\\n    https://localhost:{port}/v1/disclosures\n"
    );
    println!(
        "  # outside the covenant → no-active-covenant\n  curl --cacert {c}/ca.pem --cert {c}/gorinchem.pem --key {c}/gorinchem-key.pem \\\n    -H 'content-type: application/json' \\\n    -d '{{\"subject\":{{\"bsn\":\"{CLIENT_WITH_CONSENT}\"}},\"purpose\":\"job-mediation\",\"fields\":[\"own_transport\"]}}' \\\n    https://localhost:{port}/v1/disclosures\n"
    );
    println!(
        "  # a BSN failing the 11-check → invalid-bsn\n  curl --cacert {c}/ca.pem --cert {c}/sdd.pem --key {c}/sdd-key.pem \\\n    -H 'content-type: application/json' \\\n    -d '{{\"subject\":{{\"bsn\":\"123456789\"}},\"purpose\":\"job-mediation\",\"fields\":[\"own_transport\"]}}' \\\n    https://localhost:{port}/v1/disclosures\n"
    );
    println!(
        "  # no client certificate → no-client-certificate\n  curl --cacert {c}/ca.pem -H 'content-type: application/json' -d '{{}}' https://localhost:{port}/v1/disclosures\n"
    );
    if let Ok(token) = person_token(certs, "fg-sdd-1", SDD, &["privacy-officer"]) {
        println!(
            "  # as the Sociale Dienst's privacy officer: the audit log, and the report for the client\n  TOKEN={token}\n  curl --cacert {c}/ca.pem -H \"authorization: Bearer $TOKEN\" https://localhost:{port}/v1/audit/records\n  curl --cacert {c}/ca.pem -H \"authorization: Bearer $TOKEN\" -H 'accept: text/html' \\\n    -H 'content-type: application/json' -d '{{\"subject\":{{\"bsn\":\"{CLIENT_WITH_CONSENT}\"}}}}' \\\n    https://localhost:{port}/v1/audit/subject-reports > report.html\n  curl --cacert {c}/ca.pem -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\n    -d '{{\"subject\":{{\"bsn\":\"{CLIENT_WITH_CONSENT}\"}},\"decision\":\"refuse\"}}' https://localhost:{port}/v1/audit/records/search\n  curl --cacert {c}/ca.pem -H \"authorization: Bearer $TOKEN\" https://localhost:{port}/v1/audit/verify\n"
        );
    }
    println!("Stop with Ctrl-C.");
}

/// Wait for the gateway at `port` to answer `/healthz`.
pub async fn wait_ready(certs: &Path, port: u16) -> anyhow::Result<()> {
    let c = client(certs, "sdd", port)?;
    for _ in 0..100 {
        if let Ok(r) = c.send(hyper::Method::GET, "/healthz", None, None).await {
            if r.status == 200 {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the gateway did not become ready on port {port}")
}

// --- issue 16: the employee behind a call ---

/// A disclosure request with an actor assertion (`Actor-Token`).
async fn ask_as(
    client: &MtlsClient,
    actor: &str,
    purpose: &str,
    bsn: &str,
    fields: &[&str],
) -> anyhow::Result<ClientResponse> {
    let body = serde_json::to_vec(&serde_json::json!({
        "subject": { "bsn": bsn },
        "purpose": purpose,
        "fields": fields
    }))?;
    Ok(client
        .send_with_headers(
            hyper::Method::POST,
            "/v1/disclosures",
            None,
            &[("actor-token", actor)],
            Some(body),
        )
        .await?)
}

/// The issue-16 part of the demo (the gateway must hold the role-bound covenant of
/// [`super::write_role_covenant`]): disclosures with a verified employee, one refused
/// `role-not-granted`, and the privacy officer's usage report.
pub async fn run_actor_scenario(certs: &Path, port: u16) -> anyhow::Result<()> {
    use super::{sdd_actor_assertion, INTAKE_PURPOSE, INTAKE_ROLE};
    use hyper::Method;
    let uwv = client(certs, "uwv", port)?;
    let sdd = client(certs, "sdd", port)?;
    let now = chrono::Utc::now().timestamp();

    println!("\n── The employee behind each call (actor assertions, role-bound grants)");
    let record =
        serde_json::json!({ "fields": { "ww_end_date": "2027-02-28", "job_ready": true } });
    let body = super::handover_request(INTAKE_PURPOSE, CLIENT_WITH_CONSENT, &record);
    let r = uwv
        .send(
            Method::POST,
            "/v1/handovers",
            None,
            Some(serde_json::to_vec(&body)?),
        )
        .await?;
    println!(
        "\n11. UWV stores the facts for the Poort's intake: HTTP {}",
        r.status
    );

    let actor = sdd_actor_assertion(certs, "sdd-klantmanager-0815", &["klantmanager"], now)?;
    let r = ask_as(
        &sdd,
        &actor,
        "bijstand-intake",
        CLIENT_WITH_CONSENT,
        &["ww_end_date"],
    )
    .await?;
    show(
        "12. GRANTED with an actor: employee sdd-klantmanager-0815 (signed by SDD's own identity provider) asks; the audit record names the employee",
        &r,
    );

    let actor = sdd_actor_assertion(certs, "sdd-intaker-0042", &[INTAKE_ROLE], now)?;
    let r = ask_as(
        &sdd,
        &actor,
        INTAKE_PURPOSE,
        CLIENT_WITH_CONSENT,
        &["ww_end_date", "job_ready"],
    )
    .await?;
    show(
        "13. GRANTED: an intaker of the Poort uses the grant bound to the role intaker-poort",
        &r,
    );

    let actor = sdd_actor_assertion(certs, "sdd-klantmanager-0815", &["klantmanager"], now)?;
    let r = ask_as(
        &sdd,
        &actor,
        INTAKE_PURPOSE,
        CLIENT_WITH_CONSENT,
        &["ww_end_date"],
    )
    .await?;
    show(
        "14. REFUSED: a klantmanager is not an intaker of the Poort (role-not-granted)",
        &r,
    );

    let officer = person_token(certs, "fg-sdd", SDD, &["privacy-officer"])?;
    let today = chrono::Utc::now().date_naive();
    let r = sdd
        .send(
            Method::GET,
            &format!("/v1/audit/usage-reports?from={today}&to={today}&format=csv"),
            Some(&officer),
            None,
        )
        .await?;
    println!(
        "\n15. The privacy officer of SDD takes the usage report (per employee and day): HTTP {}",
        r.status
    );
    for line in String::from_utf8_lossy(&r.body).lines() {
        println!("   {line}");
    }
    println!(
        "   (also as a printable page: &format=html; thresholds in [usage_review] of the configuration)"
    );
    Ok(())
}
