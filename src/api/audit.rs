//! `GET /v1/audit`: the audit trail, for admins.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::PageQuery;
use crate::domain::AuditPage;
use crate::web::AppState;
use crate::web::body::Query;
use crate::web::caller::Admin;
use crate::web::problem::{ApiError, Problem};

/// `GET /v1/audit`: a page of the audit trail, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditList<'a> {
    data: Vec<AuditLineJson<'a>>,
    total: u64,
    next_cursor: Option<&'a str>,
}

/// One line of the audit trail.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuditLine)]
pub struct AuditLineJson<'a> {
    id: i64,
    at: String,
    actor_id: Option<String>,
    actor: &'a str,
    action: &'a str,
    target_type: Option<&'a str>,
    target_id: Option<&'a str>,
    /// The key's name or the user's username when the line was written (null for lines
    /// written before keyward recorded it)
    target_name: Option<&'a str>,
    source_ip: Option<&'a str>,
    /// What changed: field names, and values that are no secret (`role=admin, disabled=true`)
    detail: Option<&'a str>,
}

impl<'a> From<&'a AuditPage> for AuditList<'a> {
    fn from(page: &'a AuditPage) -> Self {
        let data = page
            .entries
            .iter()
            .map(|line| {
                let a = &line.record;
                AuditLineJson {
                    id: line.seq,
                    at: a.at.rfc3339(),
                    actor_id: a.actor_id.map(|id| id.to_string()),
                    actor: &a.actor,
                    action: a.action,
                    target_type: a.target_type,
                    target_id: a.target_id.as_deref(),
                    target_name: line.target_name.as_deref(),
                    source_ip: a.source_ip.as_deref(),
                    detail: a.detail.as_deref(),
                }
            })
            .collect();
        AuditList {
            data,
            total: page.total,
            next_cursor: page.next_cursor.as_deref(),
        }
    }
}

/// `GET /v1/audit?limit=&cursor=` (admin): the audit trail, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "users", params(PageQuery),
    responses((status = 200, body = AuditList), (status = 403, body = Problem)))]
pub async fn audit(
    state: web::Data<AppState>,
    Admin(caller): Admin,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .keyward
        .list_audit(&caller, query.cursor.as_deref(), query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(AuditList::from(&page)))
}
