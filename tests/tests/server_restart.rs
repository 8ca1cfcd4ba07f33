//! The real `tutti` binary: accounts from the command line, the Kazoo face over HTTP, and
//! everything still there after a restart.

use serde_json::json;
use tutti_e2e::server::{create_account, Server};

#[test]
fn accounts_keys_tokens_and_conferences_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("tutti-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let database = dir.join("data/tutti.db");

    let (account, key) = create_account(&database, "acme");
    assert_eq!(account.len(), 32);

    let server = Server::start(&database, (33_000, 33_099));
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
    server.stop();

    let server = Server::start(&database, (33_000, 33_099));
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
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
