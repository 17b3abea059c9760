//! The OpenAPI 3.1 description of the native API, generated from the handlers' annotations
//! (utoipa) and served at `GET /openapi.json`.

use actix_web::HttpResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{audit, auth, health, import, keys, services, users};

// The `/v1/users/{user_id}/keys` routes share the `/v1/keys` handlers; these describe them.
#[utoipa::path(post, path = "/v1/users/{user_id}/keys", tag = "keys", params(("user_id" = String, Path)), request_body = keys::CreateKeyRequest, responses((status = 201, body = keys::CreatedKeyJson), (status = 404, body = crate::web::problem::Problem)))]
#[allow(dead_code)]
fn create_for_user() {}
#[utoipa::path(get, path = "/v1/users/{user_id}/keys", tag = "keys", params(("user_id" = String, Path), super::PageQuery), responses((status = 200, body = keys::KeyList), (status = 404, body = crate::web::problem::Problem)))]
#[allow(dead_code)]
fn list_for_user() {}
#[utoipa::path(get, path = "/v1/users/{user_id}/keys/{key_id}", tag = "keys", params(("user_id" = String, Path), ("key_id" = String, Path)), responses((status = 200, body = keys::KeyJson), (status = 404, body = crate::web::problem::Problem)))]
#[allow(dead_code)]
fn get_for_user() {}
#[utoipa::path(patch, path = "/v1/users/{user_id}/keys/{key_id}", tag = "keys", params(("user_id" = String, Path), ("key_id" = String, Path)), request_body = keys::UpdateKeyRequest, responses((status = 200, body = keys::KeyJson), (status = 404, body = crate::web::problem::Problem), (status = 409, body = crate::web::problem::Problem)))]
#[allow(dead_code)]
fn rename_for_user() {}
#[utoipa::path(delete, path = "/v1/users/{user_id}/keys/{key_id}", tag = "keys", params(("user_id" = String, Path), ("key_id" = String, Path)), responses((status = 204), (status = 404, body = crate::web::problem::Problem)))]
#[allow(dead_code)]
fn revoke_for_user() {}

#[utoipa::path(post, path = "/v1/users/{user_id}/keys/{key_id}/rotate", tag = "keys", params(("user_id" = String, Path), ("key_id" = String, Path)), request_body = keys::RotateKeyRequest, responses((status = 201, body = keys::CreatedKeyJson), (status = 404, body = crate::web::problem::Problem), (status = 409, body = crate::web::problem::Problem)))]
#[allow(dead_code)]
fn rotate_for_user() {}
#[utoipa::path(get, path = "/v1/users/{user_id}/keys/{key_id}/usage", tag = "keys", params(("user_id" = String, Path), ("key_id" = String, Path), keys::UsageQuery), responses((status = 200, body = keys::KeyUsageJson), (status = 400, body = crate::web::problem::Problem), (status = 404, body = crate::web::problem::Problem)))]
#[allow(dead_code)]
fn usage_for_user() {}

struct Credentials;

impl utoipa::Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Error answers, said once for every operation: problem+json is `application/problem+json`
/// (the annotations name only the `Problem` body); every operation that needs a credential
/// may answer 401, and every one that takes a body or a query 400.
struct Problems;

impl utoipa::Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
        let problem = || {
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"))))
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let names_an_id = path.contains('{');
            for operation in [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete]
                .into_iter()
                .flatten()
            {
                // `security(())`: no credential needed.
                let public = operation.security.as_ref().is_some_and(|s| {
                    s.iter()
                        .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
                });
                let takes_input = operation.request_body.is_some()
                    || operation.parameters.as_ref().is_some_and(|p| {
                        p.iter().any(|p| {
                            matches!(p, RefOr::T(p) if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
                        })
                    });
                let guarded = operation
                    .tags
                    .as_ref()
                    .is_some_and(|t| t.iter().any(|t| ["keys", "users", "services"].contains(&t.as_str())));
                let responses = &mut operation.responses.responses;
                for (status, description, wanted) in [
                    ("400", "Bad input: the detail says what is accepted", takes_input),
                    ("401", "No credential, or one that does not verify", !public),
                    (
                        "403",
                        "Not for this caller: a key lacking a scope, or a non-admin on an admin route",
                        guarded && !public,
                    ),
                    (
                        "404",
                        "No such record, or not the caller's (the two look the same)",
                        names_an_id,
                    ),
                    (
                        "429",
                        "The key's rate limit (with Retry-After, RateLimit-Policy and RateLimit) or its credits refused it",
                        !public,
                    ),
                ] {
                    if wanted && !responses.contains_key(status) {
                        responses.insert(
                            status.into(),
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(description)
                                    .content("application/json", problem())
                                    .build(),
                            ),
                        );
                    }
                }
                for response in responses.values_mut() {
                    let RefOr::T(response) = response else { continue };
                    let names_problem = response.content.get("application/json").is_some_and(|c| {
                        matches!(c, RefOr::T(c) if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem")))
                    });
                    if names_problem {
                        response.content.shift_remove("application/json");
                        response
                            .content
                            .insert("application/problem+json".into(), RefOr::T(problem()));
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "keyward", description = "A self-hosted API key server: the native API under /v1."),
    paths(
        auth::token, auth::me, auth::change_password,
        keys::create, keys::list, keys::get, keys::update, keys::revoke, import::import_keys,
        create_for_user, list_for_user, get_for_user, rename_for_user, revoke_for_user,
        users::create, users::list, users::get, users::update, users::delete, audit::audit,
        services::verify, services::forward_auth, services::revocations, keys::rotate, rotate_for_user,
        keys::usage, usage_for_user,
        health::healthz, health::readyz, crate::web::metrics::metrics, super::jwks,
    ),
    modifiers(&Credentials, &Problems),
    security(("bearer" = []), ("basic" = []), ("api_key" = [])),
)]
struct ApiDoc;

/// `GET /openapi.json` (public).
pub async fn document() -> HttpResponse {
    match ApiDoc::openapi().to_json() {
        Ok(json) => HttpResponse::Ok().content_type("application/json").body(json),
        Err(e) => actix_web::ResponseError::error_response(&crate::web::problem::ApiError::from(
            crate::domain::Error::internal(e),
        )),
    }
}
