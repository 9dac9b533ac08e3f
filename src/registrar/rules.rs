//! The binding update rules of RFC 3261 §10.3 steps 6–8, with RFC 5626 instance/reg-id identity:
//! pure functions over one address of record's bindings, with time passed in. The whole request
//! applies or none of it does.

use super::binding::{intern_user_agent, Binding, Flow, Tag};
use crate::sip::Text;

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
    pub call_id: Text,
    pub cseq: u32,
    pub branch: Text,
    pub flow: Flow,
    pub user_agent: Option<Text>,
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
    /// Every binding this request changed or removed, as it was before: what [`undo`] puts back
    /// if the store cannot keep the request.
    pub previous: Vec<Binding>,
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
    if existing.call_id != *facts.call_id || facts.cseq > existing.cseq {
        return Ok(false);
    }
    if facts.cseq == existing.cseq && existing.branch == *facts.branch && !facts.branch.is_empty() {
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
    let previous = std::mem::take(bindings);
    let removed = previous.iter().map(|b| (b.clone(), Removal::Unregistered)).collect();
    Ok(Changes { removed, previous, ..Changes::default() })
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
        apply_update(bindings, u, facts, &mut changes);
    }
    evict_oldest(bindings, max_contacts, &mut changes);
    Ok(changes)
}

