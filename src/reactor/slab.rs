//! A small generational slab: stable indices for mio tokens, generations so a stale handle
//! never reaches a newer connection that reused its slot.

/// Index plus generation of a slab entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Slot number (used in mio tokens).
    pub index: u32,
    /// Bumped every time the slot is reused.
    pub generation: u32,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Generational slab.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    /// The key the next `insert` will use, so a value can embed its own key.
    pub fn next_key(&self) -> Key {
        match self.free.last() {
            Some(&index) => Key { index, generation: self.slots[index as usize].generation },
            None => Key { index: self.slots.len() as u32, generation: 0 },
        }
    }

    /// Stores a value; returns its key (equal to `next_key()` before the call).
    pub fn insert(&mut self, value: T) -> Key {
        let key = self.next_key();
        if key.index as usize == self.slots.len() {
            self.slots.push(Slot { generation: 0, value: Some(value) });
        } else {
            self.free.pop();
            self.slots[key.index as usize].value = Some(value);
        }
        self.len += 1;
        key
    }

    /// The value at `key`, if that exact generation is still present.
    pub fn get(&self, key: Key) -> Option<&T> {
        self.slots.get(key.index as usize).filter(|s| s.generation == key.generation).and_then(|s| s.value.as_ref())
    }

    /// The current value in slot `index`, whatever its generation (for mio tokens).
    pub fn get_index(&self, index: usize) -> Option<&T> {
        self.slots.get(index).and_then(|s| s.value.as_ref())
    }

    /// Removes and returns the value at `key`.
    pub fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.generation != key.generation || slot.value.is_none() {
            return None;
        }
        let value = slot.value.take();
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        value
    }

    /// Number of stored values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// All stored values.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reused_slots_get_new_generations() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None);
        let b = slab.insert("b");
        assert_eq!(b.index, a.index);
        assert_ne!(b.generation, a.generation);
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.next_key().index, 1);
    }
}
