//! `rvswitchd ctl add-port | del-port | add-br | del-br | show`: bridge and
//! port management without editing TOML by hand, in the spirit of
//! `ovs-vsctl`. Client side: the configuration file stays the truth.
//!
//! An edit reads the file (with the same checks as the daemon: regular,
//! size-capped), changes the document with `toml_edit` so that comments and
//! layout of everything else are kept, validates the result exactly as the
//! daemon will (refusing, with file/line/key, before anything is written),
//! and replaces the file atomically (a temporary file in the same directory,
//! flushed, given the old file's mode, renamed over it) under an exclusive
//! lock on the directory, so two concurrent edits cannot lose one another.
//! The caller then applies it through `config/reload`.

use crate::config::{self, Config};
use std::fmt::Write as _;
use std::path::Path;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

/// One edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// `add-port BRIDGE IFACE [KEY=VALUE...]`.
    AddPort {
        /// Bridge to add to.
        bridge: String,
        /// Interface name.
        iface: String,
        /// `type`, `ofport`, `vlan`, `trunks`.
        opts: Vec<(String, String)>,
    },
    /// `del-port [BRIDGE] IFACE`.
    DelPort {
        /// The bridge it must be on, if named.
        bridge: Option<String>,
        /// Interface name.
        iface: String,
    },
    /// `add-br BRIDGE [KEY=VALUE...]`.
    AddBr {
        /// New bridge name.
        bridge: String,
        /// `fail_mode`, `datapath_id`, `listener` (repeatable), `controller` (repeatable).
        opts: Vec<(String, String)>,
    },
    /// `del-br BRIDGE`.
    DelBr {
        /// Bridge to delete, with its ports.
        bridge: String,
    },
}

/// The edit commands `rvswitchd ctl` handles itself (besides `show`).
pub const EDIT_COMMANDS: &[&str] = &["add-port", "del-port", "add-br", "del-br"];