/// One contact of the request, matched by its key: removed (expires 0), refreshed (same contact
/// URI), replaced (same `+sip.instance`, new contact URI) or added.
fn apply_update(bindings: &mut Vec<Binding>, u: &ContactUpdate, facts: &RequestFacts, changes: &mut Changes) {
    let position = bindings.iter().position(|b| b.key == u.key);
    match (position, u.expires) {
        (Some(i), 0) => {
            let old = bindings.remove(i);
            changes.removed.push((old.clone(), Removal::Unregistered));
            changes.previous.push(old);
        }
        (None, 0) => {}
        (Some(i), _) => {
            let replaced_contact = bindings[i].contact != u.contact;
            let fresh = new_binding(u, facts, bindings[i].registered_at);
            let old = std::mem::replace(&mut bindings[i], fresh.clone());
            if replaced_contact {
                changes.removed.push((old.clone(), Removal::Replaced));
                changes.added.push(fresh);
            } else {
                changes.refreshed.push(fresh);
            }
            changes.previous.push(old);
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

/// Over `max_contacts`: the oldest bindings (first registered, then first to expire) go, and
/// `changes` says so (an evicted binding this request added is no longer "added").
fn evict_oldest(bindings: &mut Vec<Binding>, max_contacts: usize, changes: &mut Changes) {
    while bindings.len() > max_contacts {
        let oldest = bindings
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| (b.registered_at, b.expires_at))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let evicted = bindings.remove(oldest);
        let untouched = !changes.previous.iter().any(|p| p.key == evicted.key)
            && !changes.added.iter().any(|b| b.key == evicted.key);
        if untouched {
            changes.previous.push(evicted.clone());
        }
        changes.added.retain(|b| b.key != evicted.key);
        changes.refreshed.retain(|b| b.key != evicted.key);
        changes.removed.push((evicted, Removal::Evicted));
    }
}

/// Which request wrote a binding: the Call-ID, CSeq and branch it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    call_id: Tag,
    cseq: u32,
    branch: Tag,
}

impl Stamp {
    pub fn of(call_id: &str, cseq: u32, branch: &str) -> Stamp {
        Stamp { call_id: Tag::of(call_id), cseq, branch: Tag::of(branch) }
    }

    fn marks(&self, b: &Binding) -> bool {
        b.call_id == self.call_id && b.cseq == self.cseq && b.branch == self.branch
    }
}

/// What [`undo`] did to an address of record.
#[derive(Debug, Default)]
pub struct Undone {
    /// The bindings the request wrote, taken out.
    pub withdrawn: Vec<Binding>,
    /// The bindings it had changed or removed, back as they were.
    pub restored: Vec<Binding>,
}

/// Takes back a REGISTER (`changes`, written by `stamp`) whose store write failed, so that memory
/// again holds what is durable: the bindings it wrote leave, those it changed or removed come back.
/// A binding another request wrote since is that request's and stays. When several requests of
/// one address of record fail together, undo them newest first (the store runs a failed batch's
/// completions in that order), since a later one may have changed what an earlier one wrote.
pub fn undo(bindings: &mut Vec<Binding>, changes: Changes, stamp: Stamp) -> Undone {
    // A retransmission (or a query) wrote nothing: the bindings carrying its stamp were written
    // by its first copy, which the store already has.
    if changes.is_empty() {
        return Undone::default();
    }
    let (withdrawn, kept): (Vec<Binding>, Vec<Binding>) = bindings.drain(..).partition(|b| stamp.marks(b));
    *bindings = kept;
    let mut restored = Vec::new();
    for old in changes.previous {
        if !bindings.iter().any(|b| b.key == old.key) {
            bindings.push(old.clone());
            restored.push(old);
        }
    }
    Undone { withdrawn, restored }
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
pub(super) mod tests {
    use super::super::binding::TransportKind;
    use super::*;

    pub(crate) fn facts(call_id: &str, cseq: u32, branch: &str, now: u64) -> RequestFacts {
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

    pub(crate) fn contact(uri: &str, expires: u32) -> ContactUpdate {
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

    /// What is compared when a state must come back: key, contact, expiry and CSeq of each binding.
    fn state(b: &[Binding]) -> Vec<(String, String, u64, u32)> {
        let mut s: Vec<_> = b.iter().map(|b| (b.key.clone(), b.contact.clone(), b.expires_at, b.cseq)).collect();
        s.sort();
        s
    }

    /// Applies `change` as request (`call_id`, `cseq`, branch `b<cseq>`) at t=110 with at most two
    /// contacts, undoes it, and checks the bindings are as before.
    fn apply_then_undo(b: &mut Vec<Binding>, change: ContactChange, call_id: &str, cseq: u32) {
        let before = state(b);
        let f = facts(call_id, cseq, &format!("b{cseq}"), 110);
        let changes = apply(b, &change, &f, 2).unwrap();
        assert_ne!(state(b), before, "the request changed nothing");
        undo(b, changes, Stamp::of(call_id, cseq, &f.branch));
        assert_eq!(state(b), before);
    }

    fn two_bindings() -> Vec<Binding> {
        let mut b = vec![];
        let both = ContactChange::Update(vec![contact("sip:a@1", 60), contact("sip:b@1", 60)]);
        apply(&mut b, &both, &facts("x", 1, "b1", 100), 2).unwrap();
        b
    }

    #[test]
    fn undo_takes_back_every_kind_of_change() {
        apply_then_undo(&mut vec![], ContactChange::Update(vec![contact("sip:a@1", 60)]), "x", 1);
        apply_then_undo(&mut two_bindings(), ContactChange::Update(vec![contact("sip:a@1", 300)]), "x", 2);
        apply_then_undo(&mut two_bindings(), ContactChange::Update(vec![contact("sip:a@1", 0)]), "x", 2);
        apply_then_undo(&mut two_bindings(), ContactChange::RemoveAll, "x", 2);
        // A third contact evicts the oldest of two.
        apply_then_undo(&mut two_bindings(), ContactChange::Update(vec![contact("sip:c@1", 60)]), "y", 1);
        // A refreshed binding that is then evicted comes back as it was before the refresh.
        let mut b = two_bindings();
        b[1].registered_at = 90;
        let change = ContactChange::Update(vec![contact("sip:b@1", 90), contact("sip:c@1", 60)]);
        apply_then_undo(&mut b, change, "x", 2);
        // Another contact address of the same instance replaces the binding.
        let inst = |uri: &str| ContactUpdate {
            key: binding_key(uri, Some("<urn:uuid:1>"), None),
            contact: uri.into(),
            instance: Some("<urn:uuid:1>".into()),
            reg_id: None,
            q: None,
            expires: 60,
        };
        let mut b = vec![];
        apply(&mut b, &ContactChange::Update(vec![inst("sip:a@10.0.0.1")]), &facts("x", 1, "b1", 100), 2).unwrap();
        apply_then_undo(&mut b, ContactChange::Update(vec![inst("sip:a@10.0.0.2")]), "y", 1);
    }

    #[test]
    fn requests_that_fail_together_are_undone_newest_first() {
        let mut b = two_bindings();
        let before = state(&b);
        let first = apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 300)]), &facts("x", 2, "b2", 110), 2);
        let second = apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 0)]), &facts("x", 3, "b3", 111), 2);
        let undone = undo(&mut b, second.unwrap(), Stamp::of("x", 3, "b3"));
        assert_eq!((undone.withdrawn.len(), undone.restored[0].cseq), (0, 2));
        let undone = undo(&mut b, first.unwrap(), Stamp::of("x", 2, "b2"));
        assert_eq!((undone.withdrawn.len(), undone.restored[0].cseq), (1, 1));
        assert_eq!(state(&b), before);
    }

    #[test]
    fn undoing_a_retransmission_leaves_what_its_first_copy_wrote() {
        let mut b = two_bindings();
        let before = state(&b);
        let again = apply(
            &mut b,
            &ContactChange::Update(vec![contact("sip:a@1", 60), contact("sip:b@1", 60)]),
            &facts("x", 1, "b1", 105),
            2,
        );
        let undone = undo(&mut b, again.unwrap(), Stamp::of("x", 1, "b1"));
        assert!(undone.withdrawn.is_empty() && undone.restored.is_empty());
        assert_eq!(state(&b), before);
    }

    #[test]
    fn undo_leaves_what_a_later_request_wrote() {
        let mut b = two_bindings();
        let first = apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 300)]), &facts("x", 2, "b2", 110), 2);
        apply(&mut b, &ContactChange::Update(vec![contact("sip:a@1", 600)]), &facts("x", 3, "b3", 111), 2).unwrap();
        let after_second = state(&b);
        let undone = undo(&mut b, first.unwrap(), Stamp::of("x", 2, "b2"));
        assert!(undone.withdrawn.is_empty() && undone.restored.is_empty());
        assert_eq!(state(&b), after_second);
    }
}
