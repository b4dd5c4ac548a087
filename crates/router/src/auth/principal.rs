//! Who a request comes from, once its credential was checked: a logged-in [`Staff`] member, or
//! the [`KeyScope`] of an inference request.

use std::sync::Arc;

use super::{ApiKey, AuthError, Role};
use crate::secrets::Digest;

/// The logged-in user a request came from.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    /// Digest of the session token, to end this session on logout.
    pub(super) session: Digest,
}

impl Staff {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// What an inference request may use.
#[derive(Debug, Clone)]
pub enum KeyScope {
    /// No key, and the router allows anonymous inference.
    Anonymous,
    Key(Arc<ApiKey>),
}

impl KeyScope {
    /// `Err(ModelNotAllowed)` when the key is limited to other models.
    pub fn check(&self, model: &str) -> Result<(), AuthError> {
        match self {
            KeyScope::Key(key) if !key.permits(model) => {
                Err(AuthError::ModelNotAllowed(model.to_owned()))
            }
            _ => Ok(()),
        }
    }

    pub fn permits(&self, model: &str) -> bool {
        self.check(model).is_ok()
    }
}
