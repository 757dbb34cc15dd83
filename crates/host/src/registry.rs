//! A typed registry of the services running on a host, so the handles of services started
//! elsewhere (by `lp2p::HostBuilderExt::with_defaults`, by a library) can be found again.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One value per type: the service handle most recently registered for it.
#[derive(Default)]
pub(crate) struct Services {
    by_type: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl Services {
    fn lock(&self) -> MutexGuard<'_, HashMap<TypeId, Box<dyn Any + Send + Sync>>> {
        self.by_type.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `service`, returning the one it replaces.
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&self, service: T) -> Option<T> {
        self.lock()
            .insert(TypeId::of::<T>(), Box::new(service))
            .and_then(|old| old.downcast::<T>().ok())
            .map(|old| *old)
    }

    /// A clone of the stored service of type `T`.
    pub(crate) fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock()
            .get(&TypeId::of::<T>())
            .and_then(|service| service.downcast_ref::<T>())
            .cloned()
    }

    /// Empties the registry (the host closed: the services stopped).
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct A(u32);
    #[derive(Clone, Debug, PartialEq)]
    struct B(&'static str);

    #[test]
    fn one_per_type_latest_wins() {
        let services = Services::default();
        assert_eq!(services.get::<A>(), None);
        assert_eq!(services.insert(A(1)), None);
        assert_eq!(services.insert(B("b")), None);
        assert_eq!(services.insert(A(2)), Some(A(1)));
        assert_eq!(services.get::<A>(), Some(A(2)));
        assert_eq!(services.get::<B>(), Some(B("b")));
        services.clear();
        assert_eq!(services.get::<B>(), None);
    }
}
