//! Message framing on stream transports (TCP, TLS): where the next message ends.
//!
//! A stream carries STUN messages (20-byte header plus the length field) and ChannelData
//! messages (4-byte header plus the length, padded to a multiple of 4; RFC 8656 §12.5). The
//! first byte tells them apart (RFC 7983). The framer never needs more than the first four
//! bytes to know a message's full size, so the shell can bound its buffers exactly.

use crate::channel_data::{self, PacketKind};
use crate::stun;

/// The largest frame a stream can carry: a STUN message of 20 + 65532 bytes, which is larger
/// than a ChannelData message with 65535 bytes and padding (4 + 65535 + 1).
pub const MAX_FRAME_LEN: usize = stun::MAX_MESSAGE_LEN;

/// What the framer knows about the bytes at the front of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A complete message of this many bytes is at the front.
    Complete(usize),
    /// More bytes are needed; at least this many in total.
    Partial(usize),
    /// The stream does not carry STUN or ChannelData here: close the connection.
    Invalid,
}

/// Classifies the front of a stream buffer.
pub fn next_frame(buf: &[u8]) -> Frame {
    let Some(&first) = buf.first() else { return Frame::Partial(4) };
    if buf.len() < 4 {
        return Frame::Partial(4);
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let total = match channel_data::classify(first) {
        PacketKind::Stun => {
            if len % 4 != 0 {
                return Frame::Invalid;
            }
            stun::HEADER_LEN + len
        }
        PacketKind::ChannelData => {
            let channel = u16::from_be_bytes([buf[0], buf[1]]);
            if !channel_data::is_wire_channel(channel) {
                return Frame::Invalid;
            }
            channel_data::HEADER_LEN + len + channel_data::stream_padding(len)
        }
        PacketKind::Tls | PacketKind::Other => return Frame::Invalid,
    };
    if buf.len() >= total { Frame::Complete(total) } else { Frame::Partial(total) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_data_over_a_stream_includes_padding() {
        let b = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0, 0x00];
        assert_eq!(next_frame(&b), Frame::Complete(12));
        assert_eq!(next_frame(&b[..11]), Frame::Partial(12));
    }

    #[test]
    fn stun_frames_by_header_length() {
        let mut b = vec![0x00, 0x01, 0x00, 0x08];
        b.extend_from_slice(&[0; 16]);
        assert_eq!(next_frame(&b), Frame::Partial(28));
        b.extend_from_slice(&[0; 8]);
        assert_eq!(next_frame(&b), Frame::Complete(28));
    }

    #[test]
    fn every_split_of_a_stream_reassembles() {
        // Two ChannelData messages and a STUN header, cut at every byte.
        let mut stream = vec![0x40, 0x01, 0x00, 0x01, 9, 0, 0, 0];
        stream.extend_from_slice(&[0x40, 0x02, 0x00, 0x04, 1, 2, 3, 4]);
        stream.extend_from_slice(&[0x00, 0x01, 0x00, 0x00]);
        stream.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        stream.extend_from_slice(&[0; 12]);
        for cut in 0..=stream.len() {
            let mut buf = Vec::new();
            let mut frames = Vec::new();
            for chunk in [&stream[..cut], &stream[cut..]] {
                for &byte in chunk {
                    buf.push(byte);
                    while let Frame::Complete(n) = next_frame(&buf) {
                        frames.push(buf.drain(..n).collect::<Vec<u8>>());
                    }
                }
            }
            assert_eq!(frames.len(), 3, "cut at {cut}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn the_largest_stun_message_fits_max_frame_len() {
        // Found by the stream_framer fuzz target: a STUN message (20 + 65532 bytes) is larger
        // than the largest ChannelData frame, which MAX_FRAME_LEN used to be.
        let header = [0x00, 0x01, 0xFF, 0xFC];
        assert_eq!(next_frame(&header), Frame::Partial(20 + 0xFFFC));
        const { assert!(20 + 0xFFFC <= MAX_FRAME_LEN) };
        const { assert!(4 + 0xFFFF + 3 <= MAX_FRAME_LEN) };
    }

    #[test]
    fn garbage_is_invalid() {
        assert_eq!(next_frame(b"\x16\x03\x01\x02\x00"), Frame::Invalid);
        // "GE" is 0x4745, a valid channel number: HTTP GET frames as ChannelData, which the
        // shell refuses on a connection without an allocation.
        assert_eq!(next_frame(b"GET / HTTP/1.1"), Frame::Partial(4 + 0x5420));
        assert_eq!(next_frame(&[0x16, 0x03, 0x01, 0x00]), Frame::Invalid);
        assert_eq!(next_frame(&[0x00, 0x01, 0x00, 0x03]), Frame::Invalid);
        assert_eq!(next_frame(&[0x80, 0x00, 0x00, 0x00]), Frame::Invalid);
        assert_eq!(next_frame(&[0x00]), Frame::Partial(4));
    }
}
