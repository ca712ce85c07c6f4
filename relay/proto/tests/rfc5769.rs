//! RFC 5769 test vectors (§2.1–2.4): decode, verify MESSAGE-INTEGRITY and FINGERPRINT, and
//! re-encode byte-exact except for padding content (the vectors pad with 0x20 on purpose, and
//! MESSAGE-INTEGRITY and FINGERPRINT cover that padding).
#![allow(clippy::unwrap_used)]

use relay_proto::stun::attr::PasswordAlgorithm;
use relay_proto::stun::integrity::short_term_key;
use relay_proto::stun::{AttrType, Class, Key, Message, MessageWriter, Method};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text = include_str!("data/rfc5769.json");
    let v: Value = serde_json::from_str(text).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn key_for(v: &Value) -> Vec<u8> {
    let c = &v["credentials"];
    match c["mechanism"].as_str().unwrap() {
        "short-term" => short_term_key(c["password"].as_str().unwrap()).unwrap().into_bytes(),
        _ => Key::long_term(
            PasswordAlgorithm::Md5,
            c["username"].as_str().unwrap(),
            c["realm"].as_str().unwrap(),
            c["password_raw"].as_str().unwrap(),
        )
        .unwrap()
        .as_bytes()
        .to_vec(),
    }
}

/// Zeroes the padding of every attribute so re-encoded bytes can be compared.
fn zero_padding(raw: &[u8]) -> Vec<u8> {
    let mut out = raw.to_vec();
    let mut off = 20;
    while off + 4 <= out.len() {
        let len = usize::from(u16::from_be_bytes([out[off + 2], out[off + 3]]));
        let padded = (len + 3) & !3;
        for b in &mut out[off + 4 + len..off + 4 + padded] {
            *b = 0;
        }
        off += 4 + padded;
    }
    out
}

#[test]
fn every_vector_decodes_and_verifies() {
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        let raw = hex(v["hex"].as_str().unwrap());
        let m = Message::parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(format!("{:#06x}", m.message_type().to_u16()), v["message_type"].as_str().unwrap(), "{name}");
        assert_eq!(format!("{:?}", m.transaction_id()), v["transaction_id"].as_str().unwrap(), "{name}");
        let key = key_for(&v);
        assert_eq!(
            key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            v["key_hex"].as_str().unwrap(),
            "{name}: key"
        );
        m.verify_integrity(&key).unwrap_or_else(|e| panic!("{name}: {e}"));
        let exp = &v["expected"];
        match exp["FINGERPRINT"].as_str() {
            Some(_) => assert_eq!(m.fingerprint_ok(), Some(true), "{name}"),
            None => assert_eq!(m.fingerprint_ok(), None, "{name}"),
        }
        if let Some(s) = exp["SOFTWARE"].as_str() {
            assert_eq!(m.software().unwrap(), Some(s), "{name}");
        }
        if let Some(u) = exp["USERNAME"].as_str() {
            assert_eq!(m.username().unwrap(), Some(u), "{name}");
        }
        if let Some(r) = exp["REALM"].as_str() {
            assert_eq!(m.realm().unwrap(), Some(r), "{name}");
        }
        if let Some(n) = exp["NONCE"].as_str() {
            assert_eq!(m.nonce().unwrap(), Some(n), "{name}");
        }
        if let Some(p) = exp["PRIORITY"].as_u64() {
            let v = m.get(AttrType::PRIORITY).unwrap();
            assert_eq!(u64::from(u32::from_be_bytes(v.try_into().unwrap())), p, "{name}");
        }
        if let Some(a) = exp["XOR-MAPPED-ADDRESS"].as_array() {
            let got = m.xor_mapped_address().unwrap().unwrap();
            assert_eq!(got.ip().to_string(), a[0].as_str().unwrap(), "{name}");
            assert_eq!(u64::from(got.port()), a[1].as_u64().unwrap(), "{name}");
        }
    }
}

#[test]
fn every_vector_reencodes_byte_exact_except_padding() {
    for v in vectors() {
        let name = v["name"].as_str().unwrap();
        let raw = hex(v["hex"].as_str().unwrap());
        let m = Message::parse(&raw).unwrap();
        let key = key_for(&v);
        let mut buf = vec![0xEEu8; raw.len() + 32];
        let mut w = MessageWriter::new(&mut buf, m.message_type(), m.transaction_id());
        for (t, val) in m.attributes() {
            w.add(t, val);
        }
        if m.has_integrity() {
            w.add_message_integrity(&key);
        }
        if m.has_fingerprint() {
            w.add_fingerprint();
        }
        let n = w.finish().unwrap();
        let ours = &buf[..n];
        let theirs = zero_padding(&raw);
        assert_eq!(ours.len(), theirs.len(), "{name}");
        // MESSAGE-INTEGRITY and FINGERPRINT cover the padding, so where the vector pads with 0x20
        // they legitimately differ: compare everything before them, then check ours verify.
        let tail = usize::from(m.has_integrity()) * 24 + usize::from(m.has_fingerprint()) * 8;
        assert_eq!(&ours[..n - tail], &theirs[..n - tail], "{name}");
        if raw == theirs {
            assert_eq!(ours, &raw[..], "{name}: zero-padded vector must re-encode byte for byte");
        }
        let again = Message::parse(ours).unwrap();
        if m.has_integrity() {
            again.verify_integrity(&key).unwrap();
        }
        assert_eq!(again.fingerprint_ok(), m.fingerprint_ok().map(|_| true), "{name}");
    }
}

#[test]
fn negative_cases_are_refused() {
    let v = &vectors()[0];
    let raw = hex(v["hex"].as_str().unwrap());
    let key = key_for(v);

    // A flipped bit in MESSAGE-INTEGRITY.
    let mi_off = raw.len() - 8 - 24;
    let mut b = raw.clone();
    b[mi_off + 4 + 7] ^= 0x01;
    assert!(Message::parse(&b).unwrap().verify_integrity(&key).is_err());
    // The FINGERPRINT no longer matches either (it covers the MI bytes).
    assert_eq!(Message::parse(&b).unwrap().fingerprint_ok(), Some(false));

    // A wrong key.
    assert!(Message::parse(&raw).unwrap().verify_integrity(b"wrong password").is_err());

    // A flipped bit in the body breaks the HMAC.
    let mut b = raw.clone();
    b[30] ^= 0x80;
    assert!(Message::parse(&b).unwrap().verify_integrity(&key).is_err());

    // Truncation anywhere.
    for cut in 1..raw.len() {
        assert!(Message::parse(&raw[..cut]).is_err(), "truncated to {cut} bytes parsed");
    }

    // A bad length field.
    let mut b = raw.clone();
    b[3] = b[3].wrapping_add(4);
    assert!(Message::parse(&b).is_err());

    // A bad cookie.
    let mut b = raw.clone();
    b[5] ^= 0xFF;
    assert!(Message::parse(&b).is_err());
}

#[test]
fn long_term_vector_carries_no_fingerprint_and_a_realm() {
    let v = &vectors()[3];
    let raw = hex(v["hex"].as_str().unwrap());
    let m = Message::parse(&raw).unwrap();
    assert_eq!((m.method(), m.class()), (Method::BINDING, Class::Request));
    assert!(m.has_integrity());
    assert!(!m.has_fingerprint());
}
