//! Compact forms for what every binding carries, so a million bindings fit in little memory:
//! [`Tag`], a 64-bit digest of a string that is only ever compared (Call-ID, Via branch), and
//! [`intern_user_agent`], which shares one copy of each User-Agent between the phones sending it.
//!
//! Tags use FNV-1a (64 bits): stable across Rust versions and restarts (tags are stored), and
//! fast on short strings. Two different Call-IDs of one phone's bindings collide with
//! probability ~2^-64; a collision only makes the registrar treat a new Call-ID as the old one
//! (RFC 3261 §10.3 step 7 ordering), and only a phone's own REGISTERs (authenticated) can try.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 64-bit digest of a string that is compared, never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tag(u64);

impl Tag {
    /// The tag of `text` (FNV-1a, 64 bits).
    pub fn of(text: &str) -> Tag {
        Tag(crate::sip::response::fnv64(&[text]))
    }
}

impl PartialEq<str> for Tag {
    fn eq(&self, other: &str) -> bool {
        *self == Tag::of(other)
    }
}

impl PartialEq<&str> for Tag {
    fn eq(&self, other: &&str) -> bool {
        *self == Tag::of(other)
    }
}

impl PartialEq<String> for Tag {
    fn eq(&self, other: &String) -> bool {
        *self == Tag::of(other)
    }
}

impl PartialEq<Tag> for String {
    fn eq(&self, other: &Tag) -> bool {
        Tag::of(self) == *other
    }
}

/// Stored as its number. (The journal's encoding, postcard, is not self-describing, so a tag has
/// exactly one stored form.)
impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tag, D::Error> {
        u64::deserialize(d).map(Tag)
    }
}

/// How many distinct User-Agents are shared; past this each binding keeps its own copy, so a
/// stream of made-up User-Agents cannot grow the set without bound.
const MAX_SHARED_AGENTS: usize = 4096;

fn agents() -> &'static Mutex<HashSet<Arc<str>>> {
    static AGENTS: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    AGENTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// The shared copy of a User-Agent (thousands of phones send the same few).
pub fn intern_user_agent(text: &str) -> Arc<str> {
    let mut set = agents().lock();
    if let Some(shared) = set.get(text) {
        return shared.clone();
    }
    let fresh: Arc<str> = Arc::from(text);
    if set.len() < MAX_SHARED_AGENTS {
        set.insert(fresh.clone());
    }
    fresh
}

/// Serde for `Option<Arc<str>>` User-Agents: written as a string, read back shared.
pub mod shared_agent {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
        Ok(Option::<std::borrow::Cow<'de, str>>::deserialize(d)?.map(|ua| intern_user_agent(&ua)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_compare_like_their_strings_and_are_stable() {
        assert_eq!(Tag::of("a84b4c76e66710@pc33.atlanta.com"), "a84b4c76e66710@pc33.atlanta.com");
        assert!(Tag::of("call-1") != "call-2");
        let branch = String::from("z9hG4bK776asdhds");
        assert!(branch == Tag::of("z9hG4bK776asdhds"));
        assert!(Tag::of("z9hG4bK776asdhds") == branch);
        // FNV-1a test vectors: the digest is stored, so it must never change.
        assert_eq!(Tag::of(""), Tag(0xcbf2_9ce4_8422_2325));
        assert_eq!(Tag::of("a"), Tag(0xaf63_dc4c_8601_ec8c));
    }

    #[test]
    fn tags_round_trip_through_the_journal_encoding() {
        let t = Tag::of("abc@host");
        let back: Tag = postcard::from_bytes(&postcard::to_allocvec(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Tag>("\"abc@host\"").is_err(), "one stored form only");
    }

    #[test]
    fn user_agents_are_shared() {
        let a = intern_user_agent("Yealink SIP-T46U 108.86.0.20");
        let b = intern_user_agent("Yealink SIP-T46U 108.86.0.20");
        assert!(Arc::ptr_eq(&a, &b));
        #[derive(Serialize, Deserialize)]
        struct Doc {
            #[serde(with = "shared_agent")]
            ua: Option<Arc<str>>,
        }
        let doc: Doc = serde_json::from_str(r#"{"ua":"Yealink SIP-T46U 108.86.0.20"}"#).unwrap();
        assert!(Arc::ptr_eq(doc.ua.as_ref().unwrap(), &a));
        assert_eq!(serde_json::to_string(&doc).unwrap(), r#"{"ua":"Yealink SIP-T46U 108.86.0.20"}"#);
        let none: Doc = serde_json::from_str(r#"{"ua":null}"#).unwrap();
        assert!(none.ua.is_none());
    }
}