fn key_values(
    args: &[String],
    allowed: &[&str],
    cmd: &str,
) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| format!("{cmd}: {a:?} is not KEY=VALUE"))?;
            if !allowed.contains(&k) {
                return Err(format!(
                    "{cmd}: unknown option {k:?} (known: {})",
                    allowed.join(", ")
                ));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

impl Edit {
    /// Parses `COMMAND ARGS...`; None when COMMAND is not an edit.
    pub fn parse(args: &[String]) -> Option<Result<Edit, String>> {
        let (cmd, rest) = args.split_first()?;
        let usage = |u: &str| Err(format!("usage: rvswitchd ctl {u}"));
        Some(match (cmd.as_str(), rest) {
            ("add-port", [br, iface, opts @ ..]) => key_values(
                opts,
                &[
                    "type",
                    "ofport",
                    "vlan",
                    "trunks",
                    "remote_ip",
                    "local_ip",
                    "key",
                    "dst_port",
                    "csum",
                    "df_default",
                    "ttl",
                    "tos",
                    "xdp_mode",
                ],
                "add-port",
            )
            .map(|opts| Edit::AddPort {
                bridge: br.clone(),
                iface: iface.clone(),
                opts,
            }),
            ("add-port", _) => usage(
                "add-port BRIDGE IFACE [type=T] [ofport=N] [vlan=N] [trunks=N,N] \
                     [remote_ip=A|flow] [local_ip=A|flow] [key=N|flow] [dst_port=N] \
                     [csum=B] [df_default=B] [ttl=N] [tos=N] [xdp_mode=M]",
            ),
            ("del-port", [iface]) => Ok(Edit::DelPort {
                bridge: None,
                iface: iface.clone(),
            }),
            ("del-port", [br, iface]) => Ok(Edit::DelPort {
                bridge: Some(br.clone()),
                iface: iface.clone(),
            }),
            ("del-port", _) => usage("del-port [BRIDGE] IFACE"),
            ("add-br", [br, opts @ ..]) => key_values(
                opts,
                &["fail_mode", "datapath_id", "listener", "controller"],
                "add-br",
            )
            .map(|opts| Edit::AddBr {
                bridge: br.clone(),
                opts,
            }),
            ("add-br", _) => {
                usage("add-br BRIDGE [fail_mode=M] [datapath_id=HEX] [listener=ADDR]...")
            }
            ("del-br", [br]) => Ok(Edit::DelBr { bridge: br.clone() }),
            ("del-br", _) => usage("del-br BRIDGE"),
            _ => return None,
        })
    }
}

fn bridges_mut(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, String> {
    if !doc.contains_key("bridge") {
        doc.insert("bridge", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc.get_mut("bridge")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| "`bridge` is not an array of [[bridge]] tables".to_string())
}

fn name_of(t: &Table) -> Option<&str> {
    t.get("name").and_then(Item::as_str)
}

fn ports_of(t: &Table) -> impl Iterator<Item = &Table> {
    t.get("port")
        .and_then(Item::as_array_of_tables)
        .into_iter()
        .flat_map(|a| a.iter())
}

fn parse_int(k: &str, v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .map_err(|_| format!("{k}={v}: not a number"))
}

/// Applies `edit` to the document. `mgmt_dir` is where a new bridge's
/// OpenFlow socket goes (`punix:MGMT_DIR/BRIDGE.mgmt`) when no listener is
/// given. Returns a one-line summary.
pub fn apply(doc: &mut DocumentMut, edit: &Edit, mgmt_dir: &Path) -> Result<String, String> {
    let bridges = bridges_mut(doc)?;
    match edit {
        Edit::AddPort {
            bridge,
            iface,
            opts,
        } => {
            for b in bridges.iter() {
                if ports_of(b).any(|p| name_of(p) == Some(iface)) || name_of(b) == Some(iface) {
                    return Err(format!(
                        "cannot add port {iface}: bridge {} already has a port named {iface}",
                        name_of(b).unwrap_or("?")
                    ));
                }
            }
            let b = bridges
                .iter_mut()
                .find(|b| name_of(b) == Some(bridge))
                .ok_or_else(|| format!("no bridge named {bridge}"))?;
            let mut t = Table::new();
            t.insert("name", value(iface.as_str()));
            for (k, v) in opts {
                match k.as_str() {
                    "type" | "remote_ip" | "local_ip" | "xdp_mode" => {
                        t.insert(k, value(v.as_str()))
                    }
                    "key" if v == "flow" => t.insert(k, value(v.as_str())),
                    "ofport" | "vlan" | "key" | "dst_port" | "ttl" | "tos" => {
                        t.insert(k, value(parse_int(k, v)?))
                    }
                    "csum" | "df_default" => t.insert(
                        k,
                        value(
                            v.parse::<bool>()
                                .map_err(|_| format!("{k}={v}: expected true or false"))?,
                        ),
                    ),
                    _ => {
                        let mut a = Array::new();
                        for x in v.split(',').filter(|x| !x.is_empty()) {
                            a.push(parse_int(k, x)?);
                        }
                        t.insert(k, value(a))
                    }
                };
            }
            if !b.contains_key("port") {
                b.insert("port", Item::ArrayOfTables(ArrayOfTables::new()));
            }
            b.get_mut("port")
                .and_then(Item::as_array_of_tables_mut)
                .ok_or_else(|| format!("bridge {bridge}: `port` is not an array of tables"))?
                .push(t);
            Ok(format!("added port {iface} to bridge {bridge}"))
        }
        Edit::DelPort { bridge, iface } => {
            for b in bridges.iter_mut() {
                let bname = name_of(b).unwrap_or("").to_string();
                if bridge.as_ref().is_some_and(|want| *want != bname) {
                    continue;
                }
                if let Some(ports) = b.get_mut("port").and_then(Item::as_array_of_tables_mut) {
                    let found = ports.iter().position(|p| name_of(p) == Some(iface));
                    if let Some(i) = found {
                        ports.remove(i);
                        return Ok(format!("deleted port {iface} from bridge {bname}"));
                    }
                }
            }
            Err(match bridge {
                Some(b) => format!("bridge {b} has no port {iface}"),
                None => format!("no port named {iface}"),
            })
        }
        Edit::AddBr { bridge, opts } => {
            if bridges.iter().any(|b| name_of(b) == Some(bridge)) {
                return Err(format!(
                    "cannot create a bridge named {bridge}: it already exists"
                ));
            }
            let mut t = Table::new();
            t.insert("name", value(bridge.as_str()));
            let mut listeners = Array::new();
            let mut controllers = Array::new();
            for (k, v) in opts {
                match k.as_str() {
                    "listener" => listeners.push(v.as_str()),
                    "controller" => controllers.push(v.as_str()),
                    _ => {
                        t.insert(k, value(v.as_str()));
                    }
                }
            }
            if listeners.is_empty() {
                listeners.push(format!(
                    "punix:{}",
                    mgmt_dir.join(format!("{bridge}.mgmt")).display()
                ));
            }
            t.insert("listeners", value(listeners));
            if !controllers.is_empty() {
                t.insert("controllers", value(controllers));
            }
            bridges.push(t);
            Ok(format!("added bridge {bridge}"))
        }
        Edit::DelBr { bridge } => {
            let i = bridges
                .iter()
                .position(|b| name_of(b) == Some(bridge))
                .ok_or_else(|| format!("no bridge named {bridge}"))?;
            bridges.remove(i);
            Ok(format!("deleted bridge {bridge}"))
        }
    }
}

/// Writes `text` over `path` atomically, keeping its mode (callers hold the
/// directory lock, so the fixed temporary name of `write_atomic_mode` is
/// not shared).
fn replace_file(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    crate::daemon::statefile::write_atomic_mode(path, text.as_bytes(), mode)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Edits the configuration file at `path`: read, change, validate, replace.
/// Nothing is written when the edited file would be refused.
pub fn edit_file(path: &Path, edit: &Edit, mgmt_dir: &Path) -> Result<String, String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir_fd = std::fs::File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Held until we return: concurrent edits of files in this directory queue.
    let _lock = nix::fcntl::Flock::lock(dir_fd, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("{}: lock: {e}", dir.display()))?;
    let text = config::read_file(path).map_err(|e| e.to_string())?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let summary = apply(&mut doc, edit, mgmt_dir)?;
    let new = doc.to_string();
    config::parse_str(&new, &path.display().to_string(), false)
        .map_err(|e| format!("refused, {} unchanged: {e}", path.display()))?;
    replace_file(path, &new)?;
    Ok(summary)
}

/// `show`, in the layout of `ovs-vsctl show` (ports sorted by name; our
/// listeners shown, since they are configuration here).
pub fn show(cfg: &Config, source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{source}");
    let q = |x: &str| {
        if x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            x.to_string()
        } else {
            format!("{x:?}")
        }
    };
    for b in &cfg.bridge {
        let _ = writeln!(s, "    Bridge {}", q(&b.name));
        for c in &b.controllers {
            let _ = writeln!(s, "        Controller {c:?}");
        }
        for l in &b.listeners {
            let _ = writeln!(s, "        Listener {l:?}");
        }
        let _ = writeln!(
            s,
            "        fail_mode: {}",
            match b.fail_mode {
                config::FailMode::Secure => "secure",
                config::FailMode::Standalone => "standalone",
            }
        );
        let _ = writeln!(s, "        datapath_id: \"{}\"", b.dpid());
        let mut ports: Vec<(&str, Option<&config::PortConfig>)> =
            b.port.iter().map(|p| (p.name.as_str(), Some(p))).collect();
        if b.internal_port {
            ports.push((b.name.as_str(), None));
        }
        ports.sort_by(|a, b| a.0.cmp(b.0));
        for (name, p) in ports {
            let _ = writeln!(s, "        Port {}", q(name));
            if let Some(p) = p {
                if let Some(v) = p.vlan {
                    let _ = writeln!(s, "            tag: {v}");
                }
                if !p.trunks.is_empty() {
                    let _ = writeln!(s, "            trunks: {:?}", p.trunks);
                }
            }
            let _ = writeln!(s, "            Interface {}", q(name));
            match p {
                None => {
                    let _ = writeln!(s, "                type: internal");
                }
                Some(p) => {
                    let ty = serde_json::to_value(p.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    if ty != "system" {
                        let _ = writeln!(s, "                type: {ty}");
                    }
                    if let Some(n) = p.ofport {
                        let _ = writeln!(s, "                ofport_request: {n}");
                    }
                    if let Ok(Some(t)) = p.tunnel_config() {
                        // ovs-vsctl show prints `options: {key=flow, remote_ip="..."}`.
                        let opts = crate::actors::tunnels::options_text(&t)
                            .split(' ')
                            .collect::<Vec<_>>()
                            .join(", ");
                        let _ = writeln!(s, "                options: {{{opts}}}");
                    }
                    if let Some(m) = &p.xdp_mode {
                        // OVS's name for the option.
                        let _ = writeln!(s, "                options: {{xdp-mode={m}}}");
                    }
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "    rvswitchd_version: \"{}\"",
        env!("CARGO_PKG_VERSION")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# my switch\n[daemon]\nlog_level = \"info\" # keep me\n\n\
        [[bridge]]\nname = \"br0\"\n# ports below\n[[bridge.port]]\nname = \"p1\"\nofport = 1\n";

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn edit(text: &str, v: &[&str]) -> Result<String, String> {
        let mut doc: DocumentMut = text.parse().unwrap();
        let e = Edit::parse(&args(v)).unwrap()?;
        apply(&mut doc, &e, Path::new("/run/rvswitchd"))?;
        let out = doc.to_string();
        config::parse_str(&out, "edited", false).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn afxdp_ports_are_added_with_their_xdp_mode() {
        let t = edit(
            FILE,
            &["add-port", "br0", "vx9", "type=afxdp", "xdp_mode=generic"],
        )
        .unwrap();
        let cfg = config::parse_str(&t, "edited", false).unwrap();
        let p = &cfg.bridge[0].port[1];
        assert_eq!(p.kind, crate::types::PortType::Afxdp);
        assert_eq!(p.xdp_mode(), Ok(crate::types::XdpMode::Generic));
        let shown = show(&cfg, "edited");
        assert!(
            shown.contains("type: afxdp") && shown.contains("options: {xdp-mode=generic}"),
            "{shown}"
        );
        // Validated like the file: nothing is written for a bad mode.
        let e = edit(
            FILE,
            &["add-port", "br0", "vx9", "type=afxdp", "xdp_mode=fast"],
        )
        .unwrap_err();
        assert!(e.contains("not an XDP mode"), "{e}");
    }

    #[test]
    fn tunnel_ports_are_added_with_their_options() {
        let t = edit(
            FILE,
            &[
                "add-port",
                "br0",
                "vx0",
                "type=vxlan",
                "remote_ip=flow",
                "key=flow",
                "csum=true",
                "ttl=32",
            ],
        )
        .unwrap();
        let cfg = config::parse_str(&t, "edited", false).unwrap();
        let p = &cfg.bridge[0].port[1];
        let tc = p.tunnel_config().unwrap().unwrap();
        assert_eq!(tc.remote_ip, crate::netdev::tunnel::FlowOr::Flow);
        assert_eq!(tc.key, crate::netdev::tunnel::FlowOr::Flow);
        assert!(tc.csum);
        assert_eq!(tc.ttl, 32);
        let t = edit(
            &t,
            &[
                "add-port",
                "br0",
                "gn0",
                "type=geneve",
                "remote_ip=10.1.1.2",
                "key=7",
            ],
        )
        .unwrap();
        let cfg = config::parse_str(&t, "edited", false).unwrap();
        let shown = show(&cfg, "edited");
        assert!(
            shown.contains("type: geneve")
                && shown.contains("options: {remote_ip=10.1.1.2, key=7, dst_port=6081"),
            "{shown}"
        );
        // The validator refuses what a tunnel cannot be, with the key named.
        let e = edit(FILE, &["add-port", "br0", "vx1", "type=vxlan", "key=1"]).unwrap_err();
        assert!(e.contains("remote_ip"), "{e}");
        let e = edit(
            FILE,
            &[
                "add-port",
                "br0",
                "vx1",
                "type=vxlan",
                "remote_ip=10.0.0.1",
                "key=16777216",
            ],
        )
        .unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        // Two ports on one UDP endpoint are refused.
        let t = edit(
            FILE,
            &["add-port", "br0", "vx1", "type=vxlan", "remote_ip=10.0.0.1"],
        )
        .unwrap();
        let e = edit(
            &t,
            &["add-port", "br0", "vx2", "type=vxlan", "remote_ip=10.0.0.2"],
        )
        .unwrap_err();
        assert!(e.contains("would both receive UDP port 4789"), "{e}");
        edit(
            &t,
            &[
                "add-port",
                "br0",
                "vx2",
                "type=vxlan",
                "remote_ip=10.0.0.2",
                "dst_port=4790",
            ],
        )
        .unwrap();
    }

    #[test]
    fn add_and_delete_keep_comments() {
        let t = edit(
            FILE,
            &["add-port", "br0", "p2", "type=tap", "vlan=10", "trunks=1,2"],
        )
        .unwrap();
        assert!(
            t.contains("# my switch") && t.contains("# keep me") && t.contains("# ports below")
        );
        let c = config::parse_str(&t, "x", false).unwrap();
        let p = &c.bridge[0].port[1];
        assert_eq!(
            (p.name.as_str(), p.vlan, p.trunks.clone()),
            ("p2", Some(10), vec![1, 2])
        );
        let t = edit(&t, &["del-port", "p1"]).unwrap();
        assert!(!config::parse_str(&t, "x", false).unwrap().bridge[0]
            .port
            .iter()
            .any(|p| p.name == "p1"));
        let t = edit(&t, &["add-br", "br1", "fail_mode=secure"]).unwrap();
        let c = config::parse_str(&t, "x", false).unwrap();
        assert_eq!(
            c.bridge[1].listeners,
            vec!["punix:/run/rvswitchd/br1.mgmt".to_string()]
        );
        let t = edit(&t, &["del-br", "br1"]).unwrap();
        assert_eq!(config::parse_str(&t, "x", false).unwrap().bridge.len(), 1);
        assert!(t.contains("# my switch"));
    }

    #[test]
    fn bad_edits_are_refused_precisely() {
        let e = edit(FILE, &["add-port", "br0", "p1"]).unwrap_err();
        assert!(e.contains("already has a port named p1"), "{e}");
        let e = edit(FILE, &["add-port", "nobr", "p9"]).unwrap_err();
        assert!(e.contains("no bridge named nobr"), "{e}");
        let e = edit(FILE, &["add-port", "br0", "p9", "colour=red"]).unwrap_err();
        assert!(e.contains("unknown option \"colour\""), "{e}");
        let e = edit(FILE, &["add-port", "br0", "p9", "vlan=5000"]).unwrap_err();
        assert!(e.contains("vlan") && e.contains("out of range"), "{e}");
        let e = edit(FILE, &["add-port", "br0", "p9", "ofport=1"]).unwrap_err();
        assert!(e.contains("used twice"), "{e}");
        let e = edit(FILE, &["del-port", "br0", "zz"]).unwrap_err();
        assert!(e.contains("bridge br0 has no port zz"), "{e}");
        let e = edit(FILE, &["del-br", "br0"]).unwrap_err();
        assert!(e.contains("allow_no_bridges"), "{e}");
        let e = edit(FILE, &["add-br", "br0"]).unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        assert!(Edit::parse(&args(&["add-port", "br0"])).unwrap().is_err());
        assert!(Edit::parse(&args(&["version"])).is_none());
    }

    #[test]
    fn file_edits_are_atomic_and_validated_first() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sw.toml");
        std::fs::write(&p, FILE).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Edit::parse(&args(&["add-port", "br0", "p9", "vlan=0"]))
            .unwrap()
            .unwrap();
        assert!(edit_file(&p, &e, dir.path())
            .unwrap_err()
            .contains("unchanged"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), FILE);
        let e = Edit::parse(&args(&["add-port", "br0", "p9"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            edit_file(&p, &e, dir.path()).unwrap(),
            "added port p9 to bridge br0"
        );
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["sw.toml".to_string()]);
    }

    #[test]
    fn show_looks_like_ovs_vsctl() {
        let c = config::parse_str(
            "[[bridge]]\nname = \"br0\"\nlisteners = [\"punix:/x\"]\n[[bridge.port]]\nname = \"veth-a\"\nvlan = 10\nofport = 3\n",
            "x",
            false,
        )
        .unwrap();
        let s = show(&c, "/etc/rvswitchd/rvswitchd.toml");
        assert!(s.contains("    Bridge br0\n"), "{s}");
        assert!(s.contains("        Listener \"punix:/x\"\n"), "{s}");
        assert!(
            s.contains(
                "        Port br0\n            Interface br0\n                type: internal\n"
            ),
            "{s}"
        );
        assert!(s.contains("        Port \"veth-a\"\n            tag: 10\n            Interface \"veth-a\"\n                ofport_request: 3\n"), "{s}");
    }
}
