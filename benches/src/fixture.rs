//! An in-memory TURN server with allocations, channels and permissions already in place, for
//! the criterion benches of the hot path. Nothing here touches a socket.

use std::net::SocketAddr;
use std::time::Instant;

use relay_proto::server::{
    AuthConfig, ClientAction, PEER_HEADROOM, PEER_TAILROOM, RelayHost, RelayOpenError, RelayOptions, Server,
    ServerConfig,
};
use relay_proto::types::FiveTuple;

use crate::client::{self, DataTemplate, Request, Response};

/// A [`RelayHost`] that binds nothing and grants every port.
#[derive(Debug, Default)]
pub struct NullHost;

impl RelayHost for NullHost {
    fn open_relay(&mut self, _addr: SocketAddr, _opts: RelayOptions) -> Result<(), RelayOpenError> {
        Ok(())
    }
    fn close_relay(&mut self, _addr: SocketAddr) {}
    fn reserve(
        &mut self,
        _token: u64,
        _addr: SocketAddr,
        _expires: Instant,
        _opts: RelayOptions,
    ) -> Result<(), RelayOpenError> {
        Ok(())
    }
    fn claim_reservation(&mut self, _token: u64, _now: Instant, _opts: RelayOptions) -> Option<SocketAddr> {
        None
    }
    fn release_reservation(&mut self, _token: u64) {}
}

/// The channel number every fixture client binds to [`Fixture::peer`].
pub const CHANNEL: u16 = 0x4000;

/// A server with `n` UDP allocations. Each has channel [`CHANNEL`] bound to [`Fixture::peer`]
/// and a permission (no channel) for [`Fixture::send_peer`].
pub struct Fixture {
    /// The server.
    pub server: Server,
    /// The clients' 5-tuples.
    pub clients: Vec<FiveTuple>,
    /// Their relay addresses.
    pub relays: Vec<SocketAddr>,
    /// The channel peer.
    pub peer: SocketAddr,
    /// The permission-only peer.
    pub send_peer: SocketAddr,
    /// The clock the fixture was built at.
    pub now: Instant,
}

impl Fixture {
    /// Builds the fixture. Panics if the core refuses the setup (a bench cannot run then).
    #[allow(clippy::missing_panics_doc)]
    pub fn new(n: usize) -> Fixture {
        let now = Instant::now();
        let mut cfg = ServerConfig::new("bench.local", 49152..=65535);
        cfg.auth = AuthConfig { no_auth: true, ..AuthConfig::default() };
        let mut server = Server::new(cfg, [7; 32], now);
        let server_addr: SocketAddr = "192.0.2.1:3478".parse().unwrap_or_else(|_| unreachable!());
        let peer: SocketAddr = "93.184.216.34:40000".parse().unwrap_or_else(|_| unreachable!());
        let send_peer: SocketAddr = "93.184.216.35:40001".parse().unwrap_or_else(|_| unreachable!());
        let mut clients = Vec::with_capacity(n);
        let mut relays = Vec::with_capacity(n);
        let mut host = NullHost;
        let mut buf = [0u8; 512];
        for i in 0..n {
            let client: SocketAddr =
                SocketAddr::new([10, 1, (i >> 8) as u8, i as u8].into(), 20000 + (i % 1000) as u16);
            let tuple = FiveTuple::udp(client, server_addr);
            let mut call = |req: Request, tid: u8| -> Response {
                let len = client::encode_request(&mut buf, &req, [tid; 12], None).expect("request fits");
                let a = server.handle_client(now, 1_800_000_000, tuple, &buf[..len], &mut host);
                assert_eq!(a, ClientAction::Done);
                let t = server.poll_transmit().expect("a response");
                while server.poll_event().is_some() {}
                client::parse_response(&t.data).expect("a STUN response").1
            };
            let Response::Success { relayed: Some(relay) } = call(Request::Allocate, 1) else {
                panic!("allocation refused")
            };
            assert!(matches!(call(Request::ChannelBind(CHANNEL, peer), 2), Response::Success { .. }));
            assert!(matches!(call(Request::CreatePermission(vec![send_peer]), 3), Response::Success { .. }));
            clients.push(tuple);
            relays.push(relay);
        }
        Fixture { server, clients, relays, peer, send_peer, now }
    }

    /// A ChannelData message of `size` payload bytes on [`CHANNEL`].
    pub fn channel_data(size: usize) -> Vec<u8> {
        DataTemplate::channel(CHANNEL, size).bytes
    }

    /// A Send indication to [`Fixture::send_peer`] of `size` payload bytes.
    pub fn send_indication(&self, size: usize) -> Vec<u8> {
        DataTemplate::send(self.send_peer, size, [5; 12]).map(|t| t.bytes).unwrap_or_default()
    }

    /// A buffer laid out as the shell reads peer datagrams: headroom, `size` payload bytes,
    /// tailroom. Returns it and the payload's range.
    pub fn peer_buffer(size: usize) -> (Vec<u8>, std::ops::Range<usize>) {
        let buf = vec![0x5A; PEER_HEADROOM + size + PEER_TAILROOM];
        (buf, PEER_HEADROOM..PEER_HEADROOM + size)
    }
}
