//! `[daemon] ovs_compat_paths`: the pidfile and control socket where Open
//! vSwitch's tools look for `ovs-vswitchd` (`ovs-appctl` without `-t` reads
//! `RUNDIR/ovs-vswitchd.pid` and connects to `RUNDIR/ovs-vswitchd.PID.ctl`,
//! as `lib/unixctl.c:unixctl_client_create()` callers do), and the check that
//! no real `ovs-vswitchd` is running, since both would claim those paths (and
//! the same interfaces). The bridges' `RUNDIR/BRIDGE.mgmt` listeners are
//! added in the configuration (`Config::add_ovs_compat_listeners`).

use std::path::{Path, PathBuf};

/// The name Open vSwitch's tools look for.
const OVS_DAEMON: &str = "ovs-vswitchd";

/// `RUNDIR/ovs-vswitchd.pid`.
pub fn pidfile(rundir: &Path) -> PathBuf {
    rundir.join(format!("{OVS_DAEMON}.pid"))
}

/// `RUNDIR/ovs-vswitchd.PID.ctl` for our pid.
pub fn ctl_socket(rundir: &Path) -> PathBuf {
    rundir.join(format!("{OVS_DAEMON}.{}.ctl", std::process::id()))
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Refuses (with what to do) when a real `ovs-vswitchd` runs, or when the
/// pidfile in `rundir` names another live daemon.
pub fn check_no_real_ovs(rundir: &Path) -> Result<(), String> {
    let advice =
        "stop it (systemctl stop openvswitch-switch) or set [daemon] ovs_compat_paths = false";
    let me = std::process::id();
    if let Some(pid) = std::fs::read_to_string(pidfile(rundir))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|p| *p != me)
    {
        match comm(pid).as_deref() {
            Some(OVS_DAEMON) => {
                return Err(format!(
                    "ovs_compat_paths: a real Open vSwitch is running ({OVS_DAEMON} pid {pid}, {}); {advice}",
                    pidfile(rundir).display()
                ))
            }
            Some(other) => {
                return Err(format!(
                    "ovs_compat_paths: {} names live process {pid} ({other}); another switch uses {}",
                    pidfile(rundir).display(),
                    rundir.display()
                ))
            }
            None => {} // stale: the process is gone
        }
    }
    // An ovs-vswitchd without a pidfile there (another run directory) still
    // owns interfaces and answers OVS's tools elsewhere: refuse too.
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid != me && comm(pid).as_deref() == Some(OVS_DAEMON) {
                return Err(format!(
                    "ovs_compat_paths: a real Open vSwitch is running ({OVS_DAEMON} pid {pid}); {advice}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_stale_pidfiles() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(pidfile(dir.path()), dir.path().join("ovs-vswitchd.pid"));
        assert!(ctl_socket(dir.path())
            .to_string_lossy()
            .ends_with(&format!("ovs-vswitchd.{}.ctl", std::process::id())));
        // A pidfile naming a live process that is not OVS: refused, named.
        std::fs::write(pidfile(dir.path()), "1\n").unwrap();
        let e = check_no_real_ovs(dir.path()).unwrap_err();
        assert!(e.contains("names live process 1"), "{e}");
        // Our own pid is not a conflict (a restart writes it again).
        std::fs::write(pidfile(dir.path()), format!("{}\n", std::process::id())).unwrap();
        let r = check_no_real_ovs(dir.path());
        assert!(r.is_ok() || r.unwrap_err().contains("a real Open vSwitch"));
    }
}
