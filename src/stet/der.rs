//! Just enough DER to write and read the PSD2 QCStatement (ETSI TS 119 495) that x509-parser does
//! not decode: tag-length-value, OIDs, sequences and UTF-8 strings.

/// A DER element: tag and content bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
}

pub const SEQUENCE: u8 = 0x30;
pub const OID: u8 = 0x06;
pub const UTF8_STRING: u8 = 0x0c;

/// Encodes one element.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// Encodes a dotted OID (`0.4.0.19495.2`).
pub fn encode_oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let first = arcs.first().copied().unwrap_or(0) * 40 + arcs.get(1).copied().unwrap_or(0);
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        tmp.reverse();
        body.extend(tmp);
    };
    push(first);
    for a in arcs.iter().skip(2) {
        push(*a);
    }
    encode(OID, &body)
}

/// Decodes an OID's content bytes to its dotted form.
pub fn oid_to_string(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() && i < content.len() {
                let (a, b2) = if v < 80 {
                    (v / 40, v % 40)
                } else {
                    (2, v - 80)
                };
                arcs.push(a);
                arcs.push(b2);
            } else {
                arcs.push(v);
            }
            v = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Reads the elements following each other in `input`; `None` on malformed input.
pub fn parse_all(mut input: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = parse_one(input)?;
        out.push(tlv);
        input = rest;
    }
    Some(out)
}

fn parse_one(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    let l0 = *input.get(1)?;
    let (len, hdr) = if l0 < 0x80 {
        (l0 as usize, 2)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let content = input.get(hdr..hdr.checked_add(len)?)?;
    Some((Tlv { tag, content }, &input[hdr + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_round_trip() {
        let enc = encode_oid(&[0, 4, 0, 19495, 1, 4]);
        let parsed = parse_all(&enc).unwrap();
        assert_eq!(parsed[0].tag, OID);
        assert_eq!(oid_to_string(parsed[0].content), "0.4.0.19495.1.4");
        let enc = encode_oid(&[1, 3, 6, 1, 5, 5, 7, 1, 3]);
        assert_eq!(
            oid_to_string(parse_all(&enc).unwrap()[0].content),
            "1.3.6.1.5.5.7.1.3"
        );
        let long = encode(SEQUENCE, &[0u8; 300]);
        assert_eq!(parse_all(&long).unwrap()[0].content.len(), 300);
        assert!(parse_all(&[0x30, 0x05, 0x00]).is_none());
    }
}
