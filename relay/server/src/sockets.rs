//! Socket construction (socket2) and the token scheme of each worker's `mio::Poll`.
//!
//! Tokens: a relay socket's token is its port (0..=65535); listeners, the waker and TCP
//! connections live above that, so a token names its kind without a lookup.

use std::io;
use std::net::SocketAddr;

use mio::Token;
use socket2::{Domain, Protocol, Socket, Type};

/// UDP listeners: `UDP_BASE + i` for listening address `i`.
pub(crate) const UDP_BASE: usize = 1 << 16;
/// TCP listeners: `TCP_BASE + i`.
pub(crate) const TCP_BASE: usize = UDP_BASE + 4096;
/// TLS listeners (`tls-listening-port`): `TLS_BASE + i`.
pub(crate) const TLS_BASE: usize = TCP_BASE + 2048;
/// The worker's waker.
pub(crate) const WAKER: Token = Token(UDP_BASE + 8191);
/// TCP connections: `CONN_BASE + slab index`.
pub(crate) const CONN_BASE: usize = 1 << 17;

/// Socket buffer size asked for on listening and relay sockets (the kernel may cap it).
const SOCK_BUF: usize = 4 << 20;

/// Fails if another process holds `addr` (UDP or TCP). SO_REUSEPORT would otherwise let a
/// second relay, or a coturn left running, silently share the port with us; a plain bind
/// without SO_REUSEPORT is refused when anyone holds it.
pub(crate) fn ensure_free(addr: SocketAddr, udp: bool, tcp: bool) -> io::Result<()> {
    for (on, ty, proto) in [(udp, Type::DGRAM, Protocol::UDP), (tcp, Type::STREAM, Protocol::TCP)] {
        if !on {
            continue;
        }
        let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        if ty == Type::STREAM {
            // A TCP port in TIME_WAIT is not in use.
            s.set_reuse_address(true)?;
        }
        s.bind(&addr.into()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{} port in use by another process: {e}", if udp && ty == Type::DGRAM { "UDP" } else { "TCP" }),
            )
        })?;
    }
    Ok(())
}

/// A UDP socket on the listening port that shares it with the other workers (SO_REUSEPORT).
pub(crate) fn udp_listener(addr: SocketAddr) -> io::Result<mio::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    let _ = s.set_recv_buffer_size(SOCK_BUF);
    let _ = s.set_send_buffer_size(SOCK_BUF);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(mio::net::UdpSocket::from_std(s.into()))
}

/// A TCP listener on the listening port, shared with the other workers (SO_REUSEPORT).
pub(crate) fn tcp_listener(addr: SocketAddr) -> io::Result<mio::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(mio::net::TcpListener::from_std(s.into()))
}

/// A relay socket bound to `addr` (not shared: the port is this allocation's).
pub(crate) fn relay_socket(addr: SocketAddr, dont_fragment: bool) -> io::Result<mio::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    let _ = s.set_recv_buffer_size(SOCK_BUF / 4);
    let _ = s.set_send_buffer_size(SOCK_BUF / 4);
    s.set_nonblocking(true)?;
    if dont_fragment {
        set_dont_fragment(&s, addr.is_ipv6())?;
    }
    s.bind(&addr.into())?;
    Ok(mio::net::UdpSocket::from_std(s.into()))
}

/// DONT-FRAGMENT (RFC 8656 §7.2): the DF bit on IPv4, IPV6_DONTFRAG on IPv6.
pub(crate) fn set_dont_fragment(s: &Socket, v6: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (level, name, value) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1)
    } else {
        (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_DO)
    };
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}
