//! TLS controller sessions with OVS's own tools: certificates made by
//! `ovs-pki` at test time, `ovs-ofctl` against our `pssl:` listener, our
//! `ssl:` controller connection to `ovs-testcontroller`, and the refusals
//! (wrong CA, expired certificate, plaintext client) counted.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// A PKI made with `ovs-pki`: a switch and a controller certificate, each
/// signed by its own CA (as `ovs-pki init` sets up).
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path, tag: &str) -> Pki {
        let dir = dir.join(tag);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let d = dir.display().to_string();
        sh(&format!("ovs-pki --dir={d}/pki init >/dev/null 2>&1"));
        sh(&format!(
            "ovs-pki --dir={d}/pki req+sign {d}/sw switch >/dev/null 2>&1"
        ));
        sh(&format!(
            "ovs-pki --dir={d}/pki req+sign {d}/ctl controller >/dev/null 2>&1"
        ));
        Pki { dir }
    }
    fn p(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }
    /// The `[ssl]` table for the switch side.
    fn switch_ssl(&self) -> String {
        format!(
            "[ssl]\nprivate_key = \"{}\"\ncertificate = \"{}\"\nca_cert = \"{}\"\n",
            self.p("sw-privkey.pem"),
            self.p("sw-cert.pem"),
            self.p("pki/controllerca/cacert.pem")
        )
    }
    /// `ovs-ofctl -p -c -C` arguments for the controller side.
    fn ctl_args(&self, cert: &str) -> Vec<String> {
        vec![
            "-p".into(),
            self.p("ctl-privkey.pem"),
            "-c".into(),
            self.p(cert),
            "-C".into(),
            self.p("pki/switchca/cacert.pem"),
        ]
    }
    /// A controller certificate that expired in 2020 (same key and CA).
    fn expired(&self) -> String {
        let ca = self.p("pki/controllerca");
        sh(&format!(
            "cd {ca} && openssl ca -config ca.cnf -in {} -out {} -startdate 20200101000000Z -enddate 20200102000000Z -batch >/dev/null 2>&1",
            self.p("ctl-req.pem"),
            self.p("ctl-expired.pem")
        ));
        "ctl-expired.pem".into()
    }
}

fn config(br: &str, extra_bridge: &str, ssl: &str) -> String {
    format!(
        "[daemon]\ncontrol_socket = \"@CTL@\"\nstats_listen = \"@STATS@\"\n\n[datapath]\nn_handler_threads = 1\nn_revalidator_threads = 1\n\n{ssl}\n[[bridge]]\nname = \"{br}\"\n{extra_bridge}\n"
    )
}

fn ofctl_ssl(pki: &Pki, cert: &str, port: u16, cmd: &str) -> (bool, String, String) {
    let mut a: Vec<String> = vec!["-O".into(), "OpenFlow13".into()];
    a.extend(pki.ctl_args(cert));
    a.push("--timeout=5".into());
    a.push(cmd.into());
    a.push(format!("ssl:127.0.0.1:{port}"));
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    run("ovs-ofctl", &refs)
}

fn connections(d: &Daemon) -> serde_json::Value {
    serde_json::from_str(&d.appctl_ok(&["ofctl/show-connections"])).expect("json")
}

fn server_fingerprint(pki: &Pki, port: u16) -> String {
    let (_, out) = sh_try(&format!(
        "openssl s_client -connect 127.0.0.1:{port} -cert {} -key {} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
        pki.p("ctl-cert.pem"),
        pki.p("ctl-privkey.pem")
    ));
    out.trim().to_string()
}

