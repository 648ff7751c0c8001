//! `/metrics` (Prometheus text format) and the HTTP request metrics behind it.
//!
//! Requests are labelled by route *template* (`/api/v1/jobs/{id}`), never by raw path, so
//! ids in paths cannot multiply the series. The router knows the template of the route it
//! matched (poem's `PathPattern`, in its own `:param0` syntax); an inner middleware, right
//! around the router, notes it in a slot that the outer one, around everything, reads when
//! the answer is final (after errors became problem documents, so the status is the one the
//! client got). Templates are written as the OpenAPI document writes them; a path that matched
//! no route is counted under one label, `unmatched`.
//!
//! `/metrics` is outside `/api/v1` and needs no token, like `/health`: expose it only to the
//! monitoring network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use eam_metrics::{Metrics, Platform, PlatformSource, Read, UNMATCHED_ROUTE};
use eam_model::gauges::{ActiveRuns, CertificatesAtRisk, ReportedBreakers};
use poem::http::StatusCode;
use poem::{Endpoint, EndpointExt, IntoResponse, PathPattern, Request, Response, Route, get};

use crate::state::ApiState;

/// Route templates by the router's pattern: `/api/v1/jobs/:param0` → `/api/v1/jobs/{id}`.
#[derive(Debug, Default)]
pub struct RouteTemplates(HashMap<String, String>);

impl RouteTemplates {
    /// From the OpenAPI document of the operations nested under `prefix`: poem-openapi routes
    /// a path `/jobs/{id}` as `/jobs/:param0` (parameters numbered in order).
    pub fn from_openapi(spec_json: &str, prefix: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut map = HashMap::new();
        if let Some(paths) = spec.get("paths").and_then(|p| p.as_object()) {
            for template in paths.keys() {
                let mut n = 0;
                let pattern: Vec<String> = template
                    .split('/')
                    .map(|segment| {
                        if segment.starts_with('{') && segment.ends_with('}') {
                            n += 1;
                            format!(":param{}", n - 1)
                        } else {
                            segment.to_owned()
                        }
                    })
                    .collect();
                map.insert(
                    format!("{prefix}{}", pattern.join("/")),
                    format!("{prefix}{template}"),
                );
            }
        }
        RouteTemplates(map)
    }

    /// The label of a request the router matched to `pattern` (if any) and answered with
    /// `status`.
    fn label(&self, pattern: Option<&str>, status: StatusCode) -> String {
        match pattern {
            Some(p) => match self.0.get(p) {
                Some(template) => template.clone(),
                // A prefix that matched but found nothing under it (`/api/v1/nope`).
                None if status == StatusCode::NOT_FOUND => UNMATCHED_ROUTE.to_owned(),
                // A route of our own outside the OpenAPI document (`/health`, `/docs`).
                None => p.to_owned(),
            },
            None => UNMATCHED_ROUTE.to_owned(),
        }
    }
}

/// Where the inner middleware leaves the matched pattern for the outer one.
#[derive(Clone, Default)]
struct MatchedRoute(Arc<Mutex<Option<Arc<str>>>>);

impl MatchedRoute {
    fn set(&self, pattern: &PathPattern) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(pattern.0.clone());
    }

    fn get(&self) -> Option<Arc<str>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Wraps the router: notes the pattern of the route it matched, for [`observe`].
pub fn note_route<E: Endpoint + 'static>(router: E) -> impl Endpoint<Output = Response> {
    router.around(|next, req| async move {
        let slot = req.data::<MatchedRoute>().cloned();
        let result = next.call(req).await.map(IntoResponse::into_response);
        if let Some(slot) = slot {
            let pattern = match &result {
                Ok(response) => response.data::<PathPattern>(),
                Err(error) => error.data::<PathPattern>(),
            };
            if let Some(pattern) = pattern {
                slot.set(pattern);
            }
        }
        result
    })
}

