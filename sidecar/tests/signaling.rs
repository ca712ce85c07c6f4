//! Real-socket scenarios on loopback: pairing, forwarding, isolation, expiry, every limit, the
//! HTTP routes and the Socket.IO dialect, each against an in-process sidecar on an ephemeral port.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use relay_proto::turn_rest;
use serde_json::json;
use support::*;

mod pairing {
    use super::*;

    #[test]
    fn create_join_and_credentials_only_once_paired() {
        let srv = start(|_| {});
        let mut a = Client::connect(srv.addr(), "/ws");
        a.send(json!({"type": "create"}));
        let created = a.expect("created");
        let code = created["code"].as_str().unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        // Alone in a room: no credentials (SECURITY.md §6).
        a.expect_silence(Duration::from_millis(200));

        let mut b = Client::connect(srv.addr(), "/ws");
        b.send(json!({"type": "join", "code": code}));
        let joined = b.expect("joined");
        assert_eq!(joined["code"], code);
        assert_eq!(joined["peers"], json!([created["id"]]));
        let creds_b = b.expect("credentials");
        let peer = a.expect("peer-joined");
        assert_eq!(peer["id"], joined["id"]);
        let creds_a = a.expect("credentials");

        for (c, id) in [(&creds_a, &created["id"]), (&creds_b, &joined["id"])] {
            let ice = c["iceServers"].as_array().unwrap();
            assert_eq!(ice[0], json!({"urls": ["stun:127.0.0.1:3478"]}));
            let user = ice[1]["username"].as_str().unwrap();
            let (expiry, who) = user.split_once(':').unwrap();
            assert_eq!(who, id.as_str().unwrap(), "the user part is the member's random id");
            let expiry: u64 = expiry.parse().unwrap();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            assert!((now + 3590..=now + 3610).contains(&expiry), "ttl is 3600 s");
            assert_eq!(ice[1]["credential"], turn_rest::password(SECRET.as_bytes(), user));
            assert_eq!(c["ttl"], 3600);
        }
        assert_ne!(creds_a["iceServers"][1]["username"], creds_b["iceServers"][1]["username"]);
        a.assert_no_secret();
        b.assert_no_secret();
    }

    #[test]
    fn numeric_codes_and_leading_zeros() {
        let srv = start(|s| s.room_code_length = 8);
        let (mut a, _b, code, ..) = pair(srv.addr());
        assert_eq!(code.len(), 8);
        // A third member by number is refused because the room is full, with the same answer as
        // an unknown code.
        let mut c = Client::connect(srv.addr(), "/ws");
        c.send(json!({"type": "join", "code": code.parse::<u64>().unwrap()}));
        let full = c.expect("error");
        c.send(json!({"type": "join", "code": "99999999x"}));
        let unknown = c.expect("error");
        assert_eq!(full, unknown);
        assert_eq!(full["code"], "room-unavailable");
        a.expect_silence(Duration::from_millis(100));
    }

    #[test]
    fn larger_rooms_broadcast_to_all_others() {
        let srv = start(|s| s.max_room_members = 3);
        let (mut a, mut b, code, ida, idb) = pair(srv.addr());
        let mut c = Client::connect(srv.addr(), "/ws");
        c.send(json!({"type": "join", "code": code}));
        let j = c.expect("joined");
        assert_eq!(j["peers"], json!([ida, idb]));
        c.expect("credentials");
        a.expect("peer-joined");
        b.expect("peer-joined");
        // A and B were paired already: no second credentials push for them.
        a.expect_silence(Duration::from_millis(100));
        c.send(json!({"type": "signal", "data": "hello"}));
        assert_eq!(a.expect("signal")["data"], "hello");
        assert_eq!(b.expect("signal")["data"], "hello");
        c.expect_silence(Duration::from_millis(100));
    }
}

mod forwarding {
    use super::*;

