//! The binding update rules of RFC 3261 §10.3 steps 6–8, with RFC 5626 instance/reg-id identity:
//! pure functions over one address of record's bindings, with time passed in. The whole request
//! applies or none of it does.

use super::binding::{intern_user_agent, Binding, Flow, Tag};

/// One contact of a REGISTER, with its granted expiry already decided (0 = remove).
#[derive(Debug, Clone)]
pub struct ContactUpdate {
    pub key: String,
    pub contact: String,
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
    pub q: Option<f32>,
    pub expires: u32,
}

/// What a REGISTER asks for.
#[derive(Debug, Clone)]
pub enum ContactChange {
    /// No Contact: list the bindings.
    Query,
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
    Update(Vec<ContactUpdate>),
}

/// The request-wide facts every binding it touches records.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub call_id: String,
    pub cseq: u32,
    pub branch: String,
    pub flow: Flow,
    pub user_agent: Option<String>,
    pub path: Vec<String>,
    pub device: Option<String>,
    pub user: Option<String>,
    pub now: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// Same Call-ID, CSeq not higher than the stored one (§10.3 step 7): the update is aborted.
    #[error("CSeq out of order for an existing binding")]
    OutOfOrder,
}

/// Why a binding left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Unregistered,
    /// Pushed out by `max_contacts_per_aor`.
    Evicted,
    /// Replaced by a binding of the same instance from another contact address.
    Replaced,
}

/// What one REGISTER changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub added: Vec<Binding>,
    pub refreshed: Vec<Binding>,
    pub removed: Vec<(Binding, Removal)>,
    /// Nothing changed because the request repeats one already applied (a retransmission).
    pub retransmission: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.refreshed.is_empty() && self.removed.is_empty()
    }
}

/// Applies a REGISTER to the bindings of its address of record.
pub fn apply(
    bindings: &mut Vec<Binding>,
    change: &ContactChange,
    facts: &RequestFacts,
    max_contacts: usize,
) -> Result<Changes, UpdateError> {
    match change {
        ContactChange::Query => Ok(Changes::default()),
        ContactChange::RemoveAll => remove_all(bindings, facts),
        ContactChange::Update(updates) => update(bindings, updates, facts, max_contacts),
    }
}

/// The §10.3 step 7 check for one existing binding: Ok(true) when the request is a retransmission
/// of the one that set it.
fn check_order(existing: &Binding, facts: &RequestFacts) -> Result<bool, UpdateError> {
    if existing.call_id != facts.call_id || facts.cseq > existing.cseq {
        return Ok(false);
    }
    if facts.cseq == existing.cseq && facts.branch == existing.branch && !facts.branch.is_empty() {
        return Ok(true);
    }
    Err(UpdateError::OutOfOrder)
}

fn remove_all(bindings: &mut Vec<Binding>, facts: &RequestFacts) -> Result<Changes, UpdateError> {
    for b in bindings.iter() {
        if check_order(b, facts)? {
            return Ok(Changes { retransmission: true, ..Changes::default() });
        }
    }
    let removed = bindings.drain(..).map(|b| (b, Removal::Unregistered)).collect();
    Ok(Changes { removed, ..Changes::default() })
}

fn update(
    bindings: &mut Vec<Binding>,
    updates: &[ContactUpdate],
    facts: &RequestFacts,
    max_contacts: usize,
) -> Result<Changes, UpdateError> {
    // First pass: the order check for every binding this request touches, before changing any.
    let mut retransmitted = 0;
    for u in updates {
        if let Some(existing) = bindings.iter().find(|b| b.key == u.key) {
            if check_order(existing, facts)? {
                retransmitted += 1;
            }
        }
    }
    if retransmitted > 0 && retransmitted == updates.len() {
        return Ok(Changes { retransmission: true, ..Changes::default() });
    }
    let mut changes = Changes::default();
    for u in updates {
        let position = bindings.iter().position(|b| b.key == u.key);
        match (position, u.expires) {
            (Some(i), 0) => changes.removed.push((bindings.remove(i), Removal::Unregistered)),
            (None, 0) => {}
            (Some(i), _) => {
                let old = &bindings[i];
                let replaced_contact = old.contact != u.contact;
                let fresh = new_binding(u, facts, old.registered_at);
                if replaced_contact {
                    changes.removed.push((std::mem::replace(&mut bindings[i], fresh.clone()), Removal::Replaced));
                    changes.added.push(fresh);
                } else {
                    bindings[i] = fresh.clone();
                    changes.refreshed.push(fresh);
                }
            }
            (None, _) => {
                let fresh = new_binding(u, facts, facts.now);
                // Most addresses of record hold one binding: grow by one, not to Vec's default
                // of four (a binding is ~350 bytes; memory per phone is a bar).
                bindings.reserve_exact(1);
                bindings.push(fresh.clone());
                changes.added.push(fresh);
            }
        }
    }
    while bindings.len() > max_contacts {
        let oldest = bindings
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| (b.registered_at, b.expires_at))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let evicted = bindings.remove(oldest);
        changes.added.retain(|b| b.key != evicted.key);
        changes.refreshed.retain(|b| b.key != evicted.key);
        changes.removed.push((evicted, Removal::Evicted));
    }
    Ok(changes)
}

