//! A slab with generation-checked keys, for everything the server keeps by handle: allocations,
//! channels and TCP connections.
//!
//! A key names a slot and the generation the slot had when the value went in. Removing a value
//! bumps the slot's generation, so a stale key (in a timer, an index, or an event the shell is
//! still holding) never names a newer value that reused the slot. Lookups are one bounds check
//! and one compare; nothing is hashed.

/// A slot index and the generation it had when its value was inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SlabKey {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl SlabKey {
    /// A number unique among the values alive at once (the generation in the high half).
    pub(crate) fn as_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }
}

/// A typed key over [`SlabKey`] (`AllocId`, `ChannelKey`, …), so a slab of one kind of value
/// cannot be indexed with the key of another.
pub(crate) trait Key: Copy {
    fn from_slab(k: SlabKey) -> Self;
    fn slab(self) -> SlabKey;
}

impl Key for SlabKey {
    fn from_slab(k: SlabKey) -> Self {
        k
    }
    fn slab(self) -> SlabKey {
        self
    }
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Values of type `T` by keys of type `K`.
#[derive(Debug)]
pub(crate) struct Slab<T, K = SlabKey> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
    key: std::marker::PhantomData<K>,
}

impl<T, K> Default for Slab<T, K> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new(), len: 0, key: std::marker::PhantomData }
    }
}

impl<T, K: Key> Slab<T, K> {
    /// Inserts the value `make` builds from its own key (an allocation records its id).
    pub(crate) fn insert_with(&mut self, make: impl FnOnce(K) -> T) -> K {
        let key = match self.free.pop() {
            Some(i) => SlabKey { index: i, generation: self.slots[i as usize].generation },
            None => {
                let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 live values");
                self.slots.push(Slot { generation: 0, value: None });
                SlabKey { index, generation: 0 }
            }
        };
        let k = K::from_slab(key);
        self.slots[key.index as usize].value = Some(make(k));
        self.len += 1;
        k
    }

    /// Inserts `value`.
    pub(crate) fn insert(&mut self, value: T) -> K {
        self.insert_with(|_| value)
    }

    pub(crate) fn get(&self, key: K) -> Option<&T> {
        let key = key.slab();
        match self.slots.get(key.index as usize) {
            Some(Slot { generation, value: Some(v) }) if *generation == key.generation => Some(v),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: K) -> Option<&mut T> {
        let key = key.slab();
        match self.slots.get_mut(key.index as usize) {
            Some(Slot { generation, value: Some(v) }) if *generation == key.generation => Some(v),
            _ => None,
        }
    }

    /// Takes the value out; the key (and every copy of it) is dead from now on.
    pub(crate) fn remove(&mut self, key: K) -> Option<T> {
        let key = key.slab();
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation || slot.value.is_none() {
            return None;
        }
        let v = slot.value.take();
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        v
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every live value with its key, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|v| (K::from_slab(SlabKey { index: i as u32, generation: s.generation }), v))
        })
    }

    /// Every live value, in slot order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_key_never_names_the_value_that_reused_its_slot() {
        let mut s: Slab<&str, SlabKey> = Slab::default();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(a.index, b.index, "the slot is reused");
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn insert_with_hands_the_value_its_own_key() {
        let mut s: Slab<SlabKey, SlabKey> = Slab::default();
        let k1 = s.insert_with(|k| k);
        let k2 = s.insert_with(|k| k);
        assert_eq!(s.get(k1), Some(&k1));
        assert_eq!(s.get(k2), Some(&k2));
        assert_eq!(s.iter().map(|(k, _)| k).collect::<Vec<_>>(), vec![k1, k2]);
        assert_eq!(s.len(), 2);
    }
}