    #[test]
    fn signals_flow_both_ways_byte_for_byte() {
        let srv = start(|_| {});
        let (mut a, mut b, _code, ida, idb) = pair(srv.addr());
        let offer = r#"{"type":"offer", "sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n","n":[1,2.50,{"x":null}]}"#;
        a.send_text(&format!(r#"{{"type":"signal","data":{offer}}}"#));
        let got = b.recv_text();
        assert_eq!(got, format!(r#"{{"type":"signal","from":"{ida}","data":{offer}}}"#));
        b.send(json!({"type": "signal", "data": {"type": "answer", "sdp": "v=0"}}));
        let got = a.expect("signal");
        assert_eq!(got["from"], idb.as_str());
        assert_eq!(got["data"]["type"], "answer");
        for i in 0..50 {
            a.send(json!({"type": "signal", "data": {"candidate": i}}));
        }
        for i in 0..50 {
            assert_eq!(b.expect("signal")["data"]["candidate"], i, "order is kept");
        }
        a.expect_silence(Duration::from_millis(50));
        assert!(srv.relayed() >= 52);
    }

    #[test]
    fn leave_and_disconnect_tell_the_others() {
        let srv = start(|_| {});
        let (mut a, mut b, code, ida, idb) = pair(srv.addr());
        b.send(json!({"type": "leave"}));
        assert_eq!(a.expect("peer-left")["id"], idb.as_str());
        b.send(json!({"type": "signal", "data": 1}));
        assert_eq!(b.expect("error")["code"], "not-in-room");
        // The seat is free again while the code lives.
        let mut c = Client::connect(srv.addr(), "/ws");
        c.send(json!({"type": "join", "code": code}));
        c.expect("joined");
        a.expect("peer-joined");
        a.expect("credentials"); // re-paired: fresh credentials for the one who waited
        drop(c);
        let left = a.expect("peer-left");
        assert_ne!(left["id"], ida.as_str());
        a.send(json!({"type": "signal", "data": 1}));
        a.expect_silence(Duration::from_millis(100));
    }

    #[test]
    fn bad_messages_get_errors_and_the_connection_lives() {
        let srv = start(|_| {});
        let mut a = Client::connect(srv.addr(), "/ws");
        for bad in ["not json", r#"{"type":"dance"}"#, r#"{"type":"join"}"#, "[]", r#"{"type":"signal"}"#] {
            a.send_text(bad);
            let e = a.expect("error");
            assert!(e["code"] == "bad-message" || e["code"] == "not-in-room", "{bad}: {e}");
            assert!(!e["message"].as_str().unwrap().is_empty());
        }
        a.ws.send(tungstenite::Message::binary(vec![1u8, 2, 3])).unwrap();
        assert_eq!(a.expect("error")["code"], "unsupported");
        a.send(json!({"type": "signal", "data": {}}));
        assert_eq!(a.expect("error")["code"], "not-in-room");
        a.send(json!({"type": "ping"}));
        a.expect("pong");
    }
}

mod isolation {
    use super::*;

    #[test]
    fn a_member_of_room_a_never_sees_room_b() {
        let srv = start(|_| {});
        let (mut a1, mut a2, _code_a, ..) = pair(srv.addr());
        let (mut b1, mut b2, code_b, ..) = pair(srv.addr());
        // Client-supplied room fields are ignored: routing is by server-side membership only.
        a1.send(json!({"type": "signal", "code": code_b, "room": code_b, "to": "everyone", "data": "for-a2"}));
        b1.send(json!({"type": "signal", "data": "for-b2"}));
        assert_eq!(a2.expect("signal")["data"], "for-a2");
        assert_eq!(b2.expect("signal")["data"], "for-b2");
        for c in [&mut a1, &mut b1, &mut b2, &mut a2] {
            c.expect_silence(Duration::from_millis(100));
        }
        // JSON rooms and Socket.IO rooms do not mix either.
        let mut s = SioClient::connect(srv.addr(), "/");
        s.send_event("/", "JOIN_ROOM", &[json!(code_b)]);
        let (name, args) = s.recv_event();
        assert_eq!((name.as_str(), args[0]["code"].as_str()), ("ERROR", Some("room-unavailable")));
    }
}

mod expiry {
    use super::*;

    #[test]
    fn unpaired_rooms_expire_and_paired_ones_keep_working() {
        let srv = start(|s| s.room_ttl = Duration::from_millis(400));
        let mut lone = Client::connect(srv.addr(), "/ws");
        lone.send(json!({"type": "create"}));
        let code = lone.expect("created")["code"].as_str().unwrap().to_owned();
        let (mut a, mut b, paired_code, ..) = pair(srv.addr());
        let t0 = Instant::now();
        let e = lone.expect("error");
        assert_eq!(e["code"], "room-expired");
        assert!(t0.elapsed() < Duration::from_secs(2));
        let mut late = Client::connect(srv.addr(), "/ws");
        late.send(json!({"type": "join", "code": code}));
        assert_eq!(late.expect("error")["code"], "room-unavailable");
        late.send(json!({"type": "join", "code": paired_code}));
        assert_eq!(late.expect("error")["code"], "room-unavailable", "the paired room's code is burnt");
        lone.send(json!({"type": "signal", "data": 1}));
        assert_eq!(lone.expect("error")["code"], "not-in-room");
        a.send(json!({"type": "signal", "data": "still here"}));
        assert_eq!(b.expect("signal")["data"], "still here");
        assert!(eventually(Duration::from_secs(2), || srv.rooms() == 0), "expired codes leave the table");
    }
}

mod limits {
    use super::*;

    #[test]
    fn oversized_messages_are_refused_with_an_error_and_close() {
        let srv = start(|s| s.max_message_size = 4096);
        let (mut a, mut b, ..) = pair(srv.addr());
        a.send(json!({"type": "signal", "data": "x".repeat(3000)}));
        b.expect("signal");
        a.send(json!({"type": "signal", "data": "x".repeat(5000)}));
        let e = a.expect("error");
        assert_eq!(e["code"], "message-too-large");
        assert_eq!(a.expect_close(), Some(1009));
        b.expect("peer-left");
    }

    #[test]
    fn connections_per_ip_and_in_total() {
        let srv = start(|s| s.max_connections_per_ip = 2);
        let _c1 = Client::connect(srv.addr(), "/ws");
        let _c2 = Client::connect(srv.addr(), "/ws");
        let err = Client::try_connect(srv.addr(), "/ws", &[]).err().unwrap();
        let tungstenite::Error::Http(resp) = err else { panic!("{err}") };
        assert_eq!(resp.status(), 429);
        let body = String::from_utf8(resp.body().clone().unwrap_or_default()).unwrap();
        assert!(body.contains("too many connections"), "{body}");

        let srv = start(|s| s.max_connections = 2);
        let c1 = Client::connect(srv.addr(), "/ws");
        let _c2 = Client::connect(srv.addr(), "/ws");
        let (status, body) = http_get(srv.addr(), "/healthz", &[]);
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("connection limit"));
        drop(c1);
        assert!(eventually(Duration::from_secs(2), || srv.connections() == 1), "a closed connection frees its slot");
        assert_eq!(http_get(srv.addr(), "/healthz", &[]).0, 200);
    }

    #[test]
    fn join_attempts_are_rate_limited_per_address() {
        let srv = start(|s| s.max_joins_per_minute = 3);
        let mut c = Client::connect(srv.addr(), "/ws");
        for _ in 0..3 {
            c.send(json!({"type": "join", "code": "000000"}));
            assert_eq!(c.expect("error")["code"], "room-unavailable");
        }
        c.send(json!({"type": "join", "code": "000000"}));
        let e = c.expect("error");
        assert_eq!(e["code"], "rate-limited");
        assert!(e["message"].as_str().unwrap().contains("too many join attempts"));
    }

    #[test]
    fn failed_joins_are_capped_globally() {
        let srv = start(|s| s.max_failed_joins_per_minute = 2);
        let mut owner = Client::connect(srv.addr(), "/ws");
        owner.send(json!({"type": "create"}));
        let code = owner.expect("created")["code"].as_str().unwrap().to_owned();
        let mut guesser = Client::connect(srv.addr(), "/ws");
        for _ in 0..2 {
            guesser.send(json!({"type": "join", "code": "not-a-code"}));
            assert_eq!(guesser.expect("error")["code"], "room-unavailable");
        }
        // Even a correct code is refused for the rest of the minute.
        let mut honest = Client::connect(srv.addr(), "/ws");
        honest.send(json!({"type": "join", "code": code}));
        assert_eq!(honest.expect("error")["code"], "rate-limited");
    }

    #[test]
    fn origin_allow_list() {
        let srv = start(|_| {});
        let host = srv.addr().to_string();
        let same = format!("http://{host}");
        assert!(Client::try_connect(srv.addr(), "/ws", &[("Origin", &same)]).is_ok());
        let err = Client::try_connect(srv.addr(), "/ws", &[("Origin", "http://evil.example")]).err().unwrap();
        let tungstenite::Error::Http(resp) = err else { panic!("{err}") };
        assert_eq!(resp.status(), 403);
        let body = String::from_utf8(resp.body().clone().unwrap_or_default()).unwrap();
        assert!(body.contains("--allowed-origin"), "{body}");

        let srv = start(|s| s.origins = tern_sidecar::settings::OriginPolicy::List(vec!["https://app.example".into()]));
        assert!(
            Client::try_connect(
                srv.addr(),
                "/socket.io/?EIO=4&transport=websocket",
                &[("Origin", "https://app.example")]
            )
            .is_ok()
        );
        assert!(Client::try_connect(srv.addr(), "/ws", &[("Origin", &format!("http://{}", srv.addr()))]).is_err());
    }

    #[test]
    fn a_dead_peer_is_detected_by_ping_timeout() {
        let srv = start(|s| {
            s.ping_interval = Duration::from_millis(150);
            s.ping_timeout = Duration::from_millis(300);
        });
        let (mut a, b, _code, _ida, idb) = pair(srv.addr());
        // `b` never reads again, so it never answers a ping; `a` keeps reading (tungstenite
        // answers its pings).
        let t0 = Instant::now();
        let left = a.expect("peer-left");
        assert_eq!(left["id"], idb.as_str());
        assert!(t0.elapsed() < Duration::from_secs(3), "took {:?}", t0.elapsed());
        // `a` stays alive through several ping rounds.
        a.expect_silence(Duration::from_millis(800));
        a.send(json!({"type": "ping"}));
        a.expect("pong");
        drop(b);
    }

    #[test]
    fn a_slow_member_never_blocks_its_partner() {
        let srv = start(|s| s.max_write_buffer = 256 * 1024);
        let (mut a, b, _code, _ida, idb) = pair(srv.addr());
        // Shrink b's receive window so the kernel buffers fill fast; b never reads.
        let _ = socket2::SockRef::from(match b.ws.get_ref() {
            tungstenite::stream::MaybeTlsStream::Plain(s) => s,
            _ => unreachable!(),
        })
        .set_recv_buffer_size(4096);
        let blob = "y".repeat(30_000);
        let t0 = Instant::now();
        let mut worst = Duration::ZERO;
        let mut peer_left = false;
        for _ in 0..200 {
            a.send(json!({"type": "signal", "data": blob}));
            let t = Instant::now();
            a.send(json!({"type": "ping"}));
            // a's own traffic keeps flowing while b's backlog grows.
            loop {
                let v: serde_json::Value = serde_json::from_str(&a.recv_text()).unwrap();
                if v["type"] == "peer-left" {
                    assert_eq!(v["id"], idb.as_str());
                    peer_left = true;
                    continue;
                }
                assert_eq!(v["type"], "pong");
                break;
            }
            worst = worst.max(t.elapsed());
            if peer_left {
                break;
            }
        }
        assert!(peer_left, "the slow member was never cut off");
        // Blocking on the slow member would take the 10 s write timeout; allow for a busy CI machine.
        assert!(worst < Duration::from_secs(2), "the sender waited {worst:?}");
        assert!(t0.elapsed() < Duration::from_secs(10));
        drop(b);
    }

    #[test]
    fn the_auth_token_gates_rooms() {
        let token = "0123456789abcdef-token";
        let srv = start(|s| s.auth_token = Some(tern_sidecar::settings::Secret::new(token)));
        let mut c = Client::connect(srv.addr(), "/ws");
        c.send(json!({"type": "create"}));
        assert_eq!(c.expect("error")["code"], "unauthorized");
        c.send(json!({"type": "auth", "token": "wrong"}));
        assert_eq!(c.expect("error")["code"], "unauthorized");
        c.send(json!({"type": "auth", "token": token}));
        c.send(json!({"type": "create"}));
        let code = c.expect("created")["code"].as_str().unwrap().to_owned();
        let mut q = Client::connect(srv.addr(), &format!("/ws?token={token}"));
        q.send(json!({"type": "join", "code": code}));
        q.expect("joined");
        let mut h = Client::try_connect(srv.addr(), "/ws", &[("Authorization", &format!("Bearer {token}"))]).unwrap();
        h.send(json!({"type": "create"}));
        h.expect("created");
        let err = Client::try_connect(srv.addr(), "/ws?token=nope", &[]).err().unwrap();
        assert!(matches!(err, tungstenite::Error::Http(ref r) if r.status() == 401), "{err}");
    }
}

mod http_routes {
    use super::*;

    #[test]
    fn pages_health_and_refusals() {
        let srv = start(|_| {});
        let (status, body) = http_get(srv.addr(), "/", &[]);
        assert_eq!(status, 200);
        assert!(body.contains("<video") && body.contains("relayOnly"));
        assert_eq!(http_get(srv.addr(), "/app.js", &[]).0, 200);
        let (status, body) = http_get(srv.addr(), "/healthz", &[]);
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(http_get(srv.addr(), "/nope", &[]).0, 404);
        let (status, body) = http_get(srv.addr(), "/socket.io/?EIO=4&transport=polling&t=abc", &[]);
        assert_eq!(status, 400);
        assert!(body.contains("websocket"), "{body}");
        let (status, body) = http_get(srv.addr(), "/ws", &[]);
        assert_eq!(status, 426, "{body}");
        // A malformed head and an over-long head.
        for raw in [
            b"\x16\x03\x01 garbage\r\n\r\n".to_vec(),
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000)).into_bytes(),
        ] {
            use std::io::{Read, Write};
            let mut s = TcpStream::connect(srv.addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(&raw).unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            assert!(out.starts_with("HTTP/1.1 400") || out.starts_with("HTTP/1.1 431"), "{out}");
        }
    }

    #[test]
    fn a_slow_head_times_out() {
        use std::io::{Read, Write};
        let srv = start(|s| s.handshake_timeout = Duration::from_millis(300));
        let mut s = TcpStream::connect(srv.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        let mut out = String::new();
        let t0 = Instant::now();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        assert!(t0.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn turn_credentials_endpoint() {
        let srv = start(|_| {});
        let (status, body) = http_get(srv.addr(), "/api/turn-credentials", &[]);
        assert_eq!(status, 403);
        assert!(body.contains("--auth-token"), "{body}");

        let token = "0123456789abcdef-token";
        let srv = start(|s| s.auth_token = Some(tern_sidecar::settings::Secret::new(token)));
        assert_eq!(http_get(srv.addr(), "/api/turn-credentials", &[]).0, 401);
        assert_eq!(http_get(srv.addr(), "/api/turn-credentials", &[("Authorization", "Bearer nope")]).0, 401);
        let (status, body) = http_get(
            srv.addr(),
            "/api/turn-credentials?service=turn&username=alice",
            &[("Authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let user = v["username"].as_str().unwrap();
        assert!(user.ends_with(":alice"));
        assert_eq!(v["password"], turn_rest::password(SECRET.as_bytes(), user));
        assert_eq!(v["ttl"], 3600);
        assert_eq!(v["uris"][1], "turn:127.0.0.1:3478?transport=udp");
        assert!(!body.contains(SECRET));
    }
}

/// A raw Engine.IO/Socket.IO client over tungstenite.
struct SioClient {
    c: Client,
}

impl SioClient {
    fn connect(addr: std::net::SocketAddr, nsp: &str) -> SioClient {
        let mut c = Client::connect(addr, "/socket.io/?EIO=4&transport=websocket");
        let open = c.recv_text();
        assert!(open.starts_with("0{"), "{open}");
        let mut s = SioClient { c };
        s.connect_nsp(nsp, None).unwrap();
        s
    }

    fn connect_nsp(&mut self, nsp: &str, auth: Option<serde_json::Value>) -> Result<String, String> {
        let prefix = if nsp == "/" { String::new() } else { format!("{nsp},") };
        self.c.send_text(&format!("40{prefix}{}", auth.map(|a| a.to_string()).unwrap_or_default()));
        let r = self.c.recv_text();
        let body = r.strip_prefix(&format!("40{prefix}")).map(str::to_owned);
        match body {
            Some(b) => Ok(serde_json::from_str::<serde_json::Value>(&b).unwrap()["sid"].as_str().unwrap().to_owned()),
            None => Err(r),
        }
    }

    fn send_event(&mut self, nsp: &str, name: &str, args: &[serde_json::Value]) {
        let prefix = if nsp == "/" { String::new() } else { format!("{nsp},") };
        let mut arr = vec![json!(name)];
        arr.extend_from_slice(args);
        self.c.send_text(&format!("42{prefix}{}", serde_json::Value::from(arr)));
    }

    /// Asserts nothing but pings (answered) arrives within `d`.
    fn expect_no_event(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Some(t) = self.c.try_recv_text(deadline.saturating_duration_since(Instant::now())) {
            assert_eq!(t, "2", "expected no event, got {t}");
            self.c.send_text("3");
        }
    }

    /// The next EVENT (any namespace), answering pings.
    fn recv_event(&mut self) -> (String, Vec<serde_json::Value>) {
        loop {
            let t = self.c.recv_text();
            if t == "2" {
                self.c.send_text("3");
                continue;
            }
            let rest = t.strip_prefix("42").unwrap_or_else(|| panic!("not an event: {t}"));
            let rest = if rest.starts_with('/') { rest.split_once(',').unwrap().1 } else { rest };
            let v: Vec<serde_json::Value> = serde_json::from_str(rest).unwrap();
            return (v[0].as_str().unwrap().to_owned(), v[1..].to_vec());
        }
    }
}

mod socket_io {
    use super::*;

    #[test]
    fn open_packet_pings_and_the_seed_flow_in_a_named_namespace() {
        let srv = start(|s| {
            s.ping_interval = Duration::from_millis(200);
            s.ping_timeout = Duration::from_millis(400);
        });
        let mut raw = Client::connect(srv.addr(), "/socket.io/?EIO=4&transport=websocket");
        let open: serde_json::Value = serde_json::from_str(&raw.recv_text()[1..]).unwrap();
        assert!(open["sid"].is_string());
        assert_eq!((open["pingInterval"].as_u64(), open["pingTimeout"].as_u64()), (Some(200), Some(400)));
        assert_eq!(open["maxPayload"], 65536);
        assert_eq!(open["upgrades"], json!([]));
        assert_eq!(raw.recv_text(), "2", "a ping after pingInterval");
        raw.send_text("3");
        raw.send_text("2probe");
        assert_eq!(raw.recv_text(), "3probe");

        let mut tv = SioClient { c: raw };
        tv.connect_nsp("/rtc", None).unwrap();
        tv.c.send_text(r#"42/rtc,5["TV_INIT"]"#);
        let (name, args) = tv.recv_event();
        assert_eq!(name, "TV_INIT_OK");
        let code = args[0].as_str().unwrap().to_owned();
        let ack = tv.c.recv_text();
        assert_eq!(ack, format!(r#"43/rtc,5["{code}"]"#));

        let mut sender = SioClient::connect(srv.addr(), "/rtc");
        sender.send_event("/rtc", "JOIN_ROOM", &[json!(code)]);
        let (n, a) = sender.recv_event();
        assert_eq!((n.as_str(), a[0].as_str()), ("JOIN_ROOM_OK", Some(code.as_str())));
        let (n, a) = sender.recv_event();
        assert_eq!(n, "CONFIG_FEEDBACK");
        assert!(a[0]["config"]["iceServers"][1]["credential"].is_string());
        assert_eq!(tv.recv_event().0, "PEER_JOINED");
        assert_eq!(tv.recv_event().0, "CONFIG_FEEDBACK");

        sender.send_event("/rtc", "CLIENT_OFFER_TO_SERVER", &[json!({"sdp": "offer"})]);
        assert_eq!(tv.recv_event(), ("CLIENT_OFFER_TO_TV".into(), vec![json!({"sdp": "offer"})]));
        tv.send_event("/rtc", "TV_ANSWER_TO_SERVER", &[json!({"sdp": "answer"})]);
        assert_eq!(sender.recv_event(), ("TV_ANSWER_TO_CLIENT".into(), vec![json!({"sdp": "answer"})]));
        sender.send_event("/rtc", "RTC_Candidate_Exchange", &[json!({"candidate": "c"}), json!(2)]);
        assert_eq!(tv.recv_event(), ("RTC_Candidate_Exchange".into(), vec![json!({"candidate": "c"}), json!(2)]));
        // Events in a namespace the socket never connected are ignored, as socket.io does.
        sender.send_event("/", "CLIENT_OFFER_TO_SERVER", &[json!(1)]);
        tv.expect_no_event(Duration::from_millis(100));
        sender.c.send_text("41/rtc,");
        assert_eq!(tv.recv_event(), ("PEER_LEFT".into(), vec![json!({"id": sender_id(&a)})]));
        tv.c.assert_no_secret();
        sender.c.assert_no_secret();

        fn sender_id(config: &[serde_json::Value]) -> String {
            let user = config[0]["config"]["iceServers"][1]["username"].as_str().unwrap();
            user.split_once(':').unwrap().1.to_owned()
        }
    }

    #[test]
    fn auth_on_connect_and_errors_as_events() {
        let token = "0123456789abcdef-token";
        let srv = start(|s| s.auth_token = Some(tern_sidecar::settings::Secret::new(token)));
        let mut c = Client::connect(srv.addr(), "/socket.io/?EIO=4&transport=websocket");
        c.recv_text();
        let mut s = SioClient { c };
        let err = s.connect_nsp("/", None).unwrap_err();
        assert!(err.starts_with("44{") && err.contains("unauthorized"), "{err}");
        s.connect_nsp("/", Some(json!({"token": token}))).unwrap();
        s.c.send_text(r#"42["LEAVE_ROOM"]"#);
        s.c.send_text(r#"427["JOIN_ROOM",{"nope":1}]"#);
        let (n, a) = s.recv_event();
        assert_eq!((n.as_str(), a[0]["code"].as_str()), ("ERROR", Some("bad-message")));
        assert!(s.c.recv_text().starts_with(r#"437[{"error":"#));
        s.c.send_text("42{not json");
        assert_eq!(s.recv_event().0, "ERROR");
        s.c.send_text(r#"451-["x",{"_placeholder":true,"num":0}]"#);
        assert_eq!(s.c.expect_close(), Some(1003));
    }
}
