//! `POST /api/agents/register`: a node announces itself with the router's enrolment token; the
//! router checks it can reach the node's API (with the node's API token) before listing it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use llm_router_common::text::MAX_NAME;
use llm_router_protocol::Secret;
use llm_router_protocol::node::{RegisterRequest, RegisterResponse};
use llm_router_protocol::openai::ModelList;

use super::address::{NodeHost, is_local_ip, is_router_address, parse_address};
use crate::api::guard::Enrolment;
use crate::api::{ApiJson, ApiResult};
use crate::error::ApiError;
use crate::registry::{MAX_SMALL_ANSWER_BYTES, api_authorization, read_json_answer};
use crate::state::AppState;

/// The enrolment token is checked ([`Enrolment`]) before the body is read.
#[tracing::instrument(skip_all, fields(node = tracing::field::Empty))]
pub async fn register(
    State(state): State<AppState>,
    _: Enrolment,
    ApiJson(mut req): ApiJson<RegisterRequest>,
) -> ApiResult<Json<RegisterResponse>> {
    if req.machine_name.trim().is_empty() {
        return Err(ApiError::InvalidRequest(
            "'machine_name' must not be empty".into(),
        ));
    }
    if req.machine_name.len() > MAX_NAME {
        return Err(ApiError::InvalidRequest(format!(
            "'machine_name' must be at most {MAX_NAME} bytes"
        )));
    }
    tracing::Span::current().record("node", req.machine_name.as_str());
    super::report::bound_registration(&mut req);
    let host = parse_address(&req.address)
        .map_err(|e| ApiError::InvalidRequest(format!("'address' {e}")))?;
    if req.port == 0 {
        return Err(ApiError::InvalidRequest("'port' must not be 0".into()));
    }
    let resolve_within = state.config.registration_timeout;
    if is_the_router(&host, req.port, state.config.listen, resolve_within).await {
        tracing::warn!(address = %req.address, port = req.port, "registration of the router itself refused");
        return Err(ApiError::InvalidRequest(
            "'address' and 'port' are the router's own listen address".into(),
        ));
    }
    let Some(authorization) = api_authorization(req.api_token.expose()) else {
        return Err(ApiError::InvalidRequest(
            "'api_token' must be a non-empty token of visible ASCII characters".into(),
        ));
    };
    let ready = ready_models(&state, &req.base_url(), authorization).await?;
    let base_url = req.base_url();
    let registered = state.registry.register(req, &ready);
    if let Some(node) = state.registry.snapshot().node(&registered.node_id) {
        state.fleet_log.node_changed(node);
        state.distributor.place(Arc::clone(node));
    }
    tracing::info!(
        node_id = %registered.node_id,
        %base_url,
        status = registered.status.as_str(),
        ready_models = ?ready,
        updated = registered.updated,
        "node registered"
    );
    Ok(Json(RegisterResponse {
        node_id: registered.node_id,
        node_token: Secret::new(registered.node_token),
        status: registered.status,
        heartbeat_interval_secs: state.config.heartbeat_interval.as_secs().max(1),
    }))
}

/// Whether `host:port` reaches this router (listening on `listen`, the address it bound). A name
/// is resolved once here, within `resolve_within`; one that does not resolve in time is left to
/// the reachability check.
async fn is_the_router(
    host: &NodeHost,
    port: u16,
    listen: SocketAddr,
    resolve_within: Duration,
) -> bool {
    let is_own = |ip| is_router_address(ip, port, listen, is_local_ip);
    match host {
        NodeHost::Ip(ip) => is_own(*ip),
        NodeHost::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), port));
            match tokio::time::timeout(resolve_within, lookup).await {
                Ok(Ok(mut addrs)) => addrs.any(|a| is_own(a.ip())),
                _ => false,
            }
        }
    }
}

/// What a registering node is told when the router cannot use its API: the URL it tried (built
/// from the node's own `address` and `port`, so nothing the node did not send) and what to check,
/// but no error text or timing (they would make registration a port scanner for anyone with the
/// enrolment token); the details go to the router's log.
fn check_failed(base_url: &str) -> String {
    let tried = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    format!(
        "the router could not reach the node's API at {tried} (the advertised address and \
         port; the router's log says why): check that the node listens there and that the \
         router can reach it, or set the node's --advertise-address"
    )
}

/// Calls the node's `GET /v1/models`: the node must answer 2xx (a redirect is not followed and
/// fails the check); the models it lists are ready.
async fn ready_models(
    state: &AppState,
    base_url: &str,
    authorization: HeaderValue,
) -> ApiResult<Vec<String>> {
    let url = format!("{base_url}/v1/models");
    let started = Instant::now();
    match fetch_models(state, &url, authorization).await {
        Ok(list) => Ok(list.data.into_iter().map(|m| m.id).collect()),
        Err(why) => {
            tracing::warn!(
                %url,
                error = %why,
                elapsed_ms = started.elapsed().as_millis(),
                "registration refused: the node's API failed the check"
            );
            Err(ApiError::Upstream(check_failed(base_url)))
        }
    }
}

async fn fetch_models(
    state: &AppState,
    url: &str,
    authorization: HeaderValue,
) -> Result<ModelList, String> {
    let response = state
        .http
        .get(url)
        .header(AUTHORIZATION, authorization)
        .timeout(state.config.registration_timeout)
        .send()
        .await
        .map_err(|e| with_causes(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    read_json_answer(response, MAX_SMALL_ANSWER_BYTES).await
}

/// `e` and its causes, `: `-separated: reqwest's own text says only "error sending request",
/// the refused certificate or the refused connection is in its sources.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
