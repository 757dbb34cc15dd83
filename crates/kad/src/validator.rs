//! Record validation and selection, per key namespace (spec "Entry validation").
//!
//! A [`Validator`] says whether a value is valid for a key (checked on PUT_VALUE before
//! storing and on every GET_VALUE answer) and which of several valid values is best. The
//! default, [`NamespacedValidator::default`], knows `/pk/` ([`PublicKeyValidator`]) and
//! `/ipns/` ([`ipns::IpnsValidator`]) and refuses keys of any other namespace;
//! [`UnknownNamespaces::Accept`] lets any other key through with any value (what an
//! application-private DHT, or rust-libp2p by default, does).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use lp2p_core::{PeerId, PublicKey};

pub mod ipns;
mod validate;

pub use validate::{InvalidRecord, Validator};

/// The namespace of a key `/<namespace>/<rest>`, if it has one.
pub fn namespace(key: &[u8]) -> Option<&str> {
    let rest = key.strip_prefix(b"/")?;
    let end = rest.iter().position(|b| *b == b'/')?;
    let ns = rest.get(..end)?;
    if ns.is_empty() {
        return None;
    }
    std::str::from_utf8(ns).ok()
}

/// What [`NamespacedValidator`] does with keys outside its namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownNamespaces {
    /// Refuse them (the default, as go-libp2p does: nobody can fill our store with values
    /// nothing validates).
    #[default]
    Refuse,
    /// Accept any value; select the first seen.
    Accept,
}

/// Dispatches on the key's namespace.
#[derive(Clone)]
pub struct NamespacedValidator {
    namespaces: HashMap<String, Arc<dyn Validator>>,
    unknown: UnknownNamespaces,
}

impl fmt::Debug for NamespacedValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.namespaces.keys().collect();
        names.sort();
        f.debug_struct("NamespacedValidator")
            .field("namespaces", &names)
            .field("unknown", &self.unknown)
            .finish()
    }
}

impl Default for NamespacedValidator {
    /// `/pk/` and `/ipns/`; other namespaces refused.
    fn default() -> Self {
        NamespacedValidator::empty()
            .with("pk", PublicKeyValidator)
            .with("ipns", ipns::IpnsValidator::default())
    }
}

impl NamespacedValidator {
    /// No namespace known; unknown ones refused.
    pub fn empty() -> NamespacedValidator {
        NamespacedValidator {
            namespaces: HashMap::new(),
            unknown: UnknownNamespaces::Refuse,
        }
    }

    /// Adds (or replaces) the validator of `namespace` (without slashes, e.g. `"pk"`).
    #[must_use]
    pub fn with(mut self, namespace: &str, validator: impl Validator) -> Self {
        self.namespaces
            .insert(namespace.to_owned(), Arc::new(validator));
        self
    }

    /// Sets what happens to keys outside the known namespaces.
    #[must_use]
    pub fn unknown_namespaces(mut self, policy: UnknownNamespaces) -> Self {
        self.unknown = policy;
        self
    }

    fn lookup(&self, key: &[u8]) -> Option<&Arc<dyn Validator>> {
        namespace(key).and_then(|ns| self.namespaces.get(ns))
    }
}

impl Validator for NamespacedValidator {
    fn validate(&self, key: &[u8], value: &[u8]) -> Result<(), InvalidRecord> {
        match (self.lookup(key), self.unknown) {
            (Some(v), _) => v.validate(key, value),
            (None, UnknownNamespaces::Accept) => Ok(()),
            (None, UnknownNamespaces::Refuse) => Err(InvalidRecord::new(match namespace(key) {
                Some(ns) => format!("no validator for the namespace /{ns}/"),
                None => "the key has no namespace (/<namespace>/...)".to_owned(),
            })),
        }
    }

    fn select(&self, key: &[u8], values: &[&[u8]]) -> usize {
        self.lookup(key).map_or(0, |v| v.select(key, values))
    }
}

/// `/pk/<binary peer id>` → the protobuf-encoded public key of that peer. Valid iff the key
/// hashes to the peer id; every valid value is the same, so any is best.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicKeyValidator;

impl Validator for PublicKeyValidator {
    fn validate(&self, key: &[u8], value: &[u8]) -> Result<(), InvalidRecord> {
        let id = key
            .strip_prefix(b"/pk/")
            .ok_or_else(|| InvalidRecord::new("a /pk/ key must start with /pk/"))?;
        let peer = PeerId::from_bytes(id)
            .map_err(|_| InvalidRecord::new("a /pk/ key must end in a binary peer id"))?;
        let public = PublicKey::try_decode_protobuf(value)
            .map_err(|e| InvalidRecord::new(format!("not a protobuf public key: {e}")))?;
        if public.to_peer_id() != peer {
            return Err(InvalidRecord::new(
                "the public key does not belong to the peer in the key",
            ));
        }
        Ok(())
    }

    fn select(&self, _key: &[u8], _values: &[&[u8]]) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::Keypair;

    #[test]
    fn namespaces() {
        assert_eq!(namespace(b"/pk/abc"), Some("pk"));
        assert_eq!(namespace(b"/ipns/x/y"), Some("ipns"));
        assert_eq!(namespace(b"pk/abc"), None);
        assert_eq!(namespace(b"//abc"), None);
        assert_eq!(namespace(b"/pk"), None);
        assert_eq!(namespace(b"/\xff/x"), None);
    }

    #[test]
    fn public_keys() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let mut record_key = b"/pk/".to_vec();
        record_key.extend(peer.to_bytes());
        let value = key.public().encode_protobuf();
        let v = NamespacedValidator::default();
        v.validate(&record_key, &value).unwrap();
        let other = Keypair::generate_ed25519().public().encode_protobuf();
        assert!(v.validate(&record_key, &other).is_err());
        assert!(v.validate(&record_key, b"junk").is_err());
        assert!(v.validate(b"/pk/notapeer", &value).is_err());
    }

    #[test]
    fn unknown_namespaces_refused_by_default() {
        let v = NamespacedValidator::default();
        assert!(v.validate(b"/app/x", b"1").is_err());
        assert!(v.validate(b"plain key", b"1").is_err());
        let open = NamespacedValidator::default().unknown_namespaces(UnknownNamespaces::Accept);
        open.validate(b"/app/x", b"1").unwrap();
        open.validate(b"plain key", b"").unwrap();
        assert_eq!(open.select(b"plain key", &[b"a", b"b"]), 0);
        // Known namespaces are still checked.
        assert!(open.validate(b"/pk/x", b"1").is_err());
    }
}
