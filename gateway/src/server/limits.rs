//! Session counting: a total cap on connections and a per-user cap on authenticated sessions.
//! Slots are RAII guards, so a session that ends in any way gives its slot back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct SessionLimits {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_user: HashMap<String, usize>,
}

/// Held for the life of a connection.
pub struct ConnectionSlot {
    inner: Arc<Mutex<Counts>>,
}

/// Held for the life of an authenticated session of one user.
pub struct UserSlot {
    inner: Arc<Mutex<Counts>>,
    user: String,
}

impl SessionLimits {
    pub fn connection(&self, max: usize) -> Option<ConnectionSlot> {
        let mut counts = self.inner.lock().expect("limits lock");
        if counts.total >= max {
            return None;
        }
        counts.total += 1;
        Some(ConnectionSlot {
            inner: self.inner.clone(),
        })
    }

    pub fn user(&self, user: &str, max: usize) -> Option<UserSlot> {
        let mut counts = self.inner.lock().expect("limits lock");
        let n = counts.per_user.entry(user.to_string()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(UserSlot {
            inner: self.inner.clone(),
            user: user.to_string(),
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.inner.lock().expect("limits lock").total -= 1;
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self.inner.lock().expect("limits lock");
        if let Some(n) = counts.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                counts.per_user.remove(&self.user);
            }
        }
    }
}