/// Wraps the whole application: counts and times every request by method, route template
/// and final status.
pub fn observe<E: Endpoint + 'static>(
    app: E,
    metrics: Metrics,
    templates: RouteTemplates,
) -> impl Endpoint<Output = Response> {
    let templates = Arc::new(templates);
    app.around(move |next, mut req: Request| {
        let metrics = metrics.clone();
        let templates = templates.clone();
        async move {
            let started = Instant::now();
            let method = req.method().clone();
            let slot = MatchedRoute::default();
            req.set_data(slot.clone());
            let response = match next.call(req).await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            };
            let route = templates.label(slot.get().as_deref(), response.status());
            metrics.observe_http(
                method.as_str(),
                &route,
                response.status().as_u16(),
                started.elapsed(),
            );
            Ok(response)
        }
    })
}

/// The platform gauges as the store reads them.
struct StoreGauges(eam_store::Store);

impl PlatformSource for StoreGauges {
    fn active_runs(&self) -> Read<'_, ActiveRuns> {
        Box::pin(async { self.0.active_runs().await.map_err(|e| e.to_string()) })
    }
    fn certificates_at_risk(&self, warning_days: u32) -> Read<'_, CertificatesAtRisk> {
        Box::pin(async move {
            self.0
                .certificates_at_risk(warning_days)
                .await
                .map_err(|e| e.to_string())
        })
    }
    fn reported_breakers(&self) -> Read<'_, ReportedBreakers> {
        Box::pin(async { self.0.reported_breakers().await.map_err(|e| e.to_string()) })
    }
}

/// `/metrics` of the API: the process's counts and the platform gauges read from PostgreSQL.
pub fn endpoint(state: &ApiState) -> impl Endpoint + use<> {
    let metrics = state.metrics.clone();
    let platform = Platform {
        source: Arc::new(StoreGauges(state.store.clone())),
        certificate_warning_days: state.certificate_warning_days,
    };
    get(poem::endpoint::make(move |_| {
        let metrics = metrics.clone();
        let platform = platform.clone();
        async move { exposition(metrics.render(Some(&platform)).await) }
    }))
}

/// The HTTP application of a worker's metrics listener: `/metrics` (its own counts only; the
/// platform gauges are the API's) and `/health`.
pub fn worker_app(metrics: Metrics) -> impl Endpoint {
    Route::new()
        .at(
            "/metrics",
            get(poem::endpoint::make(move |_| {
                let metrics = metrics.clone();
                async move { exposition(metrics.render(None).await) }
            })),
        )
        .at("/health", get(poem::endpoint::make_sync(|_| "ok")))
}

fn exposition(text: String) -> Response {
    Response::builder()
        .content_type(eam_metrics::CONTENT_TYPE)
        .header(poem::http::header::CACHE_CONTROL, "no-store")
        .body(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_their_openapi_template() {
        let spec = r#"{"paths": {"/jobs/{id}": {}, "/connections/{id}/sync": {}, "/jobs": {},
            "/a/{x}/b/{y}": {}}}"#;
        let t = RouteTemplates::from_openapi(spec, "/api/v1");
        let ok = StatusCode::OK;
        assert_eq!(
            t.label(Some("/api/v1/jobs/:param0"), ok),
            "/api/v1/jobs/{id}"
        );
        assert_eq!(
            t.label(Some("/api/v1/connections/:param0/sync"), ok),
            "/api/v1/connections/{id}/sync"
        );
        assert_eq!(
            t.label(Some("/api/v1/a/:param0/b/:param1"), ok),
            "/api/v1/a/{x}/b/{y}"
        );
        assert_eq!(t.label(Some("/api/v1/jobs"), ok), "/api/v1/jobs");
        assert_eq!(t.label(Some("/health"), ok), "/health");
        assert_eq!(
            t.label(Some("/api/v1"), StatusCode::NOT_FOUND),
            UNMATCHED_ROUTE
        );
        assert_eq!(t.label(None, StatusCode::NOT_FOUND), UNMATCHED_ROUTE);
    }
}
