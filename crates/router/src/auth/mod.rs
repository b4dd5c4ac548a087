//! Who may do what: users (admin, viewer) with argon2-hashed passwords and login sessions, API keys
//! for inference, and the enrolment token nodes register with.
//!
//! [`Auth`] holds every credential in memory (loaded from the [`Store`] at start-up) so checking one
//! never touches the database; a change is written to the store first and applied in memory once
//! it is durable. Secrets are kept only as digests (tokens, keys) or argon2 hashes (passwords).
//! The route guards that check a request's credential are at the HTTP edge (`api::guard`); this
//! module only answers whether a credential is good.

mod error;
mod headers;
mod keys;
mod limiter;
mod origin;
mod password;
mod principal;
mod users;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use axum::http::HeaderMap;
use llm_router_protocol::Secret;

pub use error::AuthError;
pub use headers::{SESSION_COOKIE, bearer};
pub use keys::{ApiKey, ApiKeyView, NewApiKey, Spend};
pub use limiter::LoginLimiter;
pub use origin::{cookie_write, same_origin};
pub use principal::{KeyScope, Staff};
pub use users::{NewUser, Role, User, UserPatch, UserView};

use crate::secrets::{Digest, SESSION_PREFIX, constant_time_eq, digest, new_token};
use crate::store::{
    ApiKeyRow, Credentials, HistorySink, SessionRow, Store, StoreOp, UserRow, unix_ms,
};
use headers::{api_key, session_cookie};

/// Settings key of a generated enrolment token.
/// Where routers before hashed storage kept a generated enrolment token in clear; read once and
/// replaced by its digest.
const ENROLLMENT_SETTING: &str = "enrollment_token";
/// The SHA-256 (hex) of a generated enrolment token: the token itself is never stored.
const ENROLLMENT_DIGEST_SETTING: &str = "enrollment_token_sha256";

/// Authentication settings (part of [`Config`](crate::Config)).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Name of the first admin, created when there is no user yet.
    pub admin_username: String,
    /// Password of the first admin; generated and printed once when unset.
    pub admin_password: Option<Secret>,
    /// Token nodes must present to register; generated, stored and printed once when unset.
    pub enrollment_token: Option<Secret>,
    /// Serve `/v1/*` and the Ollama routes without an API key.
    pub allow_anonymous_inference: bool,
    pub session_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            admin_username: "admin".to_owned(),
            admin_password: None,
            enrollment_token: None,
            allow_anonymous_inference: false,
            session_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Secrets generated at start-up, to show the operator once.
#[derive(Debug, Default)]
pub struct Generated {
    pub admin: Option<(String, Secret)>,
    pub enrollment_token: Option<Secret>,
}

#[derive(Debug, Clone)]
struct Session {
    user_id: String,
    expires_ms: u64,
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    pub token: Secret,
    pub expires_ms: u64,
    pub user: UserView,
}

pub struct Auth {
    store: Arc<dyn Store>,
    /// Writes that may be lost without harm (API key last-use times).
    sink: HistorySink,
    users: RwLock<HashMap<String, User>>,
    sessions: RwLock<HashMap<Digest, Session>>,
    /// Read on every inference request: lock-free.
    keys: ArcSwap<HashMap<Digest, Arc<ApiKey>>>,
    enrollment: Enrollment,
    allow_anonymous_inference: bool,
    session_ttl: Duration,
    limiter: LoginLimiter,
    /// Bounds the password hashes computed at once.
    checker: password::Checker,
    /// Hash of a random password, verified against when the user is unknown.
    decoy_hash: String,
    /// Serialises changes, so two admins cannot interleave (e.g. both demote the last two admins),
    /// and new sessions with password changes.
    changes: tokio::sync::Mutex<()>,
}

