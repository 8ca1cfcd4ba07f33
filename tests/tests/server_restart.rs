//! The real `tutti` binary: accounts from the command line, the Kazoo face over HTTP, and
//! everything still there after a restart, in SQLite and in PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tutti_e2e::server::{create_account_with, Server};

/// A VoIPbin-face call with a bearer token that must answer 200.
fn voipbin(server: &Server, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, body) = server.call_bearer(token, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {body}");
    body
}

#[test]
fn accounts_keys_tokens_and_conferences_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("tutti-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    survive_a_restart(&dir.join("data/tutti.db"), (33_000, 33_099), &[], "sqlite");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn accounts_keys_tokens_and_conferences_survive_a_restart_in_postgresql() {
    let test = "accounts_keys_tokens_and_conferences_survive_a_restart_in_postgresql";
    let Some(postgres) = tutti_pg_harness::TempPostgres::shared(test) else {
        return;
    };
    let url = postgres.database();
    let dir = std::env::temp_dir().join(format!("tutti-restart-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let database = dir.join("data/tutti.db");
    // The server's config file and log go beside the SQLite file it does not use.
    std::fs::create_dir_all(dir.join("data")).unwrap();
    survive_a_restart(
        &database,
        (33_600, 33_699),
        &[("TUTTI_STORAGE_URL", &url)],
        "postgres",
    );
    assert!(!database.exists(), "the store was PostgreSQL, not the file");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Creates an account, conferences and lifecycle state through one server with `settings`,
/// stops it, and finds them all through a second one, whose store (of `backend`) counts its
/// calls in /metrics.
fn survive_a_restart(
    database: &Path,
    media_ports: (u16, u16),
    settings: &[(&str, &str)],
    backend: &str,
) {
    let (account, key) = create_account_with(database, "acme", settings);
    assert_eq!(account.len(), 32);

    let server = Server::start_with(database, media_ports, settings);
    let (status, body) = server.call(
        "PUT",
        "/v2/api_auth",
        None,
        Some(json!({"data": {"api_key": key}})),
    );
    assert_eq!(status, 201);
    assert_eq!(body["data"]["account_id"], json!(account));
    let token = body["auth_token"].as_str().unwrap().to_owned();
    let path = format!("/v2/accounts/{account}/conferences");
    let (status, body) = server.call(
        "PUT",
        &path,
        Some(&token),
        Some(json!({"data": {"name": "Weekly", "conference_numbers": ["4242"]}})),
    );
    assert_eq!(status, 201);
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, _) = server.call(
        "PUT",
        &path,
        Some(&token),
        Some(json!({"data": {"name": "Gone soon"}})),
    );
    assert_eq!(status, 201);
    let (_, listed) = server.call("GET", &path, Some(&token), None);
    let gone = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Gone soon")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = server.call("DELETE", &format!("{path}/{gone}"), Some(&token), None);
    assert_eq!(status, 200);
    // Lifecycle state: a terminated VoIPbin conference, one due to time out, a webhook URL.
    let ended = voipbin(
        &server,
        &token,
        "POST",
        "/v1.0/conferences",
        Some(json!({"name": "ended"})),
    );
    let ended = ended["id"].as_str().unwrap().to_owned();
    voipbin(
        &server,
        &token,
        "DELETE",
        &format!("/v1.0/conferences/{ended}"),
        None,
    );
    let timed = voipbin(
        &server,
        &token,
        "POST",
        "/v1.0/conferences",
        Some(json!({"timeout": 3})),
    );
    let timed = timed["id"].as_str().unwrap().to_owned();
    let customer = voipbin(
        &server,
        &token,
        "PUT",
        "/v1.0/customer",
        Some(json!({"webhook_uri": "http://127.0.0.1:9/hook"})),
    );
    server.stop();

    let server = Server::start_with(database, media_ports, settings);
    let (status, body) = server.call("GET", &format!("{path}/{id}"), Some(&token), None);
    assert_eq!(status, 200, "the token survives the restart: {body}");
    assert_eq!(body["data"]["name"], "Weekly");
    assert_eq!(body["data"]["conference_numbers"], json!(["4242"]));
    let (status, _) = server.call("GET", &format!("{path}/{gone}"), Some(&token), None);
    assert_eq!(status, 404, "deleted stays deleted");
    let (status, body) = server.call(
        "PUT",
        "/v2/api_auth",
        None,
        Some(json!({"data": {"api_key": key}})),
    );
    assert_eq!(status, 201, "the API key still works");
    assert_eq!(body["data"]["account_id"], json!(account));
    let (status, body) = server.call(
        "PUT",
        &path,
        Some(&token),
        Some(json!({"data": {"conference_numbers": ["4242"]}})),
    );
    assert_eq!(status, 400, "numbers stay claimed: {body}");
    let ended = voipbin(
        &server,
        &token,
        "GET",
        &format!("/v1.0/conferences/{ended}"),
        None,
    );
    assert_eq!(ended["status"], "terminated");
    let after = voipbin(&server, &token, "GET", "/v1.0/customer", None);
    assert_eq!(after["webhook_uri"], "http://127.0.0.1:9/hook");
    assert_eq!(after["webhook_secret"], customer["webhook_secret"]);
    let (_, metrics) = server.call("GET", "/metrics", None, None);
    let counted = format!("tutti_store_operations_total{{backend=\"{backend}\"}} ");
    assert!(
        metrics.as_str().unwrap_or_default().contains(&counted),
        "{counted} in {metrics}"
    );
    // The timeout still ends the conference after the restart.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let timed = voipbin(
            &server,
            &token,
            "GET",
            &format!("/v1.0/conferences/{timed}"),
            None,
        );
        if timed["status"] == "terminated" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timeout was forgotten: {timed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
}
