//! The Prometheus endpoint: scraped over HTTP after real pushes (one accepted, one denied by
//! policy), parsed, and checked counter by counter; a non-loopback address is refused.

use std::io::{Read, Write};
use std::net::TcpStream;

use e2e_tests::world::{assert_exit, World, T0};
use e2e_tests::Gateway;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(port: u16) -> Vec<(String, f64)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split("\r\n\r\n").nth(1).expect("body");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("number"))
        })
        .collect()
}

fn value(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name} missing in {samples:?}"))
        .1
}

#[test]
fn counters_follow_pushes() {
    let port = free_port();
    let w = World::with_config(
        &[&[
            "--repo",
            "main",
            "--ref",
            "app/**",
            "--user",
            "alice",
            "--allow",
            "create,update",
        ]],
        |_| format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    w.local.commit("app/a").file("f", "1").timestamp(T0).run();
    w.local.commit("other/b").file("f", "2").timestamp(T0).run();
    let before = scrape(port);
    assert_eq!(value(&before, "ostree_gateway_pushes_total{result=\"ok\"}"), 0.0);

    let mut ssh = w.ssh();
    assert_exit(&ssh.tunnel_push(&w.http, "main URL app/a"), 0);
    assert_exit(&ssh.tunnel_push(&w.http, "main URL other/b"), 1);

    let after = scrape(port);
    assert_eq!(value(&after, "ostree_gateway_pushes_total{result=\"ok\"}"), 1.0);
    assert_eq!(
        value(&after, "ostree_gateway_pushes_total{result=\"failed\"}"),
        1.0
    );
    assert_eq!(
        value(&after, "ostree_gateway_ref_updates_total{state=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        value(&after, "ostree_gateway_ref_updates_total{state=\"rejected\"}"),
        1.0
    );
    assert_eq!(
        value(&after, "ostree_gateway_denials_total{reason=\"no_rule\"}"),
        1.0
    );
    assert!(value(&after, "ostree_gateway_objects_received_total") >= 3.0);
    assert_eq!(value(&after, "ostree_gateway_push_duration_seconds_count"), 2.0);
    assert_eq!(
        value(&after, "ostree_gateway_push_duration_seconds_bucket{le=\"+Inf\"}"),
        2.0
    );
    assert_eq!(
        value(&after, "ostree_gateway_sessions"),
        1.0,
        "the control master is still open"
    );
    drop(ssh);
}

#[test]
fn non_loopback_metrics_address_is_refused() {
    let gw = Gateway::new();
    gw.write_config("[metrics]\nlisten = \"0.0.0.0:9185\"\n");
    let out = e2e_tests::run(gw.command().args(["serve", "--listen", "127.0.0.1:0"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a loopback address"),
        "{}",
        e2e_tests::describe(&out)
    );
}
