//! Real responses of every native route, successes and refusals, checked against
//! `/openapi.json`: each status is documented for its route, with the content type the
//! server sends, and the body validates against the documented schema.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, basic, spawn_app};

/// What one call answered, under the route's template.
struct Seen {
    method: Method,
    template: &'static str,
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

struct Recorder<'a> {
    app: &'a TestApp,
    seen: Vec<Seen>,
}

impl Recorder<'_> {
    /// Calls `path` (the route `template` filled in) with the `authorization` header and an
    /// optional JSON body; returns the status and the JSON body (`null` if none).
    async fn call(
        &mut self,
        method: Method,
        template: &'static str,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut call = self.app.call(method.clone(), path);
        if let Some(a) = authorization {
            call = call.authorization(a);
        }
        if let Some(body) = body {
            call = call.json(&body);
        }
        let r = call.await;
        let status = r.status();
        let content_type = r
            .header("content-type")
            .map(|v| v.split(';').next().unwrap().trim().to_owned());
        let bytes = r.bytes().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        self.seen.push(Seen {
            method,
            template,
            status,
            content_type,
            body: bytes,
        });
        (status, json)
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Checks every recorded answer against the document; returns the problems found.
fn check(doc: &Value, seen: &[Seen]) -> Vec<String> {
    let mut problems = Vec::new();
    for s in seen {
        let method = s.method.as_str().to_lowercase();
        let what = format!("{} {} -> {}", s.method, s.template, s.status.as_u16());
        let Some(operation) = doc["paths"][s.template][&method].as_object() else {
            problems.push(format!("{what}: the route is not documented"));
            continue;
        };
        let response = &operation["responses"][s.status.as_str()];
        if !response.is_object() {
            problems.push(format!("{what}: this status is not documented"));
            continue;
        }
        let content = response["content"].as_object();
        match (&s.content_type, content) {
            (None, None) => {}
            (None, Some(_)) if s.body.is_empty() => problems.push(format!("{what}: documented with a body, sent none")),
            (Some(ct), None) if !s.body.is_empty() => {
                problems.push(format!("{what}: sent {ct}, documented without a body"))
            }
            (Some(ct), Some(content)) => match content.get(ct) {
                None => problems.push(format!(
                    "{what}: sent {ct}, documented {:?}",
                    content.keys().collect::<Vec<_>>()
                )),
                Some(media) => {
                    let Some(schema) = media.get("schema") else { continue };
                    let body: Value = if ct.ends_with("json") {
                        match serde_json::from_slice(&s.body) {
                            Ok(v) => v,
                            Err(e) => {
                                problems.push(format!("{what}: not JSON: {e}"));
                                continue;
                            }
                        }
                    } else {
                        Value::String(String::from_utf8_lossy(&s.body).into_owned())
                    };
                    // The schema, able to reach the document's components.
                    let mut root = schema.clone();
                    if let Some(obj) = root.as_object_mut() {
                        obj.insert("components".into(), doc["components"].clone());
                    }
                    let wrapped = json!({"allOf": [schema], "components": doc["components"]});
                    let validator = match jsonschema::validator_for(&wrapped) {
                        Ok(v) => v,
                        Err(e) => {
                            problems.push(format!("{what}: the documented schema does not compile: {e}"));
                            continue;
                        }
                    };
                    for error in validator.iter_errors(&body) {
                        problems.push(format!("{what}: {error} at {}", error.instance_path()));
                    }
                }
            },
            _ => {}
        }
    }
    problems
}

#[tokio::test]
async fn real_responses_of_every_native_route_match_the_openapi_document() {
    let app = spawn_app().await;
    let doc: Value = app.get_json("/openapi.json", &app.admin).await;
    let admin = bearer(&app.admin);
    let (ada_id, ada_token) = app.user("ada").await;
    let ada = bearer(&ada_token);
    let mut r = Recorder {
        app: &app,
        seen: Vec::new(),
    };
    let none = "000000000000000000000000";

    // Logging in and who am I.
    r.call(
        Method::POST,
        "/v1/auth/token",
        "/v1/auth/token",
        None,
        Some(json!({"username": "ada", "password": "ada-password"})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/auth/token",
        "/v1/auth/token",
        None,
        Some(json!({"username": "ada", "password": "wrong one!"})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/auth/token",
        "/v1/auth/token",
        None,
        Some(json!({"username": "ada"})),
    )
    .await;
    r.call(Method::GET, "/v1/me", "/v1/me", Some(&ada), None).await;
    r.call(Method::GET, "/v1/me", "/v1/me", None, None).await;
    r.call(Method::GET, "/v1/me", "/v1/me", Some("Bearer not.a.token"), None)
        .await;

    // Keys: the caller's own.
    let (_, made) = r
        .call(
            Method::POST,
            "/v1/keys",
            "/v1/keys",
            Some(&ada),
            Some(json!({"name": "one", "scopes": ["keys:read"]})),
        )
        .await;
    let (id, key) = (
        made["id"].as_str().unwrap().to_owned(),
        made["key"].as_str().unwrap().to_owned(),
    );
    r.call(
        Method::POST,
        "/v1/keys",
        "/v1/keys",
        Some(&ada),
        Some(json!({"expires": "soon"})),
    )
    .await;
    r.call(Method::POST, "/v1/keys", "/v1/keys", None, Some(json!({})))
        .await;
    r.call(
        Method::POST,
        "/v1/keys",
        "/v1/keys",
        Some(&bearer(&key)),
        Some(json!({})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/keys",
        "/v1/keys",
        Some(&ada),
        Some(json!({"scopes": ["keys:verify"]})),
    )
    .await;
    r.call(Method::GET, "/v1/keys", "/v1/keys?limit=10", Some(&ada), None)
        .await;
    r.call(Method::GET, "/v1/keys", "/v1/keys?cursor=nope", Some(&ada), None)
        .await;
    r.call(Method::GET, "/v1/keys", "/v1/keys", None, None).await;
    let one = format!("/v1/keys/{id}");
    r.call(Method::GET, "/v1/keys/{key_id}", &one, Some(&ada), None).await;
    r.call(
        Method::GET,
        "/v1/keys/{key_id}",
        &format!("/v1/keys/{none}"),
        Some(&ada),
        None,
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/keys/{key_id}",
        &one,
        Some(&ada),
        Some(json!({"name": "two", "disabled": false})),
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/keys/{key_id}",
        &one,
        Some(&ada),
        Some(json!({"name": ""})),
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/keys/{key_id}",
        &one,
        Some(&bearer(&key)),
        Some(json!({})),
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/keys/{key_id}",
        &format!("/v1/keys/{none}"),
        Some(&ada),
        Some(json!({"name": "x"})),
    )
    .await;
    r.call(
        Method::GET,
        "/v1/keys/{key_id}/usage",
        &format!("/v1/keys/{id}/usage?granularity=day"),
        Some(&ada),
        None,
    )
    .await;
    r.call(
        Method::GET,
        "/v1/keys/{key_id}/usage",
        &format!("/v1/keys/{id}/usage?granularity=minute"),
        Some(&ada),
        None,
    )
    .await;
    r.call(
        Method::GET,
        "/v1/keys/{key_id}/usage",
        &format!("/v1/keys/{none}/usage"),
        Some(&ada),
        None,
    )
    .await;
    let rotate = format!("/v1/keys/{id}/rotate");
    let (_, rotated) = r
        .call(
            Method::POST,
            "/v1/keys/{key_id}/rotate",
            &rotate,
            Some(&ada),
            Some(json!({"grace": "1h"})),
        )
        .await;
    let rotated_id = rotated["id"].as_str().unwrap().to_owned();
    r.call(
        Method::POST,
        "/v1/keys/{key_id}/rotate",
        &rotate,
        Some(&ada),
        Some(json!({"grace": "whenever"})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/keys/{key_id}/rotate",
        &format!("/v1/keys/{none}/rotate"),
        Some(&ada),
        None,
    )
    .await;
    r.call(Method::DELETE, "/v1/keys/{key_id}", &one, Some(&ada), None)
        .await;
    r.call(Method::DELETE, "/v1/keys/{key_id}", &one, Some(&ada), None)
        .await;

    // Keys: another user's, as an admin.
    let theirs = format!("/v1/users/{ada_id}/keys");
    let (_, made) = r
        .call(
            Method::POST,
            "/v1/users/{user_id}/keys",
            &theirs,
            Some(&admin),
            Some(json!({"name": "for ada"})),
        )
        .await;
    let their_id = made["id"].as_str().unwrap().to_owned();
    r.call(
        Method::POST,
        "/v1/users/{user_id}/keys",
        &format!("/v1/users/{none}/keys"),
        Some(&admin),
        Some(json!({})),
    )
    .await;
    r.call(Method::GET, "/v1/users/{user_id}/keys", &theirs, Some(&admin), None)
        .await;
    r.call(
        Method::GET,
        "/v1/users/{user_id}/keys",
        &format!("/v1/users/{none}/keys"),
        Some(&admin),
        None,
    )
    .await;
    let their_one = format!("{theirs}/{their_id}");
    r.call(
        Method::GET,
        "/v1/users/{user_id}/keys/{key_id}",
        &their_one,
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::GET,
        "/v1/users/{user_id}/keys/{key_id}",
        &format!("{theirs}/{none}"),
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/users/{user_id}/keys/{key_id}",
        &their_one,
        Some(&admin),
        Some(json!({"scopes": ["keys:verify"]})),
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/users/{user_id}/keys/{key_id}",
        &their_one,
        Some(&admin),
        Some(json!({"scopes": []})),
    )
    .await;
    r.call(
        Method::GET,
        "/v1/users/{user_id}/keys/{key_id}/usage",
        &format!("{their_one}/usage"),
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::POST,
        "/v1/users/{user_id}/keys/{key_id}/rotate",
        &format!("{their_one}/rotate"),
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::POST,
        "/v1/users/{user_id}/keys/{key_id}/rotate",
        &format!("{theirs}/{none}/rotate"),
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::DELETE,
        "/v1/users/{user_id}/keys/{key_id}",
        &format!("{theirs}/{rotated_id}"),
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::DELETE,
        "/v1/users/{user_id}/keys/{key_id}",
        &format!("{theirs}/{none}"),
        Some(&ada),
        None,
    )
    .await;

    // Users and the audit trail.
    let (_, bob) = r
        .call(
            Method::POST,
            "/v1/users",
            "/v1/users",
            Some(&admin),
            Some(json!({"username": "bob", "password": "bob's password"})),
        )
        .await;
    let bob_id = bob["id"].as_str().unwrap().to_owned();
    r.call(
        Method::POST,
        "/v1/users",
        "/v1/users",
        Some(&admin),
        Some(json!({"username": "bob", "password": "bob's password"})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/users",
        "/v1/users",
        Some(&admin),
        Some(json!({"username": "b o b", "password": "x"})),
    )
    .await;
    r.call(Method::POST, "/v1/users", "/v1/users", Some(&ada), Some(json!({})))
        .await;
    r.call(Method::GET, "/v1/users", "/v1/users?limit=1", Some(&admin), None)
        .await;
    r.call(Method::GET, "/v1/users", "/v1/users", Some(&ada), None).await;
    let bob_path = format!("/v1/users/{bob_id}");
    r.call(Method::GET, "/v1/users/{id}", &bob_path, Some(&admin), None)
        .await;
    r.call(
        Method::GET,
        "/v1/users/{id}",
        &format!("/v1/users/{none}"),
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/users/{id}",
        &bob_path,
        Some(&admin),
        Some(json!({"email": "bob@example.com", "role": "user"})),
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/users/{id}",
        &bob_path,
        Some(&admin),
        Some(json!({"email": "ada@example.com"})),
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/users/{id}",
        &bob_path,
        Some(&admin),
        Some(json!({"role": "king"})),
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/users/{id}",
        &format!("/v1/users/{none}"),
        Some(&admin),
        Some(json!({})),
    )
    .await;
    let me = app.get_json("/v1/me", &app.admin).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    r.call(
        Method::DELETE,
        "/v1/users/{id}",
        &format!("/v1/users/{me}"),
        Some(&admin),
        None,
    )
    .await;
    r.call(Method::DELETE, "/v1/users/{id}", &bob_path, Some(&admin), None)
        .await;
    r.call(Method::DELETE, "/v1/users/{id}", &bob_path, Some(&admin), None)
        .await;
    r.call(Method::GET, "/v1/audit", "/v1/audit?limit=5", Some(&admin), None)
        .await;
    r.call(Method::GET, "/v1/audit", "/v1/audit", Some(&ada), None).await;
    r.call(
        Method::POST,
        "/v1/me/password",
        "/v1/me/password",
        Some(&bearer(&key)),
        Some(json!({"current_password": "x", "new_password": "y"})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/me/password",
        "/v1/me/password",
        Some(&ada),
        Some(json!({"current_password": "ada-password", "new_password": "short"})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/me/password",
        "/v1/me/password",
        Some(&ada),
        Some(json!({"current_password": "ada-password", "new_password": "ada's new password"})),
    )
    .await;

    // Services.
    let (_, target) = r
        .call(
            Method::POST,
            "/v1/keys",
            "/v1/keys",
            Some(&admin),
            Some(json!({"scopes": ["billing:read"]})),
        )
        .await;
    let target_key = target["key"].as_str().unwrap().to_owned();
    r.call(
        Method::POST,
        "/v1/verify",
        "/v1/verify",
        Some(&admin),
        Some(json!({"key": target_key, "scopes": ["billing:read"]})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/verify",
        "/v1/verify",
        Some(&admin),
        Some(json!({"key": "nope"})),
    )
    .await;
    r.call(Method::POST, "/v1/verify", "/v1/verify", Some(&admin), Some(json!({})))
        .await;
    r.call(
        Method::POST,
        "/v1/verify",
        "/v1/verify",
        Some(&bearer(&target_key)),
        Some(json!({"key": "x"})),
    )
    .await;
    r.call(
        Method::GET,
        "/v1/forward-auth",
        "/v1/forward-auth?scope=billing:read",
        Some(&bearer(&target_key)),
        None,
    )
    .await;
    r.call(
        Method::GET,
        "/v1/forward-auth",
        "/v1/forward-auth?scope=billing:write",
        Some(&bearer(&target_key)),
        None,
    )
    .await;
    r.call(Method::GET, "/v1/forward-auth", "/v1/forward-auth", None, None)
        .await;

    // A limited key: its object, its verify answers, and its refusals (429).
    let (_, limited) = r
        .call(
            Method::POST,
            "/v1/keys",
            "/v1/keys",
            Some(&admin),
            Some(
                json!({"ratelimits": [{"name": "requests", "limit": 2, "duration": "1h"}],
                        "credits": {"remaining": 5, "refill": {"interval": "daily", "amount": 5}}}),
            ),
        )
        .await;
    let limited_key = limited["key"].as_str().unwrap().to_owned();
    for cost in [1, 9, 0] {
        r.call(
            Method::POST,
            "/v1/verify",
            "/v1/verify",
            Some(&admin),
            Some(json!({"key": limited_key, "cost": cost})),
        )
        .await;
    }
    let (status, _) = r
        .call(Method::GET, "/v1/keys", "/v1/keys", Some(&bearer(&limited_key)), None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    r.call(
        Method::GET,
        "/v1/forward-auth",
        "/v1/forward-auth?limited=403",
        Some(&bearer(&limited_key)),
        None,
    )
    .await;
    r.call(
        Method::PATCH,
        "/v1/keys/{key_id}",
        &format!("/v1/keys/{}", limited["id"].as_str().unwrap()),
        Some(&admin),
        Some(json!({"credits": {"add": 5}, "ratelimits": []})),
    )
    .await;
    r.call(
        Method::GET,
        "/v1/revocations",
        "/v1/revocations?limit=2",
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::GET,
        "/v1/revocations",
        "/v1/revocations?since=0",
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::GET,
        "/v1/revocations",
        "/v1/revocations?after=x",
        Some(&admin),
        None,
    )
    .await;
    r.call(
        Method::GET,
        "/v1/revocations",
        "/v1/revocations",
        Some(&bearer(&target_key)),
        None,
    )
    .await;
    r.call(Method::GET, "/v1/revocations", "/v1/revocations", None, None)
        .await;

    // Imported keys: stored, a bad entry, not an admin, a key already on file.
    let import = json!({"keys": [{"username": "ada", "name": "legacy", "key": "legacy_openapi_key_01"}]});
    for (who, body) in [
        (&admin, import.clone()),
        (&admin, json!({"keys": [{"username": "ada", "name": "x"}]})),
        (&ada, import.clone()),
        (&admin, import),
    ] {
        r.call(
            Method::POST,
            "/v1/keys/import",
            "/v1/keys/import",
            Some(who),
            Some(body),
        )
        .await;
    }

    // Health, metrics, keys for offline checks.
    r.call(Method::GET, "/healthz", "/healthz", None, None).await;
    r.call(Method::GET, "/readyz", "/readyz", None, None).await;
    r.call(Method::GET, "/metrics", "/metrics", Some(&admin), None).await;
    r.call(Method::GET, "/metrics", "/metrics", Some(&ada), None).await;
    r.call(Method::GET, "/metrics", "/metrics", None, None).await;
    r.call(
        Method::GET,
        "/.well-known/jwks.json",
        "/.well-known/jwks.json",
        None,
        None,
    )
    .await;
    r.call(
        Method::GET,
        "/v1/me",
        "/v1/me",
        Some(&basic("admin", crate::helpers::ADMIN_PASSWORD)),
        None,
    )
    .await;

    let problems = check(&doc, &r.seen);
    assert!(
        problems.is_empty(),
        "{} answers differ from /openapi.json:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // Every documented operation was exercised, and every problem+json is documented so.
    let exercised: BTreeSet<(String, String)> = r
        .seen
        .iter()
        .map(|s| (s.method.as_str().to_lowercase(), s.template.to_owned()))
        .collect();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                exercised.contains(&(method.clone(), path.clone())),
                "{method} {path} was not exercised"
            );
        }
    }
    assert!(r.seen.iter().filter(|s| s.status.is_client_error()).count() > 30);
}
