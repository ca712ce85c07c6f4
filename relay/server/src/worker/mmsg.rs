//! Batched UDP I/O: `recvmmsg` into a worker's receive slots and `sendmmsg` of many datagrams
//! (each to its own address) in one system call, with UDP GSO for runs of equal-sized datagrams
//! to one destination.
//!
//! Every slot leaves [`PEER_HEADROOM`] bytes free before the datagram and [`PEER_TAILROOM`]
//! after it, so the core can write a ChannelData or Data-indication header in place whichever
//! socket the datagram came from (a client's packet short-circuited to another allocation
//! becomes a peer datagram without a copy).
//!
//! Addresses cross the system calls as `sockaddr_in6` (large enough for both families; an IPv4
//! `sockaddr_in` lies over its first 16 bytes, the address where `sin6_flowinfo` is), so no
//! pointer casts are needed to read or write them. The only `unsafe` here is the two system
//! calls and a `setsockopt`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;
use std::ptr;

use relay_proto::server::{PEER_HEADROOM, PEER_TAILROOM};

use super::MAX_DATAGRAM;

/// Datagrams received before the queued sends are flushed.
pub(super) const SLOTS: usize = 64;
/// Datagrams per `sendmmsg`/`recvmmsg` call (the kernel's UIO_MAXIOV is far above).
const MAX_BATCH: usize = 64;
/// UDP GSO: at most this many segments per send (the kernel's UDP_MAX_SEGMENTS).
const MAX_GSO_SEGMENTS: usize = 64;
/// Larger datagrams are never coalesced: a GSO segment must fit the route's MTU.
const MAX_GSO_SEGMENT_LEN: usize = 1400;
/// Bytes from one slot to the next. The extra cache line keeps the slots' headers from all
/// mapping to the same cache set.
const STRIDE: usize = (PEER_HEADROOM + MAX_DATAGRAM + PEER_TAILROOM).div_ceil(64) * 64 + 64;

const SOL_UDP: libc::c_int = 17;
const UDP_SEGMENT: libc::c_int = 103;

/// An empty `sockaddr_in6`.
const NO_ADDR: libc::sockaddr_in6 = libc::sockaddr_in6 {
    sin6_family: 0,
    sin6_port: 0,
    sin6_flowinfo: 0,
    sin6_addr: libc::in6_addr { s6_addr: [0; 16] },
    sin6_scope_id: 0,
};
const NO_IOV: libc::iovec = libc::iovec { iov_base: ptr::null_mut(), iov_len: 0 };
const NO_MSG: libc::mmsghdr = libc::mmsghdr {
    msg_hdr: libc::msghdr {
        msg_name: ptr::null_mut(),
        msg_namelen: 0,
        msg_iov: ptr::null_mut(),
        msg_iovlen: 0,
        msg_control: ptr::null_mut(),
        msg_controllen: 0,
        msg_flags: 0,
    },
    msg_len: 0,
};

/// Decodes an address the kernel wrote.
pub(super) fn from_raw(a: &libc::sockaddr_in6) -> Option<SocketAddr> {
    match i32::from(a.sin6_family) {
        libc::AF_INET => {
            // sockaddr_in: family, port, then the address where sin6_flowinfo lies.
            let ip = Ipv4Addr::from(a.sin6_flowinfo.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin6_port))))
        }
        libc::AF_INET6 => Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(a.sin6_addr.s6_addr),
            u16::from_be(a.sin6_port),
            u32::from_be(a.sin6_flowinfo),
            a.sin6_scope_id,
        ))),
        _ => None,
    }
}

/// Encodes an address for the kernel; returns it and its length.
pub(super) fn to_raw(addr: SocketAddr) -> (libc::sockaddr_in6, libc::socklen_t) {
    match addr {
        SocketAddr::V4(v4) => (
            libc::sockaddr_in6 {
                sin6_family: libc::AF_INET as libc::sa_family_t,
                sin6_port: v4.port().to_be(),
                sin6_flowinfo: u32::from_ne_bytes(v4.ip().octets()),
                ..NO_ADDR
            },
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ),
        SocketAddr::V6(v6) => (
            libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo().to_be(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            },
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        ),
    }
}

