//! Free loopback ports. A relay binds UDP and TCP on its listening port, so both are checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const LOCALHOST6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A port free for UDP and TCP on 127.0.0.1 at the time of the call.
pub fn free_port() -> u16 {
    free_port_on(&[LOCALHOST])
}

/// A port free for UDP and TCP on each of `ips` at the time of the call.
pub fn free_port_on(ips: &[IpAddr]) -> u16 {
    for _ in 0..200 {
        let first = TcpListener::bind((ips[0], 0)).unwrap();
        let port = first.local_addr().unwrap().port();
        let free = ips
            .iter()
            .enumerate()
            .all(|(i, &ip)| UdpSocket::bind((ip, port)).is_ok() && (i == 0 || TcpListener::bind((ip, port)).is_ok()));
        if free {
            return port;
        }
    }
    panic!("no port free on {ips:?}");
}

/// `n` consecutive ports free for UDP on each of `ips`, at a random place in 20000-29999: below
/// the kernel's ephemeral range (32768+), so other processes are unlikely to take them while
/// the test runs, and rarely the same for tests running in parallel.
pub fn free_range(n: u16, ips: &[IpAddr]) -> (u16, u16) {
    'pick: for _ in 0..200 {
        let mut b = [0u8; 2];
        getrandom::fill(&mut b).unwrap();
        let start = 20_000 + u16::from_be_bytes(b) % (10_000 - n);
        let mut held = Vec::new();
        for port in start..start + n {
            for &ip in ips {
                match UdpSocket::bind((ip, port)) {
                    Ok(s) => held.push(s),
                    Err(_) => continue 'pick,
                }
            }
        }
        return (start, start + n - 1);
    }
    panic!("no range of {n} ports free on {ips:?}");
}
