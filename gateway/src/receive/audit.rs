//! Phase "audit": one row per ref of the push, written before the repo is touched and settled
//! at the end, so that even a crash leaves a trace (recovered as failed at startup).

use super::{Identity, RefUpdate};
use crate::store::audit::{self, NewEntry, State};
use crate::store::{Store, StoreError};

fn entry(push_id: &str, identity: &Identity, repo: &str, update: &RefUpdate) -> NewEntry {
    let decision = update.decision.as_ref();
    NewEntry {
        push_id: Some(push_id.into()),
        user_name: Some(identity.user.clone()),
        key_fingerprint: Some(identity.key_fingerprint.clone()),
        peer_addr: Some(identity.peer.to_string()),
        repo: Some(repo.into()),
        ref_name: Some(update.name.clone()),
        old_rev: update.old.clone(),
        new_rev: update.new.clone(),
        op: update.op.map(|op| op.to_string()),
        decision: if decision.is_some_and(|d| d.allowed) {
            "allow"
        } else {
            "deny"
        }
        .into(),
        matched_rule: decision.and_then(|d| d.matched_rule),
        reason: decision.map(|d| d.reason.clone()),
    }
}

/// Writes the rows of a decided push in one transaction. Allowed refs start `in_progress`
/// (their ids are stored on the updates); denied refs are settled as `rejected` at once.
/// When `refused` is set, allowed refs are rejected too (all-or-nothing) with that reason.
pub async fn record(
    store: &Store,
    push_id: &str,
    identity: &Identity,
    repo: &str,
    updates: &mut [RefUpdate],
    refused: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    for update in updates.iter_mut() {
        let mut row = entry(push_id, identity, repo, update);
        let allowed = update.decision.as_ref().is_some_and(|d| d.allowed);
        let state = match (allowed, refused) {
            (true, None) => State::InProgress,
            (true, Some(why)) => {
                row.reason = Some(why.to_string());
                State::Rejected
            }
            (false, _) => State::Rejected,
        };
        update.audit_id = Some(audit::append(&mut tx, &row, state).await?);
        if state == State::Rejected {
            crate::metrics::METRICS.denied(row.reason.as_deref().unwrap_or(""));
            crate::metrics::METRICS.ref_settled("rejected");
        }
    }
    tx.commit().await.map_err(StoreError::from)
}

/// Settles every in-progress row of the push.
pub async fn settle(store: &Store, updates: &[RefUpdate], state: State, reason: Option<&str>) {
    let result = async {
        let mut tx = store.begin().await?;
        for id in updates.iter().filter_map(|u| u.audit_id) {
            audit::settle(&mut tx, id, state, reason).await?;
        }
        tx.commit().await.map_err(StoreError::from)
    }
    .await;
    match result {
        Ok(()) => {
            for _ in updates.iter().filter(|u| u.audit_id.is_some()) {
                crate::metrics::METRICS.ref_settled(state.as_str());
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot settle audit rows"),
    }
}

/// Records a failed operator hook (no ref involved): who pushed, which repo, why.
pub async fn hook_failed(store: &Store, identity: &Identity, repo: &str, hook: &str, reason: &str) {
    let row = NewEntry {
        user_name: Some(identity.user.clone()),
        key_fingerprint: Some(identity.key_fingerprint.clone()),
        peer_addr: Some(identity.peer.to_string()),
        repo: Some(repo.into()),
        op: Some(hook.into()),
        decision: "allow".into(),
        reason: Some(reason.into()),
        ..Default::default()
    };
    let result = async { audit::append(&mut *store.conn().await?, &row, State::Failed).await }.await;
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot audit a hook failure");
    }
}