/// The worker's receive slots: filled by [`Slots::recv`], emptied all at once by
/// [`Slots::reset`] after the sends that point into them went out. The default value holds no
/// slot (a placeholder while the real ones are lent out).
#[derive(Default)]
pub(super) struct Slots {
    mem: Box<[u8]>,
    from: Box<[libc::sockaddr_in6]>,
    lens: Box<[usize]>,
    used: usize,
}

impl Slots {
    pub(super) fn new() -> Slots {
        Slots {
            // Large and zeroed: the allocator maps it lazily, so only the pages datagrams touch
            // become resident.
            mem: vec![0u8; STRIDE * SLOTS].into_boxed_slice(),
            from: vec![NO_ADDR; SLOTS].into_boxed_slice(),
            lens: vec![0; SLOTS].into_boxed_slice(),
            used: 0,
        }
    }

    /// Slots still free.
    pub(super) fn free(&self) -> usize {
        SLOTS - self.used
    }

    pub(super) fn reset(&mut self) {
        self.used = 0;
    }

    /// Slot `i`: headroom, datagram, tailroom. The datagram is at `PEER_HEADROOM..+len(i)`.
    pub(super) fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.mem[i * STRIDE..(i + 1) * STRIDE]
    }

    pub(super) fn slot(&self, i: usize) -> &[u8] {
        &self.mem[i * STRIDE..(i + 1) * STRIDE]
    }

    /// The datagram in slot `i` and its source.
    pub(super) fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let at = i * STRIDE + PEER_HEADROOM;
        (&self.mem[at..at + self.lens[i]], from_raw(&self.from[i]))
    }

    pub(super) fn len(&self, i: usize) -> usize {
        self.lens[i]
    }

    /// Receives up to `max` datagrams (bounded by the free slots) from `fd` without blocking.
    /// Returns the slots filled; an empty range means the socket had nothing.
    pub(super) fn recv(&mut self, fd: RawFd, max: usize) -> io::Result<std::ops::Range<usize>> {
        let first = self.used;
        let n = max.min(self.free()).min(MAX_BATCH);
        if n == 0 {
            return Ok(first..first);
        }
        let mut iov = [NO_IOV; MAX_BATCH];
        let mut msgs = [NO_MSG; MAX_BATCH];
        let base = self.mem.as_mut_ptr();
        for k in 0..n {
            let slot = first + k;
            // In bounds: slot < SLOTS and the datagram area ends PEER_TAILROOM before the slot's end.
            iov[k] = libc::iovec {
                iov_base: base.wrapping_add(slot * STRIDE + PEER_HEADROOM).cast(),
                iov_len: MAX_DATAGRAM,
            };
            msgs[k].msg_hdr.msg_name = (&raw mut self.from[slot]).cast();
            msgs[k].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            msgs[k].msg_hdr.msg_iov = &raw mut iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `msgs[..n]` point at `n` distinct, live iovecs, each covering MAX_DATAGRAM bytes
        // inside its own slot of `self.mem`, and at `n` distinct sockaddr_in6 of `self.from` with
        // their exact size; all outlive the call, and nothing else borrows them during it.
        let r =
            unsafe { libc::recvmmsg(fd, msgs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT, ptr::null_mut()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(first..first) } else { Err(e) };
        }
        let got = r as usize;
        for (k, m) in msgs.iter().take(got).enumerate() {
            // A truncated datagram cannot happen (each slot holds the largest UDP payload); an
            // empty one is dropped by the core like any malformed packet.
            self.lens[first + k] = (m.msg_len as usize).min(MAX_DATAGRAM);
        }
        self.used += got;
        Ok(first..first + got)
    }
}