impl Auth {
    /// Loads credentials from `store`; creates the first admin and the enrolment token when there
    /// are none. Returns what was generated, for the operator to see once.
    pub async fn open(
        store: Arc<dyn Store>,
        sink: HistorySink,
        config: &AuthConfig,
    ) -> Result<(Auth, Generated), AuthError> {
        let now_ms = unix_ms(SystemTime::now());
        let Credentials {
            users,
            sessions,
            api_keys,
            settings,
            key_spend: _,
        } = store.credentials(now_ms).await?;
        let mut generated = Generated::default();
        let mut users = restore_users(users);
        if users.is_empty() {
            let (admin, password) = first_admin(store.as_ref(), config, now_ms).await?;
            generated.admin = password.map(|p| (admin.username.clone(), p));
            users.insert(admin.id.clone(), admin);
        } else if config.admin_password.is_some() {
            tracing::info!(
                "users exist already: the configured admin password is used only to create the first admin"
            );
        }
        let (enrollment, generated_token) =
            enrollment_token(store.as_ref(), config, &settings).await?;
        generated.enrollment_token = generated_token;
        if config.allow_anonymous_inference {
            tracing::warn!(
                "inference authentication is OFF (allow_anonymous_inference): anyone who can reach the router can use its models"
            );
        }
        let auth = Auth {
            store,
            sink,
            users: RwLock::new(users),
            sessions: RwLock::new(restore_sessions(sessions)),
            keys: ArcSwap::from_pointee(restore_keys(api_keys)),
            enrollment,
            allow_anonymous_inference: config.allow_anonymous_inference,
            session_ttl: config.session_ttl,
            limiter: LoginLimiter::default(),
            checker: password::Checker::default(),
            decoy_hash: password::hash(new_token("")).await?,
            changes: tokio::sync::Mutex::new(()),
        };
        Ok((auth, generated))
    }

    /// The enrolment token, when the router knows it: configured, or generated by this run. A
    /// generated token is stored only as a digest, so after a restart it is not known any more.
    pub fn enrollment_token(&self) -> Option<&Secret> {
        self.enrollment.known.as_ref()
    }

    /// Checks a node's enrolment token (digests compared in constant time).
    pub fn check_enrollment(&self, token: Option<&str>) -> Result<(), AuthError> {
        match token {
            Some(t) if constant_time_eq(&digest(t), &self.enrollment.digest) => Ok(()),
            Some(_) => Err(AuthError::InvalidEnrollmentToken),
            None => Err(AuthError::MissingEnrollmentToken),
        }
    }

