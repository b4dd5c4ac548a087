//! `POST /api/health`: a node's heartbeat, and `POST /api/agents/{id}/metrics`, a metrics push;
//! both authenticated by the node token.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use llm_router_protocol::node::{
    AgentMetrics, Heartbeat, HeartbeatResponse, NodeMetrics, Timestamp,
};

use crate::api::guard::{NodeCaller, node_token};
use crate::api::{ApiJson, ApiResult};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::unix_ms;

/// `POST /api/health`: the node token is checked ([`NodeCaller`]) before the body is read; the
/// body's `node_id` must then be the token's node.
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: NodeCaller,
    ApiJson(mut hb): ApiJson<Heartbeat>,
) -> ApiResult<Json<HeartbeatResponse>> {
    super::report::bound_heartbeat(&mut hb.models, &mut hb.metrics.gpus);
    let node_id = hb.node_id.clone();
    let (status, transition) = state.registry.heartbeat(hb, &caller.token)?;
    state.metrics.record_heartbeat();
    if let Some(node) = state.registry.snapshot().node(&node_id) {
        if transition.is_some() {
            state.fleet_log.node_changed(node);
        }
        state.fleet_log.node_reported(node);
    }
    if let Some(t) = transition {
        tracing::info!(
            %node_id,
            node = %t.machine_name,
            from = t.from.as_str(),
            to = t.to.as_str(),
            "node status changed on heartbeat"
        );
    } else {
        tracing::trace!(%node_id, "heartbeat");
    }
    Ok(Json(HeartbeatResponse { status }))
}

