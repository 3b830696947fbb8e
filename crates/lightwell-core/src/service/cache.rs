//! A small bounded map shared by the service's hot-path caches (unsealed CA
//! keys, verified client-certificate chains). Entries carry what they were
//! computed from and every user checks that before trusting one, so the
//! cache can only save work, never change an answer. When full it is simply
//! emptied: the working set (a tenant's CAs, the clients connected now) is far
//! below the bound, and a rare refill costs what a miss costs.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

#[derive(Debug)]
pub(super) struct Cache<K, V> {
    map: Mutex<HashMap<K, V>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    pub(super) fn new(capacity: usize) -> Self {
        Self { map: Mutex::new(HashMap::new()), capacity }
    }

    /// A copy of the entry for `key`, if any.
    pub(super) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.lock().get(key).cloned()
    }

    pub(super) fn insert(&self, key: K, value: V) {
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key, value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        // The map holds only derived data; a panic elsewhere cannot leave it inconsistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_until_the_bound_then_all_dropped() {
        let cache = Cache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("b"), Some(2));
        cache.insert("c", 3);
        assert_eq!(cache.get("a"), None, "a full cache is emptied before the next insert");
        assert_eq!(cache.get("c"), Some(3));
        cache.insert("c", 4);
        assert_eq!(cache.get("c"), Some(4), "an insert replaces");
    }
}
