//! `GET /ws/dashboard`: a session's live feed. The first frame is the whole picture (`hello`),
//! then every event; a socket that falls behind gets `resync` and is closed (the page reconnects
//! and starts over from a fresh `hello`). A socket whose session ends (logout, expiry) is closed
//! within [`SESSION_CHECK`].

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;

use super::hub::live_stats;
use crate::auth::Staff;
use crate::auth::same_origin;
use crate::error::ApiError;
use crate::live::{Frame, UserInfo};
use crate::state::AppState;

/// How often an open socket checks that its session is still valid (logout, expiry, user
/// deleted): at most this long after, the socket is closed.
const SESSION_CHECK: Duration = Duration::from_secs(5);

pub async fn dashboard_ws(
    State(state): State<AppState>,
    staff: Staff,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::InvalidRequest(format!(
                "/ws/dashboard is a WebSocket: open it with a WebSocket client ({})",
                rejection.body_text()
            ))
            .into_response();
        }
    };
    // Browsers always send `Origin` on WebSocket handshakes: pages of other sites are refused,
    // so the session cookie cannot be used from them.
    if !same_origin(&headers) {
        return ApiError::Forbidden(
            "the dashboard socket only accepts pages served by this router (Origin mismatch)"
                .into(),
        )
        .into_response();
    }
    upgrade.on_upgrade(move |socket| serve(socket, state, staff))
}

async fn serve(mut socket: WebSocket, state: AppState, staff: Staff) {
    // Subscribe before taking the picture, so nothing falls between the two.
    let mut frames = state.events.subscribe();
    let hello = {
        let snapshot = state.registry.snapshot();
        let stats = live_stats(&state);
        Frame::Hello {
            user: UserInfo {
                username: &staff.username,
                role: staff.role.as_str(),
            },
            nodes: snapshot.nodes().iter().map(|n| n.summary()).collect(),
            tasks: serde_json::to_value(state.tasks.list()).unwrap_or_default(),
            stats: &stats,
        }
        .encode()
    };
    if socket.send(Message::Text(hello)).await.is_err() {
        return;
    }
    tracing::debug!(user = %staff.username, "dashboard socket opened");
    let closing = state.events.closing();
    let mut session_check = tokio::time::interval(SESSION_CHECK);
    session_check.tick().await;
    loop {
        tokio::select! {
            _ = session_check.tick() => {
                if !state.auth.still_valid(&staff) {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: close_code::POLICY,
                            reason: "the session ended: log in again".into(),
                        })))
                        .await;
                    break;
                }
            }
            frame = frames.recv() => match frame {
                Ok(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "dashboard socket fell behind; asking it to resync");
                    let _ = socket.send(Message::Text(Frame::Resync.encode())).await;
                    break;
                }
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself; the page sends nothing else.
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            () = closing.cancelled() => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: close_code::AWAY,
                        reason: "llm-router is shutting down".into(),
                    })))
                    .await;
                break;
            }
        }
    }
    tracing::debug!(user = %staff.username, "dashboard socket closed");
}
