//! The composition root: every route of the API and of the pages, the fallback and
//! the middleware, over one state. `routes()` lists each API route once, and that one
//! list serves the server and the test that holds `openapi.yaml` to it.

use crate::http::{
    agency, airline, audit, batch, consents, contact_verifications, disruptions, erasures, export,
    health, keys, messages, middleware, policies, proofs, releases, reports, tokens, traveller,
    withdrawals,
};
use crate::service::AppState;
use crate::web;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;

/// The routes, recorded as they are added.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }
    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, MethodFilter::GET, path, handler)
    }
    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, MethodFilter::POST, path, handler)
    }
    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, MethodFilter::PUT, path, handler)
    }
    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::DELETE, MethodFilter::DELETE, path, handler)
    }
    fn add<H: Handler<T, AppState>, T: 'static>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.router = self.router.route(path, on(filter, handler));
        self.table.push((method, path));
        self
    }
    /// Every (method, path) served.
    pub fn table(&self) -> &[(Method, &'static str)] {
        &self.table
    }
}

/// Every route of the broker.
pub fn routes() -> Routes {
    Routes::new()
        .get("/healthz", health::healthz)
        .get("/readyz", health::readyz)
        .get("/metrics", health::metrics)
        .get("/.well-known/jwks.json", keys::jwks)
        .post("/v1/consents", consents::upload)
        .get("/v1/consents", consents::list)
        .post("/v1/consents/batch", batch::upload)
        .post("/v1/consents/ssr", batch::import_ssr)
        .get("/v1/consents/{id}", consents::read)
        .get("/v1/consents/{id}/receipt", consents::receipt)
        .get("/v1/consents/{id}/ssr", consents::export_ssr)
        .post("/v1/consents/{id}/withdrawal", withdrawals::by_agency)
        .put("/v1/consents/{id}/delivery", agency::set_record_delivery)
        .post(
            "/v1/consents/{id}/verifications",
            contact_verifications::request,
        )
        .get(
            "/v1/contact-verifications/{id}",
            contact_verifications::read,
        )
        .post(
            "/v1/contact-verifications/{id}/confirmation",
            contact_verifications::confirm,
        )
        .put("/v1/agency/delivery", agency::set_delivery)
        .put("/v1/agency/webhook", agency::set_webhook)
        .delete("/v1/agency/webhook", agency::remove_webhook)
        .get("/v1/agency/contacts-to-fix", agency::contacts_to_fix)
        .get("/v1/receipts", agency::receipts)
        .get("/v1/airline/link-domains", airline::link_domains)
        .put("/v1/airline/link-domains", airline::set_link_domains)
        .put("/v1/airline/webhook", airline::set_webhook)
        .delete("/v1/airline/webhook", airline::remove_webhook)
        .get("/v1/airline/templates", airline::templates)
        .put(
            "/v1/airline/templates/{event}/{language}",
            airline::set_template,
        )
        .post("/v1/withdrawals", withdrawals::by_traveller)
        .post("/v1/traveller/uses", traveller::uses)
        .post("/v1/disruptions", disruptions::declare)
        .get("/v1/disruptions", disruptions::list)
        .get("/v1/disruptions/{id}", disruptions::read)
        .post("/v1/disruptions/{id}/updates", disruptions::update)
        .post("/v1/disruptions/{id}/closing", disruptions::close)
        .post("/v1/release-tokens", tokens::request)
        .post("/v1/flights/release-tokens", tokens::request_for_flight)
        .get("/v1/flights/coverage", airline::flight_coverage)
        .post("/v1/releases", releases::redeem)
        .post("/v1/messages", messages::relay)
        .get("/v1/messages/{id}", messages::status)
        .get("/v1/erasure-requests", erasures::list)
        .post(
            "/v1/erasure-requests/{id}/acknowledgement",
            erasures::acknowledge,
        )
        .post("/v1/gateway/sms/receipts", messages::receipt)
        .get("/v1/policies", policies::read)
        .get("/v1/audit/entries", audit::list)
        .get("/v1/audit/entries/{index}", audit::read)
        .get("/v1/audit/export", export::export)
        .get("/v1/audit/reports", reports::read)
        .get("/v1/audit/log-key", proofs::log_key)
        .get("/v1/audit/checkpoint", proofs::latest)
        .get("/v1/audit/checkpoints", proofs::list)
        .post("/v1/audit/checkpoints", proofs::sign)
        .get("/v1/audit/proofs/inclusion", proofs::inclusion)
        .get("/v1/audit/proofs/consistency", proofs::consistency)
}

/// The whole application: routes, fallback and middleware, with its state.
pub fn build_router(state: AppState) -> Router {
    let router = routes()
        .router
        .merge(web::routes())
        .fallback(health::no_such_route)
        .layer(axum::extract::DefaultBodyLimit::disable());
    middleware::stack(router, &state, &web::UPLOAD_PATHS).with_state(state)
}
