//! Logging in, who am I, and changing one's own password.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::domain::{Caller, KeyId, Password, Secret, Timestamp, UserId};
use crate::web::AppState;
use crate::web::body::Json;
use crate::web::client::client_ip;
use crate::web::problem::ApiError;
use crate::web::problem::Problem;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    username: String,
    #[schema(value_type = String)]
    password: Secret,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
}

/// `POST /v1/auth/token` (public): username or email and password for an access token.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenRequest, security(()),
    responses((status = 200, body = TokenResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body): Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let source = client_ip(&req, &state);
    let (token, expires_in) = state.keyward.login(&body.username, &body.password, source).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            access_token: token.reveal(),
            token_type: "Bearer",
            expires_in,
        }))
}

/// `GET /v1/me`: the caller and how they authenticated. The handler writes it by hand
/// ([`MeJson::write`]); serde's form of the same type is what the OpenAPI document shows, and
/// a test keeps the two the same.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MeJson<'a> {
    user: MeUser<'a>,
    auth: MeAuth,
}

#[derive(Serialize, utoipa::ToSchema)]
struct MeUser<'a> {
    #[serde(serialize_with = "as_text")]
    #[schema(value_type = String)]
    id: UserId,
    username: &'a str,
    email: Option<&'a str>,
    /// `admin` or `user`
    role: &'static str,
    #[serde(serialize_with = "as_rfc3339")]
    #[schema(value_type = String)]
    created_at: Timestamp,
}

#[derive(Serialize, utoipa::ToSchema)]
struct MeAuth {
    /// `access_token`, `api_key` or `password`
    method: &'static str,
    #[serde(serialize_with = "as_text_or_null")]
    #[schema(value_type = Option<String>)]
    key_id: Option<KeyId>,
}

fn as_text<S: serde::Serializer>(value: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn as_text_or_null<S: serde::Serializer>(value: &Option<KeyId>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(id) => s.collect_str(id),
        None => s.serialize_none(),
    }
}

fn as_rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.rfc3339())
}

impl MeUser<'_> {
    /// Appends the user object as serde would write it.
    fn write(&self, out: &mut String) {
        out.push_str(r#"{"id":""#);
        self.id.write_to(out);
        out.push_str(r#"","username":"#);
        push_json_string(out, self.username);
        out.push_str(r#","email":"#);
        match self.email {
            Some(email) => push_json_string(out, email),
            None => out.push_str("null"),
        }
        out.push_str(r#","role":""#);
        out.push_str(self.role);
        out.push_str(r#"","created_at":""#);
        self.created_at.write_rfc3339(out);
        out.push_str(r#""}"#);
    }
}

impl<'a> MeJson<'a> {
    pub fn of(caller: &'a Caller) -> MeJson<'a> {
        let u = &caller.user;
        MeJson {
            user: MeUser {
                id: u.id,
                username: &u.username,
                email: u.email.as_deref(),
                role: u.role.as_str(),
                created_at: u.created_at,
            },
            auth: MeAuth {
                method: caller.via.method(),
                key_id: caller.via.key_id(),
            },
        }
    }

    /// Appends the JSON serde would write, without serde: this is the route every client
    /// calls to check its key, and the benchmark's measure of the hot path. `user` is what
    /// [`MeUser::write`] made of `self.user` (kept with the user's record: see [`me`]).
    fn write(&self, user: &str, body: &mut String) {
        body.push_str(r#"{"user":"#);
        body.push_str(user);
        body.push_str(r#","auth":{"method":""#);
        body.push_str(self.auth.method);
        body.push_str(r#"","key_id":"#);
        match self.auth.key_id {
            Some(id) => {
                body.push('"');
                id.write_to(body);
                body.push('"');
            }
            None => body.push_str("null"),
        }
        body.push_str("}}");
    }
}

/// `GET /v1/me` (any credential): the caller and how they authenticated:
/// `{"user": {id, username, email, role, created_at}, "auth": {"method", "key_id"}}`.
#[utoipa::path(get, path = "/v1/me", tag = "auth", responses((status = 200, body = MeJson), (status = 401, body = Problem)))]
pub async fn me(caller: Caller) -> HttpResponse {
    let me = MeJson::of(&caller);
    let render = || {
        let mut user = String::with_capacity(160);
        me.user.write(&mut user);
        user
    };
    // The user's part is written once per state of the user (a change replaces the record);
    // for itself only if the slot held another type.
    let user = match caller.user.rendered.get_or_init(render) {
        Some(kept) => std::borrow::Cow::Borrowed(kept.as_str()),
        None => std::borrow::Cow::Owned(render()),
    };
    let mut body = String::with_capacity(256);
    me.write(&user, &mut body);
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::HeaderValue::from_static("application/json"),
        ))
        .body(body)
}

/// Appends `text` as a JSON string, quoted and escaped. Names and emails rarely need
/// escaping: those that do not are copied as they are.
fn push_json_string(out: &mut String, text: &str) {
    let plain = text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push('"');
        out.push_str(text);
        out.push('"');
        return;
    }
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("null"),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String)]
    current_password: Secret,
    #[schema(value_type = String)]
    new_password: Secret,
}

/// `POST /v1/me/password` (access token or password, never a key): 204; ends the caller's
/// access tokens.
#[utoipa::path(post, path = "/v1/me/password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 204), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    Json(body): Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = Password::parse(body.new_password).map_err(|e| match e {
        crate::domain::Error::Invalid { reason, .. } => crate::domain::Error::Invalid {
            field: "new_password",
            reason,
        },
        other => other,
    })?;
    state
        .keyward
        .change_own_password(&caller, &body.current_password, new)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written `/v1/me` body is exactly what serde makes of [`MeJson`], the type the
    /// OpenAPI document shows.
    #[test]
    fn the_written_me_body_is_serdes_form_of_the_documented_type() {
        let key = KeyId::generate().unwrap_or_else(|e| panic!("{e}"));
        for (username, email, key_id) in [
            ("ada", Some("ada@example.com"), Some(key)),
            ("bob \"the\" \\ builder\n", None, None),
            ("zoë", Some("z\u{1}@example.com"), None),
        ] {
            let me = MeJson {
                user: MeUser {
                    id: UserId::nil(),
                    username,
                    email,
                    role: "admin",
                    created_at: Timestamp::from_millis(1_620_060_007_900),
                },
                auth: MeAuth {
                    method: if key_id.is_some() { "api_key" } else { "password" },
                    key_id,
                },
            };
            let mut user = String::new();
            me.user.write(&mut user);
            let mut written = String::new();
            me.write(&user, &mut written);
            let serde = serde_json::to_string(&me).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(written, serde);
        }
    }
}
