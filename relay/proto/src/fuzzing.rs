//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay test, so the
//! committed corpora run as ordinary tests on the stable toolchain.
//!
//! Each function must never panic, whatever the bytes.

use crate::channel_data::ChannelData;
use crate::stun::{AttrType, Message, MessageWriter, attr};

/// Parses `data` as STUN and exercises every getter, the integrity checks and a re-encode.
pub fn stun_message(data: &[u8]) {
    let Ok(m) = Message::parse_any(data) else { return };
    let _ = m.xor_mapped_address();
    let _ = m.mapped_address();
    let _ = m.xor_peer_addresses().count();
    let _ = m.xor_relayed_addresses().count();
    let _ = m.alternate_server();
    let _ = m.username();
    let _ = m.userhash();
    let _ = m.realm();
    let _ = m.nonce();
    let _ = m.software();
    let _ = m.password_algorithm();
    if let Some(v) = m.password_algorithms() {
        let _ = attr::password_algorithms(v).count();
    }
    let _ = m.error_code();
    let _ = m.unknown_attributes().count();
    let _ = m.lifetime();
    let _ = m.requested_transport();
    let _ = m.requested_address_family();
    let _ = m.additional_address_family();
    let _ = m.even_port();
    let _ = m.reservation_token();
    let _ = m.channel_number();
    let _ = m.data();
    let _ = m.unknown_comprehension_required().count();
    let _ = m.verify_integrity(b"key");
    let _ = m.verify_integrity_sha256(b"key");
    let _ = m.fingerprint_ok();

    // Re-encoding the counted attributes must produce a message that parses to the same set.
    let mut buf = vec![0u8; data.len() + 64];
    let mut w = MessageWriter::with_raw_id(&mut buf, m.message_type(), m.cookie_and_transaction_id());
    for (t, v) in m.attributes() {
        w.add(t, v);
    }
    let n = w.finish().expect("re-encoding a parsed message fits its own size");
    let again = Message::parse_any(&buf[..n]).expect("re-encoded message parses");
    assert!(again.attributes().eq(m.attributes()));
    let _ = AttrType::ALL.len();
}

/// Parses `data` as ChannelData.
pub fn channel_data(data: &[u8]) {
    if let Ok(cd) = ChannelData::parse(data) {
        assert!(cd.payload().len() + 4 <= data.len());
    }
}