    /// Logs `username` in from `client` (an address, for throttling).
    ///
    /// The attempt is counted as failed before argon2 runs (and given back when the password is
    /// right), so parallel guesses cannot outrun the limiter. The session is created under the
    /// lock changes take, and only if the password hash checked is still the user's: a login that
    /// raced a password change either ends before it (and its session with the change) or fails.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<LoggedIn, AuthError> {
        let attempt = self
            .limiter
            .reserve(client, username, Instant::now())
            .map_err(AuthError::TooManyLoginAttempts)?;
        let user = self
            .read_users()
            .values()
            .find(|u| u.username == username)
            .cloned();
        // An unknown user costs the same argon2 work as a wrong password.
        let phc = user
            .as_ref()
            .map_or_else(|| self.decoy_hash.clone(), |u| u.password_hash.clone());
        let matches = match self.checker.verify(password.to_owned(), phc).await {
            Ok(matches) => matches,
            Err(e) => {
                // Not checked: the attempt does not count.
                self.limiter.give_back(attempt);
                return Err(e);
            }
        };
        let _change = self.changes.lock().await;
        let Some(user) = user.filter(|u| matches && self.hash_is_current(u)) else {
            tracing::info!(
                username = %for_log(username),
                client = %for_log(client),
                "login failed"
            );
            return Err(AuthError::InvalidCredentials);
        };
        self.limiter.succeeded(attempt);
        let token = new_token(SESSION_PREFIX);
        let now_ms = unix_ms(SystemTime::now());
        let expires_ms = now_ms + u64::try_from(self.session_ttl.as_millis()).unwrap_or(u64::MAX);
        let d = digest(&token);
        self.store
            .apply(&[StoreOp::InsertSession(Box::new(SessionRow {
                token_hash: hex::encode(d),
                user_id: user.id.clone(),
                created_ms: now_ms,
                expires_ms,
            }))])
            .await?;
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                d,
                Session {
                    user_id: user.id.clone(),
                    expires_ms,
                },
            );
        tracing::info!(username = %user.username, role = user.role.as_str(), "logged in");
        Ok(LoggedIn {
            token: Secret::new(token),
            expires_ms,
            user: user.view(),
        })
    }

    /// Whether `user` (a copy) still exists with the same password hash; called under the lock
    /// of changes.
    fn hash_is_current(&self, user: &User) -> bool {
        self.read_users()
            .get(&user.id)
            .is_some_and(|u| u.password_hash == user.password_hash)
    }

    /// Ends the session `staff` came with.
    pub async fn logout(&self, staff: &Staff) -> Result<(), AuthError> {
        self.store
            .apply(&[StoreOp::DeleteSession(hex::encode(staff.session))])
            .await?;
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&staff.session);
        Ok(())
    }

    /// The user behind a session token from `Authorization: Bearer` or the session cookie.
    pub fn staff(&self, headers: &HeaderMap) -> Result<Staff, AuthError> {
        let token = bearer(headers)
            .filter(|t| t.starts_with(SESSION_PREFIX))
            .or_else(|| session_cookie(headers))
            .ok_or(AuthError::Unauthenticated)?;
        self.session(digest(token))
    }

    /// True while the session `staff` came with is still valid (not logged out, expired, or its
    /// user deleted); long-lived connections check it from time to time.
    pub fn still_valid(&self, staff: &Staff) -> bool {
        self.session(staff.session).is_ok()
    }

    fn session(&self, d: Digest) -> Result<Staff, AuthError> {
        let session = self
            .sessions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&d)
            .cloned()
            .ok_or(AuthError::InvalidSession)?;
        if session.expires_ms <= unix_ms(SystemTime::now()) {
            return Err(AuthError::InvalidSession);
        }
        let users = self.read_users();
        let user = users
            .get(&session.user_id)
            .ok_or(AuthError::InvalidSession)?;
        Ok(Staff {
            user_id: user.id.clone(),
            username: user.username.clone(),
            role: user.role,
            session: d,
        })
    }

    /// What an inference request may use: `Ok(KeyScope::Anonymous)` when anonymous inference is
    /// allowed and no key was sent; otherwise the key must be valid.
    pub fn inference_scope(&self, headers: &HeaderMap) -> Result<KeyScope, AuthError> {
        match api_key(headers) {
            None if self.allow_anonymous_inference => Ok(KeyScope::Anonymous),
            None => Err(AuthError::MissingApiKey),
            Some(key) => self.api_key(key).map(KeyScope::Key),
        }
    }

    /// Checks an API key and records its use.
    pub fn api_key(&self, key: &str) -> Result<Arc<ApiKey>, AuthError> {
        let found = self
            .keys
            .load()
            .get(&digest(key))
            .cloned()
            .ok_or(AuthError::InvalidApiKey("unknown key"))?;
        let now_ms = unix_ms(SystemTime::now());
        found.usable_at(now_ms).map_err(AuthError::InvalidApiKey)?;
        if found.touch(now_ms) {
            self.sink.send(StoreOp::TouchApiKey {
                id: found.id.clone(),
                at_ms: now_ms,
            });
        }
        Ok(found)
    }

    /// Whether the request carries a valid API key (for `/metrics`).
    pub fn scrape_key(&self, headers: &HeaderMap) -> bool {
        api_key(headers).is_some_and(|key| self.api_key(key).is_ok())
    }

    fn read_users(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, User>> {
        self.users.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Characters of a client-sent string (a username, an address) written to the log at most.
const MAX_LOGGED_CHARS: usize = 64;

/// `text` as logged: its first [`MAX_LOGGED_CHARS`] characters, a cut marked with `…`.
fn for_log(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_LOGGED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]).into(),
        None => text.into(),
    }
}

/// The stored users, by id; a row that cannot be read is skipped (and logged).
fn restore_users(rows: Vec<UserRow>) -> HashMap<String, User> {
    rows.into_iter()
        .filter_map(|row| match User::try_from(row) {
            Ok(user) => Some((user.id.clone(), user)),
            Err(e) => {
                tracing::error!(error = %e, "skipping a stored user");
                None
            }
        })
        .collect()
}