/// One datagram to send: bytes and destination.
pub(super) type Datagram<'a> = (&'a [u8], SocketAddr);

/// Sends `out` from `fd` with as few system calls as it takes: `sendmmsg` batches, and within
/// them UDP GSO for runs of datagrams to one destination whose sizes are equal (the last may be
/// shorter), when `*gso` is on. A GSO send the route refuses (no checksum offload, a segment
/// above the MTU) is sent again without GSO, and `*gso` turns off. Returns how many datagrams
/// the kernel took; the rest are dropped (a full socket buffer drops UDP, as it would have for
/// a single send).
pub(super) fn send_all(fd: RawFd, out: &[Datagram<'_>], gso: &mut bool) -> usize {
    let mut sent = 0;
    let mut at = 0;
    while at < out.len() {
        let (n, took, gso_refused) = send_batch(fd, &out[at..], *gso);
        sent += took;
        if gso_refused {
            *gso = false;
            tracing::debug!(target: "relay", "UDP GSO refused on this route: sending without it");
            continue;
        }
        if n == 0 {
            break;
        }
        at += n;
    }
    sent
}

/// Length of the GSO run that starts `out`: same destination, equal sizes, last one no longer.
fn gso_run(out: &[Datagram<'_>]) -> usize {
    let (first, to) = out[0];
    let seg = first.len();
    if seg == 0 || seg > MAX_GSO_SEGMENT_LEN {
        return 1;
    }
    let mut n = 1;
    let mut total = seg;
    while n < out.len() && n < MAX_GSO_SEGMENTS {
        let (b, t) = out[n];
        if t != to || b.len() > seg || b.is_empty() || total + b.len() > 65000 {
            break;
        }
        total += b.len();
        n += 1;
        if b.len() < seg {
            break;
        }
    }
    n
}

/// One `sendmmsg`. Returns (datagrams consumed from `out`, datagrams the kernel took, whether a
/// GSO send was refused: then nothing was consumed).
fn send_batch(fd: RawFd, out: &[Datagram<'_>], gso: bool) -> (usize, usize, bool) {
    let mut iov = [NO_IOV; MAX_BATCH];
    let mut names = [NO_ADDR; MAX_BATCH];
    let mut msgs = [NO_MSG; MAX_BATCH];
    // One control buffer per message: a cmsghdr (16 bytes on 64-bit) and a u16, aligned.
    let mut ctrl = [[0u64; 4]; MAX_BATCH];
    let mut segs_of = [0usize; MAX_BATCH];
    let mut nmsg = 0;
    let mut used = 0;
    let mut niov = 0;
    while used < out.len() && nmsg < MAX_BATCH && niov < MAX_BATCH {
        let run = if gso { gso_run(&out[used..]).min(MAX_BATCH - niov) } else { 1 };
        let (_, to) = out[used];
        let (name, namelen) = to_raw(to);
        names[nmsg] = name;
        for k in 0..run {
            let b = out[used + k].0;
            // The kernel only reads through iov_base on send.
            iov[niov + k] = libc::iovec { iov_base: b.as_ptr().cast_mut().cast(), iov_len: b.len() };
        }
        let m = &mut msgs[nmsg].msg_hdr;
        m.msg_name = (&raw mut names[nmsg]).cast();
        m.msg_namelen = namelen;
        m.msg_iov = &raw mut iov[niov];
        m.msg_iovlen = run;
        if run > 1 {
            let c = &mut ctrl[nmsg];
            let seg = out[used].0.len() as u16;
            // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the data.
            let mut level_type = [0u8; 8];
            level_type[..4].copy_from_slice(&SOL_UDP.to_ne_bytes());
            level_type[4..].copy_from_slice(&UDP_SEGMENT.to_ne_bytes());
            let mut data = [0u8; 8];
            data[..2].copy_from_slice(&seg.to_ne_bytes());
            c[0] = (std::mem::size_of::<libc::cmsghdr>() + 2) as u64;
            c[1] = u64::from_ne_bytes(level_type);
            c[2] = u64::from_ne_bytes(data);
            m.msg_control = c.as_mut_ptr().cast();
            m.msg_controllen = std::mem::size_of::<libc::cmsghdr>() + 8;
        }
        segs_of[nmsg] = run;
        nmsg += 1;
        niov += run;
        used += run;
    }
    // SAFETY: `msgs[..nmsg]` point at live, distinct sockaddr_in6 in `names` with their exact
    // lengths, at iovec runs inside `iov` that cover only the caller's borrowed slices, and (for
    // GSO) at a 32-byte, 8-aligned control buffer holding one UDP_SEGMENT cmsg; everything
    // outlives the call, and the kernel only reads the data.
    let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), nmsg as libc::c_uint, 0) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if segs_of[0] > 1 && e.kind() != io::ErrorKind::WouldBlock {
            // GSO refused on this route: the caller sends them again without it.
            return (0, 0, true);
        }
        tracing::trace!(target: "wire", error = %e, "sendmmsg");
        if e.kind() == io::ErrorKind::WouldBlock {
            // The socket buffer is full: this batch is dropped, as UDP would.
            return (used, 0, false);
        }
        // This message could not go (say, an unreachable address): skip it and go on.
        return (segs_of[0], 0, false);
    }
    // Fewer taken than given: the next call starts at the one that failed and learns why.
    let done: usize = segs_of[..r as usize].iter().sum();
    (done, done, false)
}

