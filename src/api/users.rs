//! `/v1/users`: admin-only user management.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::PageQuery;
use super::limits::{
    CreditsJson, CreditsRequest, RateLimitJson, credits_json, parse_credits_change, parse_ratelimits, ratelimits_json,
};
use crate::domain::{
    Caller, Email, Error, NewUserRequest, Password, Role, Secret, UserId, UserRecord, UserUpdate, Username, access,
};
use crate::web::AppState;
use crate::web::body::{Json, Query, double_option};
use crate::web::caller::Admin;
use crate::web::problem::ApiError;

/// The user object. Never holds the password hash.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserJson {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub role: &'static str,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Rate limits shared by all the user's keys (empty: none).
    pub ratelimits: Vec<RateLimitJson>,
    /// Credits shared by all the user's keys, `remaining` as of now; `null`: unlimited.
    pub credits: Option<CreditsJson>,
}

impl From<&UserRecord> for UserJson {
    fn from(u: &UserRecord) -> Self {
        UserJson {
            id: u.id.to_string(),
            username: u.username.clone(),
            email: u.email.clone(),
            role: u.role.as_str(),
            disabled: u.disabled,
            created_at: u.created_at.rfc3339(),
            updated_at: u.updated_at.rfc3339(),
            ratelimits: ratelimits_json(&u.ratelimits),
            credits: credits_json(u.credits.as_ref()),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    username: String,
    #[schema(value_type = String)]
    password: Secret,
    email: Option<String>,
    role: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[schema(value_type = Option<String>)]
    password: Option<Secret>,
    #[serde(default, deserialize_with = "double_option")]
    email: Option<Option<String>>,
    role: Option<String>,
    disabled: Option<bool>,
    /// Rate limits shared by all the user's keys, replaced; `[]` or `null`: none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<RateLimitJson>>)]
    ratelimits: Option<Option<Vec<RateLimitJson>>>,
    /// Credits shared by all the user's keys: set (`{remaining, refill?}`), clear (`null`)
    /// or add to (`{add}`).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<CreditsRequest>)]
    credits: Option<Option<CreditsRequest>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UserList {
    data: Vec<UserJson>,
    total: u64,
    next_cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = UserJson), (status = 400, body = crate::web::problem::Problem), (status = 403, body = crate::web::problem::Problem), (status = 409, body = crate::web::problem::Problem)))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    Admin(caller): Admin,
    Json(body): Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = NewUserRequest {
        username: Username::parse(&body.username)?,
        password: Password::parse(body.password)?,
        email: body.email.as_deref().map(Email::parse).transpose()?,
        role: body.role.as_deref().map(Role::parse).transpose()?.unwrap_or(Role::User),
    };
    let user = state.keyward.create_user(&caller, request).await?;
    let location = format!("{}/{}", req.path().trim_end_matches('/'), user.id);
    Ok(HttpResponse::Created()
        .insert_header(("Location", location))
        .json(UserJson::from(&user)))
}

#[utoipa::path(get, path = "/v1/users", tag = "users", params(super::PageQuery),
    responses((status = 200, body = UserList), (status = 403, body = crate::web::problem::Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    Admin(caller): Admin,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .keyward
        .list_users(&caller, query.cursor.as_deref(), query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(UserList {
        data: page.users.iter().map(UserJson::from).collect(),
        total: page.total,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserJson), (status = 403, body = crate::web::problem::Problem), (status = 404, body = crate::web::problem::Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    Admin(caller): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = state.keyward.get_user(&caller, user_id(&caller, &id)?)?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}

#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserJson), (status = 400, body = crate::web::problem::Problem), (status = 403, body = crate::web::problem::Problem), (status = 404, body = crate::web::problem::Problem), (status = 409, body = crate::web::problem::Problem)))]
pub async fn update(
    state: web::Data<AppState>,
    Admin(caller): Admin,
    id: web::Path<String>,
    Json(body): Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let update = UserUpdate {
        password: body.password.map(Password::parse).transpose()?,
        email: body
            .email
            .map(|e| e.as_deref().map(Email::parse).transpose())
            .transpose()?,
        role: body.role.as_deref().map(Role::parse).transpose()?,
        disabled: body.disabled,
        ratelimits: body.ratelimits.map(parse_ratelimits).transpose()?,
        credits: parse_credits_change(body.credits)?,
    };
    let user = state
        .keyward
        .update_user(&caller, user_id(&caller, &id)?, update)
        .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}

#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::web::problem::Problem), (status = 404, body = crate::web::problem::Problem), (status = 409, body = crate::web::problem::Problem)))]
pub async fn delete(
    state: web::Data<AppState>,
    Admin(caller): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.keyward.delete_user(&caller, user_id(&caller, &id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The `{id}` of a `/v1/users/{id}` route. A malformed id is `NotFound`, as an id of no user
/// is, and in the same order: after the admin checks (403 first; the domain checks again).
fn user_id(caller: &Caller, text: &str) -> Result<UserId, Error> {
    access::require_admin(caller)?;
    UserId::parse(text).ok_or(Error::NotFound)
}