fn new_binding(u: &ContactUpdate, facts: &RequestFacts, registered_at: u64) -> Binding {
    Binding {
        key: u.key.clone(),
        contact: u.contact.clone(),
        instance: u.instance.clone(),
        reg_id: u.reg_id,
        q: u.q,
        call_id: Tag::of(&facts.call_id),
        cseq: facts.cseq,
        branch: Tag::of(&facts.branch),
        expires_at: facts.now + u.expires as u64,
        registered_at,
        flow: facts.flow,
        user_agent: facts.user_agent.as_deref().map(intern_user_agent),
        path: facts.path.clone(),
        device: facts.device.clone(),
        user: facts.user.clone(),
    }
}

/// The key of a binding within its address of record: the instance (and reg-id) when present, so
/// a phone that moves keeps one binding (RFC 5626 §6); else the contact URI.
pub fn binding_key(contact_uri: &str, instance: Option<&str>, reg_id: Option<u32>) -> String {
    match (instance, reg_id) {
        (Some(i), Some(r)) => format!("{i};reg-id={r}"),
        (Some(i), None) => i.to_owned(),
        _ => contact_uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::binding::TransportKind;
    use super::*;

    fn facts(call_id: &str, cseq: u32, branch: &str, now: u64) -> RequestFacts {
        RequestFacts {
            call_id: call_id.into(),
            cseq,
            branch: branch.into(),
            flow: Flow {
                transport: TransportKind::Udp,
                remote: "127.0.0.1:5062".parse().unwrap(),
                local: "127.0.0.1:5060".parse().unwrap(),
                connection: 0,
            },
            user_agent: None,
            path: vec![],
            device: None,
            user: None,
            now,
        }
    }

    fn contact(uri: &str, expires: u32) -> ContactUpdate {
        ContactUpdate {
            key: binding_key(uri, None, None),
            contact: uri.into(),
            instance: None,
            reg_id: None,
            q: None,
            expires,
        }
    }

    #[test]
    fn add_refresh_remove() {
        let mut b = vec![];
        let c =
            apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 60)]), &facts("x", 1, "b1", 100), 10).unwrap();
        assert_eq!(c.added.len(), 1);
        assert_eq!(b[0].expires_at, 160);
        let c = apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 120)]), &facts("x", 2, "b2", 110), 10)
            .unwrap();
        assert_eq!(c.refreshed.len(), 1);
        assert_eq!(b[0].expires_at, 230);
        assert_eq!(b[0].registered_at, 100);
        let c =
            apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 0)]), &facts("x", 3, "b3", 120), 10).unwrap();
        assert_eq!(c.removed.len(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn out_of_order_cseq_aborts_the_whole_request() {
        let mut b = vec![];
        apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 60)]), &facts("x", 5, "b1", 100), 10).unwrap();
        let err = apply(
            &mut b,
            &ContactChange::Update(vec![contact("sip:new@2", 60), contact("sip:a@1", 60)]),
            &facts("x", 4, "b0", 101),
            10,
        );
        assert_eq!(err.unwrap_err(), UpdateError::OutOfOrder);
        assert_eq!(b.len(), 1);
        // Another Call-ID may use any CSeq.
        apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 60)]), &facts("y", 1, "b2", 102), 10).unwrap();
        assert_eq!(b[0].call_id, "y");
    }

    #[test]
    fn retransmission_changes_nothing() {
        let mut b = vec![];
        apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 60)]), &facts("x", 5, "b1", 100), 10).unwrap();
        let c =
            apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 60)]), &facts("x", 5, "b1", 101), 10).unwrap();
        assert!(c.retransmission && c.is_empty());
        assert_eq!(b[0].expires_at, 160);
    }

    #[test]
    fn instance_replaces_across_contact_changes_and_oldest_is_evicted() {
        let mut b = vec![];
        let inst = |uri: &str| ContactUpdate {
            key: binding_key(uri, Some("<urn:uuid:1>"), Some(1)),
            contact: uri.into(),
            instance: Some("<urn:uuid:1>".into()),
            reg_id: Some(1),
            q: None,
            expires: 60,
        };
        apply(&mut b, &ContactChange::Update(vec![inst("sip:a@10.0.0.1")]), &facts("x", 1, "b1", 100), 2).unwrap();
        let c =
            apply(&mut b, &ContactChange::Update(vec![inst("sip:a@10.0.0.2")]), &facts("y", 1, "b2", 101), 2).unwrap();
        assert_eq!((b.len(), c.removed[0].1), (1, Removal::Replaced));
        assert_eq!(b[0].contact, "sip:a@10.0.0.2");
        apply(&mut b, &ContactChange::Update(vec![contact("sip:b@1", 60)]), &facts("z", 1, "b3", 102), 2).unwrap();
        let c =
            apply(&mut b, &ContactChange::Update(vec![contact("sip:c@1", 60)]), &facts("w", 1, "b4", 103), 2).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(c.removed[0].1, Removal::Evicted);
        assert_eq!(c.removed[0].0.contact, "sip:a@10.0.0.2");
    }

    #[test]
    fn remove_all_and_query() {
        let mut b = vec![];
        apply(
            &mut b,
            &ContactChange::Update(vec![contact("sip:a@1", 60), contact("sip:b@1", 60)]),
            &facts("x", 1, "b1", 100),
            10,
        )
        .unwrap();
        assert!(apply(&mut b, &ContactChange::Query, &facts("x", 2, "b2", 100), 10).unwrap().is_empty());
        let c = apply(&mut b, &ContactChange::RemoveAll, &facts("x", 3, "b3", 100), 10).unwrap();
        assert_eq!(c.removed.len(), 2);
        assert!(b.is_empty());
    }
}
