//! ChannelData messages (RFC 8656 §12.4) and first-byte demultiplexing (RFC 7983).
//!
//! A ChannelData message is a 4-byte header (channel number, payload length) and the payload.
//! Over UDP trailing bytes after the payload are allowed and ignored; over TCP and TLS the message
//! is padded to a multiple of 4 and the padding is not counted in the length.

use std::fmt;

/// The lowest channel number a client may bind (RFC 8656 §12).
pub const MIN_CHANNEL: u16 = 0x4000;
/// The highest channel number a client may bind (RFC 8656 §12 narrowed RFC 5766's 0x7FFF).
pub const MAX_CHANNEL: u16 = 0x4FFF;
/// The highest channel number of RFC 5766, which older clients (coturn 4.6's own
/// `turnutils_uclient` among them) still bind; accepted for binding only with coturn's
/// `rfc5766-channel-numbers`.
pub const MAX_RFC5766_CHANNEL: u16 = 0x7FFF;
/// Bytes in a ChannelData header.
pub const HEADER_LEN: usize = 4;

/// Whether `n` is a channel number a client may bind under RFC 8656.
#[inline]
pub fn is_valid_channel(n: u16) -> bool {
    (MIN_CHANNEL..=MAX_CHANNEL).contains(&n)
}

/// Whether `n` can appear in a ChannelData header on the wire: the RFC 5766 range. Receiving is
/// lenient, as coturn's is; only bound channels carry data anyway.
#[inline]
pub fn is_wire_channel(n: u16) -> bool {
    (MIN_CHANNEL..=MAX_RFC5766_CHANNEL).contains(&n)
}

/// What the first byte of a packet on a TURN port says it is (RFC 7983 §7, RFC 8656 §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// 0–3: a STUN message.
    Stun,
    /// 64–127: a ChannelData message (64–79 under RFC 8656; up to 127 for RFC 5766 numbers).
    ChannelData,
    /// 22: a TLS record (ClientHello on a plain port; coturn serves it as TLS).
    Tls,
    /// Anything else: dropped.
    Other,
}

/// Classifies a packet by its first byte.
#[inline]
pub fn classify(first: u8) -> PacketKind {
    match first {
        0..=3 => PacketKind::Stun,
        64..=127 => PacketKind::ChannelData,
        22 => PacketKind::Tls,
        _ => PacketKind::Other,
    }
}

/// Why bytes are not a ChannelData message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelDataError {
    /// Fewer than 4 bytes.
    TooShort,
    /// The channel number is outside 0x4000–0x7FFF.
    BadChannel,
    /// The declared length runs past the bytes present.
    Truncated,
}

impl fmt::Display for ChannelDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChannelDataError::TooShort => "shorter than a ChannelData header",
            ChannelDataError::BadChannel => "channel number outside 0x4000-0x7FFF",
            ChannelDataError::Truncated => "declared length runs past the packet",
        })
    }
}

impl std::error::Error for ChannelDataError {}

/// A borrowed ChannelData message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    channel: u16,
    payload: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Parses a ChannelData message. Bytes after the declared payload are ignored (UDP padding);
    /// a declared length larger than the bytes present is an error, never an over-read.
    pub fn parse(b: &'a [u8]) -> Result<Self, ChannelDataError> {
        let h = b.get(..HEADER_LEN).ok_or(ChannelDataError::TooShort)?;
        let channel = u16::from_be_bytes([h[0], h[1]]);
        if !is_wire_channel(channel) {
            return Err(ChannelDataError::BadChannel);
        }
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let payload = b.get(HEADER_LEN..HEADER_LEN + len).ok_or(ChannelDataError::Truncated)?;
        Ok(ChannelData { channel, payload })
    }

    /// The channel number.
    pub fn channel(&self) -> u16 {
        self.channel
    }

    /// The application data.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Writes a ChannelData header in place (the caller reserved 4 bytes of headroom before the
/// payload). Fails if the payload is longer than 65535 bytes.
#[inline]
pub fn write_header(out: &mut [u8; HEADER_LEN], channel: u16, payload_len: usize) -> Result<(), ChannelDataError> {
    let len = u16::try_from(payload_len).map_err(|_| ChannelDataError::Truncated)?;
    out[..2].copy_from_slice(&channel.to_be_bytes());
    out[2..].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Bytes of padding a ChannelData message of `payload_len` needs over a stream transport.
#[inline]
pub fn stream_padding(payload_len: usize) -> usize {
    (4 - payload_len % 4) % 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_ignores_trailing_padding() {
        let b = [0x40, 0x01, 0x00, 0x03, b'a', b'b', b'c', 0, 0xEE];
        let cd = ChannelData::parse(&b).unwrap();
        assert_eq!(cd.channel(), 0x4001);
        assert_eq!(cd.payload(), b"abc");
    }

    #[test]
    fn declared_length_past_the_end_is_refused() {
        // stunner's "memoryleak" probe: length 35510 with 3 bytes present.
        let b = [0x40, 0x00, 0x8A, 0xB6, b'x', b'x', b'x'];
        assert_eq!(ChannelData::parse(&b), Err(ChannelDataError::Truncated));
        assert_eq!(ChannelData::parse(&b[..3]), Err(ChannelDataError::TooShort));
        assert_eq!(ChannelData::parse(&[0x80, 0, 0, 0]), Err(ChannelDataError::BadChannel));
        assert!(ChannelData::parse(&[0x50, 0, 0, 0]).is_ok(), "RFC 5766 numbers are received");
    }

    #[test]
    fn header_round_trips() {
        let mut h = [0u8; 4];
        write_header(&mut h, 0x4FFF, 1200).unwrap();
        let mut b = h.to_vec();
        b.extend(std::iter::repeat_n(7u8, 1200));
        let cd = ChannelData::parse(&b).unwrap();
        assert_eq!((cd.channel(), cd.payload().len()), (0x4FFF, 1200));
        assert!(write_header(&mut h, 0x4000, 70000).is_err());
    }

    #[test]
    fn demux_follows_rfc7983() {
        assert_eq!(classify(0x00), PacketKind::Stun);
        assert_eq!(classify(0x01), PacketKind::Stun);
        assert_eq!(classify(0x40), PacketKind::ChannelData);
        assert_eq!(classify(0x4F), PacketKind::ChannelData);
        assert_eq!(classify(0x7F), PacketKind::ChannelData);
        assert_eq!(classify(0x80), PacketKind::Other);
        assert_eq!(classify(22), PacketKind::Tls);
        assert_eq!(stream_padding(3), 1);
        assert_eq!(stream_padding(4), 0);
    }
}