/// Whether UDP GSO works on `fd` (Linux 4.18+): probed once per socket kind.
pub(super) fn gso_supported(fd: RawFd) -> bool {
    let v: libc::c_int = 0;
    // SAFETY: setsockopt on a socket the caller owns, with a pointer to a live c_int and its
    // exact size; UDP_SEGMENT 0 leaves GSO off for plain sends, only probing support.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            SOL_UDP,
            UDP_SEGMENT,
            (&raw const v).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn addresses_round_trip_through_the_raw_form() {
        for a in ["127.0.0.1:3478", "[::1]:5000", "[fe80::1%2]:9", "203.0.113.9:65535"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(from_raw(&to_raw(a).0), Some(a));
        }
        assert_eq!(from_raw(&NO_ADDR), None);
    }

    #[test]
    fn gso_runs_need_one_destination_and_equal_sizes() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let (x, y) = ([1u8; 100], [2u8; 60]);
        assert_eq!(gso_run(&[(&x, a), (&x, a), (&y, a), (&x, a)]), 3, "a shorter one ends the run");
        assert_eq!(gso_run(&[(&x, a), (&x, b)]), 1);
        assert_eq!(gso_run(&[(&y, a), (&x, a)]), 1, "a longer one cannot follow");
    }

    #[test]
    fn batches_go_out_and_come_back_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..80u8).map(|i| vec![i; if i % 10 == 9 { 7 } else { 100 }]).collect();
        for gso in [false, gso_supported(tx.as_raw_fd())] {
            let out: Vec<Datagram<'_>> = payloads.iter().map(|p| (&p[..], to)).collect();
            assert_eq!(send_all(tx.as_raw_fd(), &out, &mut gso.clone()), 80);
            let mut slots = Slots::new();
            let mut got = Vec::new();
            for _ in 0..100 {
                slots.reset();
                let r = slots.recv(rx.as_raw_fd(), SLOTS).unwrap();
                for i in r {
                    let (d, from) = slots.datagram(i);
                    assert_eq!(from, Some(tx.local_addr().unwrap()));
                    got.push(d.to_vec());
                }
                if got.len() == 80 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert_eq!(got, payloads, "gso={gso}");
            slots.reset();
            assert!(slots.recv(rx.as_raw_fd(), SLOTS).unwrap().is_empty());
        }
    }
}
