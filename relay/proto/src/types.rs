//! Small role types shared by the core and the shell.

use std::fmt;
use std::net::SocketAddr;

/// The transport between a client and the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP datagrams on the listening port.
    Udp,
    /// A TCP connection.
    Tcp,
    /// A TLS connection over TCP.
    Tls,
}

impl Transport {
    /// Whether messages on this transport are framed in a byte stream (TCP, TLS).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// Every transport, in the order of [`Transport::index`].
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

    /// 0, 1, 2 for UDP, TCP, TLS: the index of per-transport counters (`Stats::allocations_created`).
    pub fn index(self) -> usize {
        match self {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
        }
    }

    /// Lower-case name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// The 5-tuple that names a client's association with the server (RFC 8656 §2): the client's
/// address, the server address it reached, and the transport. Each TCP/TLS connection is one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiveTuple {
    /// The client's address as the server sees it.
    pub client: SocketAddr,
    /// The server address the client sent to; replies leave from it.
    pub server: SocketAddr,
    /// The transport.
    pub transport: Transport,
}

impl FiveTuple {
    /// A UDP 5-tuple.
    pub fn udp(client: SocketAddr, server: SocketAddr) -> Self {
        FiveTuple { client, server, transport: Transport::Udp }
    }
}

impl fmt::Debug for FiveTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}->{}", self.transport.as_str(), self.client, self.server)
    }
}

impl fmt::Display for FiveTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
