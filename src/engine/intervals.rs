//! Half-open time spans `[start, end)` in UTC epoch ms, and the few set operations the counting
//! needs (merge, intersect, subtract, total). Inputs and outputs are sorted and disjoint.

pub type Span = (i64, i64);

/// Sorts and merges overlapping or touching spans; drops empty ones.
pub fn merge(mut v: Vec<Span>) -> Vec<Span> {
    v.retain(|s| s.1 > s.0);
    v.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(v.len());
    for s in v {
        match out.last_mut() {
            Some(last) if s.0 <= last.1 => last.1 = last.1.max(s.1),
            _ => out.push(s),
        }
    }
    out
}

/// Spans of `a` that are also in `b`.
pub fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if e > s {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Spans of `a` not in `b`.
pub fn subtract(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for &(s0, e0) in a {
        let mut s = s0;
        for &(bs, be) in b {
            if be <= s || bs >= e0 {
                continue;
            }
            if bs > s {
                out.push((s, bs));
            }
            s = s.max(be);
            if s >= e0 {
                break;
            }
        }
        if s < e0 {
            out.push((s, e0));
        }
    }
    out
}

/// Total length in ms.
pub fn total(v: &[Span]) -> i64 {
    v.iter().map(|s| s.1 - s.0).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        assert_eq!(
            merge(vec![(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)]),
            vec![(1, 4), (5, 9)]
        );
        assert_eq!(
            intersect(&[(0, 10), (20, 30)], &[(5, 25)]),
            vec![(5, 10), (20, 25)]
        );
        assert_eq!(
            subtract(&[(0, 10), (20, 30)], &[(2, 4), (8, 22)]),
            vec![(0, 2), (4, 8), (22, 30)]
        );
        assert_eq!(subtract(&[(0, 10)], &[]), vec![(0, 10)]);
        assert_eq!(subtract(&[(0, 10)], &[(0, 10)]), vec![]);
        assert_eq!(total(&[(0, 2), (4, 8)]), 6);
    }
}
