//! A llama-server's prompt cache as the simulator models it: each slot keeps the last sequence it
//! served (prompt and answer); a request takes the idle slot sharing the longest prefix with it
//! (else the least recently used idle slot); with a host RAM cache (`--cache-ram`), a slot's
//! previous sequence is saved there before being overwritten and the longest saved prefix can be
//! restored. Sequences are the router's block hashes, so "tokens reused" is blocks × 16.

use std::collections::VecDeque;

pub struct NodeCache {
    /// Per slot: its sequence, whether it is busy, when it was last used.
    slots: Vec<Slot>,
    /// Saved sequences, most recent first, at most `host_blocks` blocks in all.
    host: VecDeque<Vec<u64>>,
    host_blocks: usize,
    clock: u64,
}

struct Slot {
    sequence: Vec<u64>,
    busy: bool,
    used: u64,
}

fn common(a: &[u64], b: &[u64]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl NodeCache {
    pub fn new(slots: u32, host_blocks: usize) -> Self {
        NodeCache {
            slots: (0..slots.max(1))
                .map(|_| Slot {
                    sequence: Vec::new(),
                    busy: false,
                    used: 0,
                })
                .collect(),
            host: VecDeque::new(),
            host_blocks,
            clock: 0,
        }
    }

    /// Takes an idle slot for `prompt`: the slot and the leading blocks reused.
    pub fn start(&mut self, prompt: &[u64]) -> Option<(usize, usize)> {
        self.clock += 1;
        let idle = || self.slots.iter().enumerate().filter(|(_, s)| !s.busy);
        let best = idle()
            .map(|(i, s)| (i, common(&s.sequence, prompt)))
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))?;
        let slot = if best.1 > 0 {
            best.0
        } else {
            idle().min_by_key(|(_, s)| s.used)?.0
        };
        let in_slot = common(&self.slots[slot].sequence, prompt);
        let (restored_at, restored) = self
            .host
            .iter()
            .enumerate()
            .map(|(i, seq)| (i, common(seq, prompt)))
            .max_by_key(|&(_, n)| n)
            .unwrap_or((0, 0));
        let old = std::mem::take(&mut self.slots[slot].sequence);
        if restored > in_slot {
            // Restored from host memory (it stays there, now the most recent).
            if let Some(seq) = self.host.remove(restored_at) {
                self.host.push_front(seq);
            }
        }
        self.save(old);
        let s = &mut self.slots[slot];
        s.busy = true;
        s.used = self.clock;
        s.sequence = prompt.to_vec();
        Some((slot, in_slot.max(restored)))
    }

    /// The slot finished: it keeps `sequence` (the prompt and the answer).
    pub fn finish(&mut self, slot: usize, sequence: &[u64]) {
        let s = &mut self.slots[slot];
        s.busy = false;
        s.sequence = sequence.to_vec();
    }

    fn save(&mut self, sequence: Vec<u64>) {
        if self.host_blocks == 0 || sequence.is_empty() || sequence.len() > self.host_blocks {
            return;
        }
        if let Some(at) = self.host.iter().position(|s| *s == sequence) {
            self.host.remove(at);
        }
        self.host.push_front(sequence);
        while self.host.iter().map(Vec::len).sum::<usize>() > self.host_blocks {
            self.host.pop_back();
        }
    }
}
