//! HTTP routes, one module per endpoint group, each behind the guard its credential needs.
//!
//! | routes                                              | credential                         |
//! |-----------------------------------------------------|------------------------------------|
//! | `/health`, `/api/version`, `/`, `/api/auth/login`, `/dashboard/*` | none                 |
//! | `/v1/*`, Ollama's `/api/*`                           | API key (unless anonymous allowed) |
//! | `/v1/messages*` (Anthropic)                          | the same, errors in Anthropic's shape |
//! | `/api/agents/register`, `/api/bundle/{file}`        | enrolment token                    |
//! | `/join.sh`                                          | none (holds no secret)             |
//! | `/api/health`, `POST /api/agents/{id}/metrics`, task progress | the node's own token     |
//! | fleet, queue, stats, history, logs, `/ws/dashboard`, `/api/auth/*` | a session (viewer or admin) |
//! | node removal and draining, users, keys, enrolment token, distribution | an admin session |
//! | `/metrics`                                          | a session or an API key            |
//!
//! README's "Who may call what" table lists every route; `crates/router/tests/access.rs` walks it.
//!
//! Bodies: the inference routes take up to `max_body_bytes` (32 MiB by default); every other
//! route (login, registration, heartbeats, metrics pushes, task progress, admin) at most
//! [`SMALL_BODY_BYTES`]. Beyond, 413 before the handler runs.

pub mod agents;
mod aliases;
pub mod anthropic;
pub mod auth;
mod bundle;
pub(crate) mod extract;
pub(crate) mod guard;
pub mod history;
pub mod logs;
pub mod models;
pub mod ollama;
pub mod openai;
mod ops;
pub mod responses;
mod tenant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

pub use extract::{ApiJson, ClientAddr};
pub use tenant::{admit, tenant};

use crate::dashboard;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest body of every route but inference: login, registration, heartbeats, metrics pushes,
/// task progress, admin requests.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;

/// Every route of the router, with its body limit.
pub fn routes(state: &AppState) -> Router<AppState> {
    let inference_limit = DefaultBodyLimit::max(state.config.max_body_bytes);
    let viewer = |route: MethodRouter<AppState>| {
        route.route_layer(from_fn_with_state(state.clone(), guard::viewer))
    };
    let admin = |route: MethodRouter<AppState>| {
        route.route_layer(from_fn_with_state(state.clone(), guard::admin))
    };
    let openai = Router::new()
        .route("/v1/models", get(openai::models::list))
        .route("/v1/models/{*id}", get(openai::models::get))
        .route(
            "/v1/chat/completions",
            post(openai::inference::chat_completions),
        )
        .route("/v1/completions", post(openai::inference::completions))
        .route("/v1/embeddings", post(openai::inference::embeddings))
        .route(responses::RESPONSES, post(responses::create))
        .route(responses::INPUT_TOKENS, post(responses::input_tokens))
        .route_layer(from_fn_with_state(state.clone(), guard::openai_key))
        .layer(inference_limit);
    let anthropic = Router::new()
        .route(anthropic::MESSAGES, post(anthropic::messages))
        .route(anthropic::COUNT_TOKENS, post(anthropic::count_tokens))
        .route_layer(from_fn_with_state(state.clone(), guard::anthropic_key))
        .layer(inference_limit);
    let ollama = ollama::inference_routes()
        .route_layer(from_fn_with_state(state.clone(), guard::ollama_key))
        .layer(inference_limit);

    Router::new()
        // Open: liveness, and the door to a session.
        .route("/health", get(ops::health))
        .route("/api/auth/login", post(auth::login))
        // The dashboard's files (it asks for a login before showing anything).
        .route("/dashboard", get(dashboard::index))
        .route("/dashboard/", get(dashboard::index))
        .route("/dashboard/{*file}", get(dashboard::file))
        .merge(ollama::open_routes())
        // Nodes: the enrolment token, then their own token (checked by the handlers).
        .route("/api/agents/register", post(agents::register::register))
        // Joining machines: the script (open), the bundle's files (the enrolment token).
        .route("/join.sh", get(bundle::join_script))
        .route("/api/bundle/{file}", get(bundle::file))
        .route("/api/health", post(agents::heartbeat::heartbeat))
        .route(
            "/api/agents/{id}/metrics",
            post(agents::heartbeat::push_metrics),
        )
        .route("/api/tasks/{id}/progress", post(models::progress))
        // Inference: API keys.
        .merge(openai)
        .merge(anthropic)
        .merge(ollama)
        // Operators.
        .route(
            "/metrics",
            get(ops::metrics).route_layer(from_fn_with_state(state.clone(), guard::metrics)),
        )
        .route("/ws/dashboard", viewer(get(dashboard::dashboard_ws)))
        .route("/api/logs", viewer(get(logs::router_log)))
        .route("/api/auth/logout", viewer(post(auth::logout)))
        .route("/api/auth/me", viewer(get(auth::me)))
        .route("/api/auth/password", viewer(put(auth::change_password)))
        .route(
            "/api/auth/enrollment-token",
            admin(get(auth::enrollment_token)),
        )
        .route(
            "/api/users",
            admin(get(auth::list_users).post(auth::create_user)),
        )
        .route(
            "/api/users/{id}",
            admin(patch(auth::update_user).delete(auth::delete_user)),
        )
        .route(
            "/api/keys",
            admin(get(auth::list_keys).post(auth::create_key)),
        )
        .route("/api/keys/{id}", admin(delete(auth::revoke_key)))
        .route("/api/aliases", viewer(get(aliases::list)))
        .route(
            "/api/aliases/{name}",
            admin(put(aliases::set_alias).delete(aliases::remove_alias)),
        )
        .route(
            "/api/fallbacks/{model}",
            admin(put(aliases::set_fallbacks).delete(aliases::remove_fallbacks)),
        )
        .route("/api/agents", viewer(get(agents::fleet::list)))
        .route(
            "/api/agents/{id}",
            viewer(get(agents::fleet::get)).merge(admin(delete(agents::fleet::delete))),
        )
        .route(
            "/api/agents/{id}/metrics/history",
            viewer(get(agents::fleet::metrics_history)),
        )
        .route("/api/agents/{id}/logs", viewer(get(logs::node_log)))
        .route("/api/agents/{id}/drain", admin(post(agents::fleet::drain)))
        .route(
            "/api/agents/{id}/resume",
            admin(post(agents::fleet::resume)),
        )
        .route("/api/queue", viewer(get(agents::fleet::queue)))
        .route("/api/models/available", viewer(get(models::available)))
        .route(
            "/api/models/distribute",
            admin(post(models::distribute_model)),
        )
        .route("/api/agents/{id}/models", viewer(get(models::agent_models)))
        .route(
            "/api/agents/{id}/models/pull",
            admin(post(models::pull_to_agent)),
        )
        .route("/api/tasks", viewer(get(models::tasks)))
        .route("/api/tasks/{id}", viewer(get(models::task)))
        .route("/api/stats", viewer(get(history::stats)))
        .route("/api/requests", viewer(get(history::list)))
        .route("/api/requests/export", viewer(get(history::export)))
        .route("/api/requests/{id}", viewer(get(history::get)))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        // Outermost: the inference routes' own limit, set further in, replaces it.
        .layer(DefaultBodyLimit::max(SMALL_BODY_BYTES))
}

/// Handler result: a value or an [`ApiError`] rendered in OpenAI's shape.
pub type ApiResult<T> = Result<T, ApiError>;
