//! A read-only MIB view: a sorted list of (OID, value) and the Get,
//! GetNext and GetBulk lookups of RFC 2741 §7.2.3 over it.

use crate::pdu::{Oid, SearchRange, Value};

/// Object instances in lexicographic OID order (SNMP's order).
#[derive(Debug, Clone, Default)]
pub struct View {
    entries: Vec<(Oid, Value)>,
}

impl View {
    /// A view of these instances (sorted here; a repeated OID keeps its
    /// first value).
    pub fn new(mut entries: Vec<(Oid, Value)>) -> View {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        View { entries }
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every instance, in order.
    pub fn entries(&self) -> &[(Oid, Value)] {
        &self.entries
    }

    /// Get (§7.2.3.1): the instance named exactly `oid`; noSuchInstance
    /// when `oid` is under an object we serve (an instance of it that does
    /// not exist, such as a table row that went away), else noSuchObject.
    pub fn get(&self, oid: &[u32]) -> (Oid, Value) {
        match self.entries.binary_search_by(|e| e.0.as_slice().cmp(oid)) {
            Ok(i) => (oid.to_vec(), self.entries[i].1.clone()),
            Err(i) => {
                // An existing instance sharing all but the last sub-identifier
                // (scalars end in .0, our table rows in one index).
                let parent = &oid[..oid.len().saturating_sub(1)];
                let near = [i.checked_sub(1), Some(i)];
                let under = !parent.is_empty()
                    && near.iter().flatten().any(|&j| {
                        self.entries
                            .get(j)
                            .is_some_and(|e| e.0.len() == oid.len() && e.0.starts_with(parent))
                    });
                let v = if under {
                    Value::NoSuchInstance
                } else {
                    Value::NoSuchObject
                };
                (oid.to_vec(), v)
            }
        }
    }

    /// GetNext (§7.2.3.2): the first instance after `start` (or at it when
    /// `include`), below `end` when `end` is set; else endOfMibView named
    /// `start`.
    pub fn next(&self, range: &SearchRange) -> (Oid, Value) {
        let from = self
            .entries
            .partition_point(|e| e.0.as_slice() < range.start.as_slice());
        let found = self.entries[from..]
            .iter()
            .find(|e| range.include || e.0 != range.start);
        match found {
            Some((oid, v)) if range.end.is_empty() || *oid < range.end => (oid.clone(), v.clone()),
            _ => (range.start.clone(), Value::EndOfMibView),
        }
    }

    /// GetBulk (§7.2.3.3): the first `non_repeaters` ranges once, then up to
    /// `max_repetitions` rounds over the others, each round starting after
    /// the previous round's answers; stops early once every repeater has
    /// reached endOfMibView. At most `limit` varbinds.
    pub fn bulk(
        &self,
        non_repeaters: u16,
        max_repetitions: u16,
        ranges: &[SearchRange],
        limit: usize,
    ) -> Vec<(Oid, Value)> {
        let n = usize::from(non_repeaters).min(ranges.len());
        let mut out: Vec<(Oid, Value)> = ranges[..n].iter().map(|r| self.next(r)).collect();
        let mut current: Vec<SearchRange> = ranges[n..].to_vec();
        if current.is_empty() {
            return out;
        }
        for _ in 0..max_repetitions {
            let mut all_done = true;
            for r in current.iter_mut() {
                if out.len() >= limit {
                    return out;
                }
                let (oid, v) = self.next(r);
                if v != Value::EndOfMibView {
                    all_done = false;
                }
                r.start = oid.clone();
                r.include = false;
                out.push((oid, v));
            }
            if all_done {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        View::new(vec![
            (vec![1, 3, 6, 1, 4, 1, 9, 1, 2, 0], Value::Gauge32(2)),
            (vec![1, 3, 6, 1, 4, 1, 9, 1, 1, 0], Value::Gauge32(1)),
            (
                vec![1, 3, 6, 1, 4, 1, 9, 2, 1, 1, 2, 1],
                Value::Counter64(10),
            ),
            (
                vec![1, 3, 6, 1, 4, 1, 9, 2, 1, 1, 2, 2],
                Value::Counter64(20),
            ),
        ])
    }

    fn range(start: &[u32], include: bool, end: &[u32]) -> SearchRange {
        SearchRange {
            start: start.to_vec(),
            include,
            end: end.to_vec(),
        }
    }

    #[test]
    fn get_exact_and_missing() {
        let v = view();
        assert_eq!(v.get(&[1, 3, 6, 1, 4, 1, 9, 1, 1, 0]).1, Value::Gauge32(1));
        assert_eq!(
            v.get(&[1, 3, 6, 1, 4, 1, 9, 2, 1, 1, 2, 3]).1,
            Value::NoSuchInstance
        );
        assert_eq!(v.get(&[1, 3, 6, 1, 2, 1, 1, 0]).1, Value::NoSuchObject);
        assert_eq!(v.get(&[]).1, Value::NoSuchObject);
    }

    #[test]
    fn getnext_walks_in_order_and_respects_bounds() {
        let v = view();
        let mut r = range(&[1, 3, 6, 1, 4, 1, 9], false, &[]);
        let mut seen = Vec::new();
        loop {
            let (oid, val) = v.next(&r);
            if val == Value::EndOfMibView {
                assert_eq!(oid, r.start);
                break;
            }
            seen.push(oid.clone());
            r.start = oid;
        }
        assert_eq!(seen.len(), 4);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        // include: the start itself.
        let (oid, _) = v.next(&range(&[1, 3, 6, 1, 4, 1, 9, 1, 1, 0], true, &[]));
        assert_eq!(oid, vec![1, 3, 6, 1, 4, 1, 9, 1, 1, 0]);
        // exclusive end.
        let (_, val) = v.next(&range(
            &[1, 3, 6, 1, 4, 1, 9, 1, 2, 0],
            false,
            &[1, 3, 6, 1, 4, 1, 9, 2],
        ));
        assert_eq!(val, Value::EndOfMibView);
    }

    #[test]
    fn getbulk_repeats_and_stops() {
        let v = view();
        let ranges = [
            range(&[1, 3, 6, 1, 4, 1, 9, 1, 1], false, &[]),
            range(&[1, 3, 6, 1, 4, 1, 9, 2], false, &[]),
        ];
        let out = v.bulk(1, 10, &ranges, 100);
        // One non-repeater, then the repeater: two rows and endOfMibView.
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].1, Value::Gauge32(1));
        assert_eq!(out[1].1, Value::Counter64(10));
        assert_eq!(out[2].1, Value::Counter64(20));
        assert_eq!(out[3].1, Value::EndOfMibView);
        assert_eq!(v.bulk(0, 10, &ranges, 3).len(), 3);
        assert_eq!(v.bulk(5, 10, &ranges, 100).len(), 2);
    }
}