/// Creates and stores the first admin, with the configured password or a generated one (then
/// returned, to be shown once).
async fn first_admin(
    store: &dyn Store,
    config: &AuthConfig,
    now_ms: u64,
) -> Result<(User, Option<Secret>), AuthError> {
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), None),
        None => {
            let p = Secret::new(new_token("")[..24].to_owned());
            (p.clone(), Some(p))
        }
    };
    password::check_strength(password.expose()).map_err(AuthError::AdminPassword)?;
    let admin = User::new(
        config.admin_username.clone(),
        password::hash(password.expose().to_owned()).await?,
        Role::Admin,
        now_ms,
    );
    store
        .apply(&[StoreOp::UpsertUser(Box::new(admin.row()))])
        .await?;
    tracing::info!(username = %admin.username, "created the first admin user");
    Ok((admin, generated))
}

/// The enrolment token as the router holds it: its digest, and the token itself only while it is
/// known (configured, or generated by this run).
struct Enrollment {
    digest: Digest,
    known: Option<Secret>,
}

/// The enrolment token: the configured one, else the stored digest of a generated one, else a new
/// one (its digest stored; the token returned a second time to be shown once). A token stored in
/// clear by an older router is replaced by its digest.
async fn enrollment_token(
    store: &dyn Store,
    config: &AuthConfig,
    settings: &[(String, String)],
) -> Result<(Enrollment, Option<Secret>), AuthError> {
    let setting = |key: &str| {
        settings
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    if let Some(token) = config.enrollment_token.as_ref().filter(|t| !t.is_empty()) {
        let enrollment = Enrollment {
            digest: digest(token.expose()),
            known: Some(token.clone()),
        };
        return Ok((enrollment, None));
    }
    let stored_digest = setting(ENROLLMENT_DIGEST_SETTING).and_then(|hex_digest| {
        let mut d: Digest = [0; 32];
        hex::decode_to_slice(hex_digest, &mut d).ok().map(|()| d)
    });
    let in_clear = setting(ENROLLMENT_SETTING);
    if let (Some(d), None) = (stored_digest, in_clear) {
        let enrollment = Enrollment {
            digest: d,
            known: None,
        };
        return Ok((enrollment, None));
    }
    let (token, generated) = match in_clear {
        Some(old) => (Secret::new(old), None),
        None => {
            let token = Secret::new(new_token("llme_"));
            (token.clone(), Some(token))
        }
    };
    let d = digest(token.expose());
    store
        .apply(&[
            StoreOp::SetSetting {
                key: ENROLLMENT_DIGEST_SETTING.to_owned(),
                value: hex::encode(d),
            },
            // Blank (there is no delete of a setting): the clear text is gone from the row.
            StoreOp::SetSetting {
                key: ENROLLMENT_SETTING.to_owned(),
                value: String::new(),
            },
        ])
        .await?;
    if in_clear.is_some() {
        tracing::info!("the stored enrolment token is now kept as a digest only");
    }
    let enrollment = Enrollment {
        digest: d,
        known: Some(token),
    };
    Ok((enrollment, generated))
}

/// The stored sessions by token digest; a row whose digest is not hex is skipped.
fn restore_sessions(rows: Vec<SessionRow>) -> HashMap<Digest, Session> {
    rows.into_iter()
        .filter_map(
            |SessionRow {
                 token_hash,
                 user_id,
                 expires_ms,
                 ..
             }| {
                let mut d: Digest = [0; 32];
                hex::decode_to_slice(&token_hash, &mut d).ok()?;
                Some((
                    d,
                    Session {
                        user_id,
                        expires_ms,
                    },
                ))
            },
        )
        .collect()
}

/// The stored API keys by digest; a row that cannot be read is skipped (and logged).
fn restore_keys(rows: Vec<ApiKeyRow>) -> HashMap<Digest, Arc<ApiKey>> {
    rows.into_iter()
        .filter_map(|row| match ApiKey::from_row(row) {
            Ok((d, key)) => Some((d, Arc::new(key))),
            Err(e) => {
                tracing::error!(error = %e, "skipping a stored API key");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_strings_are_logged_capped_with_the_cut_marked() {
        assert_eq!(for_log("admin"), "admin");
        let exact = "a".repeat(MAX_LOGGED_CHARS);
        assert_eq!(for_log(&exact), exact);
        let long = "é".repeat(5 * 1024 * 1024);
        let logged = for_log(&long);
        assert_eq!(logged.chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(logged.ends_with("é…"));
    }
}
