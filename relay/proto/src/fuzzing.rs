//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay test, so the
//! committed corpora run as ordinary tests on the stable toolchain.
//!
//! Each function must never panic, whatever the bytes; the asserts inside are the invariants
//! the fuzzer checks.

mod server;

pub use self::server::MemoryHost;

pub use self::server::server_input;

use crate::channel_data::{self, ChannelData, PacketKind};
use crate::framing::{self, Frame};
use crate::stun::{AttrType, HEADER_LEN, Message, MessageWriter, attr};
use crate::turn_rest;

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

/// Parses `data` as ChannelData; a parsed message is what the demultiplexer calls ChannelData,
/// its payload lies right after the header, and re-writing the header gives the same bytes.
pub fn channel_data(data: &[u8]) {
    let Ok(cd) = ChannelData::parse(data) else { return };
    let len = cd.payload().len();
    assert!(len + channel_data::HEADER_LEN <= data.len());
    assert_eq!(channel_data::classify(data[0]), PacketKind::ChannelData);
    assert_eq!(cd.payload(), &data[channel_data::HEADER_LEN..channel_data::HEADER_LEN + len]);
    let mut header = [0u8; channel_data::HEADER_LEN];
    channel_data::write_header(&mut header, cd.channel(), len).expect("a parsed length fits the header");
    assert_eq!(header, data[..channel_data::HEADER_LEN]);
}

/// Frames `data` as a TCP/TLS byte stream twice, all at once and one byte at a time as the shell
/// would receive it, and checks that both cut the same frames, that the buffer never holds more
/// than one maximal frame, and that every frame is what its header says.
pub fn stream_framer(data: &[u8]) {
    let whole = frames(data, data.len().max(1));
    let trickled = frames(data, 1);
    assert_eq!(whole, trickled, "framing depends on how the stream was segmented");
    let mut at = 0;
    for &n in &whole.0 {
        let frame = &data[at..at + n];
        match channel_data::classify(frame[0]) {
            PacketKind::ChannelData => {
                let cd = ChannelData::parse(frame).expect("a ChannelData frame parses");
                let len = cd.payload().len();
                assert_eq!(n, channel_data::HEADER_LEN + len + channel_data::stream_padding(len));
            }
            PacketKind::Stun => {
                assert!(n >= HEADER_LEN);
                assert_eq!(n, HEADER_LEN + usize::from(u16::from_be_bytes([frame[2], frame[3]])));
                stun_message(frame);
            }
            PacketKind::Tls | PacketKind::Other => panic!("a frame the framer should have refused"),
        }
        at += n;
    }
}

/// Frame sizes cut from `data` fed in chunks of `chunk` bytes, and whether the stream turned
/// invalid.
fn frames(data: &[u8], chunk: usize) -> (Vec<usize>, bool) {
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match framing::next_frame(&buf) {
                Frame::Complete(n) => {
                    assert!((channel_data::HEADER_LEN..=framing::MAX_FRAME_LEN).contains(&n) && n <= buf.len());
                    out.push(n);
                    buf.drain(..n);
                }
                Frame::Partial(need) => {
                    assert!(need > buf.len() && need <= framing::MAX_FRAME_LEN, "Partial({need}) of {}", buf.len());
                    break;
                }
                Frame::Invalid => return (out, true),
            }
        }
        assert!(buf.len() < framing::MAX_FRAME_LEN, "the stream buffer outgrew one frame");
    }
    (out, false)
}

/// Parses `data` as a TURN REST username, and checks that credentials generated for it as a user
/// name parse back to the same user and expiry and verify.
pub fn turn_rest_username(data: &[u8]) {
    let Some((&sep, rest)) = data.split_first() else { return };
    let sep = if sep & 1 == 0 { turn_rest::DEFAULT_SEPARATOR } else { char::from(sep >> 1) };
    let Ok(s) = std::str::from_utf8(rest) else { return };
    match turn_rest::parse_username(s, sep) {
        Ok(u) => {
            assert!(u.user.len() < s.len(), "the user part leaves room for the expiry");
            assert!(s.starts_with(u.user) || s.ends_with(u.user));
            let checked = turn_rest::check_username(s, sep, u.expiry);
            assert_eq!(checked, Ok(u));
            if let Some(later) = u.expiry.checked_add(1) {
                assert_eq!(turn_rest::check_username(s, sep, later), Err(turn_rest::RestError::Expired));
            }
        }
        Err(e) => assert_eq!(turn_rest::check_username(s, sep, 0), Err(e)),
    }
    let unix_now = 1_800_000_000;
    let creds = turn_rest::generate(b"secret", s, 3600, unix_now);
    let back = turn_rest::check_username(&creds.username, turn_rest::DEFAULT_SEPARATOR, unix_now)
        .expect("generated credentials verify");
    assert_eq!((back.expiry, back.user), (unix_now + 3600, s));
    assert_eq!(turn_rest::password(b"secret", &creds.username), creds.password);
}