#[test]
fn ovs_ofctl_over_pssl_and_refusals_are_counted() {
    if !require(true, &["ovs-ofctl", "ovs-pki", "openssl"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::new(tmp.path(), "a");
    let other = Pki::new(tmp.path(), "b");
    let port = free_port();
    let br = format!("rvt{}", uniq());
    let d = Daemon::start(&config(
        &br,
        &format!("listeners = [\"pssl:{port}:127.0.0.1\"]"),
        &pki.switch_ssl(),
    ));
    let up = wait_for(10, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "pssl listener: {}", d.log_text());
    // (That probe was a plaintext connection: counted once it failed.)
    let failed_of = |d: &Daemon| {
        connections(d)["events"]["tls_handshake_failed"]
            .as_u64()
            .unwrap_or(0)
    };
    let mut base = 0;
    wait_for(5, || {
        base = failed_of(&d);
        base == 1
    });
    // Mutual TLS with ovs-pki certificates (no IP in them): works.
    let (ok, out, err) = ofctl_ssl(&pki, "ctl-cert.pem", port, "show");
    assert!(ok, "ovs-ofctl over TLS: {err}\n{}", d.log_text());
    assert!(out.contains("n_tables:254"), "{out}");
    assert_eq!(failed_of(&d), base);
    // A certificate from another CA: refused.
    let (ok, _, _) = ofctl_ssl(&other, "ctl-cert.pem", port, "show");
    assert!(!ok, "a certificate of another CA was accepted");
    // An expired certificate of the right CA: refused.
    let expired = pki.expired();
    let (ok, _, _) = ofctl_ssl(&pki, &expired, port, "show");
    assert!(!ok, "an expired certificate was accepted");
    // Plaintext OpenFlow to a TLS port: refused.
    let (ok, _, _) = run(
        "ovs-ofctl",
        &[
            "-O",
            "OpenFlow13",
            "--timeout=5",
            "show",
            &format!("tcp:127.0.0.1:{port}"),
        ],
    );
    assert!(!ok, "a plaintext client was served");
    let v = connections(&d);
    let failed = v["events"]["tls_handshake_failed"].as_u64().unwrap_or(0);
    assert!(failed >= base + 3, "{v}");
    assert_eq!(
        v["listeners"][0]["tls_handshake_failed"].as_u64(),
        Some(failed)
    );
    // Certificates are re-read: a new switch certificate is served to the
    // next connection after a reload.
    let before = server_fingerprint(&pki, port);
    assert!(before.contains("Fingerprint"), "{before}");
    let d_ = pki.dir.display().to_string();
    sh(&format!(
        "cd {d_} && rm -f sw-cert.pem sw-req.pem sw-privkey.pem && ovs-pki --dir={d_}/pki --force req+sign {d_}/sw switch >/dev/null 2>&1"
    ));
    d.appctl_ok(&["config/reload"]);
    let after = server_fingerprint(&pki, port);
    assert!(after.contains("Fingerprint"), "{after}");
    assert_ne!(before, after, "the new certificate is in use");
    let (ok, _, err) = ofctl_ssl(&pki, "ctl-cert.pem", port, "show");
    assert!(ok, "{err}");
}

/// `ovs-testcontroller` on `pssl:` with `ctl`'s controller certificate, and
/// a daemon whose bridge connects to it over `ssl:` with `sw`'s switch one.
fn testcontroller_and_switch(ctl: &Pki, sw: &Pki) -> (std::process::Child, Daemon) {
    let cport = free_port();
    let child = std::process::Command::new("ovs-testcontroller")
        .args(ctl.ctl_args("ctl-cert.pem"))
        .arg(format!("pssl:{cport}:127.0.0.1"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ovs-testcontroller");
    let br = format!("rvt{}", uniq());
    let d = Daemon::start(&config(
        &br,
        &format!("fail_mode = \"secure\"\ncontrollers = [\"ssl:127.0.0.1:{cport}\"]"),
        &sw.switch_ssl(),
    ));
    (child, d)
}

#[test]
fn ssl_controller_connects_to_ovs_testcontroller() {
    if !require(true, &["ovs-testcontroller", "ovs-pki", "ovs-appctl"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::new(tmp.path(), "a");
    let (mut ctl, d) = testcontroller_and_switch(&pki, &pki);
    let mut v = serde_json::Value::Null;
    let up = wait_for(20, || {
        v = connections(&d);
        v["sessions"].as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s["controller"] == true && s["negotiated"] == true)
        })
    });
    let _ = ctl.kill();
    let _ = ctl.wait();
    assert!(up, "no TLS controller session: {v}\n{}", d.log_text());
    assert_eq!(v["events"]["tls_handshake_failed"], 0, "{v}");
}

#[test]
fn ssl_controller_with_the_wrong_ca_is_refused_and_counted() {
    if !require(true, &["ovs-testcontroller", "ovs-pki", "ovs-appctl"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let pki = Pki::new(tmp.path(), "a");
    let other = Pki::new(tmp.path(), "b");
    // The controller's certificate is from another PKI.
    let (mut ctl, d) = testcontroller_and_switch(&other, &pki);
    let mut v = serde_json::Value::Null;
    let counted = wait_for(20, || {
        v = connections(&d);
        v["events"]["tls_handshake_failed"].as_u64().unwrap_or(0) >= 1
    });
    let _ = ctl.kill();
    let _ = ctl.wait();
    assert!(counted, "{v}");
    assert!(
        v["sessions"].as_array().is_some_and(|a| a.is_empty()),
        "no session with an unverified controller: {v}"
    );
}
