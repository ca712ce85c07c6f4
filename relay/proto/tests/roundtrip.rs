//! Property test: encoding any set of attributes and decoding it gives the same attributes back,
//! with integrity and fingerprint verifying.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use relay_proto::stun::{AttrType, Class, Message, MessageType, MessageWriter, Method, TransactionId};

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![Just(Class::Request), Just(Class::Indication), Just(Class::Success), Just(Class::Error)]
}

fn attribute() -> impl Strategy<Value = (u16, Vec<u8>)> {
    // Any type except the three that must come last.
    (
        any::<u16>().prop_filter("integrity/fingerprint", |t| ![0x0008, 0x001C, 0x8028].contains(t)),
        prop::collection::vec(any::<u8>(), 0..64),
    )
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(
        method in 0u16..0x1000,
        class in class(),
        tid in any::<[u8; 12]>(),
        attrs in prop::collection::vec(attribute(), 0..12),
        key in prop::collection::vec(any::<u8>(), 1..40),
        mi in any::<bool>(),
        mi256 in any::<bool>(),
        fp in any::<bool>(),
    ) {
        let mut buf = vec![0x5Au8; 2048];
        let mtype = MessageType::new(Method(method), class);
        let mut w = MessageWriter::new(&mut buf, mtype, TransactionId(tid));
        for (t, v) in &attrs {
            w.add(AttrType(*t), v);
        }
        if mi { w.add_message_integrity(&key); }
        if mi256 { w.add_message_integrity_sha256(&key); }
        if fp { w.add_fingerprint(); }
        let n = w.finish().unwrap();
        let m = Message::parse(&buf[..n]).unwrap();
        prop_assert_eq!(m.message_type(), mtype);
        prop_assert_eq!(m.transaction_id(), TransactionId(tid));
        let got: Vec<(u16, Vec<u8>)> = m.attributes().map(|(t, v)| (t.0, v.to_vec())).collect();
        prop_assert_eq!(got, attrs);
        prop_assert_eq!(m.verify_integrity(&key).is_ok(), mi);
        prop_assert_eq!(m.verify_integrity_sha256(&key).is_ok(), mi256);
        prop_assert_eq!(m.fingerprint_ok(), if fp { Some(true) } else { None });
    }

    #[test]
    fn parser_never_panics(data in prop::collection::vec(any::<u8>(), 0..256)) {
        relay_proto::fuzzing::stun_message(&data);
        relay_proto::fuzzing::channel_data(&data);
    }
}
