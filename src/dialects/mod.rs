//! The seeds' APIs, served from the same store: thin adapters over the domain calls.

use actix_web::web;

use crate::config::DialectSettings;

/// Registers the dialects that are switched on.
pub fn routes(_cfg: &mut web::ServiceConfig, _on: &DialectSettings) {}
