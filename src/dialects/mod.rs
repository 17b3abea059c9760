//! The seeds' APIs, served from the same store: thin adapters over the domain calls.
//!
//! Each file maps its document's wire shapes and status codes onto `Keyward` calls and
//! nothing more; a key made through one is the same key in all (one record: native `name` =
//! seed 000 `description` = seed 001 `label` = seed 002 `name`).

mod seed000;
mod seed001;
mod seed002;

use actix_web::web;

use crate::config::DialectSettings;

/// Registers the dialects that are switched on; the others' routes are 404.
pub fn routes(cfg: &mut web::ServiceConfig, on: &DialectSettings) {
    if on.seed000 {
        cfg.service(seed000::scope());
    }
    if on.seed001 {
        cfg.service(seed001::scope());
    }
    if on.seed002 {
        cfg.service(seed002::scope());
    }
}
