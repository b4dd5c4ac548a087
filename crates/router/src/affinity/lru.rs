//! One node's blocks for one model, most recently used first: a doubly linked list in a slab of at
//! most `capacity` entries, so memory never grows past it and no entry is allocated on its own.

/// Marks the end of the list.
pub(super) const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    /// Towards the most recently used end.
    newer: u32,
    /// Towards the least recently used end.
    older: u32,
}

#[derive(Debug)]
pub(super) struct Lru {
    capacity: usize,
    entries: Vec<Entry>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    len: usize,
}

impl Lru {
    pub(super) fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            entries: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries the slab has ever held at once (memory used), at most the largest capacity set.
    #[cfg(test)]
    pub(super) fn slab_len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    pub(super) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
    }

    #[cfg(test)]
    pub(super) fn hash(&self, slot: u32) -> u64 {
        self.entries[slot as usize].hash
    }

    /// Inserts `hash` as the newest entry; the caller evicts first when the list is full.
    pub(super) fn push_newest(&mut self, hash: u64) -> u32 {
        let entry = Entry {
            hash,
            newer: NIL,
            older: self.newest,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = entry;
                slot
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        self.link_as_newest(slot);
        self.len += 1;
        slot
    }

    pub(super) fn touch(&mut self, slot: u32) {
        if self.newest == slot {
            return;
        }
        self.unlink(slot);
        self.entries[slot as usize].older = self.newest;
        self.link_as_newest(slot);
    }

    /// Removes the least recently used entry; its hash.
    pub(super) fn pop_oldest(&mut self) -> Option<u64> {
        let slot = self.oldest;
        (slot != NIL).then(|| self.remove(slot))
    }

    /// Removes the entry in `slot`; its hash.
    pub(super) fn remove(&mut self, slot: u32) -> u64 {
        self.unlink(slot);
        self.free.push(slot);
        self.len -= 1;
        self.entries[slot as usize].hash
    }

    /// Slot of the entry just older than `slot`.
    pub(super) fn older(&self, slot: u32) -> u32 {
        self.entries[slot as usize].older
    }

    /// Hashes from newest to oldest.
    pub(super) fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        let mut at = self.newest;
        std::iter::from_fn(move || {
            (at != NIL).then(|| {
                let e = self.entries[at as usize];
                at = e.older;
                e.hash
            })
        })
    }

    fn link_as_newest(&mut self, slot: u32) {
        let old_newest = self.newest;
        self.entries[slot as usize].newer = NIL;
        self.entries[slot as usize].older = old_newest;
        if old_newest != NIL {
            self.entries[old_newest as usize].newer = slot;
        } else {
            self.oldest = slot;
        }
        self.newest = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let Entry { newer, older, .. } = self.entries[slot as usize];
        if newer != NIL {
            self.entries[newer as usize].older = older;
        } else {
            self.newest = older;
        }
        if older != NIL {
            self.entries[older as usize].newer = newer;
        } else {
            self.oldest = newer;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_leave_oldest_first_and_a_touch_makes_one_newest() {
        let mut lru = Lru::new(8);
        let slots: Vec<u32> = (1..=4).map(|h| lru.push_newest(h)).collect();
        lru.touch(slots[0]);
        assert_eq!(lru.hashes().collect::<Vec<_>>(), [1, 4, 3, 2]);
        assert_eq!(lru.pop_oldest(), Some(2));
        assert_eq!(lru.remove(slots[3]), 4);
        assert_eq!(lru.hashes().collect::<Vec<_>>(), [1, 3]);
        // Freed slots are reused: the slab does not grow.
        lru.push_newest(5);
        lru.push_newest(6);
        assert_eq!(lru.entries.len(), 4);
        assert_eq!(lru.len(), 4);
        assert_eq!(lru.hashes().collect::<Vec<_>>(), [6, 5, 1, 3]);
        while lru.pop_oldest().is_some() {}
        assert_eq!(lru.len(), 0);
        assert_eq!(lru.hashes().count(), 0);
    }
}