/// `POST /api/agents/{id}/metrics`: a metrics push between heartbeats, authenticated by the node
/// token (checked before the body is read). Two shapes are accepted: the heartbeat's own
/// [`NodeMetrics`] (strict), and the load-balancing task list's [`AgentMetrics`] (recognised by its
/// `agent_id`, which must be the path's id; its `timestamp` must be within minutes of now).
/// Answers 204.
pub async fn push_metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    let token = node_token(&headers).ok_or(ApiError::InvalidNodeToken)?;
    state.registry.check_token(&id, token)?;
    let body = axum::body::to_bytes(body, MAX_METRICS_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    match parse_push(&body)? {
        Push::Native(metrics) => state.registry.push_metrics(&id, token, |m| *m = metrics)?,
        Push::Seed(seed) => {
            check_seed(&seed, &id, unix_ms(SystemTime::now()))?;
            state
                .registry
                .push_metrics(&id, token, |m| seed.apply_to(m))?;
        }
    }
    if let Some(node) = state.registry.snapshot().node(&id) {
        state.fleet_log.node_reported(node);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Largest metrics push read (a GPU-rich node's native push is a few KiB).
const MAX_METRICS_BYTES: usize = 64 * 1024;
/// How far a seed-shaped push's timestamp may be from the router's clock.
const SEED_MAX_AGE: Duration = Duration::from_secs(600);
const SEED_MAX_AHEAD: Duration = Duration::from_secs(300);

#[derive(Debug)]
enum Push {
    Native(NodeMetrics),
    Seed(AgentMetrics),
}

/// A body with `agent_id` is the seed's shape; anything else must be the native one.
fn parse_push(body: &[u8]) -> Result<Push, ApiError> {
    if body.is_empty() {
        return Err(ApiError::EmptyBody);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let parsed = if value.get("agent_id").is_some() {
        serde_json::from_value(value).map(Push::Seed)
    } else {
        serde_json::from_value(value).map(Push::Native)
    };
    parsed.map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// The seed's push must name the node of the path and carry a timestamp close to `now_ms`.
fn check_seed(seed: &AgentMetrics, id: &str, now_ms: u64) -> Result<(), ApiError> {
    if seed.agent_id != id {
        return Err(ApiError::Forbidden(format!(
            "'agent_id' {:?} is not the node of this path",
            seed.agent_id
        )));
    }
    let at_ms = timestamp_ms(&seed.timestamp).ok_or_else(|| {
        ApiError::InvalidRequest(
            "'timestamp' must be RFC 3339 text or a Unix time in seconds or milliseconds".into(),
        )
    })?;
    let oldest = now_ms.saturating_sub(duration_ms(SEED_MAX_AGE));
    let newest = now_ms.saturating_add(duration_ms(SEED_MAX_AHEAD));
    if at_ms < oldest || at_ms > newest {
        return Err(ApiError::InvalidRequest(format!(
            "'timestamp' is {} the router's clock: metrics must be at most {} old and {} ahead",
            if at_ms < oldest {
                "far behind"
            } else {
                "ahead of"
            },
            humantime::format_duration(SEED_MAX_AGE),
            humantime::format_duration(SEED_MAX_AHEAD),
        )));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch; a number below 10^11 counts as seconds.
fn timestamp_ms(t: &Timestamp) -> Option<u64> {
    match t {
        Timestamp::Unix(n) if n.is_finite() && *n >= 0.0 => {
            let ms = if *n < 1e11 { n * 1000.0 } else { *n };
            // In range by the check above; `as` saturates anyway.
            Some(ms as u64)
        }
        Timestamp::Unix(_) => None,
        Timestamp::Rfc3339(text) => humantime::parse_rfc3339_weak(text).ok().map(unix_ms),
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn seed(id: &str, timestamp: Timestamp) -> AgentMetrics {
        AgentMetrics {
            agent_id: id.into(),
            cpu_usage: 10.0,
            memory_usage: 20.0,
            active_requests: 3,
            avg_response_time: Some(120.0),
            timestamp,
        }
    }

    #[test]
    fn the_seed_shape_is_told_apart_by_its_agent_id() {
        let body = br#"{"agent_id":"n1","cpu_usage":1.5,"memory_usage":2,"active_requests":0,"avg_response_time":null,"timestamp":"2026-12-03T10:00:00Z"}"#;
        assert!(matches!(parse_push(body), Ok(Push::Seed(_))));
        let native = br#"{"cpu_percent":1.0,"memory_percent":1.0,"memory_used_bytes":1,"memory_total_bytes":2,"gpus":[],"active_requests":0,"requests_total":0,"avg_response_ms":null}"#;
        assert!(matches!(parse_push(native), Ok(Push::Native(_))));
        // A seed push with a native field, or a native one with a seed field, is refused.
        let mixed = br#"{"agent_id":"n1","cpu_percent":1.0}"#;
        assert!(matches!(
            parse_push(mixed),
            Err(ApiError::InvalidRequest(_))
        ));
        assert!(matches!(parse_push(b"{"), Err(ApiError::MalformedJson(_))));
        assert!(matches!(parse_push(b""), Err(ApiError::EmptyBody)));
    }

    #[test]
    fn a_seed_push_must_name_the_path_node_and_be_recent() {
        let at = |ms: u64| Timestamp::Unix(ms as f64);
        assert!(check_seed(&seed("n1", at(NOW_MS)), "n1", NOW_MS).is_ok());
        assert!(matches!(
            check_seed(&seed("n2", at(NOW_MS)), "n1", NOW_MS),
            Err(ApiError::Forbidden(_))
        ));
        // Seconds are taken as seconds.
        let secs = Timestamp::Unix((NOW_MS / 1000) as f64);
        assert!(check_seed(&seed("n1", secs), "n1", NOW_MS).is_ok());
        let hour_old = at(NOW_MS - 3_600_000);
        assert!(check_seed(&seed("n1", hour_old), "n1", NOW_MS).is_err());
        let ahead = at(NOW_MS + 3_600_000);
        assert!(check_seed(&seed("n1", ahead), "n1", NOW_MS).is_err());
        let text = Timestamp::Rfc3339("yesterday".into());
        assert!(check_seed(&seed("n1", text), "n1", NOW_MS).is_err());
        assert!(check_seed(&seed("n1", Timestamp::Unix(f64::NAN)), "n1", NOW_MS).is_err());
    }

    #[test]
    fn rfc3339_timestamps_are_read() {
        let t = Timestamp::Rfc3339("2027-01-15T08:00:00Z".into());
        assert_eq!(timestamp_ms(&t), Some(1_800_000_000_000));
    }

    mod props {
        use super::*;
        use llm_router_testkit::prop::{broken, config, json_value};
        use proptest::prelude::*;
        use serde_json::json;

        proptest! {
            #![proptest_config(config(256))]

            #[test]
            fn metrics_pushes_of_any_shape_never_panic(
                bytes in prop::collection::vec(any::<u8>(), 0..256),
                value in json_value(),
                seed in broken(json!({"agent_id": "n1", "cpu_usage": 1.5, "memory_usage": 2,
                    "active_requests": 0, "avg_response_time": null,
                    "timestamp": "2026-12-03T10:00:00Z"})),
                native in broken(json!({"cpu_percent": 1.0, "memory_percent": 1.0,
                    "memory_used_bytes": 1, "memory_total_bytes": 2, "gpus": [],
                    "active_requests": 0, "requests_total": 0, "avg_response_ms": null})),
            ) {
                for body in [bytes, value.to_string().into_bytes(), seed, native] {
                    if let Ok(Push::Seed(seed)) = parse_push(&body) {
                        let _ = check_seed(&seed, "n1", NOW_MS);
                    }
                }
            }

            #[test]
            fn any_timestamp_is_read_or_refused_without_panicking(
                n in any::<f64>(),
                text in any::<String>(),
                now in any::<u64>(),
            ) {
                let _ = timestamp_ms(&Timestamp::Unix(n));
                let _ = timestamp_ms(&Timestamp::Rfc3339(text));
                let _ = check_seed(&seed("n1", Timestamp::Unix(n)), "n1", now);
            }
        }
    }
}
