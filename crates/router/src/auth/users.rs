//! Users of the dashboard and the management API: admins manage, viewers read.

use std::sync::PoisonError;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Auth, AuthError, Staff, for_log, password};
use crate::store::{StoreOp, UserRow, unix_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages nodes, models, keys and users; sees stored request bodies.
    Admin,
    /// Reads the dashboard, fleet, stats and history (without bodies).
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// A user as the API shows it (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_at_ms: u64,
}

/// `POST /api/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
}

/// `PATCH /api/users/{id}` body: what to change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub password: Option<String>,
    pub role: Option<Role>,
}

impl User {
    pub fn new(username: String, password_hash: String, role: Role, now_ms: u64) -> User {
        User {
            id: uuid::Uuid::new_v4().to_string(),
            username,
            password_hash,
            role,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            username: self.username.clone(),
            role: self.role,
            created_at_ms: self.created_ms,
        }
    }

    pub fn row(&self) -> UserRow {
        UserRow {
            id: self.id.clone(),
            username: self.username.clone(),
            password_hash: self.password_hash.clone(),
            role: self.role.as_str().to_owned(),
            created_ms: self.created_ms,
            updated_ms: self.updated_ms,
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = String;

    fn try_from(row: UserRow) -> Result<User, String> {
        let role = Role::parse(&row.role)
            .ok_or_else(|| format!("user '{}' has unknown role '{}'", row.username, row.role))?;
        Ok(User {
            id: row.id,
            username: row.username,
            password_hash: row.password_hash,
            role,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
        })
    }
}

fn check_username(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(
            "'username' must be 1 to 64 characters among letters, digits and . _ - @".to_owned(),
        ))
    }
}

impl Auth {
    pub fn users(&self) -> Vec<UserView> {
        let mut users: Vec<UserView> = self.read_users().values().map(User::view).collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users
    }

    pub fn user(&self, id: &str) -> Option<UserView> {
        self.read_users().get(id).map(User::view)
    }

    pub async fn create_user(&self, new: NewUser) -> Result<UserView, AuthError> {
        check_username(&new.username)?;
        password::check_strength(&new.password).map_err(AuthError::Invalid)?;
        let hash = self.checker.hash(new.password).await?;
        let _change = self.changes.lock().await;
        if self
            .read_users()
            .values()
            .any(|u| u.username == new.username)
        {
            return Err(AuthError::Conflict(format!(
                "a user named '{}' exists already",
                new.username
            )));
        }
        let user = User::new(new.username, hash, new.role, unix_ms(SystemTime::now()));
        self.store
            .apply(&[StoreOp::UpsertUser(Box::new(user.row()))])
            .await?;
        tracing::info!(username = %user.username, role = user.role.as_str(), "user created");
        let view = user.view();
        self.write_users().insert(user.id.clone(), user);
        Ok(view)
    }

    /// Changes a user's role or password. A new password ends the user's sessions; the last
    /// admin cannot be demoted.
    pub async fn update_user(&self, id: &str, patch: UserPatch) -> Result<UserView, AuthError> {
        let hash = match patch.password {
            Some(p) => {
                password::check_strength(&p).map_err(AuthError::Invalid)?;
                Some(self.checker.hash(p).await?)
            }
            None => None,
        };
        let _change = self.changes.lock().await;
        let user = self
            .read_users()
            .get(id)
            .cloned()
            .ok_or_else(|| AuthError::UserNotFound(id.to_owned()))?;
        self.apply_update(user, patch.role, hash).await
    }

    /// Stores `user` with its new role and password hash; with a new password, the store drops
    /// its sessions in the same write, and memory in the same critical section (the caller holds
    /// the lock of changes, which logins take before creating a session).
    async fn apply_update(
        &self,
        mut user: User,
        role: Option<Role>,
        hash: Option<String>,
    ) -> Result<UserView, AuthError> {
        if let Some(role) = role {
            if user.role == Role::Admin && role != Role::Admin && self.admin_count() == 1 {
                return Err(AuthError::Conflict(
                    "this is the last admin: make another user admin first".to_owned(),
                ));
            }
            user.role = role;
        }
        let new_password = hash.is_some();
        if let Some(hash) = hash {
            user.password_hash = hash;
        }
        user.updated_ms = unix_ms(SystemTime::now());
        let mut ops = vec![StoreOp::UpsertUser(Box::new(user.row()))];
        if new_password {
            ops.push(StoreOp::DeleteSessionsOf(user.id.clone()));
        }
        self.store.apply(&ops).await?;
        tracing::info!(username = %user.username, role = user.role.as_str(), new_password, "user updated");
        let view = user.view();
        let id = user.id.clone();
        self.write_users().insert(id.clone(), user);
        if new_password {
            self.drop_sessions_of(&id);
        }
        Ok(view)
    }

    /// Deletes a user and its sessions; the last admin cannot be deleted.
    pub async fn delete_user(&self, id: &str) -> Result<(), AuthError> {
        let _change = self.changes.lock().await;
        let user = self
            .read_users()
            .get(id)
            .cloned()
            .ok_or_else(|| AuthError::UserNotFound(id.to_owned()))?;
        if user.role == Role::Admin && self.admin_count() == 1 {
            return Err(AuthError::Conflict(
                "this is the last admin and cannot be deleted".to_owned(),
            ));
        }
        self.store
            .apply(&[StoreOp::DeleteUser(user.id.clone())])
            .await?;
        self.drop_sessions_of(&user.id);
        self.write_users().remove(&user.id);
        tracing::info!(username = %user.username, "user deleted");
        Ok(())
    }

    /// Changes the caller's own password after checking the current one, throttled like a login
    /// (per `client` address and per account). The change is refused if the session ended or the
    /// password changed while the current one was being checked.
    pub async fn change_own_password(
        &self,
        staff: &Staff,
        current: &str,
        new: String,
        client: &str,
    ) -> Result<(), AuthError> {
        password::check_strength(&new).map_err(AuthError::Invalid)?;
        let attempt = self
            .limiter
            .reserve(client, &staff.username, Instant::now())
            .map_err(AuthError::TooManyLoginAttempts)?;
        let phc = self
            .read_users()
            .get(&staff.user_id)
            .map(|u| u.password_hash.clone());
        let Some(phc) = phc else {
            self.limiter.give_back(attempt);
            return Err(AuthError::InvalidSession);
        };
        match self.checker.verify(current.to_owned(), phc.clone()).await {
            Ok(true) => self.limiter.succeeded(attempt),
            Ok(false) => {
                tracing::info!(
                    username = %staff.username,
                    client = %for_log(client),
                    "password change: wrong current password"
                );
                return Err(AuthError::InvalidCredentials);
            }
            Err(e) => {
                self.limiter.give_back(attempt);
                return Err(e);
            }
        }
        let hash = self.checker.hash(new).await?;
        let _change = self.changes.lock().await;
        let user = self
            .read_users()
            .get(&staff.user_id)
            .filter(|u| u.password_hash == phc)
            .cloned();
        match user {
            Some(user) if self.still_valid(staff) => {
                self.apply_update(user, None, Some(hash)).await.map(drop)
            }
            _ => Err(AuthError::InvalidSession),
        }
    }

    fn admin_count(&self) -> usize {
        self.read_users()
            .values()
            .filter(|u| u.role == Role::Admin)
            .count()
    }

    fn drop_sessions_of(&self, user_id: &str) {
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, s| s.user_id != user_id);
    }

    fn write_users(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, std::collections::HashMap<String, User>> {
        self.users.write().unwrap_or_else(PoisonError::into_inner)
    }
}
